"""Logs and transport (issue 9): no personal data in any log line of a journey through a real
`earlyhelp serve` (its worker and Prefect flows included), security headers on every answer, /docs
and /redoc from the app's own files, var/ and the SQLite file readable by their owner only."""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from api.main import create_app
from core.config import Settings
from core.db import make_engine
from core.logs import ScrubFilter, db_error_summary
from core.migrate import upgrade
from core.tokens import key_store, session_link_token
from models.children import Child, ChildIn
from models.organisations import Organisation
from models.outbox import Delivery
from tests.servers import HttpSink, free_port
from tests.standards_override import region_standard
from tests.test_journey import to_ipr_implementation
from tests.world import API, World, snils_for

EARLYHELP = str(Path(sys.executable).parent / "earlyhelp")
NO_QUIET_HOURS = "quiet_hours:\n  start: '00:00'\n  end: '00:00'\n"


# --- a real `earlyhelp serve` --------------------------------------------------------------------


@contextmanager
def earlyhelp_serve(settings: Settings, log: Path, **env: str) -> Iterator[str]:
    """`earlyhelp serve` on a free loopback port against the test's database; its stdout and
    stderr (and its worker's) go to `log`."""
    port = free_port()
    environment = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": settings.database_url,
        "EARLYHELP_VAR_DIR": str(settings.var_dir),
        "EARLYHELP_SECRET_KEY": settings.secret_key,
        "EARLYHELP_HOST": "127.0.0.1",
        "EARLYHELP_PORT": str(port),
        "EARLYHELP_RELAY_IN_SERVE": "false",
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [EARLYHELP, "serve"], env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "earlyhelp serve did not answer in 60 s"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def served(world: World, client: httpx.Client) -> World:
    return World(client=client, tokens=world.tokens, org_ids=world.org_ids, user_ids=world.user_ids)  # type: ignore[arg-type]


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.2)


class _RefusingSmtp:
    """An SMTP server that refuses the family's address, naming it as real servers do."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("mother"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _hold_the_snils(
    engine: Engine, body: dict[str, Any], region_id: int, held: threading.Event, release: threading.Event
) -> None:
    """Insert the same child, uncommitted, so that the server's insert waits on the unique index
    and fails when this commits (PostgreSQL: an IntegrityError whose DETAIL names the СНИЛС)."""
    with Session(engine) as session:
        child = Child(region_id=region_id, **ChildIn.model_validate(body["child"]).model_dump())
        child.refresh_name_key()
        session.add(child)
        session.flush()
        held.set()
        release.wait(30)
        session.commit()


@pytest.fixture
def prefect_api_url(prefect_server: None) -> str:
    """The session's Prefect server, for the serve processes' workers (a worker's own temporary
    server takes long to start on a busy machine)."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def test_no_personal_data_in_any_log_line_of_a_journey(
    world: World, engine: Engine, settings: Settings, tmp_path: Path, prefect_api_url: str
) -> None:
    smtp = Controller(_RefusingSmtp(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    sink = HttpSink()
    sink.start()
    log = tmp_path / "serve.log"
    secrets: list[str] = []
    with (
        region_standard(tmp_path, NO_QUIET_HOURS) as standards_dir,
        earlyhelp_serve(
            settings,
            log,
            EARLYHELP_RELAY_IN_SERVE="true",
            EARLYHELP_STANDARDS_DIR=str(standards_dir),
            EARLYHELP_SMTP_HOST="127.0.0.1",
            EARLYHELP_SMTP_PORT=str(smtp.port),
            EARLYHELP_SMS_GATEWAY_URL=sink.url("/sms"),
            EARLYHELP_LOG_LEVEL="DEBUG",
            EARLYHELP_RELAY_IDLE_SECONDS="0.1",
            EARLYHELP_DELIVERY_RETRY_DELAYS="[0.05]",
            PREFECT_HOME=str(tmp_path / "prefect"),
            PREFECT_API_URL=prefect_api_url,
        ) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        journey = served(world, client)
        secrets += list(world.tokens.values())
        # A referral whose family is written to by e-mail (refused by the server, which names it).
        body = journey.referral_body()
        body["representatives"][0]["preferred_channel"] = "email"
        referral = client.post(f"{API}/referrals", json=body, headers=journey.h("referrer"))
        assert referral.status_code == 201, referral.text
        child = body["child"]
        secrets += [
            child["last_name"],
            child["first_name"],
            child["snils"],
            body["representatives"][0]["full_name"],
        ]
        secrets += ["mother@example.org", "+7 900 123-45-67"]
        # Accepted: the family is invited by e-mail, which the server refuses.
        journey.advance(
            referral.json()["case_id"], "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator"
        )
        # Searches by name and by СНИЛС: the query string is the finding.
        for q in (child["last_name"], child["first_name"], child["snils"]):
            found = client.get(f"{API}/children", params={"q": q}, headers=journey.h("coordinator"))
            assert found.status_code == 200, found.text
        # A login: the token answer.
        login = client.post(f"{API}/auth/login", json={"login": "curator", "password": "demo"})
        assert login.status_code == 200, login.text
        secrets.append(login.json()["access_token"])
        # The journey to a planned session, and the family's link.
        case_id = to_ipr_implementation(journey)
        at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
        planned = client.post(
            f"{API}/cases/{case_id}/sessions",
            json={"service_code": "motor_development", "scheduled_at": at.isoformat()},
            headers=journey.h("curator"),
        )
        assert planned.status_code == 201, planned.text
        link = session_link_token(planned.json()["id"], at + timedelta(hours=12), key_store(settings))
        secrets.append(link)
        assert client.get(f"/f/{link}").status_code == 200
        assert client.post(f"/f/{link}", data={"action": "confirm"}).status_code == 200
        assert client.get(f"/f/{link}x").status_code == 400  # an altered link
        # A NUL byte in a name and in a login (a 500 with the SQL parameters, on PostgreSQL).
        nul = journey.referral_body(child={"last_name": "Нулева\x00Анна"})
        secrets += [nul["child"]["first_name"], nul["child"]["snils"], "Нулева"]
        assert client.post(f"{API}/referrals", json=nul, headers=journey.h("referrer")).status_code < 500
        assert (
            client.post(f"{API}/auth/login", json={"login": "Нулева\x00", "password": "x"}).status_code < 500
        )
        searched = client.get(f"{API}/children", params={"q": "Нулева\x00"}, headers=journey.h("coordinator"))
        assert searched.status_code < 500
        if engine.dialect.name == "postgresql":
            # An integrity error whose DETAIL holds the child's СНИЛС.
            race = journey.referral_body(child={"last_name": "Гонкина", "snils": snils_for(900)})
            secrets += ["Гонкина", race["child"]["first_name"], race["child"]["snils"]]
            with Session(engine) as session:
                region_id = session.execute(
                    select(col(Organisation.region_id)).where(col(Organisation.id) == world.provider_id)
                ).scalar_one()
            held, release = threading.Event(), threading.Event()
            holder = threading.Thread(target=_hold_the_snils, args=(engine, race, region_id, held, release))
            holder.start()
            # The server must come second: had it inserted first, it would win the race (201).
            assert held.wait(30), "the test's own insert of the child did not happen"
            answer: list[httpx.Response] = []
            poster = threading.Thread(
                target=lambda: answer.append(
                    client.post(f"{API}/referrals", json=race, headers=journey.h("referrer"))
                )
            )
            poster.start()

            def server_waits_on_the_index() -> bool:
                with engine.connect() as conn:
                    waiting = conn.execute(
                        text(
                            # The server's INSERT of the child, not any other lock wait (a sweep's,
                            # say): released early, the server would match the committed child (201).
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database() "
                            "AND query ILIKE 'INSERT INTO child %'"
                        )
                    ).scalar_one()
                return bool(waiting)

            wait_for(server_waits_on_the_index, 20, "the server's insert waiting on the held СНИЛС")
            release.set()
            holder.join(30)
            poster.join(30)
            assert answer and answer[0].status_code == 409, answer[0].text if answer else "no answer"
        # The worker delivers (and fails to deliver to the refused address) with its flows.
        wait_for(lambda: _deliveries(engine, "sent") >= 1, 120, "the worker's deliveries")
        wait_for(lambda: _deliveries(engine, "failed") >= 1, 60, "the refused e-mail recorded")
    smtp.stop()
    sink.stop()

    output = log.read_text(errors="replace")
    leaked = sorted({s for s in _forms(secrets) if s in output})
    assert leaked == [], f"personal data or credentials in the log: {leaked}\n{output[-5000:]}"
    # The logs were really captured: the access log, the serve process, the worker.
    assert '"GET /api/v1/children' in output and '"GET /f/' in output, output[-3000:]
    assert "earlyhelp worker" in output and "outbox relay started" in output


def _forms(values: list[str]) -> set[str]:
    """Each value as it could appear in a log line: as is, URL-encoded, bare digits."""
    forms: set[str] = set()
    for value in values:
        for form in (value, quote(value), quote_plus(value), quote(value, safe="")):
            forms.add(form)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 10:
            forms.add(digits)
    return {f for f in forms if len(f) >= 5}


def _deliveries(engine: Engine, status: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Delivery).where(Delivery.status == status)  # type: ignore[arg-type]
            ).scalar_one()
        )


def test_forwarded_for_is_not_believed_from_a_client_that_is_not_a_trusted_proxy(
    world: World, engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """`earlyhelp serve` and the audit agree: uvicorn's default trusts 127.0.0.1, the app trusts
    only EARLYHELP_TRUSTED_PROXIES (none by default)."""
    case_id = world.refer()["case_id"]
    spoofed = {**world.h("curator"), "X-Forwarded-For": "203.0.113.66"}

    def last_address() -> str | None:
        with engine.connect() as conn:
            return conn.execute(text("SELECT client_ip FROM audit_log ORDER BY id DESC LIMIT 1")).scalar_one()  # type: ignore[no-any-return]

    with earlyhelp_serve(settings, tmp_path / "serve.log") as url:
        assert httpx.get(f"{url}{API}/cases/{case_id}", headers=spoofed).status_code == 200
    assert last_address() == "127.0.0.1"
    with earlyhelp_serve(settings, tmp_path / "serve.log", EARLYHELP_TRUSTED_PROXIES="127.0.0.1") as url:
        assert httpx.get(f"{url}{API}/cases/{case_id}", headers=spoofed).status_code == 200
    assert last_address() == "203.0.113.66"


# --- security headers ----------------------------------------------------------------------------


def assert_security_headers(response: httpx.Response, *, no_store: bool = True) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers.get("cache-control") == "no-store") is no_store, (
        response.url,
        headers.get("cache-control"),
    )


def test_security_headers_on_every_answer(world: World, settings: Settings) -> None:
    client = world.client
    case_id = world.refer()["case_id"]
    answers = [
        client.get(f"{API}/cases/{case_id}", headers=world.h("curator")),
        client.get(f"{API}/children", params={"q": "Ёжикова"}, headers=world.h("coordinator")),
        client.get(f"{API}/cases/{case_id}", headers=world.h("coordinator2")),  # 404
        client.get(f"{API}/cases"),  # 401
        client.post(f"{API}/auth/login", json={"login": "curator", "password": "demo"}),  # the token
        client.post(f"{API}/auth/login", json={"login": "curator"}),  # 422
        client.get("/f/not-a-link"),  # a family page
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/docs"),
        client.get("/redoc"),
        client.get("/no-such-page"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 401, 200, 422, 400, 200, 200, 200, 200, 404]
    for answer in answers:
        assert_security_headers(answer)
    # JSON answers may load nothing; pages only what the app serves itself.
    assert answers[0].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    family = answers[6].headers["content-security-policy"]
    assert "default-src 'self'" in family and "script-src 'self';" in family and "http" not in family
    # Static assets may be cached.
    asset = client.get("/static/docs/swagger-ui.css")
    assert asset.status_code == 200
    assert_security_headers(asset, no_store=False)
    # Over HTTPS (here: a TLS-terminating proxy the settings trust), browsers are told to stay on it.
    behind_proxy = create_app(settings.model_copy(update={"trusted_proxies": "testclient"}), engine=None)
    with TestClient(behind_proxy) as proxied:
        secure = proxied.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in answers[7].headers


def test_an_unexpected_failure_answers_500_in_russian_with_the_security_headers(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, engine=None)

    def fails(code: str) -> None:
        raise RuntimeError("Иванова Мария, СНИЛС 112-233-445 95")

    app.add_api_route(f"{API}/test-fails/{{code}}", fails)
    app.add_api_route("/test-fails/{code}", fails)
    app.add_api_route("/f/test-fails/{code}", fails)
    with caplog.at_level(logging.INFO), TestClient(app, raise_server_exceptions=False) as client:
        api = client.get(f"{API}/test-fails/secret-code-1")
        page = client.get("/test-fails/secret-code-2")
        family = client.get("/f/test-fails/secret-code-3")
    assert [a.status_code for a in (api, page, family)] == [500, 500, 500]
    assert api.json() == {
        "error": "internal_error",
        "message": "Внутренняя ошибка сервера; повторите запрос позже",
        "field": None,
    }
    assert page.headers["content-type"].startswith("text/html") and "сообщите администратору" in page.text
    # A family is not sent to the staff's login or told to call an administrator.
    assert "Попробуйте ещё раз" in family.text
    assert "администратор" not in family.text and 'href="/"' not in family.text
    for answer in (api, page, family):
        assert_security_headers(answer)
        assert "Иванова" not in answer.text and "112-233" not in answer.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # The route's template and the exception's type are logged; never the path (a family link's
    # is a secret) nor the exception's text.
    logged = [r.getMessage() for r in caplog.records if r.name == "earlyhelp.api"]
    assert logged == [
        "unexpected failure on GET /api/v1/test-fails/{code}: RuntimeError",
        "unexpected failure on GET /test-fails/{code}: RuntimeError",
        "unexpected failure on GET /f/test-fails/{code}: RuntimeError",
    ]
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("earlyhelp"))
    assert "secret-code" not in ours and "Иванова" not in ours


# --- /docs and /redoc without a CDN --------------------------------------------------------------


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
        self._in_script = tag == "script" and not dict(attrs).get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_nothing_from_outside(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    references = _References()
    references.feed(html)
    assert references.urls, html
    for url in references.urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert any(u.endswith(".js") for u in references.urls)
    policy = response.headers["content-security-policy"]
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert policy.count("'sha256-") == references.inline_scripts
    if page == "/docs":  # Swagger UI's online validator badge is off
        assert '"validatorUrl": null' in html


# --- files ---------------------------------------------------------------------------------------


def test_var_dir_and_sqlite_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "fresh" / "var"
    settings = Settings(
        database_url=f"sqlite:///{var}/earlyhelp.db",
        var_dir=var,
        secret_key="test-secret-key-of-sufficient-length-for-hs256",
        relay_in_serve=False,
    )
    previous = os.umask(0o022)  # the usual umask, under which files come out world-readable
    try:
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        with TestClient(create_app(settings, engine=engine)) as client:
            assert client.get("/healthz").status_code == 200
            with engine.begin() as conn:  # a write: the -wal and -shm files exist now
                conn.execute(
                    text(
                        "INSERT INTO region (code, name, timezone, created_at) "
                        "VALUES ('x', 'x', 'UTC', '2026-01-01 00:00:00')"
                    )
                )
            files = [var / "earlyhelp.db", var / "earlyhelp.db-wal", var / "earlyhelp.db-shm"]
            assert all(f.exists() for f in files)
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        engine.dispose()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert modes == dict.fromkeys(modes, 0o600)
    # Nothing under var/ is readable by others.
    for path in var.rglob("*"):
        assert not stat.S_IMODE(path.stat().st_mode) & 0o077, path


def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    upgrade(f"sqlite:///{database}")
    database.chmod(0o644)
    make_engine(f"sqlite:///{database}").dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_sql_parameters_and_database_details_never_reach_a_log(engine: Engine) -> None:
    """A failed statement's parameters are hidden; PostgreSQL's DETAIL (here "Failing row
    contains (…, <name>, …)") is cut from any log line that carries the error."""
    name = "Ёжикова Алёна Петровна"
    assert engine.hide_parameters
    no_created_at = text("INSERT INTO region (code, name, timezone) VALUES ('x', :name, 'UTC')")
    with pytest.raises(DBAPIError) as raised, engine.begin() as conn:
        conn.execute(no_created_at, {"name": name})
    assert "parameters hidden" in str(raised.value)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("earlyhelp.test_transport")
    logger.addHandler(handler)
    try:
        logger.error("failed: %s", raised.value, exc_info=raised.value)
        logger.error("failed: %s", db_error_summary(raised.value))
    finally:
        logger.removeHandler(handler)
    assert "failed" in stream.getvalue()
    assert "Ёжикова" not in stream.getvalue(), stream.getvalue()
