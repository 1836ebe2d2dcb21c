"""The `earlyhelp` command as an operator runs it: a real process, a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import Result

from api.embedded import WorkerProcess
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
        "--no-password",
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
            (
                "user",
                "add",
                "--login",
                "x",
                "--name",
                "y",
                "--role",
                "curator",
                "--org",
                "999",
                "--no-password",
            ),
            "организация 999 не найдена",
        ),
        (
            (
                "user",
                "add",
                "--login",
                "curator",
                "--name",
                "y",
                "--role",
                "curator",
                "--org",
                "8",
                "--no-password",
            ),
            "Логин curator уже занят",
        ),
        (
            ("user", "add", "--login", "x", "--name", "y", "--role", "curator", "--org", "8", "--generate"),
            "укажите --email: на него приходят уведомления о работе",
        ),
        (
            (
                "user",
                "add",
                "--login",
                "x",
                "--name",
                "y",
                "--role",
                "curator",
                "--org",
                "8",
                "--email",
                "x@",
            ),
            "Некорректный адрес электронной почты",
        ),
        (
            (
                "user",
                "add",
                "--login",
                "x",
                "--name",
                "y",
                "--role",
                "curator",
                "--org",
                "1",
                "--no-password",
            ),
            "Роль «Куратор» недоступна в организации вида «Медицинская организация»",
        ),
        (("user", "disable", "nobody"), "пользователь nobody не найден"),
        (
            ("token", "revoke", "--login", "curator"),
            "укажите, что отозвать: --id, --name или --sessions --login <логин>",
        ),
    ],
)
def test_cli_errors_are_one_line_and_non_zero(
    demo_db: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run(demo_db, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == f"ошибка: {message}"


def test_a_bad_setting_is_named_in_one_line(demo_db: dict[str, str]) -> None:
    result = run({**demo_db, "EARLYHELP_LOG_LEVEL": "LOUD"}, "worker")
    assert result.returncode == 1
    assert result.stderr.startswith("ошибка: неверная настройка EARLYHELP_LOG_LEVEL='LOUD': ")
    assert "'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


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
        assert cases.status_code == 200 and cases.json()["total"] == 14
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        server.terminate()
        # serve waits up to 30 s for its worker to finish the batch in hand, which may be waiting for
        # Prefect's temporary server to start (16-26 s on a loaded machine, before it is killed).
        server.wait(timeout=60)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """`earlyhelp serve` on a free port, once it answers."""
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        [EARLYHELP, "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return serve.poll() is not None

    _wait_for(answers, 60, "earlyhelp serve did not answer")
    assert serve.poll() is None
    return serve


def _embedded_worker(serve: subprocess.Popen[bytes]) -> int:
    workers: list[int] = []

    def started() -> bool:
        workers[:] = [pid for pid, cmd in _children(serve.pid) if "api.cli worker" in cmd]
        return bool(workers)

    _wait_for(started, 60, "earlyhelp serve started no worker")
    assert len(workers) == 1
    return workers[0]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2] != "Z"  # a zombie has exited


def test_serve_runs_one_worker_beside_the_api_and_stops_it(demo_db: dict[str, str]) -> None:
    serve = _serve(demo_db, "--workers", "2")
    try:
        worker = _embedded_worker(serve)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    _wait_for(lambda: not _alive(worker), 10, "the worker outlived earlyhelp serve")


def test_embedded_worker_exits_when_serve_is_killed(demo_db: dict[str, str]) -> None:
    serve = _serve(demo_db)
    worker = _embedded_worker(serve)
    serve.kill()  # no chance to stop its child: the child notices by itself
    serve.wait(timeout=10)
    _wait_for(lambda: not _alive(worker), 60, "the worker of a killed earlyhelp serve kept running")


# A worker that has started a process of its own (as Prefect's temporary server) and then either
# ignores SIGTERM (stop() must kill it) or dies by itself (the watcher restarts it).
# Both wait for a signal (signal.pause), not for a time: only SIGKILL ends the stubborn ones.
_WORKER_WITH_A_CHILD = """
import pathlib, signal, subprocess, sys
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
if sys.argv[2] == "stubborn":
    signal.pause()
"""


def _worker_with_a_child(tmp_path: Path, kind: str, restart_delay: float = 5.0) -> tuple[WorkerProcess, int]:
    script, pid_file = tmp_path / "worker.py", tmp_path / "child.pid"
    script.write_text(_WORKER_WITH_A_CHILD)
    worker = WorkerProcess([sys.executable, str(script), str(pid_file), kind], restart_delay=restart_delay)
    worker.start()
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().isdigit(), 30, "the worker made no child")
    return worker, int(pid_file.read_text())


def test_a_worker_killed_at_stop_takes_the_processes_it_started_with_it(tmp_path: Path) -> None:
    worker, child = _worker_with_a_child(tmp_path, "stubborn")
    worker.stop(timeout=1)
    _wait_for(lambda: not _alive(child), 10, "the killed worker's child kept running")


def test_what_a_dead_worker_left_running_is_stopped_before_it_is_restarted(tmp_path: Path) -> None:
    worker, child = _worker_with_a_child(tmp_path, "dies", restart_delay=60)
    try:
        _wait_for(lambda: not _alive(child), 10, "the dead worker's child kept running")
    finally:
        worker.stop(timeout=5)


def test_serve_without_relay_in_serve_starts_no_worker(demo_db: dict[str, str]) -> None:
    serve = _serve({**demo_db, "EARLYHELP_RELAY_IN_SERVE": "false"})
    try:
        # _serve returned once the API answers; embedded mode starts its worker before that.
        assert _children(serve.pid) == []
    finally:
        serve.terminate()
        serve.wait(timeout=30)


# Accounts: passwords by prompt or generated, never on the command line; disabling, revoking, keys.

GOOD_PASSWORD = "Ласточка-весной-7"


@pytest.fixture
def cli(demo_db: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`earlyhelp` in this process (typer's CliRunner: typed input, hidden prompts) on the demo file."""
    from typer.testing import CliRunner

    from api.cli import app as cli_app
    from core.config import get_settings

    for name in ("EARLYHELP_DATABASE_URL", "EARLYHELP_VAR_DIR"):
        monkeypatch.setenv(name, demo_db[name])
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli_app, list(args), input=input)

    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def api(demo_db: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(
        database_url=demo_db["EARLYHELP_DATABASE_URL"], var_dir=Path(demo_db["EARLYHELP_VAR_DIR"])
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _login(api: TestClient, login: str, password: str) -> int:
    return api.post("/api/v1/auth/login", json={"login": login, "password": password}).status_code


def _session(api: TestClient, login: str, password: str) -> dict[str, str]:
    answer = api.post("/api/v1/auth/login", json={"login": login, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _add(cli: Callable[..., Result], login: str, *extra: str, input: str | None = None) -> Result:
    return cli(
        "user", "add", "--login", login, "--name", "Орлова Нина Петровна", "--role", "curator",
        "--org", "8", "--email", f"{login}@example.org", *extra, input=input,
    )  # fmt: skip


def test_user_add_takes_no_password_on_the_command_line(demo_db: dict[str, str]) -> None:
    result = run(
        demo_db, "user", "add", "--login", "x", "--name", "y", "--role", "curator", "--org", "8",
        "--email", "x@example.org", "--password", GOOD_PASSWORD,
    )  # fmt: skip
    assert result.returncode == 2 and "--password" in result.stderr


def test_user_add_asks_for_the_password_twice_without_echo(
    cli: Callable[..., Result], api: TestClient
) -> None:
    typed = f"1\n1\n{GOOD_PASSWORD}\nдругой-пароль-1\n{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n"
    result = _add(cli, "orlova", input=typed)
    assert result.exit_code == 0, result.output
    assert "Пароль слишком короткий" in result.stderr and "пароли не совпадают" in result.stderr
    assert "пользователь orlova создан" in result.stdout
    assert GOOD_PASSWORD not in result.output
    assert _login(api, "orlova", GOOD_PASSWORD) == 200


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1", "Пароль слишком короткий"),
        ("weak-login", "не должен совпадать с логином"),
        ("qwertyuiop", "самых распространённых"),
        ("x" * 300, "Пароль слишком длинный"),
    ],
)
def test_user_add_refuses_weak_passwords(cli: Callable[..., Result], password: str, why: str) -> None:
    result = _add(cli, "weak-login", input=f"{password}\n{password}\n" * 3)
    assert result.exit_code == 1
    assert result.stderr.count(why) == 3 and result.stderr.endswith("ошибка: пароль не задан\n")


def test_user_add_generates_a_password_shown_once(cli: Callable[..., Result], api: TestClient) -> None:
    result = _add(cli, "generated", "--generate")
    assert result.exit_code == 0, result.output
    password = result.stdout.split("пароль (показывается один раз): ")[1].strip()
    assert _login(api, "generated", password) == 200


def test_user_disable_ends_its_tokens_at_once(cli: Callable[..., Result], api: TestClient) -> None:
    assert _add(cli, "leaving", input=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n").exit_code == 0
    session = _session(api, "leaving", GOOD_PASSWORD)
    token = cli("token", "add", "--login", "leaving", "--name", "mis").stdout.strip()
    for headers in (session, {"Authorization": f"Bearer {token}"}):
        assert api.get("/api/v1/me", headers=headers).status_code == 200
    disabled = cli("user", "disable", "leaving")
    assert disabled.exit_code == 0 and "отключён" in disabled.stdout
    for headers in (session, {"Authorization": f"Bearer {token}"}):
        assert api.get("/api/v1/me", headers=headers).status_code == 401
    assert _login(api, "leaving", GOOD_PASSWORD) == 401


def test_token_revoke_by_name_and_all_sessions(cli: Callable[..., Result], api: TestClient) -> None:
    assert _add(cli, "revoked", input=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n").exit_code == 0
    token = {
        "Authorization": f"Bearer {cli('token', 'add', '--login', 'revoked', '--name', 'mis').stdout.strip()}"
    }
    first, second = _session(api, "revoked", GOOD_PASSWORD), _session(api, "revoked", GOOD_PASSWORD)
    listed = cli("token", "list", "--login", "revoked").stdout
    assert "\tmis\t" in listed and "действует" in listed
    result = cli("token", "revoke", "--name", "mis", "--login", "revoked")
    assert result.exit_code == 0 and "отозвано API-токенов: 1" in result.stdout
    assert api.get("/api/v1/me", headers=token).status_code == 401
    assert api.get("/api/v1/me", headers=first).status_code == 200
    result = cli("token", "revoke", "--sessions", "--login", "revoked")
    assert result.exit_code == 0, result.output
    for headers in (first, second):
        assert api.get("/api/v1/me", headers=headers).status_code == 401
    assert _login(api, "revoked", GOOD_PASSWORD) == 200  # the account itself goes on


def test_user_password_resets_and_ends_sessions(cli: Callable[..., Result], api: TestClient) -> None:
    assert _add(cli, "forgetful", input=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n").exit_code == 0
    session = _session(api, "forgetful", GOOD_PASSWORD)
    result = cli("user", "password", "forgetful", "--generate")
    assert result.exit_code == 0, result.output
    password = result.stdout.split("пароль (показывается один раз): ")[1].strip()
    assert api.get("/api/v1/me", headers=session).status_code == 401
    assert _login(api, "forgetful", GOOD_PASSWORD) == 401 and _login(api, "forgetful", password) == 200


def test_keys_rotate_keeps_old_tokens_and_writes_owner_only_files(
    cli: Callable[..., Result], api: TestClient, demo_db: dict[str, str]
) -> None:
    import stat

    session = _session(api, "head", "demo")
    for purpose in ("staff", "family"):
        result = cli("keys", "rotate", purpose)
        assert result.exit_code == 0 and result.stdout.startswith(f"новый ключ {purpose}: "), result.output
        path = Path(demo_db["EARLYHELP_VAR_DIR"]) / "keys" / f"{purpose}.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert api.get("/api/v1/me", headers=session).status_code == 200
    listed = cli("keys", "list").stdout.splitlines()
    assert sum("\tтекущий" in line for line in listed) == 2 and any("\tпрежний" in line for line in listed)


def test_org_add_keeps_the_pages_rules_and_answers_a_refusal_in_one_line(demo_db: dict[str, str]) -> None:
    name = "ГБУЗ «Детская поликлиника № 7»"
    added = run(demo_db, "org", "add", "--region", "demo", "--name", name, "--kind", "health")
    assert added.returncode == 0 and added.stdout.strip().isdigit(), added.stderr
    again = run(demo_db, "org", "add", "--region", "demo", "--name", f"  {name.upper()} ", "--kind", "health")
    assert again.returncode == 1 and "уже есть" in again.stderr and len(again.stderr.splitlines()) == 1
    bad = run(
        demo_db, "org", "add", "--region", "demo", "--name", "Клиника", "--kind", "health", "--email", "x"
    )
    assert bad.returncode == 1 and bad.stderr.startswith("ошибка: email:"), bad.stderr
