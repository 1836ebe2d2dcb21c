"""What a client system reads instead of standards/*.yaml and models/: the region's standard and a
case's ИПРП with its planned-service ids (GET /api/v1/standard, GET /api/v1/cases/{id}/ipr)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select, update

from models.audit import AuditLog
from models.programmes import ServiceSession
from standards import load_standard
from tests.test_journey import plan_session, to_ipr_implementation, to_need_determination
from tests.world import API, World


def test_standard_lists_criteria_catalogue_timers_exits_and_enums_of_the_callers_region(world: World) -> None:
    response = world.client.get(f"{API}/standard", headers=world.h("referrer"))
    assert response.status_code == 200, response.text
    body = response.json()
    yaml = load_standard("demo")
    assert body["region_code"] == "demo" and body["name"] == yaml.name
    assert [c["code"] for c in body["criteria"]] == [c.code for c in yaml.criteria]
    assert body["criteria"][0]["label"] == yaml.criteria[0].label
    motor = next(s for s in body["services"] if s["code"] == "motor_development")
    assert motor["specialist_roles"] == [
        {"code": "physical_therapist", "label": "Инструктор-методист по адаптивной физической культуре"}
    ]
    assert {f["code"] for f in motor["forms"]} == {"in_person", "remote", "home", "group"}
    need = next(s for s in body["services"] if s["code"] == "need_determination")
    assert need["default_minutes"] == 90 and "need_determination" in need["without_ipr_states"]
    timers = {t["name"]: t for t in body["timers"]}
    assert timers["initial_programme"]["term"] == "45 календарных дней от даты направления"
    assert timers["transition_start"]["term"] == "36 месяцев от даты рождения минус 90 дней"
    assert timers["transition_start"]["action"] == "fire_event"
    assert timers["transition_start"]["action_label"] == "Выполнить событие «Начать переход»"
    assert timers["referral_response"]["unit"] == "working_days"
    exits = {e["state"]: e for e in body["exits"]}
    assert set(exits) == {"completed", "no_need", "declined", "lost_contact", "rejected"}
    assert exits["declined"]["event"] == "decline" and exits["declined"]["reason_required"] is True
    assert {r["code"] for r in exits["rejected"]["reason_codes"]} >= {"duplicate", "not_target_group"}
    enums = {e["field"]: {v["code"] for v in e["values"]} for e in body["enums"]}
    assert enums["determine_need.outcome"] == {"ipr", "consultation", "no_need"}
    assert enums["session.status"] == {"planned", "held", "missed", "cancelled"}


def test_standard_is_the_callers_own_regions(world: World) -> None:
    body = world.client.get(f"{API}/standard", headers=world.h("b_coordinator")).json()
    assert body["region_code"] == "other" and body["timezone"] == "Asia/Kamchatka"


def test_standard_needs_a_signed_in_caller(world: World) -> None:
    assert world.client.get(f"{API}/standard").status_code == 401


def _mark(engine: Engine, session_id: int, hours_ago: int) -> None:
    """Moves a planned session into the past so that it may be marked held or missed."""
    with Session(engine) as db:
        db.execute(
            update(ServiceSession)
            .where(ServiceSession.id == session_id)  # type: ignore[arg-type]
            .values(scheduled_at=datetime.now(UTC) - timedelta(hours=hours_ago))
        )
        db.commit()


def test_ipr_lists_planned_service_ids_and_sessions_held_and_planned(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    response = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator"))
    assert response.status_code == 200, response.text
    ipr = response.json()
    assert ipr["goals"] == ["Ребёнок ходит с опорой на одну руку"]
    assert ipr["agreement_document_ref"] == "ИПРП № 5"
    motor, family = ipr["services"]
    assert motor["service_code"] == "motor_development" and motor["count"] == 20 and motor["minutes"] == 45
    assert motor["service_label"] == "Содействие развитию мобильности ребёнка"
    assert motor["specialist_role_label"] == "Инструктор-методист по адаптивной физической культуре"
    assert family["specialist_role"] == "psychologist" and family["form_label"] == "дистанционно"
    assert (motor["sessions_held"], motor["sessions_planned"]) == (0, 0)

    ids: list[int] = []
    for _ in range(3):
        planned = plan_session(
            world, case_id, service_code="motor_development", planned_service_id=motor["id"]
        )
        assert planned.status_code == 201, planned.text
        ids.append(planned.json()["id"])
    _mark(engine, ids[0], hours_ago=2)
    _mark(engine, ids[1], hours_ago=1)
    for session_id, status in ((ids[0], "held"), (ids[1], "missed")):
        marked = world.client.patch(
            f"{API}/cases/{case_id}/sessions/{session_id}",
            json={"status": status},
            headers=world.h("curator"),
        )
        assert marked.status_code == 200, marked.text

    again: dict[str, Any] = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator")).json()
    progress = {
        s["id"]: (s["sessions_held"], s["sessions_missed"], s["sessions_planned"]) for s in again["services"]
    }
    assert progress == {motor["id"]: (1, 1, 1), family["id"]: (0, 0, 0)}


def test_ipr_read_is_audited_and_a_case_without_one_answers_404(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    missing = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator"))
    assert missing.status_code == 404 and missing.json()["field"] == "case_id"

    case_id = to_ipr_implementation(world)
    ipr = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("head")).json()
    with Session(engine) as db:
        rows = db.exec(select(AuditLog).where(AuditLog.entity == "ipr", AuditLog.action == "read")).all()
    assert [(r.entity_id, r.user_id) for r in rows] == [(ipr["id"], world.user_ids["head"])]


def test_ipr_of_another_providers_case_is_not_found(world: World) -> None:
    case_id = to_ipr_implementation(world)
    response = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("coordinator2"))
    assert response.status_code == 404
