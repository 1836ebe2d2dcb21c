"""A child's whole journey through the HTTP API, and one journey per final state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import time_machine

from tests.world import API, World, region_today


def ipr_payload(**overrides: Any) -> dict[str, Any]:
    today = date.today()  # at the call: tests that travel in time agree with the parent that day
    payload: dict[str, Any] = {
        "period_start": today.isoformat(),
        "period_end": (today + timedelta(days=180)).isoformat(),
        "goals": ["Ребёнок ходит с опорой на одну руку"],
        "services": [
            {
                "service_code": "motor_development",
                "specialist_role": "physical_therapist",
                "form": "in_person",
                "count": 20,
                "minutes": 45,
            },
            {"service_code": "family_support", "form": "remote", "count": 4, "minutes": 60},
        ],
        "parent_agreement": {"agreed": True, "date": today.isoformat(), "document_ref": "ИПРП № 5"},
    }
    payload.update(overrides)
    return payload


# What a conclusion sets (344н): the forms and the activities, from the section the outcome leads to.
NEED_ACTIVITIES: dict[str, list[dict[str, Any]]] = {
    "ipr": [
        {"activity_code": "functioning_assessment", "count": 2, "minutes": 60},
        {"activity_code": "ipr_development", "count": 1, "minutes": 90},
    ],
    "consultation": [{"activity_code": "development_counselling", "count": 3, "minutes": 45}],
}


def need_payload(outcome: str, conclusion: str = "Нужна ИПРП", **overrides: Any) -> dict[str, Any]:
    """A determine_need payload: a no_need conclusion sets nothing; the others set forms and activities."""
    payload: dict[str, Any] = {"outcome": outcome, "conclusion": conclusion}
    if outcome in NEED_ACTIVITIES:
        payload["forms"] = ["in_person"]
        payload["activities"] = [dict(a) for a in NEED_ACTIVITIES[outcome]]
    payload.update(overrides)
    return payload


def to_need_determination(world: World) -> int:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    return int(case_id)


def to_ipr_implementation(world: World) -> int:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    return case_id


def test_child_walks_every_open_state_to_completed(world: World) -> None:
    referral = world.refer()
    case_id = referral["case_id"]
    steps: list[tuple[str, dict[str, Any], str, str | None, str]] = [
        ("accept", {"curator_id": world.user_ids["curator"]}, "coordinator", None, "need_determination"),
        (
            "determine_need",
            need_payload("ipr", "Трудности в развитии движений"),
            "coordinator",
            None,
            "ipr_development",
        ),
        ("approve_ipr", ipr_payload(), "curator", None, "ipr_implementation"),
        ("suspend", {}, "curator", "Госпитализация", "suspended"),
        ("resume", {}, "curator", None, "ipr_implementation"),
        ("start_assessment", {"kind": "intermediate"}, "curator", None, "ipr_assessment"),
        ("revise_ipr", {}, "curator", None, "ipr_development"),
        (
            "approve_ipr",
            ipr_payload(goals=["Ребёнок ходит самостоятельно"]),
            "curator",
            None,
            "ipr_implementation",
        ),
        ("start_assessment", {"kind": "final"}, "curator", None, "ipr_assessment"),
        ("begin_transition", {"destination": "МБДОУ № 12"}, "curator", None, "transition"),
        ("enrol", {"enrolled_on": region_today().isoformat()}, "curator", None, "adaptation"),
        ("complete", {"summary": "Ребёнок посещает детский сад"}, "curator", None, "completed"),
    ]
    for event, payload, who, reason, expected in steps[:-1]:
        case = world.advance(case_id, event, payload, who=who, reason=reason)
        assert case["state"] == expected, event
    # The case completes when the adaptation period (the region's three months) has ended.
    event, payload, who, reason, expected = steps[-1]
    with time_machine.travel(datetime.now(UTC) + timedelta(days=93), tick=False):
        case = world.advance(case_id, event, payload, who=who, reason=reason)
    assert case["state"] == expected

    assert case["closed_at"] is not None
    assert case["allowed_events"] == []
    history = case["history"]
    assert [h["event"] for h in history] == ["refer", *(s[0] for s in steps)]
    assert history[4]["reason"] == "Госпитализация"
    assert history[1]["actor_id"] == world.user_ids["coordinator"]
    assert case["version"] == len(steps) + 1
    # The referrer sees where its referral stands.
    seen = world.client.get(f"{API}/referrals/{referral['id']}", headers=world.h("referrer")).json()
    assert seen["case_state"] == "completed" and seen["case_state_label"] == "Завершено"


def test_revised_programme_supersedes_the_previous_one(world: World, engine: Any) -> None:
    from sqlmodel import Session, col, select

    from models.programmes import Ipr

    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    world.advance(case_id, "approve_ipr", ipr_payload(goals=["Новая цель"]))
    with Session(engine) as session:
        rows = session.exec(select(Ipr).where(Ipr.case_id == case_id).order_by(col(Ipr.id))).all()
    assert [r.status for r in rows] == ["superseded", "active"]
    assert rows[1].goals == ["Новая цель"]


def test_consultation_path_ends_completed(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(
        case_id,
        "determine_need",
        need_payload("consultation", "Консультации"),
        who="coordinator",
    )
    assert world.advance(case_id, "complete")["state"] == "completed"


def test_no_need_is_final(world: World) -> None:
    case_id = to_need_determination(world)
    case = world.advance(case_id, "determine_need", need_payload("no_need", "Норма"), who="coordinator")
    assert case["state"] == "no_need" and case["allowed_events"] == []
    assert world.event(case_id, "suspend", reason="x").status_code == 409


def test_rejected_is_final(world: World) -> None:
    case_id = world.refer()["case_id"]
    case = world.advance(case_id, "reject", {"reason_code": "outside_service_area"}, who="coordinator")
    assert case["state"] == "rejected" and case["closed_at"] is not None
    assert world.event(case_id, "accept", who="coordinator").status_code == 409


def test_declined_from_suspended_is_final(world: World) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "suspend", reason="Отпуск семьи")
    case = world.advance(case_id, "decline", reason="Семья отказалась от услуг")
    assert case["state"] == "declined"
    assert case["history"][-1]["reason"] == "Семья отказалась от услуг"
    assert world.event(case_id, "resume").status_code == 409


def test_lost_contact_after_the_standards_number_of_failed_attempts(world: World) -> None:
    case_id = world.refer()["case_id"]
    for hours in (50, 26, 2):
        response = world.client.post(
            f"{API}/cases/{case_id}/contact-attempts",
            json={
                "at": (datetime.now(UTC) - timedelta(hours=hours)).isoformat(),
                "channel": "phone",
                "successful": False,
            },
            headers=world.h("coordinator"),
        )
        assert response.status_code == 201, response.text
    case = world.advance(case_id, "mark_lost_contact", who="coordinator")
    assert case["state"] == "lost_contact" and case["allowed_events"] == []


def test_resume_returns_to_the_state_left(world: World) -> None:
    case_id = to_need_determination(world)
    case = world.advance(case_id, "suspend", reason="Болезнь ребёнка", who="coordinator")
    assert case["suspended_from"] == "need_determination"
    case = world.advance(case_id, "resume", who="coordinator")
    assert case["state"] == "need_determination" and case["suspended_from"] is None


def test_allowed_events_depend_on_role(world: World) -> None:
    case_id = world.refer()["case_id"]
    coordinator = world.case(case_id, "coordinator")
    assert coordinator["allowed_events"] == ["accept", "decline", "reject"]
    assert list(coordinator["blocked"]) == ["mark_lost_contact"]  # no failed contacts yet
    team = {"user_id": world.user_ids["specialist"], "specialist_role": "psychologist"}  # so she sees it
    world.client.post(f"{API}/cases/{case_id}/team", json=team, headers=world.h("coordinator"))
    assert world.case(case_id, "specialist")["allowed_events"] == []
    assert world.case(case_id, "curator")["allowed_events"] == ["decline"]
    assert world.case(case_id, "rrmc")["allowed_events"] == []
    assert world.case(case_id, "rrmc")["blocked"] == {}  # the role may not: not a disabled button


def add_contact_attempt(world: World, case_id: int, hours_ago: int, successful: bool = False) -> None:
    response = world.client.post(
        f"{API}/cases/{case_id}/contact-attempts",
        json={
            "at": (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(),
            "channel": "phone",
            "successful": successful,
        },
        headers=world.h("coordinator"),
    )
    assert response.status_code == 201, response.text


def test_allowed_events_are_what_may_fire_now_and_blocked_ones_say_why(world: World) -> None:
    """allowed_events once listed events whose guards then refused them (accept without consent,
    mark_lost_contact without failed contacts, complete without a final assessment)."""
    referral = world.refer(consent_personal_data=None)
    case_id = referral["case_id"]
    case = world.case(case_id, "coordinator")
    assert case["allowed_events"] == ["decline", "reject"]
    assert set(case["blocked"]) == {"accept", "mark_lost_contact"}
    assert "согласие" in case["blocked"]["accept"]
    assert "зарегистрировано 0" in case["blocked"]["mark_lost_contact"]
    # A blocked event fired anyway is refused with the same reason.
    refused = world.event(case_id, "accept", who="coordinator")
    assert refused.status_code == 422 and refused.json()["message"] == case["blocked"]["accept"]
    assert refused.json()["field"] is None  # about the case, not about anything sent

    given = world.client.post(
        f"{API}/children/{referral['child_id']}/consents",
        json={"kind": "personal_data", "date": date.today().isoformat(), "document_ref": "Согласие № 2"},
        headers=world.h("coordinator"),
    )
    assert given.status_code == 201, given.text
    for hours in (30, 20, 10):
        add_contact_attempt(world, case_id, hours)
    case = world.case(case_id, "coordinator")
    assert case["allowed_events"] == ["accept", "decline", "mark_lost_contact", "reject"]
    assert case["blocked"] == {}
    # Every event listed as allowed does fire (here: the one that was blocked).
    assert world.advance(case_id, "accept", who="coordinator")["state"] == "need_determination"


def test_guards_about_the_payload_leave_the_event_allowed(world: World) -> None:
    case_id = to_need_determination(world)
    # determine_need needs a conclusion, which comes with the event: it is not blocked.
    assert "determine_need" in world.case(case_id, "coordinator")["allowed_events"]


def test_complete_is_blocked_until_the_final_assessment(world: World) -> None:
    case_id = to_ipr_implementation(world)
    case = world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    assert "complete" not in case["allowed_events"]
    assert "итоговой оценки" in case["blocked"]["complete"]
    world.advance(case_id, "approve_ipr", ipr_payload())
    case = world.advance(case_id, "start_assessment", {"kind": "final"})
    assert "complete" in case["allowed_events"] and "complete" not in case["blocked"]
    assert world.advance(case_id, "complete")["state"] == "completed"


def test_a_stale_event_answer_lists_what_may_fire_now(world: World) -> None:
    case_id = world.refer()["case_id"]
    response = world.event(case_id, "approve_ipr", {}, who="head")
    assert response.status_code == 409
    assert response.json()["allowed_events"] == ["accept", "decline", "reject"]
    assert list(response.json()["blocked"]) == ["mark_lost_contact"]


def plan_session(world: World, case_id: int, **body: Any) -> Any:
    at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    return world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"scheduled_at": at.isoformat(), **body},
        headers=world.h("curator"),
    )


def test_a_session_is_planned_only_for_a_service_of_the_programme(world: World, engine: Any) -> None:
    """A session for a service the ИПРП does not have was accepted."""
    case_id = to_ipr_implementation(world)  # motor_development and family_support
    outside = plan_session(world, case_id, service_code="cognitive_development")
    assert outside.status_code == 422, outside.text
    assert outside.json()["field"] == "service_code"
    assert "нет в действующей ИПРП" in outside.json()["message"]
    assert plan_session(world, case_id, service_code="motor_development").status_code == 201

    from sqlmodel import Session, select

    from models.programmes import PlannedService

    with Session(engine) as session:
        motor = session.exec(
            select(PlannedService.id).where(PlannedService.service_code == "motor_development")
        ).first()
    mismatch = plan_session(world, case_id, service_code="family_support", planned_service_id=motor)
    assert mismatch.status_code == 422 and mismatch.json()["field"] == "service_code"


def test_before_a_programme_only_the_steps_services_are_planned(world: World) -> None:
    case_id = to_need_determination(world)
    refused = plan_session(world, case_id, service_code="motor_development")
    assert refused.status_code == 422 and refused.json()["field"] == "service_code"
    assert "нет утверждённой ИПРП" in refused.json()["message"]
    assert plan_session(world, case_id, service_code="need_determination").status_code == 201
    world.advance(
        case_id,
        "determine_need",
        need_payload("consultation", "Консультации"),
        who="coordinator",
    )
    # Consultations without a programme: any service of the catalogue.
    assert plan_session(world, case_id, service_code="family_support").status_code == 201


def test_journey_is_published_as_json_and_mermaid(world: World) -> None:
    definition = world.client.get(f"{API}/journey").json()
    names = {s["name"] for s in definition["states"]}
    assert {"referred", "suspended", "completed", "rejected"} <= names
    assert {s["name"] for s in definition["states"] if s["final"]} == {
        "completed",
        "no_need",
        "declined",
        "lost_contact",
        "rejected",
    }
    assert any(
        t["event"] == "determine_need" and t["dest"] == "consultation" for t in definition["transitions"]
    )
    mermaid = world.client.get(f"{API}/journey.mermaid").text
    assert mermaid.startswith("stateDiagram-v2")
    assert "need_determination --> ipr_development: determine_need" in mermaid
    assert 'state "Приостановлено" as suspended' in mermaid
    # The workflows beside the journey, in the JSON and in the picture.
    assert [w["name"] for w in definition["workflows"]] == ["transfer", "routing", "consilium"]
    assert 'state "Передача в другую организацию" as transfer {' in mermaid
    assert "transfer_requested --> transfer_accepted: accept" in mermaid
    assert "routing_expired --> routing_answered: answer" in mermaid
