"""Prefect flows and tasks: notifications, feedback, deadlines, reminders (issue 3 onwards)."""
