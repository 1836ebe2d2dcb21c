"""indexes the region's statistics read by

The statistics (api/services/statistics.py) read the history by event and time, the deadlines by
their due date, the referrals and the sessions by their date: without these, each of those reads is
a scan of the whole table (the yearly report over 100 000 journeys: bench/reports.py). The deadlines'
and the sessions' indexes hold every column the statistics read: a period's rows are counted from the
index alone.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_history_event_at", "case_history", ["event", "at", "case_id"])
    op.create_index(
        "ix_deadline_due", "deadline", ["due_at", "provider_id", "timer", "status", "paused_at", "case_id"]
    )
    op.create_index("ix_referral_date", "referral", ["referral_date", "provider_id"])
    op.create_index(
        "ix_session_scheduled",
        "service_session",
        ["scheduled_at", "case_id", "status", "form", "service_code"],
    )


def downgrade() -> None:
    op.drop_index("ix_session_scheduled", table_name="service_session")
    op.drop_index("ix_referral_date", table_name="referral")
    op.drop_index("ix_deadline_due", table_name="deadline")
    op.drop_index("ix_case_history_event_at", table_name="case_history")
