"""The transport that re-sends Prefect's 503 at once (flows.flow_runs), against a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from flows.flow_runs import QuickRetry
from tests.servers import HttpSink


@pytest.fixture(scope="module")
def server() -> Iterator[HttpSink]:
    sink = HttpSink()
    sink.start()
    yield sink
    sink.stop()


def post(transport: QuickRetry, url: str, body: dict[str, object]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(url, json=body)

    return asyncio.run(go())


def test_a_refused_request_is_sent_again_with_its_body_and_taken(server: HttpSink) -> None:
    server.busy["/api/flow_runs/"] = 2
    transport = QuickRetry(delays=(0.01, 0.01, 0.01))
    response = post(transport, server.url("/api/flow_runs/"), {"name": "notify_family · cases 7"})
    assert response.status_code == 200
    assert transport.retried == 2
    taken = server.received("/api/flow_runs/")
    assert [r.json for r in taken] == [{"name": "notify_family · cases 7"}]


def test_a_refusal_that_outlasts_the_quick_retries_reaches_the_caller(server: HttpSink) -> None:
    server.busy["/api/flows/"] = 10
    transport = QuickRetry(delays=(0.01, 0.01))
    response = post(transport, server.url("/api/flows/"), {"name": "notify_family"})
    assert response.status_code == 503  # Prefect's client then backs off by itself
    assert transport.retried == 2
    assert server.busy["/api/flows/"] == 7  # three attempts in all
    assert server.received("/api/flows/") == []


def test_other_answers_are_returned_as_they_are(server: HttpSink) -> None:
    server.modes["/api/broken/"] = "500"
    transport = QuickRetry(delays=(0.01,))
    assert post(transport, server.url("/api/broken/"), {}).status_code == 500
    assert transport.retried == 0
