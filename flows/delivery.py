"""The effect flows: notify_family, notify_organisation, feedback_to_referrer.

Each flow run takes a batch of outbox rows of its kind (many effects per run: a flow run costs
~0.1-0.2 s here; DESIGN §7) and delivers them in chunks, one task run per chunk, the rows of a chunk
side by side. Each delivery is recorded (and committed) as soon as it is sent; a row already sent for
an (outbox id, channel, address) is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import weakref
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from jinja2 import Environment, StrictUndefined, Template, TemplateError
from prefect import flow, task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import TagsContext
from sqlalchemy import Engine, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from core.config import Settings
from core.db import reads_engine
from flows.channels import (
    Attachment,
    ChannelError,
    ChannelNotConfigured,
    Outgoing,
    SmtpPool,
    not_configured,
    send_email,
    send_sms,
    send_webhook,
)
from flows.documents import render_feedback
from flows.targets import Resolved, Target, resolve_many, webhook_body
from models.common import utcnow
from models.outbox import Delivery, DeliveryStatus, EffectKind, Outbox
from standards import current_directory, load_standard
from statemachines.effects import enqueue

FINAL = (DeliveryStatus.sent, DeliveryStatus.undeliverable, DeliveryStatus.skipped)


class Outcome(StrEnum):
    done = "done"  # at least one recipient reached; any other recorded as unreachable or skipped
    undelivered = "undelivered"  # nobody reached: every recipient unreachable or skipped (reasons given)
    retry = "retry"  # a channel failed: the relay tries again later
    failed = "failed"  # cannot succeed by retrying (a broken template): shown, not retried
    later = "later"  # not now (the family's night): the row's available_at was moved, no attempt spent


Result = tuple[Outcome, str | None]


@dataclass
class _LoopChannels:
    http: httpx.AsyncClient
    smtp: SmtpPool


@dataclass
class Runtime:
    engine: Engine
    settings: Settings
    reads: Engine  # for what only reads: on SQLite, without the write lock (core.db.reads_engine)
    # Connections belong to the event loop that opened them: one set per loop, dropped with it.
    _per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopChannels] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    _documents: ProcessPoolExecutor | None = None
    _ahead: dict[int, asyncio.Future[bytes]] = field(default_factory=dict)  # by referral

    def _channels(self) -> _LoopChannels:
        loop = asyncio.get_running_loop()
        if loop not in self._per_loop:
            self._per_loop[loop] = _LoopChannels(
                httpx.AsyncClient(timeout=self.settings.channel_timeout_seconds), SmtpPool(self.settings)
            )
        return self._per_loop[loop]

    @property
    def http(self) -> httpx.AsyncClient:
        return self._channels().http

    @property
    def smtp(self) -> SmtpPool:
        return self._channels().smtp

    def _render(self, referral_id: int) -> asyncio.Future[bytes]:
        url = self.engine.url.render_as_string(hide_password=False)
        call = partial(render_feedback, url, str(current_directory()), referral_id)
        for _ in range(2):
            if self._documents is None:
                # spawn, not fork: this process runs threads (Prefect's, the sweeps').
                self._documents = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            try:
                return asyncio.get_running_loop().run_in_executor(self._documents, call)
            except BrokenProcessPool:  # the renderer died since the last document: a new one
                self._documents = None
        raise ChannelError("не удалось запустить процесс формирования PDF")

    def render_ahead(self, referral_ids: Iterable[int]) -> None:
        """Start rendering these feedback PDFs now: the relay asks for a batch's documents when it
        claims it, so they are ready by the time their e-mails go out."""
        for referral_id in referral_ids:
            if referral_id not in self._ahead:
                try:
                    self._ahead[referral_id] = self._render(referral_id)
                except ChannelError:  # only a head start: the e-mail's own attempt reports it
                    return

    def forget_ahead(self) -> None:
        """Drop the documents rendered ahead and not used (their rows were settled otherwise)."""
        for future in self._ahead.values():
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: a failure here is reported by the row's own attempt
            future.cancel()
        self._ahead.clear()

    async def feedback_pdf(self, referral_id: int) -> bytes:
        """The feedback PDF as it stands (flows.documents.render_feedback), from another process."""
        future = self._ahead.pop(referral_id, None) or self._render(referral_id)
        try:
            return await future
        except BrokenProcessPool as error:  # the renderer died: a new one next time, this row later
            self._documents = None
            self.forget_ahead()
            raise ChannelError(f"процесс формирования PDF завершился: {error}") from error

    def shutdown(self) -> None:
        self._ahead.clear()
        if self._documents is not None:
            self._documents.shutdown(wait=False, cancel_futures=True)
            self._documents = None

    async def close(self) -> None:
        """Close the current loop's connections (the relay calls this when it stops)."""
        channels = self._per_loop.pop(asyncio.get_running_loop(), None)
        if channels is not None:
            await channels.http.aclose()
            await channels.smtp.close()


_runtime: Runtime | None = None


def configure(engine: Engine, settings: Settings) -> None:
    """Give the flows their database and channels (the relay calls this once per process)."""
    global _runtime
    if _runtime is not None:
        _runtime.shutdown()
    _runtime = Runtime(engine, settings, reads_engine(engine))


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
    now = utcnow()
    table = Delivery.__table__  # type: ignore[attr-defined]
    insert = sqlite_insert if engine.dialect.name == "sqlite" else postgresql_insert
    statement = insert(table).values(
        outbox_id=row.id,
        case_id=row.case_id,
        recipient=target.recipient[:300],
        channel=target.channel,
        address=target.address[:500],
        template=row.template,
        subject=subject,
        text=text,
        status=status,
        attempts=1 if status in (DeliveryStatus.sent, DeliveryStatus.failed) else 0,
        error=error[:2000] if error else None,
        created_at=now,
        updated_at=now,
        sent_at=now if status == DeliveryStatus.sent else None,
    )
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["outbox_id", "channel", "address"],
        set_={
            "status": new.status,
            "attempts": table.c.attempts + new.attempts,
            "subject": func.coalesce(new.subject, table.c.subject),
            "text": func.coalesce(new.text, table.c.text),
            "error": new.error,
            "updated_at": new.updated_at,
            "sent_at": func.coalesce(new.sent_at, table.c.sent_at),
        },
    )
    with engine.begin() as connection:
        connection.execute(statement)


async def _send(
    rt: Runtime, row: Outbox, resolved: Resolved, target: Target
) -> tuple[str | None, str | None]:
    """Render and send one message; return (subject, text) as sent."""
    key = f"outbox-{row.id}-{target.channel}"
    if target.channel == "sms":
        text = render(resolved, row.template, "sms")
        if text is None:
            raise BrokenTemplate(f"у шаблона {row.template} нет текста SMS")
        if reason := not_configured(rt.settings, "sms"):
            raise ChannelNotConfigured(reason, text=text)
        await send_sms(rt.settings, rt.http, Outgoing("sms", target.address, key, text=text))
        return None, text
    if target.channel == "email":
        subject = render(resolved, row.template, "email_subject")
        text = render(resolved, row.template, "email_body")
        if subject is None or text is None:
            raise BrokenTemplate(f"у шаблона {row.template} нет письма")
        if reason := not_configured(rt.settings, "email"):
            # Before the attachment: a trial installation keeps the letter without making its PDF.
            raise ChannelNotConfigured(reason, subject=subject, text=text)
        attachments = []
        if target.referral_id is not None:
            pdf = await rt.feedback_pdf(target.referral_id)
            attachments.append(Attachment(f"obratnaya-svyaz-{target.referral_id}.pdf", pdf))
        await send_email(
            rt.settings,
            rt.smtp,
            Outgoing("email", target.address, key, subject=subject, text=text, attachments=attachments),
        )
        return subject, text
    if target.channel == "webhook":
        body = webhook_body(row, resolved.context, resolved.state, utcnow())
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


async def deliver_chunk(outbox_ids: list[int], down: dict[str, int]) -> list[Result | BaseException]:
    """Deliver a chunk of outbox rows, side by side; each row's outcome, or the error to retry it.

    The chunk's recipients are resolved together, in a few queries. `down` is shared by the flow
    run: once a channel fails, the other rows skip it at once instead of each waiting for it
    (they are retried by the relay, later).
    """
    rt = runtime()
    with Session(rt.reads, expire_on_commit=False) as session:
        rows = {
            row.id or 0: row for row in session.exec(select(Outbox).where(col(Outbox.id).in_(outbox_ids)))
        }
        resolved = resolve_many(session, list(rows.values()), rt.settings, links=rt.engine)
        # What earlier attempts settled, with the result: (status, why not sent).
        settled: dict[tuple[int, str, str], tuple[DeliveryStatus, str | None]] = {
            (outbox_id, channel, address): (DeliveryStatus(status), error)
            for outbox_id, channel, address, status, error in session.execute(
                sa_select(
                    col(Delivery.outbox_id),
                    col(Delivery.channel),
                    col(Delivery.address),
                    col(Delivery.status),
                    col(Delivery.error),
                ).where(col(Delivery.outbox_id).in_(outbox_ids), col(Delivery.status).in_(FINAL))
            ).all()
        }
    night: dict[int, Result] = {}
    mornings: dict[int, datetime] = {}
    for outbox_id in rows:
        target = resolved[outbox_id]
        if target.audience == "family" and (morning := quiet_until(target)) is not None:
            mornings[outbox_id] = morning
            night[outbox_id] = (Outcome.later, "ночь в регионе семьи: сообщение отложено до утра")
    if mornings:
        with rt.engine.begin() as connection:
            for outbox_id, morning in mornings.items():
                connection.execute(
                    update(Outbox).where(col(Outbox.id) == outbox_id).values(available_at=morning)
                )

    async def one(outbox_id: int) -> Result:
        if outbox_id in night:
            return night[outbox_id]
        row, target = rows[outbox_id], resolved[outbox_id]
        targets = target.targets or [NOBODY]
        pending = [t for t in targets if (outbox_id, t.channel, t.address) not in settled]
        earlier = [
            (t, *result) for t in targets if (result := settled.get((outbox_id, t.channel, t.address)))
        ]
        return await _deliver_row(rt, row, target, pending, down, earlier)

    return await asyncio.gather(*(one(i) for i in outbox_ids), return_exceptions=True)


# An effect that resolves to no recipient at all is recorded against this one, never dropped.
NOBODY = Target("получатель не определён", "none", "-", blocked="некому доставить: получатель не определён")


async def _deliver_row(
    rt: Runtime,
    row: Outbox,
    resolved: Resolved,
    pending: list[Target],
    down: dict[str, int],
    earlier: list[tuple[Target, DeliveryStatus, str | None]] | None = None,
) -> Result:
    """Deliver one outbox row to every recipient not yet reached. Raises ChannelError to be retried.

    A row that reaches nobody (every recipient unreachable or skipped, or none named) is
    `undelivered` with the reasons, never `done` — unless nobody was to be reached because the family
    chose so (consent to messages withdrawn, "no messages"): that is recorded and settles the row.
    """
    outbox_id = row.id or 0
    deferred = False
    unreachable = [t for t in pending if t.unreachable]
    # Earlier attempts of this row count: a recipient reached then was reached.
    reached = any(status == DeliveryStatus.sent for _, status, _ in earlier or [])
    missed = [f"{t.recipient}: {why}" for t, status, why in earlier or [] if status != DeliveryStatus.sent]
    chose_none = False
    for target in pending:
        if target.blocked:
            undeliverable = target.unreachable or target.no_address
            status = DeliveryStatus.undeliverable if undeliverable else DeliveryStatus.skipped
            _record(rt.engine, row, target, status, error=target.blocked)
            if target.by_choice:
                chose_none = True
            else:
                missed.append(f"{target.recipient}: {target.blocked}")
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
            # Nothing sent; what would have been sent is kept (a trial installation shows it).
            _record(
                rt.engine,
                row,
                target,
                DeliveryStatus.skipped,
                subject=error.subject,
                text=error.text,
                error=str(error),
            )
            missed.append(f"{target.recipient}: {error}")
            continue
        except ChannelError as error:
            down[target.channel] = outbox_id
            _record(rt.engine, row, target, DeliveryStatus.failed, error=str(error))
            raise
        down.pop(target.channel, None)
        _record(rt.engine, row, target, DeliveryStatus.sent, subject=subject, text=text)
        reached = True
    if unreachable:
        _tell_curator(rt.engine, row, unreachable)
    if deferred:
        return Outcome.retry, "канал недоступен, доставка отложена"
    if not reached and (missed or not chose_none):
        return Outcome.undelivered, "Не доставлено никому: " + "; ".join(dict.fromkeys(missed))
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


Results = dict[int, Result]
# Rows per task run. A task run costs the Prefect server ~30 ms of CPU (bench/RESULTS.md), so one
# per row would cap delivery near 30 rows/s; the rows of a chunk go out concurrently.
CHUNK = 100


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
    outcomes = await deliver_chunk(pending, down)
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


# Nothing is persisted, but a flow without a result storage of its own makes each run ask the
# server for its default storage: a blocking call in the event loop, twice per run.
FLOW_OPTIONS: dict[str, Any] = {
    "persist_result": False,
    "log_prints": False,
    "result_storage": Path(os.environ["PREFECT_HOME"]) / "results",
}


@flow(name="notify_family", **FLOW_OPTIONS)
async def notify_family(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


@flow(name="notify_organisation", **FLOW_OPTIONS)
async def notify_organisation(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


@flow(name="feedback_to_referrer", **FLOW_OPTIONS)
async def feedback_to_referrer(outbox_ids: list[int]) -> Results:
    return await _deliver_all(outbox_ids)


FLOWS: dict[EffectKind, Any] = {
    EffectKind.notify_family: notify_family,
    EffectKind.notify_organisation: notify_organisation,
    EffectKind.feedback_to_referrer: feedback_to_referrer,
}
