"""Routing («маршрутизация») through the API: the curator refers the family to another organisation,
that organisation answers through its own login, the curator sees the outcome; bad targets, the
expiry of the answer's deadline and a late answer; who reads what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from flows.sweeps import sweep_deadlines
from models.audit import AuditLog
from models.common import utcnow
from models.deadlines import Deadline
from models.organisations import Organisation, OrgKind
from models.outbox import Outbox
from tests.test_journey import to_ipr_implementation
from tests.world import API, World


def open_case(world: World) -> int:
    """A case in «Реализация ИПРП» with `curator` as its curator."""
    return to_ipr_implementation(world)


def route(world: World, case_id: int, who: str = "curator", **body: Any) -> Any:
    payload = {
        "target_org_id": world.org_ids["health"],
        "kind": "doctor_consultation",
        "purpose": "Консультация невролога: задержка моторного развития, судороги в анамнезе",
    } | body
    return world.client.post(f"{API}/cases/{case_id}/routings", json=payload, headers=world.h(who))


def refusals(engine: Engine, login_id: int) -> int:
    with Session(engine) as session:
        query = (
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "refused", AuditLog.user_id == login_id)
        )
        return session.exec(query).one()


def test_routing_answered_by_the_other_organisation_and_seen_by_the_curator(
    world: World, engine: Engine
) -> None:
    case_id = open_case(world)
    sent = route(world, case_id)
    assert sent.status_code == 201, sent.text
    routing = sent.json()
    assert routing["status"] == "sent" and routing["activity_code"] == "social_support_counselling"
    assert routing["kind_label"] == "Консультация врача" and routing["due_at"]

    # The organisation is told through its channel: one row, to it, with no purpose text.
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(Outbox).where(Outbox.case_id == case_id, Outbox.template == "routing_request")
            )
        )
        deadline = session.exec(
            select(Deadline).where(Deadline.case_id == case_id, Deadline.timer == "routing.answer")
        ).one()
    assert len(rows) == 1 and rows[0].context["org_id"] == world.org_ids["health"]
    assert "невролог" not in str(rows[0].context) and "судорог" not in str(rows[0].context)
    assert deadline.status == "open" and deadline.action == "expire"

    # The clinic's user sees the routing addressed to it, in the minimal form.
    incoming = world.client.get(f"{API}/routings", headers=world.h("referrer")).json()["items"]
    assert [r["id"] for r in incoming] == [routing["id"]]
    assert "purpose" not in incoming[0] and incoming[0]["child_name"].startswith("Ёжикова")
    assert incoming[0]["curator_name"] == "Петрова Анна Викторовна"
    # The social centre's user sees nothing of it.
    assert world.client.get(f"{API}/routings", headers=world.h("social")).json()["items"] == []
    refused = world.client.post(
        f"{API}/routings/{routing['id']}/answer", json={"outcome_code": "done"}, headers=world.h("social")
    )
    assert refused.status_code == 404

    answered = world.client.post(
        f"{API}/routings/{routing['id']}/answer",
        json={"outcome_code": "done", "outcome": "Консультация проведена, рекомендации переданы семье"},
        headers=world.h("referrer"),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered" and "purpose" not in answered.json()

    seen = world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).json()
    assert (
        seen[0]["status"] == "answered"
        and seen[0]["outcome_label"] == "Услуга оказана / обследование проведено"
    )
    assert seen[0]["answered_by_org_id"] == world.org_ids["health"]
    assert seen[0]["outcome"] == "Консультация проведена, рекомендации переданы семье"
    history = [h["event"] for h in world.case(case_id)["history"]]
    assert "routing_send" in history and "routing_answer" in history
    with Session(engine) as session:
        assert session.exec(select(Deadline).where(Deadline.id == deadline.id)).one().status == "met"
        told = session.exec(
            select(Outbox).where(Outbox.case_id == case_id, Outbox.template == "routing_answered")
        ).one()
    assert told.context["to"] == "curator_or_provider"
    # Answered once: a second answer is a conflict, nothing changes.
    again = world.client.post(
        f"{API}/routings/{routing['id']}/answer",
        json={"outcome_code": "refused"},
        headers=world.h("referrer"),
    )
    assert again.status_code == 409 and again.json()["field"] == "status"


def test_the_target_organisation_cannot_read_the_case(world: World, engine: Engine) -> None:
    case_id = open_case(world)
    assert route(world, case_id).status_code == 201
    before = refusals(engine, world.user_ids["referrer"])
    for path in (f"/cases/{case_id}", f"/cases/{case_id}/routings", f"/cases/{case_id}/consilia"):
        response = world.client.get(API + path, headers=world.h("referrer"))
        assert response.status_code in (403, 404), path
    # The page says the case does not exist.
    login = world.client.post(
        "/login", data={"login": "referrer", "password": "demo"}, follow_redirects=False
    )
    assert login.status_code == 303
    page = world.client.get(f"/cases/{case_id}", follow_redirects=False)
    assert page.status_code == 404
    world.client.cookies.clear()
    assert refusals(engine, world.user_ids["referrer"]) == before + 4


def test_routing_to_an_unknown_organisation_a_provider_or_another_region(world: World) -> None:
    case_id = open_case(world)
    unknown = route(world, case_id, target_org_id=999_999)
    assert unknown.status_code == 404 and unknown.json()["field"] == "target_org_id"
    provider = route(world, case_id, target_org_id=world.org_ids["provider2"])
    assert provider.status_code == 422 and provider.json()["field"] == "target_org_id"
    assert "передачей" in provider.json()["message"]
    elsewhere = route(world, case_id, target_org_id=world.org_ids["b_health"])
    assert elsewhere.status_code == 404 and elsewhere.json()["field"] == "target_org_id"
    empty = route(world, case_id, purpose="   ")
    assert empty.status_code == 422
    kind = route(world, case_id, kind="astrology")
    assert kind.status_code == 422
    assert world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).json() == []


def test_expired_by_the_deadline_sweep_then_a_late_answer_is_taken(world: World, engine: Engine) -> None:
    case_id = open_case(world)
    routing = route(world, case_id).json()
    report = sweep_deadlines(engine, now=utcnow() + timedelta(days=40))
    assert not report.skipped
    seen = world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).json()[0]
    assert seen["status"] == "expired" and seen["status_label"] == "Срок ответа истёк"
    with Session(engine) as session:
        deadline = session.exec(
            select(Deadline).where(Deadline.timer == "routing.answer", Deadline.case_id == case_id)
        ).one()
        told = list(
            session.exec(
                select(Outbox).where(Outbox.case_id == case_id, Outbox.template == "routing_expired")
            )
        )
    assert deadline.status == "missed" and len(told) == 1
    history = world.case(case_id)["history"]
    expired = [h for h in history if h["event"] == "routing_expire"]
    assert len(expired) == 1 and expired[0]["actor_id"] is None
    # A second sweep does nothing more.
    sweep_deadlines(engine, now=utcnow() + timedelta(days=41))
    with Session(engine) as session:
        assert (
            session.exec(
                select(func.count())
                .select_from(Outbox)
                .where(Outbox.case_id == case_id, Outbox.template == "routing_expired")
            ).one()
            == 1
        )
    late = world.client.post(
        f"{API}/routings/{routing['id']}/answer",
        json={"outcome_code": "family_did_not_come"},
        headers=world.h("referrer"),
    )
    assert late.status_code == 200 and late.json()["status"] == "answered"


def test_the_curator_records_the_outcome_and_cancels_another(world: World) -> None:
    case_id = open_case(world)
    social = _org(world, OrgKind.social)
    first = route(
        world, case_id, target_org_id=social, kind="social_services", purpose="Оформление пособия"
    ).json()
    second = route(world, case_id, kind="medical_examination", purpose="Обследование слуха").json()
    by_curator = world.client.post(
        f"{API}/routings/{first['id']}/answer",
        json={"outcome_code": "refused", "outcome": "Семья не относится к получателям"},
        headers=world.h("curator"),
    )
    assert by_curator.status_code == 200 and by_curator.json()["answered_by_org_id"] == world.provider_id
    # The organisation it was sent to cannot cancel; the provider can.
    refused = world.client.post(f"{API}/routings/{second['id']}/cancel", json={}, headers=world.h("referrer"))
    assert refused.status_code == 403
    cancelled = world.client.post(
        f"{API}/routings/{second['id']}/cancel",
        json={"reason": "Семья прошла обследование сама"},
        headers=world.h("curator"),
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    listed = world.client.get(f"{API}/routings", headers=world.h("head")).json()
    assert {r["id"] for r in listed["items"]} >= {first["id"], second["id"]}
    assert (
        world.client.get(
            f"{API}/routings", params={"status": "whatever"}, headers=world.h("head")
        ).status_code
        == 422
    )
    # The other provider sees none of it.
    other = world.client.get(f"{API}/routings", headers=world.h("coordinator2")).json()["items"]
    assert not {r["id"] for r in other} & {first["id"], second["id"]}
    assert route(world, case_id, who="specialist").status_code == 403
    assert route(world, case_id, who="coordinator2").status_code == 404


def test_a_closed_case_takes_no_routing(world: World) -> None:
    case_id = int(world.refer()["case_id"])
    world.advance(case_id, "accept", {}, who="coordinator")
    world.advance(case_id, "decline", who="coordinator", reason="Семья переезжает")
    closed = route(world, case_id, who="coordinator")
    assert closed.status_code == 409 and closed.json()["field"] == "case_id"


def _org(world: World, kind: OrgKind) -> int:
    from core.db import session_scope

    with session_scope(world_engine(world)) as session:
        return int(
            session.exec(
                select(Organisation.id).where(Organisation.kind == kind).order_by(col(Organisation.id))
            ).first()
            or 0
        )


def world_engine(world: World) -> Engine:
    engine: Engine = world.client.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_two_answers_of_one_routing_at_once_one_wins_the_other_409(
    world: World, engine: Engine, server_url: str
) -> None:
    """The organisation's user and the curator answer the same routing at the same moment through a
    real server: the compare-and-set of statemachines.workflows.step lets one through."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from models.cases import CaseHistory

    case_id = open_case(world)
    routing_id = route(world, case_id).json()["id"]
    barrier = threading.Barrier(2)

    def answer(who: str) -> int:
        with httpx.Client(base_url=server_url, headers=world.h(who), timeout=30) as client:
            barrier.wait()
            body = {"outcome_code": "done", "outcome": who}
            return client.post(f"{API}/routings/{routing_id}/answer", json=body).status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(answer, ["referrer", "curator"])) == [200, 409]
    with Session(engine) as session:
        answers = session.exec(
            select(func.count()).where(CaseHistory.case_id == case_id, CaseHistory.event == "routing_answer")
        ).one()
    assert answers == 1


def test_the_referrers_feedback_lists_the_journey_not_the_inter_agency_work(world: World) -> None:
    """The feedback document's «Ход сопровождения» lists the states the child went through; a
    routing, a consilium or a transfer request is the provider's inter-agency work, not a step of the
    journey: it adds no line (it used to add one more «Реализация ИПРП» per routing)."""
    from tests.test_disclosure import pdf_text

    case_id = open_case(world)
    referral_id = world.case(case_id)["referral_id"]

    def lines() -> int:
        text = pdf_text(
            world.client.get(f"{API}/referrals/{referral_id}/feedback", headers=world.h("referrer"))
        )
        return text.count("Реализация ИПРП")

    before = lines()
    assert route(world, case_id).status_code == 201
    assert (
        route(world, case_id, kind="social_services", target_org_id=world.org_ids["health"]).status_code
        == 201
    )
    assert lines() == before


def test_reads_of_routings_are_audited_with_the_child(world: World, engine: Engine) -> None:
    """The organisation a family is routed to reads the child's name and birth date: its reads (the
    list, an answer) and the curator's go to the audit log with the child, as every read of a
    child's record does (DESIGN §6), and the case's list of routings names each routing read."""
    from models.cases import Case

    case_id = open_case(world)
    routing_id = route(world, case_id).json()["id"]
    with Session(engine) as session:
        child_id = session.exec(select(Case.child_id).where(Case.id == case_id)).one()
    assert world.client.get(f"{API}/routings", headers=world.h("referrer")).status_code == 200
    assert world.client.get(f"{API}/routings", headers=world.h("curator")).status_code == 200
    assert world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).status_code == 200
    answered = world.client.post(
        f"{API}/routings/{routing_id}/answer", json={"outcome_code": "done"}, headers=world.h("referrer")
    )
    assert answered.status_code == 200
    with Session(engine) as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.entity == "routing", col(AuditLog.action).in_(["read", "update"]))
        ).all()
    assert len(rows) == 4
    assert {(r.entity_id, r.child_id) for r in rows} == {(routing_id, child_id)}
