"""Fixtures: every database test runs on a SQLite file and, when EARLYHELP_TEST_POSTGRES_URL is
set, on PostgreSQL too. Migrations run once per backend per session; each test then gets a clean
database (a copy of the migrated SQLite file, or truncated PostgreSQL tables)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlmodel import SQLModel

from api.main import create_app
from core import cache
from core.config import Settings
from core.db import make_engine
from core.migrate import upgrade
from tests.servers import HttpSink, SmtpServer
from tests.standards_override import NO_QUIET_HOURS, region_standard
from tests.world import World, build_world

POSTGRES_URL = os.environ.get("EARLYHELP_TEST_POSTGRES_URL")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(name, url of a migrated database)."""
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("sqlite") / "template.db"
        upgrade(f"sqlite:///{template}")
        yield "sqlite", str(template)
        return
    if not POSTGRES_URL:
        pytest.skip("EARLYHELP_TEST_POSTGRES_URL is not set: PostgreSQL runs are skipped (.ci/run sets it)")
    url = _worker_database(POSTGRES_URL)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    yield "postgres", url


def _worker_database(url: str) -> str:
    """Under pytest-xdist (`make test` runs two workers) each worker gets a database of its own,
    "<the given database>_<worker id>", made afresh; .ci/run drops them with the given one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    given = make_url(url)
    name = f"{given.database}_{worker}"
    admin = create_engine(given.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module (Debian's; Playwright never downloads one). Not per session:
    Playwright's sync API keeps an event loop running in the main thread while it is open, and the
    relay tests that run flows with asyncio after it (test_effects' runner) would find it there."""
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (make test installs it as root: apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server for the whole run (each start costs 15-20 s on a busy machine); it
    changes Prefect's settings in this process only, so subprocesses start their own unless told."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def engine(backend: tuple[str, str], tmp_path: Path) -> Iterator[Engine]:
    name, source = backend
    # A fresh database reuses the ids of the last: lists kept per process by region id go with it.
    cache.forget_all()
    if name == "sqlite":
        path = tmp_path / "earlyhelp.db"
        shutil.copyfile(source, path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = make_engine(source)
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as conn:
            # The audit log refuses TRUNCATE (an append-only trigger); replica mode fires no
            # ordinary trigger, for this transaction only (a superuser's setting).
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        var_dir=tmp_path,
        secret_key="test-secret-key-of-sufficient-length-for-hs256",
        relay_in_serve=False,
        freeze_gc_on_start=False,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(engine: Engine, client: TestClient) -> World:
    return build_world(engine, client)


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port, in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


# --- the relay's outside world: a real SMTP server and an HTTP sink (SMS gateway, webhooks) ---------


@pytest.fixture(scope="module")
def runner(prefect_server: None) -> Iterator[asyncio.Runner]:
    """One event loop per module for the relay's async flows."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[HttpSink]:
    server = HttpSink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def no_night(app: FastAPI, tmp_path: Path) -> Iterator[None]:
    """The demo region without quiet hours (after the app: create_app points the standards at
    settings.standards_dir)."""
    with region_standard(tmp_path, NO_QUIET_HOURS):
        yield
