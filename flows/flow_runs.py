"""Creating the relay's flow runs without Prefect's 2-second stall.

Prefect's server on SQLite creates a flow run in a deferred transaction: it reads the flow's labels,
then inserts. If one of the server's own writers (the event persister, the task-run recorder) holds
SQLite's write lock at that moment, SQLite refuses the upgrade at once ("database is locked", no
busy wait) and the server answers 503. Nothing was written, so the request may simply be sent again;
Prefect's client does, but only after 2 s (2**attempt, not configurable), and a relay cycle waits
for it. Measured under load: one such refusal every few seconds, each a 2-s tail for every row of the
cycle (bench/RESULTS.md). The relay therefore creates its flow runs itself, through a client whose
transport re-sends a 503 after a few tens of milliseconds; the flow then runs on the created flow run
(prefect.flow_engine.run_flow_async, as Prefect's own runners do). A 503 that outlasts the quick
retries goes to Prefect's client, which backs off as usual.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import certifi
import httpx
from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow_async
from prefect.settings import (
    PREFECT_API_ENABLE_HTTP2,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
)
from prefect.states import Pending

log = logging.getLogger("earlyhelp.relay")

# Seconds to wait before each re-send of a 503; about 1.6 s in all, then Prefect's own back-off.
QUICK_RETRY_DELAYS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)


class QuickRetry(httpx.AsyncHTTPTransport):
    """An HTTP transport that re-sends a request answered 503 after a short pause, a few times.

    For Prefect's API only: its server answers 503 exactly when the request's transaction was
    rolled back (prefect.server.api.server.is_client_retryable_exception), so sending it again is
    what Prefect's client would do anyway, later."""

    def __init__(self, delays: Iterable[float] = QUICK_RETRY_DELAYS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delays = tuple(delays)
        self.retried = 0  # re-sends so far, for the logs and the tests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for delay in self.delays:
            response = await super().handle_async_request(request)
            if response.status_code != 503:
                return response
            await response.aread()  # read to the end: the connection goes back to the pool
            await response.aclose()
            self.retried += 1
            log.debug("Prefect: 503 to %s %s; again in %.2f s", request.method, request.url.path, delay)
            await asyncio.sleep(delay)
        return await super().handle_async_request(request)


def _transport() -> QuickRetry:
    """QuickRetry set up as Prefect's client sets up its own transport (which a transport passed in
    replaces): TLS per PREFECT_API_TLS_INSECURE_SKIP_VERIFY / PREFECT_API_SSL_CERT_FILE, HTTP/2 per
    PREFECT_API_ENABLE_HTTP2, its connection limits, 3 connection retries."""
    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        verify = ssl.create_default_context()
        verify.check_hostname = False
        verify.verify_mode = ssl.CERT_NONE
    else:
        verify = ssl.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    return QuickRetry(
        verify=verify,
        http2=bool(PREFECT_API_ENABLE_HTTP2.value()),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=25),
        retries=3,
    )


@asynccontextmanager
async def flow_run_client(api_url: str | None = None) -> AsyncIterator[PrefectClient]:
    """A Prefect client for creating flow runs, with the quick-retry transport; open for a relay's
    life. `api_url` (tests only) overrides PREFECT_API_URL."""
    settings: dict[str, Any] = {"transport": _transport()}
    if api_url:
        settings["base_url"] = api_url
    async with get_client(httpx_settings=settings) as client:
        yield client


async def run_flow(
    client: PrefectClient, flow: Flow[..., Any], parameters: dict[str, Any], *, name: str, tags: list[str]
) -> Any:
    """Create a flow run of `flow` (named and tagged) through `client`, run it here, return its result."""
    flow_run: FlowRun = await client.create_flow_run(
        flow, name=name, parameters=flow.serialize_parameters(parameters), tags=tags, state=Pending()
    )
    return await run_flow_async(flow, flow_run=flow_run, parameters=parameters)
