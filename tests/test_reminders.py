"""Appointment reminders (never at night), the family's no-login page, and missed sessions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from core.config import Settings
from core.tokens import key_store, session_link_token
from flows.sweeps import sweep_reminders
from models.outbox import Outbox
from models.programmes import ServiceSession
from tests.test_journey import to_ipr_implementation
from tests.world import API, World

# Sessions at 11:00 Moscow time (08:00 UTC) on Thursday 12 March 2026, planned a week before.
PLANNED_ON = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
SESSION_AT = datetime(2026, 3, 12, 8, 0, tzinfo=UTC)


def plan(world: World, case_id: int, at: datetime = SESSION_AT) -> dict[str, Any]:
    response = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": at.isoformat()},
        headers=world.h("curator"),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def reminders(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.template == "session_reminder")))


def test_reminded_a_day_and_three_hours_before_each_once(world: World, engine: Engine) -> None:
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        planned = plan(world, case_id)
    with time_machine.travel(SESSION_AT - timedelta(hours=30), tick=False):
        assert sweep_reminders(engine).reminders == 0  # too early
    with time_machine.travel(SESSION_AT - timedelta(hours=23), tick=False):  # 12:00 Moscow, the day before
        assert sweep_reminders(engine).reminders == 1
        assert sweep_reminders(engine).reminders == 0
    with time_machine.travel(SESSION_AT - timedelta(hours=2), tick=False):
        assert sweep_reminders(engine).reminders == 1
        assert sweep_reminders(engine).reminders == 0
    rows = reminders(engine)
    assert [r.context["session_id"] for r in rows] == [planned["id"], planned["id"]]
    assert sorted(r.context["hours_before"] for r in rows) == [3, 24]


def test_no_reminder_at_night_it_waits_for_the_morning(world: World, engine: Engine) -> None:
    """Quiet hours are 21:00-09:00 in the region: a reminder due at 08:00 goes at 09:00."""
    moscow = timedelta(hours=3)
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        plan(world, case_id)  # 11:00 Moscow on 12 March; the three-hours reminder is due at 08:00
    with time_machine.travel(datetime(2026, 3, 11, 12, 0, tzinfo=UTC) - moscow, tick=False):
        assert sweep_reminders(engine).reminders == 1  # the day before, at noon
    with time_machine.travel(datetime(2026, 3, 12, 8, 30, tzinfo=UTC) - moscow, tick=False):
        assert sweep_reminders(engine).reminders == 0  # 08:30: night still
    with time_machine.travel(datetime(2026, 3, 12, 9, 5, tzinfo=UTC) - moscow, tick=False):
        assert sweep_reminders(engine).reminders == 1  # 09:05: morning
    assert sorted(r.context["hours_before"] for r in reminders(engine)) == [3, 24]


def test_session_planned_late_gets_no_redundant_reminder(world: World, engine: Engine) -> None:
    with time_machine.travel(SESSION_AT - timedelta(hours=20), tick=False):
        case_id = to_ipr_implementation(world)
        plan(world, case_id)  # the family was just sent a confirmation
        assert sweep_reminders(engine).reminders == 0
    with time_machine.travel(SESSION_AT - timedelta(hours=2), tick=False):
        assert sweep_reminders(engine).reminders == 1


def link(world: World, planned: dict[str, Any], valid_until: datetime) -> str:
    return f"/f/{session_link_token(planned['id'], valid_until, world.client.app.state.keys)}"  # type: ignore[attr-defined]


def stored(engine: Engine, session_id: int) -> ServiceSession:
    with Session(engine) as session:
        row = session.get(ServiceSession, session_id)
        assert row is not None
        return row


def test_family_confirms_from_the_link_without_logging_in(world: World, engine: Engine) -> None:
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        planned = plan(world, case_id)
        url = link(world, planned, SESSION_AT + timedelta(hours=12))
        page = world.client.get(url)
        assert page.status_code == 200 and "12.03.2026 в 11:00" in page.text and "Подтверждаю" in page.text
        done = world.client.post(url, data={"action": "confirm"})
    assert done.status_code == 200 and "Вы подтвердили" in done.text
    assert stored(engine, planned["id"]).family_response == "confirmed"


def test_family_asks_to_reschedule_and_the_curator_is_told(world: World, engine: Engine) -> None:
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        planned = plan(world, case_id)
        url = link(world, planned, SESSION_AT + timedelta(hours=12))
        world.client.post(url, data={"action": "reschedule"})
        world.client.post(url, data={"action": "reschedule"})  # a second tap tells nobody twice
    assert stored(engine, planned["id"]).family_response == "reschedule_requested"
    with Session(engine) as session:
        told = session.exec(select(func.count()).where(Outbox.template == "reschedule_requested")).one()
    assert told == 1


def test_tampered_or_expired_link_shows_a_clear_page_and_changes_nothing(
    world: World, engine: Engine
) -> None:
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        planned = plan(world, case_id)
        url = link(world, planned, SESSION_AT + timedelta(hours=12))
        tampered = re.sub(r"\.[^.]{4}", ".AAAA", url, count=1)
        other_keys = key_store(Settings(family_link_key="another-secret-key-long-enough-for-hs"))
        forged = f"/f/{session_link_token(planned['id'], SESSION_AT, other_keys)}"
        for bad in (tampered, forged, "/f/nonsense"):
            assert world.client.post(bad, data={"action": "confirm"}).status_code == 400
            page = world.client.get(bad)
            assert page.status_code == 400 and "Ссылка недействительна" in page.text
    with time_machine.travel(SESSION_AT + timedelta(days=1), tick=False):
        expired = world.client.post(url, data={"action": "confirm"})
        assert expired.status_code == 410 and "Ссылка устарела" in expired.text
    assert stored(engine, planned["id"]).family_response is None


def test_repeated_misses_trigger_the_contact_rule(world: World, engine: Engine) -> None:
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        sessions = [plan(world, case_id, at=SESSION_AT + timedelta(days=7 * i)) for i in range(3)]
    with time_machine.travel(SESSION_AT + timedelta(days=30), tick=False):
        for planned in sessions:
            response = world.client.patch(
                f"{API}/cases/{case_id}/sessions/{planned['id']}",
                json={"status": "missed"},
                headers=world.h("curator"),
            )
            assert response.status_code == 200, response.text
        with Session(engine) as session:
            missed = session.exec(select(func.count()).where(Outbox.template == "session_missed")).one()
            rule = session.exec(select(func.count()).where(Outbox.template == "contact_rule_reached")).one()
        assert (missed, rule) == (3, 1)
        # Three failed contacts: the standard now allows closing the case as «связь утрачена».
        assert world.advance(case_id, "mark_lost_contact")["state"] == "lost_contact"
