"""The outbox relay: claims due outbox rows and runs the effect flows on them.

Claims are safe with any number of relays: PostgreSQL skips rows another relay has locked
(FOR UPDATE SKIP LOCKED); on SQLite the clause is dropped, but every transaction already holds the
write lock (BEGIN IMMEDIATE), so claims are serialised. A claim is a lease: rows of a relay that
died become due again when the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from datetime import timedelta

from prefect.client.orchestration import PrefectClient
from prefect.context import AsyncClientContext, SyncClientContext
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from core.config import Settings
from flows import delivery
from flows.delivery import FLOWS, Outcome
from flows.flow_runs import flow_run_client, run_flow
from flows.targets import feedback_documents
from models.common import utcnow
from models.outbox import EffectKind, Outbox, OutboxStatus

log = logging.getLogger("earlyhelp.relay")


class Relay:
    def __init__(self, engine: Engine, settings: Settings, name: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._flow_runs: PrefectClient | None = None  # creates the flow runs (flows.flow_runs)
        delivery.configure(engine, settings)

    def claim(self, limit: int | None = None) -> list[Outbox]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            rows = list(
                session.exec(
                    select(Outbox)
                    .where(
                        Outbox.status == OutboxStatus.pending,
                        col(Outbox.available_at) <= now,
                        or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) < now),
                    )
                    .order_by(col(Outbox.id))
                    .limit(limit or self.settings.relay_batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            if rows:
                session.execute(
                    update(Outbox)
                    .where(col(Outbox.id).in_([r.id for r in rows]))
                    .values(
                        lease_until=now + timedelta(seconds=self.settings.relay_lease_seconds),
                        claimed_by=self.name,
                    )
                )
            session.commit()
        return rows

    def finish(self, results: dict[int, tuple[Outcome, str | None]]) -> None:
        now = utcnow()
        with Session(self.engine) as session:
            rows = session.exec(
                select(Outbox).where(col(Outbox.id).in_(list(results)), Outbox.claimed_by == self.name)
            ).all()
            for row in rows:
                outcome, error = results[row.id or 0]
                row.lease_until = None
                row.last_error = error[:2000] if error else None
                if outcome == Outcome.later:  # the flow moved available_at itself
                    session.add(row)
                    continue
                row.attempts += 1
                if outcome == Outcome.done:
                    row.status, row.done_at = OutboxStatus.done, now
                elif outcome == Outcome.undelivered:  # reached nobody: shown, not retried, never done
                    row.status = OutboxStatus.undelivered
                elif outcome == Outcome.failed or row.attempts >= self.settings.relay_max_attempts:
                    row.status = OutboxStatus.failed
                else:
                    backoff = min(self.settings.relay_backoff_seconds * 2 ** (row.attempts - 1), 3600.0)
                    row.available_at = now + timedelta(seconds=backoff)
                session.add(row)
            session.commit()

    def release(self, rows: list[Outbox], reason: str) -> None:
        """Give claimed rows back, due again after the relay's back-off, without spending an
        attempt: their flow run could not run (Prefect's server unreachable, say), which says
        nothing about the deliveries. Rows already sent are not sent again (flows.delivery)."""
        again = utcnow() + timedelta(seconds=self.settings.relay_backoff_seconds)
        with Session(self.engine) as session:
            session.execute(
                update(Outbox)
                .where(
                    col(Outbox.id).in_([r.id for r in rows]),
                    col(Outbox.claimed_by) == self.name,
                    col(Outbox.status) == OutboxStatus.pending,
                )
                .values(lease_until=None, available_at=again, last_error=reason[:2000])
            )
            session.commit()

    async def run_once(self, flow_runs: PrefectClient | None = None) -> int:
        """One batch; `flow_runs` creates its flow runs (default: the relay's own client while
        run_forever runs, else one opened for this call)."""
        flow_runs = flow_runs or self._flow_runs
        if flow_runs is not None:
            return await self._run_once(flow_runs)
        async with flow_run_client() as own:
            return await self._run_once(own)

    async def _run_once(self, flow_runs: PrefectClient) -> int:
        """Claim one batch and deliver it: one flow run per kind, one after another. Flow runs side by
        side made Prefect's server on SQLite refuse writes ("database is locked": 503; see
        flows/flow_runs.py) many times more often, for a net loss (bench/RESULTS.md)."""
        started = time.perf_counter()
        rows = self.claim()
        if not rows:
            return 0
        timings = [f"claim {time.perf_counter() - started:.3f}"]
        by_kind: dict[EffectKind, list[Outbox]] = defaultdict(list)
        for row in rows:
            by_kind[EffectKind(row.kind)].append(row)
        runtime = delivery.runtime()
        # The feedback PDFs render in their own process while the other kinds go out; their
        # kind goes last (EffectKind's order).
        with Session(runtime.reads) as session:
            runtime.render_ahead(feedback_documents(session, rows))
        try:
            for kind in sorted(by_kind, key=list(EffectKind).index):
                began = time.perf_counter()
                try:
                    await self._run_kind(flow_runs, kind, by_kind[kind])
                except Exception as error:  # Prefect failed, not a delivery: the other kinds go on
                    reason = f"Prefect: flow run {kind} не выполнен: {type(error).__name__}: {error}"
                    log.warning(
                        "%s; its %d rows again in %.0f s",
                        reason,
                        len(by_kind[kind]),
                        self.settings.relay_backoff_seconds,
                    )
                    self.release(by_kind[kind], reason)
                timings.append(f"{kind} {len(by_kind[kind])} {time.perf_counter() - began:.3f}")
        finally:
            runtime.forget_ahead()
        log.debug("batch of %d in %.3f s: %s", len(rows), time.perf_counter() - started, ", ".join(timings))
        return len(rows)

    async def _run_kind(self, flow_runs: PrefectClient, kind: EffectKind, batch: list[Outbox]) -> None:
        case_ids = sorted({r.case_id for r in batch if r.case_id})
        shown = ", ".join(map(str, case_ids[:20])) + (" …" if len(case_ids) > 20 else "")
        # The flow run is tagged with every case it serves, to be found by case in Prefect.
        results = await run_flow(
            flow_runs,
            FLOWS[kind],
            {"outbox_ids": [r.id for r in batch]},
            name=f"{kind} · cases {shown}",
            tags=[f"case:{c}" for c in case_ids],
        )
        self.finish(results)

    async def run_forever(self, stop: asyncio.Event) -> None:
        # One Prefect client of each kind for the relay's life: otherwise every flow run opens
        # three (each loading the CA bundle, ~20 ms of CPU) and asks for a CSRF token again.
        with SyncClientContext.get_or_create():
            async with AsyncClientContext.get_or_create(), flow_run_client() as flow_runs:
                self._flow_runs = flow_runs
                try:
                    await self._run_forever(stop)
                finally:
                    self._flow_runs = None

    async def _run_forever(self, stop: asyncio.Event) -> None:
        log.info("outbox relay started (%s)", self.name)
        try:
            while not stop.is_set():
                try:
                    claimed = await self.run_once()
                except Exception:  # a database hiccup must not kill the relay
                    log.exception("relay batch failed")
                    claimed = 0
                if not claimed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.settings.relay_idle_seconds)
        finally:
            await delivery.runtime().close()
            delivery.runtime().shutdown()
            log.info("outbox relay stopped (%s)", self.name)
