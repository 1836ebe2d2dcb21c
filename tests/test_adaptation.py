"""The transition as the 2025 letter has it, through HTTP: the child enters a ДОО (the curator records
it, or the ДОО confirms it), an adaptation period of the region's length follows, and the case
completes when it ends (the standard's `adaptation` timer, fired by the deadline sweep)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from flows.sweeps import sweep_deadlines
from models.audit import AuditLog
from models.cases import Case, CaseHistory
from models.common import today_in
from models.organisations import Organisation, OrgKind, Region
from models.outbox import Outbox
from tests.test_journey import need_payload, to_ipr_implementation
from tests.world import API, World

# The demo region's today, which the guards use: the server's date is a day behind from 21:00 UTC.
TODAY = today_in("Europe/Moscow")


def kindergarten_id(engine: Engine, region: str = "demo") -> int:
    """The demo region's ДОО («МБДОУ «Детский сад № 12…»»), whose staff is the `kindergarten` user."""
    with Session(engine) as session:
        org_id = session.exec(
            select(Organisation.id)
            .join(Region, col(Region.id) == Organisation.region_id)
            .where(Organisation.kind == OrgKind.education, Region.code == region)
        ).one()
    assert org_id is not None
    return org_id


def in_transition(world: World, engine: Engine, **payload: Any) -> int:
    """A case in «Переход» whose receiving ДОО is named (unless the payload says otherwise)."""
    case_id = to_ipr_implementation(world)
    body = {"destination_org_id": kindergarten_id(engine), **payload}
    assert world.advance(case_id, "begin_transition", body)["state"] == "transition"
    return case_id


def row(engine: Engine, case_id: int) -> Case:
    with Session(engine) as session:
        return session.exec(select(Case).where(Case.id == case_id)).one()


def adaptation_deadline(case: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in case["deadlines"] if d["timer"] == "adaptation")


def test_a_case_completes_at_the_end_of_adaptation(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    case = world.advance(case_id, "enrol", {"enrolled_on": TODAY.isoformat()})
    assert case["state"] == "adaptation" and case["state_label"] == "Адаптация"
    # The region's default length: three months from the enrolment, recorded on the case.
    ends = TODAY + relativedelta(months=3)
    stored = row(engine, case_id)
    assert (stored.adaptation_starts_on, stored.adaptation_ends_on) == (TODAY, ends)
    assert (case["adaptation_starts_on"], case["adaptation_ends_on"]) == (TODAY.isoformat(), ends.isoformat())
    assert case["destination_org_id"] == kindergarten_id(engine)
    enrol = case["history"][-1]
    assert enrol["event"] == "enrol" and enrol["payload"]["adaptation_ends_on"] == ends.isoformat()
    assert enrol["payload"]["destination"].startswith("МБДОУ «Детский сад № 12")
    timer = adaptation_deadline(case)
    assert timer["status"] == "open"
    due = datetime.fromisoformat(timer["due_at"])

    # The curator cannot close it before the period ends: the button is blocked with the reason.
    assert "complete" not in case["allowed_events"]
    assert "ещё не закончился" in case["blocked"]["complete"]
    refused = world.event(case_id, "complete")
    assert refused.status_code == 422 and "ещё не закончился" in refused.json()["message"], refused.text

    before = sweep_deadlines(engine, now=due - timedelta(days=1))
    assert (case_id, "complete") not in before.fired
    assert world.case(case_id)["state"] == "adaptation"

    after = sweep_deadlines(engine, now=due + timedelta(minutes=1))
    assert (case_id, "complete") in after.fired
    case = world.case(case_id)
    assert case["state"] == "completed" and case["closed_at"] is not None
    last = case["history"][-1]
    assert last["event"] == "complete" and last["actor_id"] is None and "Автоматически" in last["reason"]
    assert adaptation_deadline(case)["status"] == "met"
    with Session(engine) as session:
        templates = set(session.exec(select(Outbox.template).where(Outbox.case_id == case_id)))
    assert {"adaptation_started", "enrolment_recorded", "journey_completed"} <= templates


def test_the_curator_may_complete_on_the_last_day_of_adaptation(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    ends = TODAY + timedelta(days=10)
    world.advance(
        case_id, "enrol", {"enrolled_on": TODAY.isoformat(), "adaptation_ends_on": ends.isoformat()}
    )
    assert row(engine, case_id).adaptation_ends_on == ends
    with time_machine.travel(datetime.now(UTC) + timedelta(days=10), tick=False):
        assert world.advance(case_id, "complete")["state"] == "completed"


def test_an_adaptation_period_ending_before_it_starts_is_refused(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    version = world.case(case_id)["version"]
    for ends in (TODAY, TODAY - timedelta(days=1)):
        payload = {"enrolled_on": TODAY.isoformat(), "adaptation_ends_on": ends.isoformat()}
        response = world.event(case_id, "enrol", payload)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["field"] == "payload.adaptation_ends_on"
        assert "позже даты поступления" in body["message"]
    case = world.case(case_id)
    assert case["state"] == "transition" and case["version"] == version
    assert row(engine, case_id).adaptation_ends_on is None


def test_an_enrolment_before_the_transition_or_far_ahead_is_refused(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    for enrolled, words in (
        (TODAY - timedelta(days=1), "раньше начала перехода"),
        (TODAY + timedelta(days=60), "позже"),
    ):
        response = world.event(case_id, "enrol", {"enrolled_on": enrolled.isoformat()})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "payload.enrolled_on" and words in response.json()["message"]
    bad = world.event(case_id, "enrol", {"enrolled_on": "31.02.2026"})
    assert bad.status_code == 422, bad.text
    assert world.case(case_id)["state"] == "transition"


def test_an_enrolment_to_an_organisation_that_cannot_receive_is_refused(world: World, engine: Engine) -> None:
    case_id = in_transition(
        world, engine, destination_org_id=None, destination="Группа кратковременного пребывания"
    )
    payload = {"enrolled_on": TODAY.isoformat(), "destination_org_id": world.org_ids["health"]}
    response = world.event(case_id, "enrol", payload)
    assert response.status_code == 422 and response.json()["field"] == "payload.destination_org_id", (
        response.text
    )
    # Another programme, in words (given at begin_transition): no organisation is told.
    case = world.advance(case_id, "enrol", {"enrolled_on": TODAY.isoformat()})
    assert case["state"] == "adaptation"
    assert case["history"][-1]["payload"]["destination"] == "Группа кратковременного пребывания"
    with Session(engine) as session:
        told = session.exec(
            select(func.count()).where(Outbox.case_id == case_id, Outbox.template == "enrolment_recorded")
        ).one()
    assert told == 0


def test_complete_from_transition_is_no_longer_possible(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    case = world.case(case_id)
    assert "complete" not in case["allowed_events"] and "enrol" in case["allowed_events"]
    response = world.event(case_id, "complete", {"destination": "МБДОУ № 3"})
    assert response.status_code == 409, response.text
    assert response.json()["error"] == "event_not_allowed"


def test_the_kindergarten_sees_its_children_and_confirms_the_enrolment(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    elsewhere = in_transition(world, engine, destination_org_id=None, destination="Иная программа")
    listed = world.client.get(f"{API}/enrolments", headers=world.h("kindergarten"))
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()
    # The minimum: who the child is, who serves the family, how to reach the curator, the dates.
    assert set(item) == {
        "case_id",
        "child_name",
        "child_birth_date",
        "provider_name",
        "provider_phone",
        "curator_name",
        "curator_email",
        "state",
        "state_label",
        "expected_on",
        "enrolled_on",
        "adaptation_ends_on",
    }
    assert item["case_id"] == case_id and item["state"] == "transition" and item["enrolled_on"] is None
    assert (
        item["child_name"].startswith("Ёжикова Алёна") and item["curator_name"] == "Петрова Анна Викторовна"
    )
    assert item["curator_email"] == "curator@example.org"
    assert elsewhere != case_id

    confirmed = world.client.post(
        f"{API}/enrolments/{case_id}/confirm",
        json={"enrolled_on": TODAY.isoformat()},
        headers=world.h("kindergarten"),
    )
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["state"] == "adaptation" and body["enrolled_on"] == TODAY.isoformat()
    assert body["adaptation_ends_on"] == (TODAY + relativedelta(months=3)).isoformat()
    # Through the one door, the ДОО's user as its actor.
    last = world.case(case_id)["history"][-1]
    assert last["event"] == "enrol" and last["actor_id"] == world.user_ids["kindergarten"]

    again = world.client.post(
        f"{API}/enrolments/{case_id}/confirm",
        json={"enrolled_on": TODAY.isoformat()},
        headers=world.h("kindergarten"),
    )
    assert again.status_code == 409, again.text
    assert (
        world.client.get(f"{API}/enrolments", headers=world.h("kindergarten")).json()[0]["state"]
        == "adaptation"
    )


def test_nobody_else_sees_or_confirms_an_enrolment(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)

    def refusals() -> int:
        with Session(engine) as session:
            return session.exec(select(func.count()).where(AuditLog.action == "refused")).one()

    # Another receiving organisation (a social-service centre) and another region's ДОО: nothing.
    for who in ("social", "b_kindergarten"):
        assert world.client.get(f"{API}/enrolments", headers=world.h(who)).json() == []
        before = refusals()
        response = world.client.post(
            f"{API}/enrolments/{case_id}/confirm",
            json={"enrolled_on": TODAY.isoformat()},
            headers=world.h(who),
        )
        assert response.status_code == 404, response.text
        assert refusals() == before + 1
    # Roles that never receive children: 403 (the provider's own staff use the case's `enrol`).
    for who in ("referrer", "curator", "rrmc", "admin"):
        assert world.client.get(f"{API}/enrolments", headers=world.h(who)).status_code == 403
        response = world.client.post(
            f"{API}/enrolments/{case_id}/confirm",
            json={"enrolled_on": TODAY.isoformat()},
            headers=world.h(who),
        )
        assert response.status_code == 403, response.text
    # The ДОО's user cannot reach the case itself, nor fire its events.
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("kindergarten")).status_code == 403
    assert world.case(case_id)["state"] == "transition"


def test_adaptation_consultations_are_planned_without_a_programme(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("consultation", "Консультации"), who="coordinator")
    world.advance(case_id, "begin_transition", {"destination_org_id": kindergarten_id(engine)})
    world.advance(case_id, "enrol", {"enrolled_on": TODAY.isoformat()})
    soon = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
    for code in ("adaptation_parent_counselling", "adaptation_doo_counselling", "transition_counselling"):
        planned = world.client.post(
            f"{API}/cases/{case_id}/sessions",
            json={"service_code": code, "scheduled_at": soon},
            headers=world.h("curator"),
        )
        assert planned.status_code == 201, planned.text
    other = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": soon},
        headers=world.h("curator"),
    )
    assert other.status_code == 422 and other.json()["field"] == "service_code", other.text


def test_a_suspension_during_adaptation_does_not_move_its_end(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    due = adaptation_deadline(world.advance(case_id, "enrol", {"enrolled_on": TODAY.isoformat()}))["due_at"]
    world.advance(case_id, "suspend", reason="Болезнь ребёнка")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=14), tick=False):
        case = world.advance(case_id, "resume")
    assert case["state"] == "adaptation" and adaptation_deadline(case)["due_at"] == due


def test_the_journey_json_and_picture_include_adaptation(world: World) -> None:
    journey = world.client.get(f"{API}/journey").json()
    assert {"name": "adaptation", "label": "Адаптация", "final": False} in journey["states"]
    enrol = [t for t in journey["transitions"] if t["event"] == "enrol"]
    assert enrol and enrol[0]["source"] == ["transition"] and enrol[0]["dest"] == "adaptation"
    assert "adaptation_ends_after_start" in enrol[0]["guards"]
    completes = {s for t in journey["transitions"] if t["event"] == "complete" for s in t["source"]}
    assert "adaptation" in completes and "transition" not in completes
    mermaid = world.client.get(f"{API}/journey.mermaid").text
    assert "transition --> adaptation: enrol" in mermaid and "adaptation --> completed: complete" in mermaid
    assert "transition --> completed" not in mermaid

    from api.pages.journey_svg import journey_svg

    picture = journey_svg("adaptation")
    assert "Адаптация" in picture and 'aria-current="step"' in picture


def test_history_row_of_the_confirmation_names_the_kindergarten(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    world.client.post(
        f"{API}/enrolments/{case_id}/confirm",
        json={"enrolled_on": TODAY.isoformat()},
        headers=world.h("kindergarten"),
    )
    with Session(engine) as session:
        enrol = session.exec(
            select(CaseHistory).where(CaseHistory.case_id == case_id, CaseHistory.event == "enrol")
        ).one()
    assert enrol.payload["destination_org_id"] == kindergarten_id(engine)


def test_a_kindergarten_teacher_in_the_team_fires_no_event_through_the_case(
    world: World, engine: Engine
) -> None:
    """The ДОО confirms an enrolment through its own door (/enrolments, the payload fixed by the
    service). Its user invited into the case's team reads the case and fires nothing through the
    case's own events (README: an invited member «fires no event»), not even `enrol` with a payload
    of her choosing."""
    case_id = in_transition(world, engine)
    agreement = {
        "provider_id": world.provider_id,
        "partner_org_id": kindergarten_id(engine),
        "number": "5/2026",
        "signed_on": (TODAY - timedelta(days=10)).isoformat(),
    }
    assert world.client.post(f"{API}/agreements", json=agreement, headers=world.h("admin")).status_code == 201
    member = {"user_id": world.user_ids["kindergarten"], "specialist_role": "social_worker"}
    added = world.client.post(f"{API}/cases/{case_id}/team", json=member, headers=world.h("curator"))
    assert added.status_code == 201, added.text
    version = world.case(case_id, who="kindergarten")["version"]
    body = {
        "version": version,
        "payload": {"enrolled_on": TODAY.isoformat(), "adaptation_ends_on": "2099-01-01"},
    }
    fired = world.client.post(
        f"{API}/cases/{case_id}/events/enrol", json=body, headers=world.h("kindergarten")
    )
    assert fired.status_code == 403, fired.text
    assert row(engine, case_id).state == "transition"
