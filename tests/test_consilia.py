"""The inter-agency consilium through the API: planned with participants from other organisations,
each invited once through its channel (the relay run twice against a real SMTP server), held with
decisions that lead to a routing and to revising the ИПРП, cancelled; a consilium in the past."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from core.config import Settings
from flows.relay import Relay
from models.organisations import Organisation, OrgKind
from models.outbox import Outbox
from tests.servers import HttpSink, SmtpServer
from tests.test_journey import to_ipr_implementation
from tests.world import API, World

SOON = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)


def org_of(engine: Engine, kind: OrgKind, region: int = 1) -> int:
    with Session(engine) as session:
        found = session.exec(
            select(Organisation.id).where(Organisation.kind == kind, Organisation.region_id == region)
        ).first()
        assert found is not None
        return found


def plan(world: World, case_id: int, who: str = "curator", **body: Any) -> Any:
    payload = {
        "scheduled_at": SOON.isoformat(),
        "place": "г. Демо, ул. Ленина, 1, каб. 12",
        "agenda": "Согласовать обследование слуха и место в группе кратковременного пребывания",
        "participant_org_ids": [world.org_ids["health"], world.provider_id],
    } | body
    return world.client.post(f"{API}/cases/{case_id}/consilia", json=payload, headers=world.h(who))


def test_consilium_in_the_past_or_without_another_organisation_is_refused(
    world: World, engine: Engine
) -> None:
    case_id = to_ipr_implementation(world)
    past = plan(world, case_id, scheduled_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert past.status_code == 422 and past.json()["field"] == "scheduled_at"
    assert "прошедшее" in past.json()["message"]
    naive = plan(world, case_id, scheduled_at="2030-01-01T10:00:00")
    assert naive.status_code == 422
    alone = plan(world, case_id, participant_org_ids=[world.provider_id])
    assert alone.status_code == 422 and alone.json()["field"] == "participant_org_ids"
    unknown = plan(world, case_id, participant_org_ids=[999_999])
    assert unknown.status_code == 404 and unknown.json()["field"] == "participant_org_ids"
    elsewhere = plan(world, case_id, participant_org_ids=[world.org_ids["b_health"]])
    assert elsewhere.status_code == 404
    assert world.client.get(f"{API}/cases/{case_id}/consilia", headers=world.h("curator")).json() == []
    with Session(engine) as session:
        rows = session.exec(select(Outbox).where(Outbox.template == "consilium_invitation")).all()
    assert rows == []


def test_hold_records_decisions_and_creates_the_routing_it_decided(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    social = org_of(engine, OrgKind.social)
    planned = plan(
        world,
        case_id,
        participants=[
            {"organisation_id": social, "person_name": "Орлова В. П.", "position": "специалист по соцработе"}
        ],
    )
    assert planned.status_code == 201, planned.text
    consilium = planned.json()
    assert consilium["status"] == "planned" and consilium["allowed_events"] == ["hold", "cancel"]
    invited = {p["organisation_id"]: p for p in consilium["participants"]}
    assert invited[world.org_ids["health"]]["invited"] and invited[social]["invited"]
    assert invited[social]["person_name"] == "Орлова В. П."
    assert not invited[world.provider_id]["invited"]  # the provider itself is not sent an invitation

    # A bad routing in the decisions refuses the whole hold: nothing is recorded.
    bad = world.client.post(
        f"{API}/consilia/{consilium['id']}/hold",
        json={
            "decisions": "Направить",
            "routings": [{"target_org_id": 999_999, "kind": "pmpk", "purpose": "x"}],
        },
        headers=world.h("curator"),
    )
    assert bad.status_code == 404 and bad.json()["field"] == "routings.0.target_org_id"
    assert world.client.get(f"{API}/cases/{case_id}/consilia", headers=world.h("curator")).json()[0][
        "status"
    ] == ("planned")

    held = world.client.post(
        f"{API}/consilia/{consilium['id']}/hold",
        json={
            "decisions": "Направить семью на обследование слуха; пересмотреть ИПРП",
            "recommendations": "Добавить занятия с сурдопедагогом",
            "revise_ipr": True,
            "routings": [
                {
                    "target_org_id": world.org_ids["health"],
                    "kind": "medical_examination",
                    "purpose": "Аудиометрия",
                }
            ],
        },
        headers=world.h("curator"),
    )
    assert held.status_code == 200, held.text
    body = held.json()
    assert body["status"] == "held" and body["revise_ipr"] and len(body["routing_ids"]) == 1
    routed = world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).json()
    assert [r["id"] for r in routed] == body["routing_ids"] and routed[0]["consilium_id"] == consilium["id"]
    history = [h["event"] for h in world.case(case_id)["history"]]
    assert {"consilium_plan", "consilium_hold", "routing_send"} <= set(history)
    again = world.client.post(
        f"{API}/consilia/{consilium['id']}/hold", json={"decisions": "Ещё раз"}, headers=world.h("curator")
    )
    assert again.status_code == 409
    # Cancelling a held consilium is a conflict; the referrer never reaches it.
    assert (
        world.client.post(
            f"{API}/consilia/{consilium['id']}/cancel", json={}, headers=world.h("curator")
        ).status_code
        == 409
    )
    assert (
        world.client.post(
            f"{API}/consilia/{consilium['id']}/cancel", json={}, headers=world.h("referrer")
        ).status_code
        == 403
    )
    assert (
        world.client.post(
            f"{API}/consilia/{consilium['id']}/cancel", json={}, headers=world.h("coordinator2")
        ).status_code
        == 404
    )


def test_cancel_tells_each_invited_organisation(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    consilium = plan(world, case_id).json()
    cancelled = world.client.post(
        f"{API}/consilia/{consilium['id']}/cancel",
        json={"reason": "Заболел ребёнок"},
        headers=world.h("head"),
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(Outbox).where(Outbox.case_id == case_id, Outbox.template == "consilium_cancelled")
            )
        )
    assert [r.context["org_id"] for r in rows] == [world.org_ids["health"]]
    hold = world.client.post(
        f"{API}/consilia/{consilium['id']}/hold", json={"decisions": "—"}, headers=world.h("curator")
    )
    assert hold.status_code == 409


# --- delivered once ---------------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer, sink: HttpSink) -> Settings:
    smtp.inbox.clear()
    sink.requests.clear()
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "channel_timeout_seconds": 1.0,
            "delivery_retry_delays": [0.05],
            "relay_backoff_seconds": 0.0,
            "relay_lease_seconds": 1,
        }
    )


def test_consilium_invitations_are_each_delivered_once(
    world: World,
    engine: Engine,
    settings: Settings,
    smtp: SmtpServer,
    runner: asyncio.Runner,
    no_night: None,
) -> None:
    social = org_of(engine, OrgKind.social)
    pmpk = org_of(engine, OrgKind.pmpk)
    with Session(engine) as session:
        for org_id, address in (
            (world.org_ids["health"], "clinic@health.example"),
            (social, "kcson@social.example"),
        ):
            session.execute(update(Organisation).where(col(Organisation.id) == org_id).values(email=address))
        session.execute(
            update(Organisation).where(col(Organisation.id) == pmpk).values(email="pmpk@pmpk.example")
        )
        session.commit()
    case_id = to_ipr_implementation(world)
    planned = plan(
        world, case_id, participant_org_ids=[world.org_ids["health"], social, pmpk, world.provider_id]
    )
    assert planned.status_code == 201, planned.text
    assert smtp.inbox == []  # nothing is sent inside the request

    relay = Relay(engine, settings, name="test-relay")
    for _ in range(2):  # the relay run twice: what is done is not sent again
        for _ in range(10):
            if runner.run(relay.run_once()) == 0:
                break
    invitations = [m for m in smtp.inbox if "консилиум" in str(m["Subject"])]
    assert sorted(m["To"] for m in invitations) == [
        "clinic@health.example",
        "kcson@social.example",
        "pmpk@pmpk.example",
    ]
    text = invitations[0].get_content()
    assert "Ёжикова" in text and "ул. Ленина" in text
    # The agenda (free text, perhaps about health) stays out of the message.
    assert "слуха" not in text and "сурдо" not in text


def test_a_routing_reaches_its_organisation_with_the_minimum(
    world: World,
    engine: Engine,
    settings: Settings,
    smtp: SmtpServer,
    sink: HttpSink,
    runner: asyncio.Runner,
    no_night: None,
) -> None:
    with Session(engine) as session:
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.org_ids["health"])
            .values(email="clinic@health.example", webhook_url=sink.url("/hook/clinic"), webhook_secret="s")
        )
        session.commit()
    case_id = to_ipr_implementation(world)
    sent = world.client.post(
        f"{API}/cases/{case_id}/routings",
        json={
            "target_org_id": world.org_ids["health"],
            "kind": "doctor_consultation",
            "purpose": "Консультация невролога: эпилепсия под вопросом",
        },
        headers=world.h("curator"),
    )
    assert sent.status_code == 201, sent.text
    relay = Relay(engine, settings, name="test-relay")
    for _ in range(2):
        for _ in range(10):
            if runner.run(relay.run_once()) == 0:
                break
    # The clinic referred the child too: its feedback letters come beside the routing's.
    (letter,) = [m for m in smtp.to("clinic@health.example") if "Направление семьи" in str(m["Subject"])]
    text = letter.get_content()
    assert "Ёжикова" in text and "Консультация врача" in text and "Петрова Анна Викторовна" in text
    assert f"{settings.public_url}/routings" in text
    assert "эпилепс" not in text and "невролог" not in text
    (hook,) = [r for r in sink.received("/hook/clinic") if r.json["type"] == "routing_request"]
    assert hook.json["type"] == "routing_request"
    assert "эпилепс" not in hook.raw.decode() and "невролог" not in hook.raw.decode()
    # Outside the case: its number to quote, not its state, referral or the referrer's feedback link.
    assert hook.json["case_id"] == case_id
    assert [hook.json[k] for k in ("state", "referral_id", "document_url")] == [None, None, None]


def test_inter_agency_api_with_odd_bodies_is_never_a_500(world: World) -> None:
    """Every route of issue 11 with missing fields, wrong types, huge ids, naive or far-off times,
    empty strings: a 4xx with the error's shape, never a 500."""
    case_id = to_ipr_implementation(world)
    huge = [2**63, 2**31, -1, 0, "²", "", None, 1.5, True, [], {}]
    days = ["0001-01-01", "9999-12-31", "2026-02-30", "", "²", 20261130, None]
    moments = ["2026-12-03T11:30:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+14:00", "x", 1]
    bodies: list[tuple[str, list[object]]] = []
    for value in huge:
        bodies += [
            (f"/cases/{case_id}/transfers", [{"to_provider_id": value, "reason": "x"}]),
            (f"/cases/{case_id}/routings", [{"target_org_id": value, "kind": "other", "purpose": "x"}]),
            (f"/cases/{case_id}/team", [{"user_id": value, "specialist_role": "psychologist"}]),
            ("/transfers/1/accept", [{"curator_id": value}]),
            ("/routings/1/answer", [{"outcome_code": value}]),
            (
                "/agreements",
                [{"provider_id": value, "partner_org_id": value, "number": "1", "signed_on": "2026-01-01"}],
            ),
            (
                f"/cases/{case_id}/consilia",
                [
                    {
                        "scheduled_at": "2030-01-01T10:00:00+03:00",
                        "place": "x",
                        "agenda": "x",
                        "participant_org_ids": [value],
                        "participants": [{"organisation_id": value}],
                    }
                ],
            ),
        ]
    for day in days:
        bodies += [
            (
                f"/cases/{case_id}/transfers",
                [{"to_provider_id": world.org_ids["provider2"], "reason": "x", "consent": {"date": day}}],
            ),
            ("/enrolments/1/confirm", [{"enrolled_on": day}]),
            (
                "/agreements",
                [
                    {
                        "provider_id": world.provider_id,
                        "partner_org_id": world.org_ids["health"],
                        "number": "1",
                        "signed_on": day,
                        "valid_until": day,
                    }
                ],
            ),
        ]
    for moment in moments:
        bodies.append(
            (
                f"/cases/{case_id}/consilia",
                [
                    {
                        "scheduled_at": moment,
                        "place": "x",
                        "agenda": "x",
                        "participant_org_ids": [world.org_ids["health"]],
                    }
                ],
            )
        )
    for path in (
        "/transfers/1/refuse",
        "/transfers/1/withdraw",
        "/routings/1/cancel",
        "/consilia/1/hold",
        "/consilia/1/cancel",
        f"/cases/{case_id}/team/1/remove",
        "/agreements/1/end",
    ):
        bodies.append((path, [None, {}, [], "x", {"reason": 1}, {"decisions": "", "routings": [{}]}]))
    for path, variants in bodies:
        for body in variants:
            for who in ("curator", "coordinator2", "admin", "referrer", "kindergarten"):
                answer = world.client.post(f"{API}{path}", json=body, headers=world.h(who))
                assert answer.status_code < 500, (path, body, who, answer.text)
    for url in (
        "/transfers?direction=x&status=y",
        "/transfers?limit=0",
        "/transfers?offset=99999999999",
        f"/transfers/{2**63}",
        "/routings?status=x",
        f"/routings?offset={2**63}",
        f"/cases/{case_id}/routings",
        f"/cases/{2**63}/consilia",
        "/agreements?provider_id=²",
        f"/agreements?provider_id={2**63}",
        f"/cases/{2**40}/team",
        "/enrolments",
    ):
        for who in ("curator", "coordinator2", "admin", "referrer", "kindergarten", "rrmc", "analyst"):
            assert world.client.get(f"{API}{url}", headers=world.h(who)).status_code < 500, (url, who)


def test_a_read_of_the_case_consilia_is_audited_under_each_consilium(world: World, engine: Engine) -> None:
    """The audit row of a read names what was read: each consilium (with the child), not the case's
    id as if it were a consilium's."""
    from models.audit import AuditLog

    case_id = to_ipr_implementation(world)
    first, second = (plan(world, case_id).json()["id"] for _ in range(2))
    assert world.client.get(f"{API}/cases/{case_id}/consilia", headers=world.h("curator")).status_code == 200
    child_id = world.case(case_id)["child_id"]
    with Session(engine) as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.entity == "consilium", AuditLog.action == "read")
        ).all()
    assert sorted((r.entity_id, r.child_id) for r in rows) == [(first, child_id), (second, child_id)]
