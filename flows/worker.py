"""Running the background work — the outbox relay and the sweeps — in a thread beside the API
(embedded mode) or as `earlyhelp worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from core.config import Settings
from flows.relay import Relay
from flows.sweeps import sweep_deadlines, sweep_reminders
from models.common import utcnow

log = logging.getLogger("earlyhelp.worker")


class BackgroundRelay:
    """The relay on its own event loop in a daemon thread, so flows never run in a request."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.relay = Relay(engine, settings)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="earlyhelp-relay", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.relay.run_forever(self._stop))

    def start(self) -> None:
        self._thread.start()
        log.info("outbox relay started (%s)", self.relay.name)

    def stop(self, timeout: float = 30) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)


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
    scheduler.start()
    return scheduler


def run_worker(engine: Engine, settings: Settings) -> None:
    """`earlyhelp worker`: sweeps and the relay in the foreground until interrupted."""
    stop = asyncio.Event()
    scheduler = start_sweeps(engine, settings)

    async def main() -> None:
        await Relay(engine, settings).run_forever(stop)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    finally:
        scheduler.shutdown(wait=False)
