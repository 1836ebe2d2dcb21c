"""Transfer of a case to another provider, through HTTP: who reads what before and after, the
guards, the answers, and the clocks that go on."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from fastapi import FastAPI
from sqlalchemy import Engine, update
from sqlmodel import Session, col, func, select

from core.config import Settings
from flows.relay import Relay
from models.organisations import Organisation
from models.outbox import Outbox
from models.programmes import ServiceSession
from tests.servers import HttpSink, SmtpServer
from tests.standards_override import NO_QUIET_HOURS, region_standard
from tests.test_journey import ipr_payload, need_payload, to_need_determination
from tests.world import API, World

TODAY = date.today().isoformat()


def to_ipr(world: World) -> int:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    return case_id


def request(world: World, case_id: int, who: str = "coordinator", **body: Any) -> Any:
    payload = {"to_provider_id": world.org_ids["provider2"], "reason": "Семья переехала в Южный район"}
    # Dated at the call: tests that travel in time record the consent that day.
    consent = {"date": date.today().isoformat(), "document_ref": "Согласие на передачу № 3"}
    payload |= {"consent": consent} | body
    return world.client.post(f"{API}/cases/{case_id}/transfers", json=payload, headers=world.h(who))


def requested(world: World, case_id: int, who: str = "coordinator") -> dict[str, Any]:
    response = request(world, case_id, who)
    assert response.status_code == 201, response.text
    return dict(response.json())


def post(world: World, transfer_id: int, action: str, who: str, body: dict[str, Any] | None = None) -> Any:
    return world.client.post(f"{API}/transfers/{transfer_id}/{action}", json=body or {}, headers=world.h(who))


def test_accepted_transfer_moves_the_case_and_who_reads_what_before_and_after(world: World) -> None:
    referral = world.refer()
    case_id = referral["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    transfer = requested(world, case_id)
    assert transfer["status"] == "requested" and transfer["direction"] == "outgoing"
    assert transfer["answer_due_at"] is not None

    # Before: the receiving coordinator sees the summary to decide, never the case card.
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("coordinator2")).status_code == 404
    incoming = world.client.get(
        f"{API}/transfers",
        params={"direction": "incoming", "status": "requested"},
        headers=world.h("coordinator2"),
    ).json()
    seen = next(t for t in incoming["items"] if t["id"] == transfer["id"])
    assert seen["child_name"].startswith("Ёжикова Алёна") and seen["child_birth_date"]
    assert seen["municipality"] == "Центральный район" and seen["case_state"] == "ipr_implementation"
    assert seen["from_provider_id"] == world.org_ids["provider"] and seen["allowed_actions"] == [
        "accept",
        "refuse",
    ]
    assert "history" not in seen and "conclusion" not in seen
    # The sending card shows the pending transfer; the curator of the receiver sees no incoming.
    card = world.case(case_id, "coordinator")
    assert card["pending_transfer"]["id"] == transfer["id"]
    assert (
        world.client.get(f"{API}/transfers/{transfer['id']}", headers=world.h("curator2")).status_code == 404
    )

    accepted = post(
        world, transfer["id"], "accept", "coordinator2", {"curator_id": world.user_ids["curator2"]}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"

    # After: the old provider gets 404 on the case; its list keeps the row with initials only.
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("coordinator")).status_code == 404
    assert world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator")).status_code == 404
    old = world.client.get(f"{API}/transfers/{transfer['id']}", headers=world.h("coordinator")).json()
    assert old["child_name"] == "Ёжикова А. П." and old["child_birth_date"] is None
    assert old["case_state"] is None and old["municipality"] is None
    # The new one reads the whole case: history, ИПРП, its curator, both organisations in history.
    case = world.case(case_id, "coordinator2")
    assert (
        case["provider_id"] == world.org_ids["provider2"] and case["curator_id"] == world.user_ids["curator2"]
    )
    events = [h["event"] for h in case["history"]]
    assert events[:1] == ["refer"] and "approve_ipr" in events
    assert events[-2:] == ["transfer_request", "transfer_accept"]
    moved = case["history"][-1]["payload"]
    assert moved["from_provider_name"] and moved["to_provider_name"] and moved["to_provider_id"]
    assert world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator2")).status_code == 200
    assert case["pending_transfer"] is None
    answer = next(d for d in case["deadlines"] if d["timer"] == "transfer.answer")
    assert answer["status"] == "met"
    # The referrer still sees its referral's state; the old provider learns no more of the case.
    mine = world.client.get(f"{API}/referrals/{referral['id']}", headers=world.h("referrer")).json()
    assert mine["status"] == "ipr_implementation"
    former = world.client.get(f"{API}/referrals/{referral['id']}", headers=world.h("coordinator"))
    assert former.status_code == 200
    assert former.json()["case_id"] is None and former.json()["case_state"] is None
    assert former.json()["status"] == "transferred"
    feedback = world.client.get(f"{API}/referrals/{referral['id']}/feedback", headers=world.h("coordinator"))
    assert feedback.status_code == 404


def test_refused_transfer_leaves_the_case_where_it_was(world: World) -> None:
    case_id = to_ipr(world)
    transfer = requested(world, case_id)
    empty = post(world, transfer["id"], "refuse", "coordinator2", {"reason": "  "})
    assert empty.status_code == 422 and empty.json()["field"] == "reason"
    refused = post(world, transfer["id"], "refuse", "coordinator2", {"reason": "Нет мест у логопеда"})
    assert refused.status_code == 200, refused.text
    assert refused.json()["answer_reason"] == "Нет мест у логопеда"
    case = world.case(case_id, "coordinator")
    assert case["provider_id"] == world.org_ids["provider"] and case["pending_transfer"] is None
    assert case["history"][-1]["event"] == "transfer_refuse"
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("coordinator2")).status_code == 404
    # The receiver keeps the row, no more than initials; a new request may follow.
    kept = world.client.get(f"{API}/transfers/{transfer['id']}", headers=world.h("coordinator2")).json()
    assert kept["child_birth_date"] is None and kept["case_state"] is None
    assert post(world, transfer["id"], "accept", "coordinator2").status_code == 409
    assert request(world, case_id).status_code == 201


def test_accepting_twice_or_after_withdrawal_is_409(world: World) -> None:
    case_id = to_ipr(world)
    first = requested(world, case_id)
    assert request(world, case_id).status_code == 409  # one pending transfer per case
    assert post(world, first["id"], "withdraw", "coordinator2").status_code == 403
    withdrawn = post(world, first["id"], "withdraw", "curator", {"reason": "Семья передумала"})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    late = post(world, first["id"], "accept", "coordinator2")
    assert late.status_code == 409 and late.json()["field"] == "status"
    case = world.case(case_id, "coordinator")
    answer = next(d for d in case["deadlines"] if d["timer"] == "transfer.answer")
    assert answer["status"] == "cancelled"

    second = requested(world, case_id, who="rrmc")  # the regional centre may request too
    assert post(world, second["id"], "accept", "coordinator2").status_code == 200
    again = post(world, second["id"], "accept", "coordinator2")
    assert again.status_code == 409 and again.json()["field"] == "status"


def test_bad_targets_and_missing_consent_are_422_with_the_field(world: World) -> None:
    case_id = to_ipr(world)
    same = request(world, case_id, to_provider_id=world.org_ids["provider"])
    assert same.status_code == 422 and same.json()["field"] == "to_provider_id"
    assert "эта организация" in same.json()["message"]
    clinic = request(world, case_id, to_provider_id=world.org_ids["health"])
    assert clinic.status_code == 422 and clinic.json()["field"] == "to_provider_id"
    assert "не оказывает раннюю помощь" in clinic.json()["message"]
    elsewhere = request(world, case_id, to_provider_id=world.org_ids["b_provider"])
    assert elsewhere.status_code == 422 and elsewhere.json()["field"] == "to_provider_id"
    payload = {"to_provider_id": world.org_ids["provider2"], "reason": "Переезд"}
    bare = world.client.post(f"{API}/cases/{case_id}/transfers", json=payload, headers=world.h("coordinator"))
    assert bare.status_code == 422 and bare.json()["field"] == "consent"
    future = request(world, case_id, consent={"date": (date.today() + timedelta(days=3)).isoformat()})
    assert future.status_code == 422
    no_reason = request(world, case_id, reason=" ")
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    assert request(world, case_id, who="specialist").status_code in (403, 404)
    # Nothing half-written: no transfer, no consent of kind transfer.
    consents = world.client.get(
        f"{API}/children/{world.case(case_id, 'coordinator')['child_id']}/consents",
        headers=world.h("coordinator"),
    ).json()
    assert all(c["kind"] != "transfer" for c in consents)
    # A consent already on file is enough; the body then need not carry one.
    child_id = world.case(case_id, "coordinator")["child_id"]
    recorded = world.client.post(
        f"{API}/children/{child_id}/consents",
        json={"kind": "transfer", "date": TODAY, "document_ref": "№ 9"},
        headers=world.h("coordinator"),
    )
    assert recorded.status_code == 201, recorded.text
    ok = world.client.post(f"{API}/cases/{case_id}/transfers", json=payload, headers=world.h("coordinator"))
    assert ok.status_code == 201, ok.text


def test_suspended_case_is_transferred_and_resumed_by_the_new_provider(world: World) -> None:
    monday = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(monday, tick=False):
        case_id = to_need_determination(world)
        before = {d["timer"]: d for d in world.case(case_id, "coordinator")["deadlines"]}
    with time_machine.travel(monday + timedelta(days=2), tick=False):
        world.advance(case_id, "suspend", reason="Госпитализация", who="coordinator")
        transfer = requested(world, case_id)
        assert post(world, transfer["id"], "accept", "coordinator2").status_code == 200
        case = world.case(case_id, "coordinator2")
        assert case["state"] == "suspended" and case["provider_id"] == world.org_ids["provider2"]
        paused = next(d for d in case["deadlines"] if d["timer"] == "need_determination")
        assert paused["paused"] is True and paused["due_at"] == before["need_determination"]["due_at"]
    with time_machine.travel(monday + timedelta(days=9), tick=False):
        resumed = world.advance(case_id, "resume", who="coordinator2")
    assert resumed["state"] == "need_determination"
    shifted = next(d for d in resumed["deadlines"] if d["timer"] == "need_determination")
    assert shifted["paused"] is False and shifted["due_at"] > before["need_determination"]["due_at"]
    # The new provider's overdue list holds the case's deadline; the old one's does not.
    mine = world.client.get(f"{API}/overdue", headers=world.h("coordinator2"))
    assert any(item["case_id"] == case_id for item in mine.json()["items"])
    theirs = world.client.get(f"{API}/overdue", headers=world.h("coordinator"))
    assert all(item["case_id"] != case_id for item in theirs.json()["items"])


def test_open_deadlines_keep_their_due_dates_and_future_sessions_are_cancelled(
    world: World, engine: Engine
) -> None:
    case_id = to_ipr(world)
    soon = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0).isoformat()
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": soon},
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    before = {d["id"]: d for d in world.case(case_id, "coordinator")["deadlines"] if d["status"] == "open"}
    assert before
    transfer = requested(world, case_id)
    assert post(world, transfer["id"], "accept", "coordinator2").status_code == 200
    after = {d["id"]: d for d in world.case(case_id, "coordinator2")["deadlines"]}
    for deadline_id, row in before.items():
        assert after[deadline_id]["status"] == "open"
        assert (
            after[deadline_id]["due_at"] == row["due_at"] and after[deadline_id]["warn_at"] == row["warn_at"]
        )
    with Session(engine) as session:
        cancelled = session.exec(
            select(ServiceSession).where(ServiceSession.id == planned.json()["id"])
        ).one()
        assert cancelled.status == "cancelled" and "передан" in (cancelled.notes or "")
        templates = sorted(
            (o.kind, o.template, o.context.get("org_id"))
            for o in session.exec(
                select(Outbox).where(Outbox.case_id == case_id, col(Outbox.template).like("transfer_%"))
            )
        )
    provider, provider2 = world.org_ids["provider"], world.org_ids["provider2"]
    assert templates == [
        ("feedback_to_referrer", "transfer_accepted", provider),
        ("notify_family", "transfer_accepted", provider),
        ("notify_organisation", "transfer_accepted", provider),
        ("notify_organisation", "transfer_requested", provider2),
    ]


def test_journey_lists_the_transfer_workflow(world: World) -> None:
    journey = world.client.get(f"{API}/journey", headers=world.h("coordinator")).json()
    transfer = next(w for w in journey["workflows"] if w["name"] == "transfer")
    assert {s["name"] for s in transfer["states"]} == {"requested", "accepted", "refused", "withdrawn"}
    assert {e["name"] for e in transfer["events"]} == {"accept", "refuse", "withdraw"}


def test_roles_without_transfers_are_refused_and_bad_filters_are_422(world: World) -> None:
    assert world.client.get(f"{API}/transfers", headers=world.h("referrer")).status_code == 403
    assert world.client.get(f"{API}/transfers", headers=world.h("specialist")).status_code == 403
    bad = world.client.get(
        f"{API}/transfers", params={"direction": "sideways"}, headers=world.h("coordinator")
    )
    assert bad.status_code == 422 and bad.json()["field"] == "direction"
    assert world.client.get(f"{API}/transfers/999999", headers=world.h("coordinator")).status_code == 404


def test_the_relay_tells_each_side_of_an_accepted_transfer_once(
    world: World, engine: Engine, app: FastAPI, settings: Settings, prefect_server: None, tmp_path: Path
) -> None:
    """Real SMTP and SMS servers on loopback; the family hears the new provider's name and phone only."""
    smtp, sink = SmtpServer(), HttpSink()
    smtp.start()
    sink.start()
    try:
        with Session(engine) as session:
            for name, address in (
                ("provider", "old@provider.example"),
                ("provider2", "new@provider2.example"),
            ):
                session.execute(
                    update(Organisation)
                    .where(col(Organisation.id) == world.org_ids[name])
                    .values(email=address)
                )
            session.execute(
                update(Organisation)
                .where(col(Organisation.id) == world.org_ids["health"])
                .values(email="clinic@health.example")
            )
            session.execute(
                update(Organisation)
                .where(col(Organisation.id) == world.org_ids["provider2"])
                .values(phone="+7 800 200-00-02")
            )
            session.commit()
        case_id = to_ipr(world)
        transfer = requested(world, case_id)
        assert post(world, transfer["id"], "accept", "coordinator2").status_code == 200
        relay = Relay(
            engine,
            settings.model_copy(
                update={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp.port,
                    "sms_gateway_url": sink.url("/sms"),
                    "channel_timeout_seconds": 1.0,
                    "delivery_retry_delays": [0.05],
                    "relay_backoff_seconds": 0.0,
                    "relay_lease_seconds": 1,
                }
            ),
            name="transfer-relay",
        )
        with region_standard(tmp_path, NO_QUIET_HOURS), asyncio.Runner() as runner:
            for _ in range(2):  # the second pass finds nothing more to send
                for _ in range(10):
                    if runner.run(relay.run_once()) == 0:
                        break
        words = ("передач", "принят организацией", "продолжит")
        subjects = sorted(
            (m["To"], str(m["Subject"])) for m in smtp.inbox if any(w in str(m["Subject"]) for w in words)
        )
        referral_id = world.case(case_id, "coordinator2")["referral_id"]
        receiver, continues = transfer["to_provider_name"], "продолжит другая организация"
        assert subjects == sorted(
            [
                ("new@provider2.example", f"Запрос о передаче случая № {case_id}"),
                ("old@provider.example", f"Случай № {case_id} принят организацией «{receiver}»"),
                ("clinic@health.example", f"Сопровождение по направлению № {referral_id} {continues}"),
            ]
        )
        family = [r.json["text"] for r in sink.received("/sms") if "продолжит" in r.json["text"]]
        assert len(family) == 1
        assert transfer["to_provider_name"] in family[0] and "+7 800 200-00-02" in family[0]
        assert "Ёжикова" not in family[0]
    finally:
        smtp.stop()
        sink.stop()


def test_the_old_providers_team_members_lose_the_case_at_acceptance(world: World) -> None:
    case_id = to_ipr(world)
    added = world.client.post(
        f"{API}/cases/{case_id}/team",
        json={"user_id": world.user_ids["specialist"], "specialist_role": "physical_therapist"},
        headers=world.h("curator"),
    )
    assert added.status_code == 201, added.text
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("specialist")).status_code == 200
    transfer = requested(world, case_id)
    assert post(world, transfer["id"], "accept", "coordinator2").status_code == 200
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("specialist")).status_code == 404
    team = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("coordinator2")).json()
    assert all(m["user_id"] != world.user_ids["specialist"] for m in team["members"] if m["id"] is not None)


def test_a_request_pending_when_the_case_ends_cannot_be_accepted(world: World) -> None:
    case_id = to_ipr(world)
    transfer = requested(world, case_id)
    world.advance(case_id, "decline", reason="Семья отказалась от помощи", who="coordinator")
    shown = world.client.get(f"{API}/transfers/{transfer['id']}", headers=world.h("coordinator2")).json()
    assert shown["allowed_actions"] == ["refuse"]
    late = post(world, transfer["id"], "accept", "coordinator2")
    assert late.status_code == 422 and late.json()["field"] == "case_id"
    assert (
        post(world, transfer["id"], "refuse", "coordinator2", {"reason": "Случай закрыт"}).status_code == 200
    )


def test_an_unanswered_request_escalates_to_the_receiving_provider_not_the_senders_curator(
    world: World, engine: Engine, settings: Settings
) -> None:
    """The answer deadline is the receiving provider's to keep: the sweep's escalation (and the
    warning before it) are addressed to that organisation's head, and name no curator of the other."""
    from flows.sweeps import sweep_deadlines
    from flows.targets import resolve_many
    from models.deadlines import Deadline
    from models.users import User

    case_id = to_ipr(world)
    requested(world, case_id)
    with Session(engine) as session:
        warn, due = session.exec(
            select(Deadline.warn_at, Deadline.due_at).where(Deadline.timer == "transfer.answer")
        ).one()
    assert warn is not None
    sweep_deadlines(engine, now=warn + timedelta(minutes=1))
    sweep_deadlines(engine, now=due + timedelta(days=1))
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(Outbox).where(
                    col(Outbox.template).in_(["deadline_overdue", "deadline_warning"]),
                    Outbox.case_id == case_id,
                )
            )
        )
        assert {row.template for row in rows} == {"deadline_overdue", "deadline_warning"}
        resolved = resolve_many(session, rows, settings)
        receiving_heads = {
            u.email
            for u in session.exec(select(User).where(User.organisation_id == world.org_ids["provider2"]))
            if u.role == "supervisor"
        }
        receiving = session.get(Organisation, world.org_ids["provider2"])
        assert receiving is not None
        for row in rows:
            addresses = {t.address for t in resolved[row.id or 0].targets}
            expected = receiving_heads or {receiving.email}
            if row.template == "deadline_warning":
                expected = {receiving.email}
            assert addresses == expected, (row.template, addresses)
            assert resolved[row.id or 0].context["curator_name"] == ""


def test_two_acceptances_of_one_transfer_at_once_one_wins_the_other_409(
    world: World, engine: Engine, server_url: str
) -> None:
    """A double click on «Принять случай» through a real server: one acceptance, one 409, the case
    moved once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from models.cases import CaseHistory

    case_id = to_ipr(world)
    transfer_id = requested(world, case_id)["id"]
    version = world.case(case_id)["version"]
    barrier = threading.Barrier(2)

    def accept(curator: str) -> int:
        with httpx.Client(base_url=server_url, headers=world.h("coordinator2"), timeout=30) as client:
            barrier.wait()
            body = {"curator_id": world.user_ids[curator]}
            return client.post(f"{API}/transfers/{transfer_id}/accept", json=body).status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(accept, ["curator2", "curator2"])) == [200, 409]
    with Session(engine) as session:
        accepted = session.exec(
            select(func.count()).where(CaseHistory.case_id == case_id, CaseHistory.event == "transfer_accept")
        ).one()
    assert accepted == 1
    assert world.case(case_id, who="curator2")["version"] == version + 1


def test_a_consent_withdrawn_while_the_request_waits_stops_the_acceptance(world: World) -> None:
    """The family's consent to pass its data to another provider is the transfer's guard: withdrawn
    before the receiving provider answers, the acceptance is refused (422) and nothing moves."""
    case_id = to_ipr(world)
    transfer_id = requested(world, case_id)["id"]
    child_id = world.case(case_id)["child_id"]
    withdrawn = world.client.post(
        f"{API}/children/{child_id}/consents",
        json={"kind": "transfer", "status": "withdrawn", "date": date.today().isoformat()},
        headers=world.h("coordinator"),
    )
    assert withdrawn.status_code == 201, withdrawn.text
    refused = post(world, transfer_id, "accept", "coordinator2")
    assert refused.status_code == 422 and refused.json()["field"] == "consent", refused.text
    assert world.case(case_id)["provider_id"] == world.provider_id
    assert (
        post(world, transfer_id, "refuse", "coordinator2", {"reason": "Нет согласия семьи"}).status_code
        == 200
    )
