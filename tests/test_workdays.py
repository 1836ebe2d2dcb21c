"""Working days of the Russian production calendar, and due times in the region's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from core.workdays import WorkCalendar, due_dates, end_of_day
from standards import CalendarDef, load_standard

CALENDAR = WorkCalendar(load_standard().calendar)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Friday + 1: Monday
        (date(2026, 5, 8), 1, date(2026, 5, 12)),  # Victory Day on Saturday, moved to Monday the 11th
        (date(2025, 12, 30), 3, date(2026, 1, 14)),  # 31 Dec and 1-9 Jan off (9 Jan moved from 3 Jan)
        (date(2025, 10, 31), 1, date(2025, 11, 1)),  # Saturday 1 Nov 2025: a transferred working day
        (date(2025, 10, 31), 2, date(2025, 11, 5)),  # then 3 and 4 Nov are off
    ],
)
def test_working_days(start: date, days: int, expected: date) -> None:
    assert CALENDAR.add_working_days(start, days) == expected


def test_the_transferred_saturday_comes_from_the_standard_file() -> None:
    without = WorkCalendar(CalendarDef())
    assert without.add_working_days(date(2025, 10, 31), 1) == date(2025, 11, 5)
    assert WorkCalendar(CalendarDef(extra_days_off=[date(2026, 11, 23)])).add_working_days(
        date(2026, 11, 20), 1
    ) == date(2026, 11, 24)


def test_months_minus_days_is_ninety_days_before_the_third_birthday() -> None:
    timer = load_standard().timer("transition_start")
    assert timer is not None
    due, warn = due_dates(timer, date(2024, 6, 15), CALENDAR)
    assert due == date(2027, 3, 17)  # 15.06.2027 − 90 days
    assert warn == date(2027, 3, 3)


def test_deadline_falls_due_at_the_end_of_the_local_day() -> None:
    kamchatka = end_of_day(date(2026, 3, 11), ZoneInfo("Asia/Kamchatka"))
    kaliningrad = end_of_day(date(2026, 3, 11), ZoneInfo("Europe/Kaliningrad"))
    assert kamchatka.astimezone(UTC) == datetime(2026, 3, 11, 11, 59, 59, tzinfo=UTC)
    assert kaliningrad.astimezone(UTC) == datetime(2026, 3, 11, 21, 59, 59, tzinfo=UTC)


def test_family_messages_wait_for_the_morning_in_the_familys_zone() -> None:
    import time_machine

    from flows.delivery import quiet_until
    from flows.targets import Resolved

    def family(zone: str) -> Resolved:
        return Resolved("demo", zone, "family", "referred", {}, [])

    # 20:30 UTC is 23:30 in Moscow (night) and 08:30 next day in Kamchatka (night until 09:00).
    with time_machine.travel(datetime(2026, 3, 2, 20, 30, tzinfo=UTC), tick=False):
        assert quiet_until(family("Europe/Moscow")) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
        assert quiet_until(family("Asia/Kamchatka")) == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
    # 12:00 UTC is 15:00 in Moscow: no waiting.
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=False):
        assert quiet_until(family("Europe/Moscow")) is None
