"""The effect flows: notify_family, notify_organisation, feedback_to_referrer.

Each flow run takes a batch of outbox rows (many effects per run: a flow run costs ~0.1-0.2 s here,
a task a few ms; DESIGN §7) and delivers each row in one task. A delivery is recorded before the
task returns; a row already sent for an (outbox id, channel, address) is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from jinja2 import Environment, StrictUndefined, Template, TemplateError
from prefect import flow, task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import TagsContext
from sqlalchemy import Engine
from sqlmodel import Session, select

from core.config import Settings
from flows.channels import (
    Attachment,
    ChannelError,
    ChannelNotConfigured,
    Outgoing,
    send_email,
    send_sms,
    send_webhook,
)
from flows.documents import feedback_pdf
from flows.targets import Resolved, Target, resolve, webhook_body
from models.cases import Case
from models.common import today_in, utcnow
from models.outbox import Delivery, DeliveryStatus, EffectKind, Outbox
from standards import load_standard
from statemachines.effects import enqueue

FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.skipped)


class Outcome(StrEnum):
    done = "done"  # every recipient reached or recorded as unreachable
    retry = "retry"  # a channel failed: the relay tries again later
    failed = "failed"  # cannot succeed by retrying (a broken template): shown, not retried
    later = "later"  # not now (the family's night): the row's available_at was moved, no attempt spent


@dataclass
class Runtime:
    engine: Engine
    settings: Settings
    _clients: dict[int, httpx.AsyncClient]

    @property
    def http(self) -> httpx.AsyncClient:
        """One HTTP client per event loop: a client's connections belong to the loop that made them."""
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = httpx.AsyncClient(timeout=self.settings.channel_timeout_seconds)
        return self._clients[loop]


_runtime: Runtime | None = None


def configure(engine: Engine, settings: Settings) -> None:
    """Give the flows their database and channels (the relay calls this once per process)."""
    global _runtime
    _runtime = Runtime(engine, settings, {})


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("flows.delivery.configure() was not called")
    return _runtime


_jinja = Environment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=2048)
def _compiled(source: str) -> Template:
    return _jinja.from_string(source)


class BrokenTemplate(Exception):
    pass


def render(resolved: Resolved, template: str, part: str) -> str | None:
    messages = getattr(load_standard(resolved.region_code).messages, resolved.audience)
    definition = messages.get(template)
    if definition is None:
        raise BrokenTemplate(f"нет шаблона {resolved.audience}.{template}")
    source = getattr(definition, part)
    if source is None:
        return None
    try:
        return (
            " ".join(_compiled(source).render(resolved.context).split())
            if part == "sms"
            else (_compiled(source).render(resolved.context).strip())
        )
    except TemplateError as error:
        raise BrokenTemplate(f"шаблон {resolved.audience}.{template}.{part}: {error}") from error


def _existing(session: Session, outbox_id: int, target: Target) -> Delivery | None:
    return session.exec(
        select(Delivery).where(
            Delivery.outbox_id == outbox_id,
            Delivery.channel == target.channel,
            Delivery.address == target.address,
        )
    ).first()


def _record(
    engine: Engine,
    row: Outbox,
    target: Target,
    status: DeliveryStatus,
    *,
    subject: str | None = None,
    text: str | None = None,
    error: str | None = None,
) -> None:
    """Upsert the delivery and commit at once: a sent message is on record before anything else."""
    with Session(engine) as session:
        delivery = _existing(session, row.id or 0, target) or Delivery(
            outbox_id=row.id or 0,
            case_id=row.case_id,
            recipient=target.recipient[:300],
            channel=target.channel,
            address=target.address[:500],
            template=row.template,
            status=status,
        )
        delivery.status = status
        delivery.attempts += 1 if status in (DeliveryStatus.sent, DeliveryStatus.failed) else 0
        delivery.subject, delivery.text = subject or delivery.subject, text or delivery.text
        delivery.error = error[:2000] if error else None
        delivery.updated_at = utcnow()
        if status == DeliveryStatus.sent:
            delivery.sent_at = delivery.updated_at
        session.add(delivery)
        session.commit()


async def _send(
    rt: Runtime, row: Outbox, resolved: Resolved, target: Target
) -> tuple[str | None, str | None]:
    """Render and send one message; return (subject, text) as sent."""
    key = f"outbox-{row.id}-{target.channel}"
    if target.channel == "sms":
        text = render(resolved, row.template, "sms")
        if text is None:
            raise BrokenTemplate(f"у шаблона {row.template} нет текста SMS")
        await send_sms(rt.settings, rt.http, Outgoing("sms", target.address, key, text=text))
        return None, text
    if target.channel == "email":
        subject = render(resolved, row.template, "email_subject")
        text = render(resolved, row.template, "email_body")
        if subject is None or text is None:
            raise BrokenTemplate(f"у шаблона {row.template} нет письма")
        attachments = []
        if target.referral_id is not None:
            with Session(rt.engine) as session:
                today = today_in(resolved.timezone)
                pdf = feedback_pdf(session, target.referral_id, today)
            attachments.append(Attachment(f"obratnaya-svyaz-{target.referral_id}.pdf", pdf))
        await send_email(
            rt.settings,
            Outgoing("email", target.address, key, subject=subject, text=text, attachments=attachments),
        )
        return subject, text
    if target.channel == "webhook":
        with Session(rt.engine) as session:
            case = session.get(Case, row.case_id)
            assert case is not None
            body = webhook_body(row, resolved.context, case.state, utcnow())
        if target.referral_id is not None:
            body["referral_id"] = target.referral_id
        await send_webhook(
            rt.http, Outgoing("webhook", target.address, key, body=body, secret=target.webhook_secret)
        )
        return None, None
    raise BrokenTemplate(f"неизвестный канал {target.channel}")


def quiet_until(resolved: Resolved) -> datetime | None:
    """If it is night where the family lives, the end of the night (UTC); else None."""
    quiet = load_standard(resolved.region_code).quiet_hours
    zone = ZoneInfo(resolved.timezone)
    local = utcnow().astimezone(zone)
    if not quiet.contains(local.time()):
        return None
    morning = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if morning <= local:
        morning += timedelta(days=1)
    return morning.astimezone(UTC)


async def deliver_one(outbox_id: int, down: dict[str, int]) -> tuple[Outcome, str | None]:
    """Deliver one outbox row to every recipient it has. Raises ChannelError to be retried.

    `down` is shared by the flow run: once a channel fails, the other rows of the batch skip it
    at once instead of each waiting for it (they are retried by the relay, later).
    """
    rt = runtime()
    with Session(rt.engine) as session:
        row = session.get(Outbox, outbox_id)
        assert row is not None
        resolved = resolve(session, row, rt.settings)
        if resolved.audience == "family" and (morning := quiet_until(resolved)) is not None:
            row.available_at = morning
            session.add(row)
            session.commit()
            return Outcome.later, "ночь в регионе семьи: сообщение отложено до утра"
        pending = [
            t
            for t in resolved.targets
            if (d := _existing(session, outbox_id, t)) is None or d.status not in FINAL
        ]
    deferred = False
    unreachable = [t for t in pending if t.unreachable]
    for target in pending:
        if target.blocked:
            status = DeliveryStatus.undeliverable if target.unreachable else DeliveryStatus.skipped
            _record(rt.engine, row, target, status, error=target.blocked)
            continue
        tripped = down.get(target.channel)
        if tripped is not None and tripped != outbox_id:
            deferred = True
            continue
        try:
            subject, text = await _send(rt, row, resolved, target)
        except BrokenTemplate as error:
            _record(rt.engine, row, target, DeliveryStatus.failed, error=str(error))
            return Outcome.failed, str(error)
        except ChannelNotConfigured as error:
            _record(rt.engine, row, target, DeliveryStatus.skipped, error=str(error))
            continue
        except ChannelError as error:
            down[target.channel] = outbox_id
            _record(rt.engine, row, target, DeliveryStatus.failed, error=str(error))
            raise
        down.pop(target.channel, None)
        _record(rt.engine, row, target, DeliveryStatus.sent, subject=subject, text=text)
    if unreachable:
        _tell_curator(rt.engine, row, unreachable)
    if deferred:
        return Outcome.retry, "канал недоступен, доставка отложена"
    return Outcome.done, None


def _tell_curator(engine: Engine, row: Outbox, targets: list[Target]) -> None:
    reason = "; ".join(f"{t.recipient}: {t.blocked}" for t in targets)
    with Session(engine) as session:
        already = session.exec(
            select(Outbox.id)
            .where(Outbox.case_id == row.case_id, Outbox.template == "family_unreachable")
            .where(Outbox.context["source_outbox_id"].as_integer() == row.id)  # type: ignore[index]
        ).first()
        if already is None:
            enqueue(
                session,
                "family_unreachable",
                case_id=row.case_id,
                context={"reason": reason, "source_outbox_id": row.id},
            )
            session.commit()


Results = dict[int, tuple[Outcome, str | None]]
# Rows per task run. A task run costs the Prefect server ~30 ms of CPU (bench/RESULTS.md), so one
# per row would cap delivery near 30 rows/s; the rows of a chunk go out concurrently.
CHUNK = 25


@task(
    name="deliver_effects",
    task_run_name="outbox {outbox_ids[0]}…",
    retries=2,
    retry_delay_seconds=[0.5, 2.0],
    persist_result=False,
    cache_policy=NO_CACHE,
)
async def deliver_effects(outbox_ids: list[int], down: dict[str, int], results: Results) -> None:
    """Deliver a chunk of outbox rows; raise if a channel failed, so that Prefect retries the task.

    A retry runs only the rows not yet settled (and a row's sent deliveries are never sent again),
    so `results` always holds each row's latest outcome, also when the retries are spent.
    """
    pending = [i for i in outbox_ids if results.get(i, (Outcome.retry, None))[0] == Outcome.retry]
    outcomes = await asyncio.gather(*(deliver_one(i, down) for i in pending), return_exceptions=True)
    failure: BaseException | None = None
    for outbox_id, outcome in zip(pending, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            results[outbox_id] = (Outcome.retry, f"{type(outcome).__name__}: {outcome}")
            failure = outcome
        else:
            results[outbox_id] = outcome
    if failure is not None:
        raise failure


async def _deliver_all(outbox_ids: list[int]) -> Results:
    delays = runtime().settings.delivery_retry_delays
    deliver = deliver_effects.with_options(retries=len(delays), retry_delay_seconds=delays or 0)
    down: dict[str, int] = {}
    results: Results = {}
    # The flow run carries the cases' tags; its task runs must not inherit them: Prefect takes a
    # tag-concurrency slot per tag for every tagged task run, an API call each.
    with TagsContext(current_tags=set()):
        for start in range(0, len(outbox_ids), CHUNK):
            with contextlib.suppress(Exception):  # retries spent: `results` says what is left
                await deliver(outbox_ids[start : start + CHUNK], down, results)
    return results


@flow(name="notify_family", persist_result=False, log_prints=False)
async def notify_family(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


@flow(name="notify_organisation", persist_result=False, log_prints=False)
async def notify_organisation(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


@flow(name="feedback_to_referrer", persist_result=False, log_prints=False)
async def feedback_to_referrer(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


FLOWS: dict[EffectKind, Any] = {
    EffectKind.notify_family: notify_family,
    EffectKind.notify_organisation: notify_organisation,
    EffectKind.feedback_to_referrer: feedback_to_referrer,
}
