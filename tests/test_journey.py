"""A child's whole journey through the HTTP API, and one journey per final state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.world import API, World

TODAY = date.today()


def ipr_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "period_start": TODAY.isoformat(),
        "period_end": (TODAY + timedelta(days=180)).isoformat(),
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
        "parent_agreement": {"agreed": True, "date": TODAY.isoformat(), "document_ref": "ИПРП № 5"},
    }
    payload.update(overrides)
    return payload


def to_need_determination(world: World) -> int:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    return int(case_id)


def to_ipr_implementation(world: World) -> int:
    case_id = to_need_determination(world)
    world.advance(
        case_id, "determine_need", {"outcome": "ipr", "conclusion": "Нужна ИПРП"}, who="coordinator"
    )
    world.advance(case_id, "approve_ipr", ipr_payload())
    return case_id


def test_child_walks_every_open_state_to_completed(world: World) -> None:
    referral = world.refer()
    case_id = referral["case_id"]
    steps: list[tuple[str, dict[str, Any], str, str | None, str]] = [
        ("accept", {"curator_id": world.user_ids["curator"]}, "coordinator", None, "need_determination"),
        (
            "determine_need",
            {"outcome": "ipr", "conclusion": "Трудности в развитии движений"},
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
        ("complete", {"summary": "Ребёнок посещает детский сад"}, "curator", None, "completed"),
    ]
    for event, payload, who, reason, expected in steps:
        case = world.advance(case_id, event, payload, who=who, reason=reason)
        assert case["state"] == expected, event

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
        {"outcome": "consultation", "conclusion": "Консультации"},
        who="coordinator",
    )
    assert world.advance(case_id, "complete")["state"] == "completed"


def test_no_need_is_final(world: World) -> None:
    case_id = to_need_determination(world)
    case = world.advance(
        case_id, "determine_need", {"outcome": "no_need", "conclusion": "Норма"}, who="coordinator"
    )
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
    assert world.case(case_id, "coordinator")["allowed_events"] == [
        "accept",
        "decline",
        "mark_lost_contact",
        "reject",
    ]
    assert world.case(case_id, "specialist")["allowed_events"] == []
    assert world.case(case_id, "curator")["allowed_events"] == ["decline", "mark_lost_contact"]
    assert world.case(case_id, "rrmc")["allowed_events"] == []


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
