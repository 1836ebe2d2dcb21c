"""Working days of a region: Russian public holidays (the `holidays` library) adjusted by the
standard's calendar (transferred working Saturdays, extra days off), and deadlines computed in the
region's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta

from standards import CalendarDef, TimerDef


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("RU", years=year))


class WorkCalendar:
    def __init__(self, calendar: CalendarDef) -> None:
        self.working_weekends = frozenset(calendar.working_weekends)
        self.extra_days_off = frozenset(calendar.extra_days_off)

    def is_working_day(self, day: date) -> bool:
        if day in self.working_weekends:
            return True
        if day in self.extra_days_off or day in _public_holidays(day.year):
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (`start` itself does not count)."""
        current, left = start, days
        while left > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                left -= 1
        return current

    def subtract_working_days(self, end: date, days: int) -> date:
        current, left = end, days
        while left > 0:
            current -= timedelta(days=1)
            if self.is_working_day(current):
                left -= 1
        return current


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """A deadline falls due at the end of its day where the case is: 23:59:59 local time."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def start_of_work(day: date, zone: ZoneInfo) -> datetime:
    """Warnings are due at the start of their day's work: 09:00 local time."""
    return datetime.combine(day, time(9, 0), tzinfo=zone)


def due_dates(timer: TimerDef, anchor: date, calendar: WorkCalendar) -> tuple[date, date | None]:
    """(due day, warning day) of a timer counted from its anchor day."""
    if timer.unit == "working_days":
        due = calendar.add_working_days(anchor, timer.duration)
    elif timer.unit == "calendar_days":
        due = anchor + timedelta(days=timer.duration)
    else:
        due = anchor + relativedelta(months=timer.duration)
    due -= timedelta(days=timer.minus_days)
    if not timer.warn_before:
        return due, None
    if timer.unit == "working_days":
        warn = calendar.subtract_working_days(due, timer.warn_before)
    else:
        warn = due - timedelta(days=timer.warn_before)
    return due, warn
