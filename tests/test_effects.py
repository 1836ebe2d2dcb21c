"""Transitions reach people: real Prefect flow runs, a real SMTP server, a real HTTP server.

One Prefect test server, one SMTP server and one HTTP server serve the whole module.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from core.config import Settings
from flows.relay import Relay
from models.organisations import Organisation
from models.outbox import Delivery, DeliveryStatus, Outbox, OutboxStatus
from models.users import User
from tests.servers import HttpSink, RefusingProxy, SmtpServer, free_port
from tests.standards_override import NO_QUIET_HOURS, region_standard
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World, region_today

SECRET = "webhook-secret-of-the-provider"
CONCLUSION = "Выявлены нарушения моторного развития, ДЦП под вопросом"


# Families get no messages at night (quiet hours, in the region's zone); these tests check what is
# sent, whatever the hour the suite runs at, so the test region has no night.


@pytest.fixture(autouse=True)
def _no_night(no_night: None) -> None:
    """Every test here sends at any hour (conftest.no_night)."""


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer, sink: HttpSink) -> Settings:
    smtp.inbox.clear()
    sink.requests.clear()
    sink.modes.clear()
    sink.released.clear()
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "sms_gateway_url": sink.url("/sms"),
            "channel_timeout_seconds": 1.0,
            "delivery_retry_delays": [0.05],
            "relay_backoff_seconds": 0.0,
            "relay_lease_seconds": 1,
        }
    )


@pytest.fixture
def relay(engine: Engine, settings: Settings) -> Relay:
    return Relay(engine, settings, name="test-relay")


@pytest.fixture
def contacts(world: World, engine: Engine, sink: HttpSink) -> dict[str, str]:
    """E-mail addresses and a webhook for the organisations and people of the test world."""
    with Session(engine) as session:
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.provider_id)
            .values(
                email="intake@provider.example", webhook_url=sink.url("/hook/provider"), webhook_secret=SECRET
            )
        )
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.org_ids["health"])
            .values(email="clinic@health.example")
        )
        session.execute(
            update(User)
            .where(col(User.id) == world.user_ids["curator"])
            .values(email="curator@provider.example")
        )
        kindergarten = session.exec(
            select(Organisation).where(Organisation.kind == "education", Organisation.region_id == 1)
        ).one()
        kindergarten.email = "head@kindergarten.example"
        session.add(kindergarten)
        session.commit()
        return {"kindergarten_id": str(kindergarten.id)}


def drain(runner: asyncio.Runner, relay: Relay, rounds: int = 10) -> None:
    for _ in range(rounds):
        if runner.run(relay.run_once()) == 0:
            return


def deliveries(engine: Engine, case_id: int) -> list[Delivery]:
    with Session(engine) as session:
        return list(
            session.exec(select(Delivery).where(Delivery.case_id == case_id).order_by(col(Delivery.id)))
        )


def sms_texts(sink: HttpSink) -> list[str]:
    return [r.json["text"] for r in sink.received("/sms")]


def test_full_journey_sends_each_expected_message_once(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    sink: HttpSink,
    contacts: dict[str, str],
) -> None:
    referral = world.refer()
    case_id = referral["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("ipr", CONCLUSION), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    world.advance(
        case_id,
        "begin_transition",
        {"destination": "МБДОУ № 12", "destination_org_id": int(contacts["kindergarten_id"])},
    )
    # The child enters the kindergarten: the adaptation period begins (the case completes at its end).
    world.advance(case_id, "enrol", {"enrolled_on": region_today().isoformat()})
    assert smtp.inbox == [] and sink.requests == []  # nothing is sent inside a request

    drain(runner, relay)
    drain(runner, relay)  # a second pass finds nothing more to send

    subjects = sorted((m["To"], str(m["Subject"])) for m in smtp.inbox)
    rid = referral["id"]
    assert subjects == sorted(
        [
            ("intake@provider.example", f"Новое направление № {rid}"),
            ("curator@provider.example", f"Вам назначен случай № {case_id}"),
            ("clinic@health.example", f"Направление № {rid} принято"),
            ("clinic@health.example", f"Заключение по направлению № {rid}"),
            ("clinic@health.example", f"Утверждена ИПРП по направлению № {rid}"),
            ("clinic@health.example", f"Ребёнок поступил в ДОО или иную программу: направление № {rid}"),
            ("head@kindergarten.example", "Переход ребёнка из службы ранней помощи"),
            ("head@kindergarten.example", "Поступление ребёнка: период адаптации"),
        ]
    )
    texts = sms_texts(sink)
    assert len(texts) == 5 and all(r.json["to"] == "+7 900 123-45-67" for r in sink.received("/sms"))
    assert [t.split(":")[0] for t in texts] == ["ГБУ «Центр ранней помощи „Первые шаги“»"] * 5
    assert not any("ДЦП" in t or "моторн" in t or "Ёжикова" in t for t in texts)  # no diagnosis, no surname
    assert len(sink.received("/hook/provider")) == 1

    # Feedback carries the unified-form PDF.
    feedback = [m for m in smtp.to("clinic@health.example")]
    for message in feedback:
        pdfs = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
        assert len(pdfs) == 1 and pdfs[0].get_content().startswith(b"%PDF")

    rows = deliveries(engine, case_id)
    assert all(d.status == DeliveryStatus.sent for d in rows) and len(rows) == 8 + 5 + 1
    case = world.case(case_id)
    assert all(e["status"] == "done" for e in case["effects"])
    assert sum(len(e["deliveries"]) for e in case["effects"]) == 14

    # Every flow run is in Prefect, tagged with the case.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    async def runs() -> list[str]:
        async with get_client() as client:
            found = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{case_id}"]))
            )
            return sorted({str(r.name).split(" ·")[0] for r in found if r.state and r.state.is_completed()})

    assert runner.run(runs()) == ["feedback_to_referrer", "notify_family", "notify_organisation"]


def test_webhook_is_signed(
    world: World, relay: Relay, runner: asyncio.Runner, sink: HttpSink, contacts: dict[str, str]
) -> None:
    referral = world.refer()
    drain(runner, relay)
    (hook,) = sink.received("/hook/provider")
    timestamp = hook.headers["X-Earlyhelp-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + hook.raw, hashlib.sha256).hexdigest()
    assert hook.headers["X-Earlyhelp-Signature"] == f"sha256={expected}"
    assert hook.json["type"] == "new_referral" and hook.json["case_id"] == referral["case_id"]
    assert "child" not in hook.raw.decode()


def test_smtp_down_waits_and_delivers_after_recovery(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
) -> None:
    smtp.stop()
    try:
        referral = world.refer()
        drain(runner, relay, rounds=3)
        # The coordinator keeps working while e-mail is down.
        world.advance(referral["case_id"], "accept", who="coordinator")
        drain(runner, relay, rounds=3)
        with Session(engine) as session:
            waiting = session.exec(select(Outbox).where(Outbox.template == "new_referral")).one()
        assert (
            waiting.status == OutboxStatus.pending
            and waiting.attempts >= 1
            and "SMTP" in (waiting.last_error or "")
        )
    finally:
        smtp.start()
    drain(runner, relay)
    assert len(smtp.to("intake@provider.example")) == 1
    assert len(smtp.to("clinic@health.example")) == 1


def test_document_process_dying_still_sends_the_feedback_once_with_its_pdf(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
) -> None:
    import os
    import signal

    from flows import delivery

    referral = world.refer()
    drain(runner, relay)
    rt = delivery.runtime()

    async def kill_the_renderer() -> None:  # start it, then kill it as a crash would
        await rt.feedback_pdf(referral["id"])
        assert rt._documents is not None
        for pid in list(rt._documents._processes):
            os.kill(pid, signal.SIGKILL)

    runner.run(kill_the_renderer())
    world.advance(referral["case_id"], "accept", who="coordinator")
    drain(runner, relay)  # a new renderer, at once or after one failed attempt
    with Session(engine) as session:
        feedback = session.exec(select(Outbox).where(Outbox.template == "referral_accepted")).one()
    assert feedback.status == OutboxStatus.done
    (letter,) = smtp.to("clinic@health.example")
    (pdf,) = [part for part in letter.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdf.get_content().startswith(b"%PDF")


@pytest.mark.parametrize("mode", ["500", "slow"])
def test_sms_gateway_failing_or_timing_out_is_retried(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner, sink: HttpSink, mode: str
) -> None:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", who="coordinator")
    sink.modes["/sms"] = mode
    drain(runner, relay, rounds=2)
    failed = [d for d in deliveries(engine, case_id) if d.channel == "sms"]
    assert failed and failed[0].status == DeliveryStatus.failed and failed[0].error
    sink.modes["/sms"] = "ok"
    sink.released.set()  # the held ("slow") tries answer now, after the relay gave up on them
    drain(runner, relay)
    sent = [d for d in deliveries(engine, case_id) if d.channel == "sms"]
    assert len(sent) == 1 and sent[0].status == DeliveryStatus.sent and sent[0].attempts >= 2
    # A gateway that timed out may still have taken the message: every try carries the same
    # Idempotency-Key, so the gateway sends the family one SMS.
    assert {r.headers["Idempotency-Key"] for r in sink.received("/sms")} == {
        sent[0].outbox_id and f"outbox-{sent[0].outbox_id}-sms"
    }
    if mode == "500":
        assert len(sink.received("/sms")) == 1


def test_webhook_refusing_is_retried(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    sink: HttpSink,
    contacts: dict[str, str],
) -> None:
    sink.modes["/hook/provider"] = "500"
    world.refer()
    drain(runner, relay, rounds=2)
    assert sink.received("/hook/provider") == []
    sink.modes["/hook/provider"] = "ok"
    drain(runner, relay)
    assert len(sink.received("/hook/provider")) == 1


def test_relay_killed_after_claiming_delivers_once_after_restart(
    world: World,
    engine: Engine,
    settings: Settings,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
) -> None:
    world.refer()
    dead = Relay(engine, settings, name="relay-that-dies")
    claimed = dead.claim()
    assert claimed  # ...and then the process is killed before delivering anything
    successor = Relay(engine, settings, name="relay-after-restart")
    assert successor.claim() == []  # the lease still holds
    with Session(engine) as session:  # the lease runs out
        session.execute(update(Outbox).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    drain(runner, successor)
    drain(runner, successor)
    assert len(smtp.to("intake@provider.example")) == 1


def test_a_refused_flow_run_creation_is_sent_again_at_once(
    world: World,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
    prefect_server: None,
) -> None:
    """Prefect's server on SQLite answers 503 to a flow run's creation now and then; Prefect's client
    alone would try again after 2 s. The relay's client sends it again after tens of milliseconds."""
    from prefect.settings import PREFECT_API_URL

    from flows.flow_runs import flow_run_client

    proxy = RefusingProxy(target=str(PREFECT_API_URL.value()), path="/api/flow_runs/", refuse=2)
    proxy.start()
    world.refer()

    async def one_batch() -> int:
        async with flow_run_client(api_url=proxy.url) as flow_runs:
            return await relay.run_once(flow_runs)

    try:
        assert runner.run(one_batch()) > 0
    finally:
        proxy.stop()
    assert len(smtp.to("intake@provider.example")) == 1
    assert proxy.refuse == 0 and len(proxy.arrivals) >= 3  # refused twice, then taken
    first_refused, taken = proxy.arrivals[0], proxy.arrivals[2]
    assert taken - first_refused < 1.0  # not after Prefect's back-off of 2 s (twice)


def test_prefect_unreachable_gives_the_rows_back_without_spending_attempts(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
    prefect_server: None,
) -> None:
    from flows.flow_runs import flow_run_client

    case_id = world.refer()["case_id"]

    async def one_batch_without_prefect() -> int:
        async with flow_run_client(api_url=f"http://127.0.0.1:{free_port()}/api") as flow_runs:
            return await relay.run_once(flow_runs)

    assert runner.run(one_batch_without_prefect()) > 0
    with Session(engine) as session:
        rows = session.exec(select(Outbox).where(Outbox.case_id == case_id)).all()
    assert rows and all(r.status == OutboxStatus.pending for r in rows)
    assert all(r.attempts == 0 and r.lease_until is None for r in rows)  # not held for the lease
    assert all("Prefect" in (r.last_error or "") for r in rows)
    assert smtp.to("intake@provider.example") == []
    drain(runner, relay)  # the back-off (0 s in these tests) has passed; Prefect is back
    assert len(smtp.to("intake@provider.example")) == 1


def test_template_with_a_missing_variable_fails_visibly(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner, sink: HttpSink, tmp_path: Path
) -> None:
    broken = (
        "messages:\n  family:\n    need_determination_invitation:\n"
        "      sms: 'Ждём вас {{ appointment_time }}'\n"
    )
    with region_standard(tmp_path, NO_QUIET_HOURS + broken):
        case_id = world.refer()["case_id"]
        world.advance(case_id, "accept", who="coordinator")
        drain(runner, relay)
    assert sink.received("/sms") == []
    effect = next(
        e for e in world.case(case_id)["effects"] if e["template"] == "need_determination_invitation"
    )
    assert effect["status"] == "failed" and "appointment_time" in effect["last_error"]
    assert effect["deliveries"][0]["status"] == "failed"


def test_family_without_a_contact_is_undeliverable_and_the_curator_is_told(
    world: World,
    engine: Engine,
    relay: Relay,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    contacts: dict[str, str],
) -> None:
    body = world.referral_body(
        representatives=[
            {
                "full_name": "Иванова Анна",
                "relation": "mother",
                "email": "anna@example.org",
                "preferred_channel": "sms",
            }
        ]
    )
    referral = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).json()
    world.advance(referral["case_id"], "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    drain(runner, relay)
    drain(runner, relay)
    family = [
        d for d in deliveries(engine, referral["case_id"]) if d.template == "need_determination_invitation"
    ]
    assert [(d.status, d.error) for d in family] == [(DeliveryStatus.undeliverable, "нет телефона")]
    told = [m for m in smtp.to("curator@provider.example") if "Не удалось связаться" in str(m["Subject"])]
    assert len(told) == 1 and "нет телефона" in told[0].get_content()


def test_withdrawn_consent_to_messages_stops_them(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner, sink: HttpSink
) -> None:
    referral = world.refer()
    withdrawn = world.client.post(
        f"{API}/children/{referral['child_id']}/consents",
        json={"kind": "messages", "status": "withdrawn", "date": datetime.now(UTC).date().isoformat()},
        headers=world.h("coordinator"),
    )
    assert withdrawn.status_code == 201
    world.advance(referral["case_id"], "accept", who="coordinator")
    drain(runner, relay)
    assert sink.received("/sms") == []
    family = [
        d for d in deliveries(engine, referral["case_id"]) if d.template == "need_determination_invitation"
    ]
    assert [(d.status, d.error) for d in family] == [
        (DeliveryStatus.skipped, "согласие на получение сообщений отозвано")
    ]
    # Not sending is what the family asked for: the effect is settled, not left for a supervisor.
    with Session(engine) as session:
        rows = session.exec(
            select(Outbox).where(
                Outbox.case_id == referral["case_id"], Outbox.template == "need_determination_invitation"
            )
        ).all()
    assert [r.status for r in rows] == [OutboxStatus.done]


def test_feedback_pdf_for_the_referrer(world: World, contacts: dict[str, str]) -> None:
    from io import BytesIO

    from pypdf import PdfReader

    referral = world.refer()
    world.advance(referral["case_id"], "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(
        referral["case_id"],
        "determine_need",
        need_payload("consultation", "Нужны консультации"),
        who="coordinator",
    )
    # The conclusion reaches the referrer only with the family's consent (tests/test_disclosure.py).
    consent = {"kind": "share_with_referrer", "date": datetime.now(UTC).date().isoformat()}
    shared = world.client.post(
        f"{API}/children/{referral['child_id']}/consents", json=consent, headers=world.h("coordinator")
    )
    assert shared.status_code == 201, shared.text
    response = world.client.get(f"{API}/referrals/{referral['id']}/feedback", headers=world.h("referrer"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)
    assert f"Обратная связь по направлению № {referral['id']}" in text
    assert (
        "Консультации без ИПРП" in text and "Петрова Анна Викторовна" in text and "Нужны консультации" in text
    )
    other = world.client.get(f"{API}/referrals/{referral['id']}/feedback", headers=world.h("social"))
    assert other.status_code == 404


def test_earlyhelp_worker_delivers_on_its_own(
    engine: Engine,
    settings: Settings,
    world: World,
    smtp: SmtpServer,
    contacts: dict[str, str],
    prefect_server: None,
) -> None:
    """The relay as a separate process, against the same Prefect server and database."""
    import os
    import subprocess
    import sys
    import time

    from prefect.settings import PREFECT_API_URL

    world.refer()
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": settings.database_url,
        "EARLYHELP_VAR_DIR": str(settings.var_dir),
        "EARLYHELP_SMTP_HOST": "127.0.0.1",
        "EARLYHELP_SMTP_PORT": str(smtp.port),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "EARLYHELP_LOG_LEVEL": "DEBUG",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "earlyhelp"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The log is read as it is written: the batch's line comes after its deliveries, so stopping
    # the worker as soon as the e-mail arrives could cut the batch short (seen under load).
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stderr or []), daemon=True)
    reader.start()
    batch_line = re.compile(r"batch of \d+ in [\d.]+ s: claim")  # DEBUG: each batch, with timings
    try:
        deadline = time.monotonic() + 60
        while not (smtp.to("intake@provider.example") and any(batch_line.search(x) for x in list(lines))):
            assert worker.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the worker delivered nothing in 60 s:\n" + "".join(lines)
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        reader.join(timeout=10)
    assert len(smtp.to("intake@provider.example")) == 1
    assert "outbox relay stopped" in "".join(lines)


def test_planned_session_is_confirmed_to_the_family_in_its_time_zone(
    world: World, relay: Relay, runner: asyncio.Runner, sink: HttpSink
) -> None:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", who="coordinator")
    at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=7, minute=30, second=0, microsecond=0)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "need_determination", "scheduled_at": at.isoformat()},
        headers=world.h("coordinator"),
    )
    assert planned.status_code == 201, planned.text
    drain(runner, relay)
    confirmations = [t for t in sms_texts(sink) if "занятие назначено" in t]
    # 07:30 UTC is 10:30 in Moscow, the demo region's zone.
    assert confirmations == [confirmations[0]] and f"{at:%d.%m.%Y} 10:30" in confirmations[0]


def effect(world: World, case_id: int, template: str, who: str = "head") -> dict[str, Any]:
    return next(e for e in world.case(case_id, who)["effects"] if e["template"] == template)


def test_the_assigned_curator_is_told_at_the_e_mail_of_their_account(
    world: World, relay: Relay, runner: asyncio.Runner, smtp: SmtpServer
) -> None:
    """Staff had no e-mail (nothing set one): the curator assigned at acceptance was never told."""
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    drain(runner, relay)
    (told,) = smtp.to("curator@example.org")  # the test world's staff have e-mails, as the demo's
    assert str(told["Subject"]) == f"Вам назначен случай № {case_id}"
    assert effect(world, case_id, "case_assigned")["status"] == "done"


def test_an_effect_that_reaches_nobody_is_undelivered_with_the_reason_never_done(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner, smtp: SmtpServer
) -> None:
    """The curator effect of a curator without e-mail was marked done with no delivery at all."""
    with Session(engine) as session:
        session.execute(update(User).where(col(User.id) == world.user_ids["curator"]).values(email=None))
        session.commit()
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    drain(runner, relay)
    drain(runner, relay)  # not retried: it waits for a person
    assigned = effect(world, case_id, "case_assigned")
    assert assigned["status"] == "undelivered" and assigned["done_at"] is None
    assert "у куратора не указан e-mail" in assigned["last_error"]
    assert [(d["recipient"], d["status"], d["error"]) for d in assigned["deliveries"]] == [
        ("Петрова Анна Викторовна", "undeliverable", "у куратора не указан e-mail")
    ]
    assert smtp.to("curator@example.org") == []

    # Supervisors find it: the provider's head and the region's РРМЦ, nobody else.
    def undelivered(who: str) -> set[int]:
        response = world.client.get(f"{API}/cases", params={"undelivered": "true"}, headers=world.h(who))
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert case_id in undelivered("head") and case_id in undelivered("rrmc")
    assert undelivered("coordinator2") == set() and undelivered("b_rrmc") == set()
    other = world.refer()["case_id"]
    drain(runner, relay)
    assert other not in undelivered("head")


def test_an_organisation_without_e_mail_or_webhook_is_not_reached_and_it_shows(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner
) -> None:
    with Session(engine) as session:
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.provider_id)
            .values(email=None, webhook_url=None)
        )
        session.commit()
    case_id = world.refer()["case_id"]
    drain(runner, relay)
    new_referral = effect(world, case_id, "new_referral")
    assert new_referral["status"] == "undelivered"
    assert "у организации нет e-mail и webhook" in new_referral["last_error"]
    assert [d["status"] for d in new_referral["deliveries"]] == ["skipped"]


def test_a_curator_assigned_after_acceptance_is_told(
    world: World, relay: Relay, runner: asyncio.Runner, smtp: SmtpServer
) -> None:
    case_id = world.refer()["case_id"]
    case = world.advance(case_id, "accept", who="coordinator")
    # No curator yet: no effect waits for one.
    assert not [e for e in case["effects"] if e["template"] == "case_assigned"]
    response = world.client.patch(
        f"{API}/cases/{case_id}",
        json={"version": case["version"], "curator_id": world.user_ids["curator"]},
        headers=world.h("coordinator"),
    )
    assert response.status_code == 200, response.text
    drain(runner, relay)
    (told,) = smtp.to("curator@example.org")
    assert str(told["Subject"]) == f"Вам назначен случай № {case_id}"


def test_a_family_that_came_on_its_own_gets_no_feedback_effect_written_for_nobody(
    world: World, engine: Engine
) -> None:
    """Feedback of a case without a referring organisation was written, and went nowhere."""
    referral = world.refer(who="coordinator", self_referral=True)
    world.advance(referral["case_id"], "accept", who="coordinator")
    with Session(engine) as session:
        kinds = set(session.exec(select(Outbox.kind).where(Outbox.case_id == referral["case_id"])))
    assert kinds == {"notify_organisation", "notify_family"}
