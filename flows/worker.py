"""`earlyhelp worker`: the background work — the outbox relay and the sweeps — in one process,
on its own or as the child `earlyhelp serve` starts in embedded mode (api/embedded.py)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from core.config import Settings
from flows.relay import Relay
from flows.sweeps import sweep_deadlines, sweep_reminders
from models.common import utcnow

log = logging.getLogger("earlyhelp.worker")


def start_sweeps(engine: Engine, settings: Settings) -> BackgroundScheduler:
    """APScheduler (3.x, in memory: each process schedules its own; the sweeps' claims make every
    action happen once however many processes sweep). The first run is now, so a process that
    was down catches up at start."""
    scheduler = BackgroundScheduler(timezone="UTC")
    for job, name in ((sweep_deadlines, "deadlines"), (sweep_reminders, "reminders")):
        scheduler.add_job(
            job,
            "interval",
            args=[engine],
            seconds=settings.sweep_interval_seconds,
            id=name,
            next_run_time=utcnow(),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
    # The yearly report (flows/reports.py): its schedule, and the job that runs queued reports —
    # several seconds each, so in a thread of their own, not in the relay's event loop.
    from flows.reports import POLL_SECONDS, run_queued
    from flows.sweeps import SHORT_LINKS_EVERY_SECONDS, sweep_reports, sweep_short_links

    report_jobs: list[tuple[Callable[..., object], str, int]] = [
        (sweep_reports, "report_schedule", settings.sweep_interval_seconds),
        (run_queued, "reports", POLL_SECONDS),
        # Hourly: the family short links long expired (flows/sweeps.py).
        (sweep_short_links, "short_links", SHORT_LINKS_EVERY_SECONDS),
    ]
    for report_job, name, seconds in report_jobs:
        scheduler.add_job(
            report_job,
            "interval",
            args=[engine],
            seconds=seconds,
            id=name,
            next_run_time=utcnow(),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
    scheduler.start()
    return scheduler


def run_worker(engine: Engine, settings: Settings, *, parent_pid: int | None = None) -> None:
    """`earlyhelp worker`: sweeps and the relay in the foreground until SIGTERM or Ctrl-C; the
    batch in hand is finished first. With `parent_pid` (embedded mode's child) it also stops
    when that process is no longer its parent (it died without stopping its child)."""
    # Prefect's logging config (applied on import) shows WARNING and up; the operator also wants
    # to see the worker start, stop and what its sweeps did.
    logging.getLogger("earlyhelp").setLevel(settings.log_level)
    # The imports leave ~250 000 objects that every full collection scans again: a 0.1-s pause of
    # the event loop every few seconds under load. Frozen (before any thread starts), a full
    # collection takes ~0.02 s.
    gc.collect()
    gc.freeze()
    scheduler = start_sweeps(engine, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        async def orphaned() -> None:
            while not stop.is_set():
                if os.getppid() != parent_pid:
                    log.warning("процесс, запустивший worker, завершился: останавливаюсь")
                    stop.set()
                await asyncio.sleep(1.0)

        watch = asyncio.create_task(orphaned()) if parent_pid is not None else None
        await Relay(engine, settings).run_forever(stop)
        if watch is not None:
            watch.cancel()

    try:
        asyncio.run(main())
    finally:
        scheduler.shutdown(wait=False)
