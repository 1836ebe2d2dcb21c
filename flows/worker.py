"""Running the relay: in a thread beside the API (embedded mode) or as `earlyhelp worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from sqlalchemy import Engine

from core.config import Settings
from flows.relay import Relay

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


def run_worker(engine: Engine, settings: Settings) -> None:
    """`earlyhelp worker`: the relay in the foreground until interrupted."""
    stop = asyncio.Event()

    async def main() -> None:
        await Relay(engine, settings).run_forever(stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
