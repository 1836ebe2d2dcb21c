"""The `earlyhelp` command as an operator runs it: a real process, a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.main import create_app
from core.config import Settings
from core.db import make_engine
from models.cases import Case
from statemachines import STATES

EARLYHELP = str(Path(sys.executable).parent / "earlyhelp")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database file loaded by `earlyhelp demo`, and the environment that points at it."""
    var = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": f"sqlite:///{var}/earlyhelp.db",
        "EARLYHELP_VAR_DIR": str(var),
    }
    result = subprocess.run([EARLYHELP, "demo"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "демо-данные загружены" in result.stdout
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EARLYHELP, *args], env=env, capture_output=True, text=True, timeout=120)


def test_demo_has_a_child_at_every_stage_and_loads_once(demo_db: dict[str, str]) -> None:
    engine = make_engine(demo_db["EARLYHELP_DATABASE_URL"])
    with Session(engine) as session:
        states = set(session.exec(select(Case.state)).all())
    assert states == {name for name, _ in STATES}
    again = run(demo_db, "demo")
    assert again.returncode == 0 and "уже есть" in again.stdout


def test_user_add_prints_a_token_that_works(demo_db: dict[str, str]) -> None:
    listed = run(demo_db, "org", "list")
    health_id = next(line.split("\t")[0] for line in listed.stdout.splitlines() if "Медицинская" in line)
    added = run(
        demo_db,
        "user",
        "add",
        "--login",
        "mis-clinic",
        "--name",
        "МИС поликлиники",
        "--role",
        "referrer",
        "--org",
        health_id,
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("eh_")
    settings = Settings(
        database_url=demo_db["EARLYHELP_DATABASE_URL"], var_dir=Path(demo_db["EARLYHELP_VAR_DIR"])
    )
    with TestClient(create_app(settings)) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["login"] == "mis-clinic"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("user", "add", "--login", "x", "--name", "y", "--role", "curator", "--org", "999"),
            "организация 999 не найдена",
        ),
        (
            ("user", "add", "--login", "curator", "--name", "y", "--role", "curator", "--org", "1"),
            "логин curator уже занят",
        ),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(
    demo_db: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run(demo_db, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == f"ошибка: {message}"


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "EARLYHELP_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = run(env, "db", "upgrade")
    assert result.returncode == 1
    assert result.stderr.startswith("ошибка: ") and len(result.stderr.strip().splitlines()) == 1


def test_serve_answers_with_the_demo_data(demo_db: dict[str, str]) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [EARLYHELP, "serve", "--port", str(port)],
        env=demo_db,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "earlyhelp serve did not answer"
            time.sleep(0.1)
        token = httpx.post(f"{base}/api/v1/auth/login", json={"login": "curator", "password": "demo"}).json()
        cases = httpx.get(
            f"{base}/api/v1/cases", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert cases.status_code == 200 and cases.json()["total"] == 13
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
