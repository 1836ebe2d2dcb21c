"""The relay sends a family's reminder with its short link (flows/delivery.py makes it before
sending). The relay runs in a thread of its own: the session's Playwright (the browser tests) leaves
an event loop running in the main thread, where no other loop may run."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from flows.relay import Relay
from models.outbox import EffectKind, Outbox
from tests.servers import HttpSink
from tests.test_effects import _no_night, relay, settings  # noqa: F401  (no night: quiet hours would hold the SMS)
from tests.test_journey import to_ipr_implementation
from tests.test_reminders import plan
from tests.test_short_links import CODE, TWO_UCS2_SEGMENTS
from tests.world import World


def drain_in_a_thread(relay: Relay) -> None:  # noqa: F811
    async def rounds() -> None:
        for _ in range(10):
            if await relay.run_once() == 0:
                return

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, rounds()).result(timeout=120)


def test_the_relay_sends_the_reminder_with_its_short_link(
    world: World,
    engine: Engine,
    prefect_server: None,
    relay: Relay,  # noqa: F811
    sink: HttpSink,
) -> None:
    case_id = to_ipr_implementation(world)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    planned = plan(world, case_id, at)
    with Session(engine) as session:
        session.add(
            Outbox(
                kind=EffectKind.notify_family,
                case_id=case_id,
                template="session_reminder",
                context={"session_id": planned["id"], "hours_before": 24},
            )
        )
        session.commit()
    drain_in_a_thread(relay)
    (text,) = [r.json["text"] for r in sink.received("/sms") if "Ответьте" in r.json["text"]]
    assert len(text) <= TWO_UCS2_SEGMENTS and CODE.search(text)
    assert world.client.get("/f/" + text.rsplit("/f/", 1)[1]).status_code == 200
