"""One test per guard: the event is refused with the reason in Russian, and nothing changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import Session, select

from models.cases import CaseHistory
from models.children import Child
from tests.test_journey import ipr_payload, to_ipr_implementation, to_need_determination
from tests.world import API, World


def history_count(engine: Engine, case_id: int) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).where(CaseHistory.case_id == case_id)).one()


def refused(
    world: World,
    engine: Engine,
    case_id: int,
    event: str,
    payload: dict[str, Any] | None = None,
    *,
    who: str = "curator",
    reason: str | None = None,
) -> str:
    """Fire an event that a guard must refuse; return the reason after checking nothing changed."""
    before = world.case(case_id, who)
    rows = history_count(engine, case_id)
    response = world.event(case_id, event, payload, who=who, reason=reason)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "guard_failed"
    after = world.case(case_id, who)
    assert (after["state"], after["version"]) == (before["state"], before["version"])
    assert history_count(engine, case_id) == rows
    return str(body["message"])


def test_accept_needs_consent_to_personal_data(world: World, engine: Engine) -> None:
    case_id = world.refer(consent_personal_data=None)["case_id"]
    message = refused(world, engine, case_id, "accept", who="coordinator")
    assert "согласие" in message and "персональных данных" in message


def test_accept_refused_after_consent_is_withdrawn(world: World, engine: Engine) -> None:
    referral = world.refer()
    response = world.client.post(
        f"{API}/children/{referral['child_id']}/consents",
        json={"kind": "personal_data", "status": "withdrawn", "date": date.today().isoformat()},
        headers=world.h("coordinator"),
    )
    assert response.status_code == 201, response.text
    assert "согласие" in refused(world, engine, referral["case_id"], "accept", who="coordinator")


def test_accept_refused_when_child_has_outgrown_the_age_limit(world: World, engine: Engine) -> None:
    referral = world.refer()
    with Session(engine) as session:  # the child turned three while the referral waited
        session.execute(
            update(Child)
            .where(Child.id == referral["child_id"])
            .values(birth_date=date.today() - timedelta(days=3 * 366))
        )
        session.commit()
    assert "Возраст ребёнка" in refused(world, engine, referral["case_id"], "accept", who="coordinator")


def test_accept_refuses_a_curator_from_another_organisation(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    message = refused(
        world, engine, case_id, "accept", {"curator_id": world.user_ids["curator2"]}, who="coordinator"
    )
    assert "куратор" in message.lower()


def test_determine_need_requires_a_conclusion(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    message = refused(
        world, engine, case_id, "determine_need", {"outcome": "ipr", "conclusion": "  "}, who="coordinator"
    )
    assert "заключение" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"goals": []}, "не указаны цели"),
        ({"services": []}, "не указаны услуги"),
        (
            {"services": [{"service_code": "astrology", "form": "home", "count": 1, "minutes": 30}]},
            "нет в перечне",
        ),
        (
            {
                "services": [
                    {
                        "service_code": "motor_development",
                        "specialist_role": "speech_therapist",
                        "form": "home",
                        "count": 1,
                        "minutes": 30,
                    }
                ]
            },
            "не оказывает специалист",
        ),
        ({"period_end": date.today().isoformat()}, "Срок окончания"),
        ({"parent_agreement": None}, "Нет согласия родителя"),
        ({"parent_agreement": {"agreed": False, "date": date.today().isoformat()}}, "Нет согласия родителя"),
    ],
    ids=["goals", "services", "unknown_service", "wrong_specialist", "period", "no_agreement", "disagreed"],
)
def test_approve_ipr_guards(world: World, engine: Engine, overrides: dict[str, Any], expected: str) -> None:
    case_id = to_need_determination(world)
    world.advance(
        case_id, "determine_need", {"outcome": "ipr", "conclusion": "Нужна ИПРП"}, who="coordinator"
    )
    assert expected in refused(world, engine, case_id, "approve_ipr", ipr_payload(**overrides))


def test_all_failing_guards_are_reported_together(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    world.advance(
        case_id, "determine_need", {"outcome": "ipr", "conclusion": "Нужна ИПРП"}, who="coordinator"
    )
    response = world.event(case_id, "approve_ipr", ipr_payload(goals=[], services=[], parent_agreement=None))
    assert response.status_code == 422
    assert len(response.json()["reasons"]) == 3


def test_complete_transition_requires_the_destination(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "begin_transition", {})
    assert "куда перешёл" in refused(world, engine, case_id, "complete", {})
    assert world.advance(case_id, "complete", {"destination": "МБДОУ № 3"})["state"] == "completed"


def test_complete_after_assessment_requires_a_final_assessment(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    assert "итоговой оценки" in refused(world, engine, case_id, "complete", {})


@pytest.mark.parametrize("event", ["suspend", "decline"])
def test_suspend_and_decline_require_a_reason(world: World, engine: Engine, event: str) -> None:
    case_id = to_need_determination(world)
    assert "причину" in refused(world, engine, case_id, event, {}, reason="   ")


def test_lost_contact_requires_enough_failed_attempts_since_the_last_success(
    world: World, engine: Engine
) -> None:
    case_id = world.refer()["case_id"]

    def attempt(hours_ago: int, successful: bool) -> None:
        at = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
        response = world.client.post(
            f"{API}/cases/{case_id}/contact-attempts",
            json={"at": at, "successful": successful},
            headers=world.h("coordinator"),
        )
        assert response.status_code == 201, response.text

    attempt(90, False)
    attempt(80, False)
    attempt(70, True)  # the family answered: earlier failures no longer count
    attempt(60, False)
    attempt(50, False)
    message = refused(world, engine, case_id, "mark_lost_contact", who="coordinator")
    assert "зарегистрировано 2" in message
    attempt(40, False)
    assert world.advance(case_id, "mark_lost_contact", who="coordinator")["state"] == "lost_contact"
