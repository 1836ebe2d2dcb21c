"""One test per guard: the event is refused with the reason in Russian, and nothing changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from models.cases import CaseHistory
from models.children import Child
from models.organisations import Organisation
from models.outbox import Outbox
from tests.test_journey import ipr_payload, need_payload, to_ipr_implementation, to_need_determination
from tests.world import API, World, region_today


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
    field: str | None = "",
) -> str:
    """Fire an event that a guard must refuse; return the reason after checking nothing changed
    (and, when `field` is given, that the answer names that field)."""
    before = world.case(case_id, who)
    rows = history_count(engine, case_id)
    response = world.event(case_id, event, payload, who=who, reason=reason)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "guard_failed"
    if field != "":
        assert body["field"] == field, body
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
    message = refused(world, engine, case_id, "determine_need", need_payload("ipr", "  "), who="coordinator")
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
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    assert expected in refused(world, engine, case_id, "approve_ipr", ipr_payload(**overrides))


def test_all_failing_guards_are_reported_together(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    response = world.event(case_id, "approve_ipr", ipr_payload(goals=[], services=[], parent_agreement=None))
    assert response.status_code == 422
    assert len(response.json()["reasons"]) == 3


def test_enrolment_requires_the_destination(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "begin_transition", {})
    today = region_today().isoformat()
    reason = refused(world, engine, case_id, "enrol", {"enrolled_on": today}, field="payload.destination")
    assert "куда поступил" in reason
    enrolled = world.advance(case_id, "enrol", {"enrolled_on": today, "destination": "МБДОУ № 3"})
    assert enrolled["state"] == "adaptation"


def test_complete_after_assessment_requires_a_final_assessment(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    assert "итоговой оценки" in refused(world, engine, case_id, "complete", {})


@pytest.mark.parametrize("event", ["suspend", "decline"])
def test_suspend_and_decline_require_a_reason_and_name_the_reason_field(
    world: World, engine: Engine, event: str
) -> None:
    """The refusal named `payload`, though the reason is the request's top-level `reason`."""
    case_id = to_need_determination(world)
    assert "причину" in refused(world, engine, case_id, event, {}, reason="   ", field="reason")


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


def organisation_of_kind(engine: Engine, kind: str, region_id: int = 1) -> int:
    with Session(engine) as session:
        org_id = session.exec(
            select(Organisation.id).where(Organisation.kind == kind, Organisation.region_id == region_id)
        ).first()
    assert org_id is not None
    return org_id


@pytest.mark.parametrize("which", ["missing", "inactive", "other_region", "not_receiving"])
def test_begin_transition_refuses_a_destination_that_cannot_receive_the_child(
    world: World, engine: Engine, which: str
) -> None:
    """A made-up destination_org_id was accepted (and would be sent the child's name)."""
    case_id = to_ipr_implementation(world)
    kindergarten = organisation_of_kind(engine, "education")
    destination = {
        "missing": 999_999,
        "inactive": kindergarten,
        "other_region": organisation_of_kind(engine, "education", region_id=2),
        "not_receiving": world.org_ids["health"],
    }[which]
    if which == "inactive":
        with Session(engine) as session:
            session.execute(
                update(Organisation).where(col(Organisation.id) == kindergarten).values(is_active=False)
            )
            session.commit()
    payload = {"destination": "МБДОУ № 12", "destination_org_id": destination}
    refused(world, engine, case_id, "begin_transition", payload, field="payload.destination_org_id")
    with Session(engine) as session:
        assert session.exec(select(func.count()).where(Outbox.template == "transition_receiving")).one() == 0


def test_begin_transition_to_a_kindergarten_of_the_region(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    payload = {"destination": "МБДОУ № 12", "destination_org_id": organisation_of_kind(engine, "education")}
    assert world.advance(case_id, "begin_transition", payload)["state"] == "transition"


def to_ipr_development(world: World) -> int:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    return case_id


def birth_date_of(world: World, case_id: int) -> date:
    return date.fromisoformat(world.case(case_id)["child_birth_date"])


def test_programme_may_not_end_after_the_age_limit(world: World, engine: Engine) -> None:
    """An ИПРП could run past the standard's age limit (36 months by default)."""
    case_id = to_ipr_development(world)
    limit = birth_date_of(world, case_id) + relativedelta(months=36)
    too_long = ipr_payload(period_end=(limit + timedelta(days=1)).isoformat())
    message = refused(world, engine, case_id, "approve_ipr", too_long, field="payload.period_end")
    assert f"не позже {limit:%d.%m.%Y}" in message
    assert world.advance(case_id, "approve_ipr", ipr_payload(period_end=limit.isoformat()))["state"] == (
        "ipr_implementation"
    )


@pytest.mark.parametrize("when", ["future", "before_birth"])
def test_parent_agreement_may_not_be_dated_in_the_future_or_before_birth(
    world: World, engine: Engine, when: str
) -> None:
    case_id = to_ipr_development(world)
    dated = (
        date.today() + timedelta(days=3)
        if when == "future"
        else birth_date_of(world, case_id) - timedelta(days=1)
    )
    payload = ipr_payload(parent_agreement={"agreed": True, "date": dated.isoformat()})
    message = refused(world, engine, case_id, "approve_ipr", payload, field="payload.parent_agreement.date")
    assert ("в будущем" if when == "future" else "раньше даты рождения") in message


# 20:00 UTC on 2 March 2026: 23:00 in Moscow (the test region), already 3 March at UTC+14 (the
# latest "today" anywhere, which a schema alone can check).
LATE_EVENING = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("when", ["tomorrow_in_the_region", "before_birth"])
def test_consent_may_not_be_dated_after_the_regions_today_or_before_birth(world: World, when: str) -> None:
    with time_machine.travel(LATE_EVENING, tick=False):
        referral = world.refer()
        born = birth_date_of(world, referral["case_id"])
        dated = date(2026, 3, 3) if when == "tomorrow_in_the_region" else born - timedelta(days=1)
        response = world.client.post(
            f"{API}/children/{referral['child_id']}/consents",
            json={"kind": "messages", "status": "given", "date": dated.isoformat()},
            headers=world.h("coordinator"),
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "date"
        today = world.client.post(
            f"{API}/children/{referral['child_id']}/consents",
            json={"kind": "messages", "status": "given", "date": "2026-03-02"},
            headers=world.h("coordinator"),
        )
        assert today.status_code == 201, today.text


@pytest.mark.parametrize("when", ["future", "before_birth"])
def test_referral_consent_may_not_be_dated_in_the_future_or_before_birth(world: World, when: str) -> None:
    """A referral's consent_personal_data took any date, a year ahead included."""
    body = world.referral_body()
    born = date.fromisoformat(body["child"]["birth_date"])
    dated = date.today() + timedelta(days=365) if when == "future" else born - timedelta(days=1)
    body["consent_personal_data"] = {"date": dated.isoformat(), "document_ref": "Согласие № 9"}
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "consent_personal_data.date"
