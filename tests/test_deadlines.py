"""Deadlines through the journey and the sweeps, under a controlled clock (time-machine)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from api.demo import seed_region
from api.security import new_api_token
from core.db import make_engine, session_scope
from flows.sweeps import sweep_deadlines
from models.deadlines import Deadline
from models.outbox import Outbox
from models.users import ApiToken
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World

# Monday 2 March 2026, 10:00 in Moscow. 9 March is a holiday (8 March falls on a Sunday).
MONDAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")


def deadline(case: dict[str, Any], timer: str) -> dict[str, Any]:
    return next(d for d in case["deadlines"] if d["timer"] == timer)


def due_day(value: str, zone: str = "Europe/Moscow") -> date:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).date()


def outbox_count(engine: Engine, template: str) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).where(Outbox.template == template)).one()


def test_referral_opens_deadlines_in_working_and_calendar_days(world: World) -> None:
    with time_machine.travel(MONDAY, tick=False):
        referral = world.refer(referral_date="2026-02-27")
        case = world.case(referral["case_id"])
    response = deadline(case, "referral_response")
    assert response["status"] == "open"
    # 5 working days from Monday 2 March, skipping the 9 March holiday: Tuesday 10 March.
    assert due_day(response["due_at"]) == date(2026, 3, 10)
    assert due_day(response["warn_at"]) == date(2026, 3, 6)
    # 45 calendar days from the referral date (IDEA Part C default).
    assert due_day(deadline(case, "initial_programme")["due_at"]) == date(2026, 4, 13)


def test_leaving_a_state_closes_its_deadline_met_or_missed(world: World) -> None:
    with time_machine.travel(MONDAY, tick=False):
        on_time = world.refer()["case_id"]
        late = world.refer()["case_id"]
        world.advance(on_time, "accept", who="coordinator")
    with time_machine.travel(MONDAY + timedelta(days=20), tick=False):
        case = world.advance(late, "accept", who="coordinator")
    assert deadline(world.case(on_time), "referral_response")["status"] == "met"
    assert deadline(case, "referral_response")["status"] == "missed"
    # initial_programme spans referred → ipr_development: still open.
    assert deadline(case, "initial_programme")["status"] == "open"
    assert deadline(case, "need_determination")["status"] == "open"


def test_regions_count_days_in_their_own_zone(world: World, engine: Engine) -> None:
    """The same instant is Monday evening in Kaliningrad and already Tuesday in Kamchatka."""
    with session_scope(engine) as session:
        staff = seed_region(
            session, "kaliningrad", "Калининградская область", "Europe/Kaliningrad", login_prefix="k_"
        )
        token, digest = new_api_token()
        session.add(ApiToken(user_id=staff.users["referrer"].id or 0, name="t", token_hash=digest))
        world.tokens["k_referrer"] = token
        world.org_ids["k_provider"] = staff.orgs[7].id or 0
    instant = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 15:00 in Kaliningrad, 01:00 (3 March) in Kamchatka
    with time_machine.travel(instant, tick=False):
        kal = world.refer("k_referrer", provider_id=world.org_ids["k_provider"])
        kam = world.refer("b_referrer", provider_id=world.org_ids["b_provider"])
    with Session(engine) as session:
        rows = {
            d.case_id: d for d in session.exec(select(Deadline).where(Deadline.timer == "referral_response"))
        }
    kal_due, kam_due = rows[kal["case_id"]].due_at, rows[kam["case_id"]].due_at
    # Kaliningrad: from Mon 2 March to Tue 10 March 23:59:59 +02;
    # Kamchatka: from Tue 3 March to Wed 11 March 23:59:59 +12.
    assert kal_due == datetime(2026, 3, 10, 21, 59, 59, tzinfo=UTC)
    assert kam_due == datetime(2026, 3, 11, 11, 59, 59, tzinfo=UTC)


def test_suspension_stops_the_clock_and_shifts_the_deadline(world: World, engine: Engine) -> None:
    with time_machine.travel(MONDAY, tick=False):
        case_id = world.refer()["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        due = datetime.fromisoformat(deadline(world.case(case_id), "need_determination")["due_at"])
    with time_machine.travel(MONDAY + timedelta(days=3), tick=False):
        world.advance(case_id, "suspend", reason="Госпитализация", who="coordinator")
    # The deadline passes while the child is in hospital: nothing is overdue, nobody is told.
    with time_machine.travel(MONDAY + timedelta(days=40), tick=False):
        report = sweep_deadlines(engine)
        assert report.escalated == 0
        overdue = world.client.get(f"{API}/overdue", headers=world.h("head")).json()
        assert all(item["case_id"] != case_id for item in overdue["items"])
        paused = deadline(world.case(case_id), "need_determination")
        assert paused["paused"] is True and paused["days_overdue"] == 0
        world.advance(case_id, "resume", who="coordinator")
        shifted = datetime.fromisoformat(deadline(world.case(case_id), "need_determination")["due_at"])
    # Due Tuesday 17 March; suspended Thursday 5 March, resumed Saturday 11 April: the pause took
    # 26 working days (5 March up to 10 April), so it is due 26 working days after 17 March.
    assert due_day(due.isoformat()) == date(2026, 3, 17)
    assert shifted == datetime(2026, 4, 22, 23, 59, 59, tzinfo=MOSCOW)


def test_resume_moves_deadlines_by_the_working_days_of_the_pause_to_the_end_of_their_day(
    world: World,
) -> None:
    """On resume a deadline moved by the exact pause: its due time left the end of its day."""
    with time_machine.travel(MONDAY, tick=False):
        case_id = world.refer()["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        opened = deadline(world.case(case_id), "need_determination")
    # 10 working days from Monday 2 March, the 9 March holiday skipped: due Tuesday 17 March, warned
    # two working days before, on Friday 13 March.
    assert datetime.fromisoformat(opened["due_at"]) == datetime(2026, 3, 17, 23, 59, 59, tzinfo=MOSCOW)
    assert datetime.fromisoformat(opened["warn_at"]) == datetime(2026, 3, 13, 9, 0, tzinfo=MOSCOW)
    with time_machine.travel(datetime(2026, 3, 5, 10, 0, tzinfo=MOSCOW), tick=False):  # Thursday
        world.advance(case_id, "suspend", reason="Болезнь ребёнка", who="coordinator")
    with time_machine.travel(datetime(2026, 3, 11, 15, 0, tzinfo=MOSCOW), tick=False):  # Wednesday
        world.advance(case_id, "resume", who="coordinator")
        moved = deadline(world.case(case_id), "need_determination")
    # The pause took Thursday 5, Friday 6 and Tuesday 10 March (9 March is a holiday): 3 working days.
    assert datetime.fromisoformat(moved["due_at"]) == datetime(2026, 3, 20, 23, 59, 59, tzinfo=MOSCOW)
    assert datetime.fromisoformat(moved["warn_at"]) == datetime(2026, 3, 18, 9, 0, tzinfo=MOSCOW)


def test_suspended_and_resumed_the_same_day_loses_no_day(world: World) -> None:
    with time_machine.travel(MONDAY, tick=False):
        case_id = world.refer()["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        due = deadline(world.case(case_id), "need_determination")["due_at"]
        world.advance(case_id, "suspend", reason="Ошибка", who="coordinator")
    with time_machine.travel(MONDAY + timedelta(hours=5), tick=False):
        world.advance(case_id, "resume", who="coordinator")
        assert deadline(world.case(case_id), "need_determination")["due_at"] == due


def test_deadlines_anchored_on_the_birth_date_stay_on_resume(world: World) -> None:
    """The transition timers moved with the pause, though the child grows older all the same."""
    born = date(2023, 8, 15)
    with time_machine.travel(datetime(2025, 9, 1, 8, 0, tzinfo=UTC), tick=False):
        case_id = world.refer(child={"birth_date": born.isoformat()})["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
        world.advance(
            case_id,
            "approve_ipr",
            ipr_payload(
                period_start="2025-09-01",
                period_end="2026-03-01",
                parent_agreement={"agreed": True, "date": "2025-09-01"},
            ),
        )
        before = world.case(case_id)
    with time_machine.travel(datetime(2025, 10, 1, 8, 0, tzinfo=UTC), tick=False):
        world.advance(case_id, "suspend", reason="Госпитализация")
    with time_machine.travel(datetime(2025, 11, 5, 8, 0, tzinfo=UTC), tick=False):
        after = world.advance(case_id, "resume")
    assert deadline(after, "transition_start")["due_at"] == deadline(before, "transition_start")["due_at"]
    assert due_day(deadline(after, "transition_start")["due_at"]) == date(2026, 5, 17)
    # A timer counted from entering the state does move.
    assert deadline(after, "programme_review")["due_at"] > deadline(before, "programme_review")["due_at"]


def test_sweep_warns_then_escalates_each_once_and_catches_up(world: World, engine: Engine) -> None:
    with time_machine.travel(MONDAY, tick=False):
        case_id = world.refer()["case_id"]
    with time_machine.travel(datetime(2026, 3, 6, 8, 0, tzinfo=UTC), tick=False):  # the warning day
        assert sweep_deadlines(engine).warned == 1
        assert sweep_deadlines(engine).warned == 0
    # The service was down for two weeks: the first sweep after it catches up.
    with time_machine.travel(datetime(2026, 3, 24, 8, 0, tzinfo=UTC), tick=False):
        first = sweep_deadlines(engine)
        second = sweep_deadlines(engine)
    assert first.escalated == 1 and second.escalated == 0
    assert outbox_count(engine, "deadline_warning") == 1
    assert outbox_count(engine, "deadline_overdue") == 1
    with Session(engine) as session:
        row = session.exec(
            select(Deadline).where(Deadline.case_id == case_id, Deadline.timer == "referral_response")
        ).one()
    assert row.status == "open" and row.expired_at is not None  # still open until the case moves


def test_two_sweeps_racing_fire_each_action_once(world: World, engine: Engine) -> None:
    with time_machine.travel(MONDAY, tick=False):
        for _ in range(12):
            world.refer()
    # A second "process": its own engine and connection pool.
    engines = [engine, make_engine(engine.url.render_as_string(hide_password=False))]
    reports: list[Any] = []
    with time_machine.travel(datetime(2026, 4, 30, 8, 0, tzinfo=UTC), tick=False):
        barrier = threading.Barrier(2)

        def sweep(e: Engine) -> None:
            barrier.wait()
            reports.append(sweep_deadlines(e))

        threads = [threading.Thread(target=sweep, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    engines[1].dispose()
    # Each case has two due deadlines (referral_response, initial_programme): 24 escalations in all.
    assert sum(r.escalated for r in reports) == 24
    assert outbox_count(engine, "deadline_overdue") == 24
    with Session(engine) as session:
        assert session.exec(select(func.count()).where(col(Deadline.expired_at).is_not(None))).one() == 24


def test_timer_fires_begin_transition_ninety_days_before_the_third_birthday(
    world: World, engine: Engine
) -> None:
    born = date(2023, 8, 15)
    with time_machine.travel(datetime(2025, 9, 1, 8, 0, tzinfo=UTC), tick=False):
        case_id = world.refer(child={"birth_date": born.isoformat()})["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
        world.advance(
            case_id,
            "approve_ipr",
            ipr_payload(
                period_start="2025-09-01",
                period_end="2026-03-01",
                parent_agreement={"agreed": True, "date": "2025-09-01"},
            ),
        )
        start = deadline(world.case(case_id), "transition_start")
    assert due_day(start["due_at"]) == date(2026, 5, 17)  # 15.08.2026 − 90 days
    with time_machine.travel(datetime(2026, 5, 18, 8, 0, tzinfo=UTC), tick=False):
        report = sweep_deadlines(engine)
        case = world.case(case_id)
    assert report.fired == [(case_id, "begin_transition")]
    assert case["state"] == "transition"
    last = case["history"][-1]
    assert (
        last["event"] == "begin_transition" and last["actor_id"] is None and "Автоматически" in last["reason"]
    )
    assert deadline(case, "transition_start")["status"] == "missed"
    assert due_day(deadline(case, "transition_complete")["due_at"]) == date(2026, 8, 15)


def test_timer_event_on_a_case_that_moved_on_has_no_effect(world: World, engine: Engine) -> None:
    born = date(2023, 8, 15)
    with time_machine.travel(datetime(2025, 9, 1, 8, 0, tzinfo=UTC), tick=False):
        case_id = world.refer(child={"birth_date": born.isoformat()})["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        world.advance(case_id, "determine_need", need_payload("consultation", "К"), who="coordinator")
    with time_machine.travel(datetime(2026, 5, 10, 8, 0, tzinfo=UTC), tick=False):
        world.advance(case_id, "complete")  # the family finished before the timer
    with time_machine.travel(datetime(2026, 5, 18, 8, 0, tzinfo=UTC), tick=False):
        report = sweep_deadlines(engine)
    assert report.fired == [] and report.escalated == 0
    assert world.case(case_id)["state"] == "completed"


def test_overdue_view_is_scoped_filtered_and_sorted_by_lateness(world: World, engine: Engine) -> None:
    with time_machine.travel(MONDAY, tick=False):
        early = world.refer()["case_id"]
    with time_machine.travel(MONDAY + timedelta(days=7), tick=False):
        later = world.refer()["case_id"]
        world.advance(later, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
        other = world.client.post(
            f"{API}/referrals",
            json=world.referral_body(provider_id=world.org_ids["provider2"]),
            headers=world.h("referrer"),
        ).json()["case_id"]
    with time_machine.travel(MONDAY + timedelta(days=60), tick=False):

        def get(who: str, **params: Any) -> Any:
            return world.client.get(f"{API}/overdue", params=params, headers=world.h(who))

        head = get("head").json()
        # early: referral_response (51 days late) and initial_programme (14); later:
        # need_determination (38) and initial_programme (7).
        assert [(i["case_id"], i["timer"], i["days_overdue"]) for i in head["items"]] == [
            (early, "referral_response", 51),
            (later, "need_determination", 38),
            (early, "initial_programme", 14),
            (later, "initial_programme", 7),
        ]
        assert head["total"] == 4
        assert all(i["provider_id"] == world.provider_id for i in head["items"])
        assert get("rrmc").json()["total"] == head["total"] + 2  # the other provider's two
        assert {i["case_id"] for i in get("coordinator2").json()["items"]} == {other}
        assert get("b_rrmc").json()["total"] == 0
        assert get("analyst").status_code == 403
        by_curator = get("head", curator_id=world.user_ids["curator"]).json()["items"]
        assert {i["case_id"] for i in by_curator} == {later}
        assert {i["timer"] for i in get("head", timer="referral_response").json()["items"]} == {
            "referral_response"
        }
        assert {i["case_id"] for i in get("head", state="need_determination").json()["items"]} == {later}
        assert get("head", min_days_overdue=50).json()["total"] == 1
        assert get("head", state="nowhere").status_code == 422
    with time_machine.travel(MONDAY + timedelta(days=1), tick=False):
        soon = world.client.get(
            f"{API}/overdue", params={"due_within_days": 10}, headers=world.h("head")
        ).json()
        assert [i["timer"] for i in soon["items"]] == ["referral_response"]
