"""Benchmark: from a committed transition to a delivered message, through the outbox relay (issue 3).

Each measured case walks refer → accept → determine_need: three transitions, each committed in its
own transaction through the real ``register()`` and ``statemachines.fire`` (in this process, from a
thread, as the API would), writing six outbox rows that reach the provider's intake (e-mail + signed
webhook), the family (SMS through the HTTP gateway, twice), the referring clinic (e-mail with the
feedback PDF, twice) and the curator (e-mail): 6 effects, 7 deliveries per case.

The relay is a real ``earlyhelp worker`` process with default settings (as ``earlyhelp serve`` runs
it in embedded mode, and as an operator runs it beside the API), started once and warmed up with
``--warm-cases`` cases before anything is measured.

Phases:

* ``backlog``: the worker is frozen (SIGSTOP, at a moment it holds no database lock), ``--cases``
  cases (170: 1020 effects) are committed, the worker is thawed and drains them. Effects/s =
  outbox rows done / (last ``Outbox.done_at`` − thaw); deliveries/s likewise. Commit-to-delivery =
  ``Delivery.sent_at − Outbox.created_at``: here it includes the wait in the backlog, by construction.
* ``target_load``: ``--rate`` transitions/s (50, i.e. 100 effects/s offered) for ``--seconds`` (10)
  while the worker runs; p95 commit-to-delivery is judged here.
* ``light_load``: the same at half the rate the backlog phase achieved: the latency floor.
* ``naive``, the design DESIGN §7 warns against, in this process: one synchronous Prefect ``@flow``
  run per effect, one after another, each delivering one outbox row through the same
  ``deliver_chunk`` function (the same messages, PDFs, channels and records): ``--naive`` effects
  (20) after one unmeasured run.

Also measured: reportlab's CPU time per feedback PDF; per phase, the CPU milliseconds per effect of
the worker (its process tree, so with its PDF process), of this process (the commits), of the
Prefect server and of the peers (from /proc), and the share of the machine used by other processes
meanwhile (the load is shared; say so).

Peers: ``prefect server start`` (services on, UI off) on a free loopback port with its own SQLite
database, or on PostgreSQL with ``--prefect-database postgresql://…/name`` (that database is dropped
and created); an aiosmtpd SMTP server and an HTTP server (SMS gateway and webhook receiver,
keep-alive) in a second subprocess (``bench/effects.py --peers``) that counts what arrives, and the
run checks that the counts equal the deliveries recorded as sent. The region's time zone is one
where it is day (the standard's quiet hours would hold family SMS until the morning).

Run (about two minutes on 2 cores; ``--wait-idle`` first waits for other work to finish)::

    .venv/bin/python bench/effects.py --wait-idle 600
    .venv/bin/python bench/effects.py --wait-idle 600 \
        --prefect-database postgresql://postgres@127.0.0.1:5432/earlyhelp_bench_prefect \
        --output bench/results/effects-prefect-postgres.json
    .venv/bin/python bench/effects.py --cases 50 --seconds 2 --naive 5   # a quick look

It prints a table and writes ``bench/results/effects.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from benchlib import machine, wait_idle

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "effects.json"
PREFECT = Path(sys.executable).parent / "prefect"
EARLYHELP = Path(sys.executable).parent / "earlyhelp"
SECRET = "bench-secret-key-of-sufficient-length-for-hs256"
REGION = ("demo", "Демонстрационная область")
# Families get no messages at night in their region (standards: quiet_hours), and a deferred SMS
# would wait for the morning: the region gets a time zone where it is day now.
ZONES = [
    "Europe/Moscow",
    "Europe/Kaliningrad",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    *(f"Etc/GMT{-h:+d}" for h in range(-12, 15)),  # Etc/GMT-3 is UTC+3
]
CONCLUSION = "Выявлены трудности в развитии общения; рекомендована ИПРП."
WEBHOOK_SECRET = "bench-webhook-secret"
EFFECTS_PER_CASE = 6  # refer 1, accept 3, determine_need 2 (statemachines/effects.py)
DELIVERIES_PER_CASE = 7  # the provider's intake gets an e-mail and a webhook
TRANSITIONS_PER_CASE = 3

TARGET_EFFECTS_PER_S = 100.0
TARGET_RATIO = 50.0
TARGET_P95_S = 3.0


# --------------------------------------------------------------------------------------------
# Peers: SMTP and HTTP receivers in their own process (`--peers`)
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_peers() -> None:
    """Serve SMTP and HTTP on loopback; print the ports; count what arrives until stdin closes.

    GET /stats on the HTTP port answers the counts: e-mails, e-mails with a PDF, and POSTs by path.
    """
    from aiosmtpd.controller import Controller

    counts: dict[str, int] = {}
    lock = threading.Lock()

    def bump(key: str) -> None:
        with lock:
            counts[key] = counts.get(key, 0) + 1

    class Collector:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            bump("email")
            if b"application/pdf" in envelope.content:
                bump("email_pdf")
            return "250 OK"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway would
        # Headers and body in one segment: unbuffered, the body would wait for the client's
        # delayed ACK of the headers (Nagle), ~40 ms per request on loopback.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            bump(self.path)
            self._answer(b'{"status": "accepted"}')

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(counts).encode()
            self._answer(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver's default listen backlog is 5: a burst of new connections beyond it (the
        # relay sends a chunk's SMS side by side) is dropped, and TCP sends again only after 1 s.
        # This machine's TcpExtListenOverflows counter stood at 250 after a day of these runs.
        # A real gateway (nginx: 511) takes such bursts.
        request_queue_size = 511

        def handle_error(self, request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closed a keep-alive
                super().handle_error(request, client_address)

    smtp_port = free_port()
    controller = Controller(Collector(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(json.dumps({"smtp": smtp_port, "http": http.server_address[1]}), flush=True)
    sys.stdin.read()  # the parent closes our stdin when it is done
    http.shutdown()
    controller.stop()


@dataclass
class Peers:
    process: subprocess.Popen[str]
    smtp_port: int
    http_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def counts(self) -> dict[str, int]:
        return dict(httpx.get(self.url("/stats"), timeout=10).json())


@contextlib.contextmanager
def peers() -> Iterator[Peers]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--peers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        ports = json.loads(process.stdout.readline())
        yield Peers(process, ports["smtp"], ports["http"])
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def fresh_database(url: str) -> str:
    """Drop and create the database `url` names (PostgreSQL); return the URL for Prefect (asyncpg)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(drivername="postgresql+psycopg", database="postgres"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return target.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


@contextlib.contextmanager
def prefect_server(home: Path, database: str | None) -> Iterator[tuple[str, int, float]]:
    """`prefect server start` on a free loopback port, on its own SQLite file or on `database` (a
    PostgreSQL URL); yields (API URL, pid, seconds until healthy)."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        # Log each 503 it answers ("database is locked" on SQLite): the report counts them.
        "PREFECT_API_LOG_RETRYABLE_ERRORS": "true",
    }
    if database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = fresh_database(database)
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = started + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited; see {home / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.perf_counter() > deadline:
                raise RuntimeError("prefect server did not become healthy in 120 s")
            time.sleep(0.2)
        yield url, process.pid, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --------------------------------------------------------------------------------------------
# The application side: seeding, committing transitions
# --------------------------------------------------------------------------------------------


def snils_for(seed: int) -> str:
    from models.children import snils_with_control

    return snils_with_control(400_000_000 + seed * 7877)


@dataclass
class World:
    """The seeded region: who refers, who accepts, who curates; read-only after seeding."""

    engine: Any
    referrer: Any  # api.deps.Principal
    coordinator: Any  # models.users.User
    curator_id: int
    provider_id: int
    counter: list[int] = field(default_factory=lambda: [0])

    def referral(self, today: date) -> Any:
        from models.children import Channel, ChildIn, Relation, RepresentativeIn, Sex
        from models.referrals import ConsentGiven, ReferralCreate

        self.counter[0] += 1
        n = self.counter[0]
        return ReferralCreate(
            provider_id=self.provider_id,
            child=ChildIn(
                last_name="Ёжикова",
                first_name=f"Алёна{n}",
                middle_name="Петровна",
                sex=Sex.female,
                birth_date=today - timedelta(days=400),
                snils=snils_for(n),
                municipality="Центральный район",
            ),
            representatives=[
                RepresentativeIn(
                    full_name="Ёжикова Ирина Ивановна",
                    relation=Relation.mother,
                    phone="+7 900 123-45-67",
                    email="mother@example.org",
                    preferred_channel=Channel.sms,
                )
            ],
            criteria=["parental_concern"],
            consent_personal_data=ConsentGiven(date=today, document_ref="Согласие № 1"),
        )

    def transitions(self) -> Iterator[Callable[[], int]]:
        """Endless: refer, accept, determine_need of case after case; each call commits one
        transition in its own transaction and returns the case id."""
        from api.demo import need_payload
        from api.services.referrals import register
        from core.db import session_scope
        from models.cases import Case
        from models.common import utcnow
        from statemachines import fire

        current = [0]  # the case being walked

        def refer() -> int:
            with session_scope(self.engine) as session:
                body = self.referral(utcnow().date())
                current[0] = (
                    register(session, self.referrer, body, idempotency_key=None).referral.case_id or 0
                )
            return current[0]

        def event(name: str, payload: dict[str, Any]) -> Callable[[], int]:
            def run() -> int:
                with session_scope(self.engine) as session:
                    case = session.get(Case, current[0])
                    assert case is not None
                    fire(session, case, name, actor=self.coordinator, payload=payload)
                return current[0]

            return run

        steps = [
            refer,
            event("accept", {"curator_id": self.curator_id}),
            event("determine_need", need_payload("ipr", CONCLUSION)),
        ]
        while True:
            yield from steps


def daytime_zone() -> str:
    """The first zone in ZONES where the standard's quiet hours neither hold now nor in an hour."""
    from zoneinfo import ZoneInfo

    from models.common import utcnow
    from standards import load_standard

    quiet = load_standard(REGION[0]).quiet_hours
    now = utcnow()
    for zone in ZONES:
        if not any(
            quiet.contains((now + timedelta(hours=h)).astimezone(ZoneInfo(zone)).time()) for h in (0, 1)
        ):
            return zone
    raise RuntimeError("no time zone is out of the quiet hours")


def seed(url: str, sink: Peers, zone: str) -> World:
    from sqlmodel import col, update

    from api.demo import seed_region
    from core.db import make_engine, session_scope
    from core.migrate import upgrade
    from models.organisations import Organisation, OrgKind
    from models.users import User

    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        staff = seed_region(session, *REGION, zone)
        provider = next(o for o in staff.orgs if o.kind == OrgKind.provider)
        curator = staff.users["curator"]
        # seed_region gives every organisation an e-mail; the provider also takes webhooks and the
        # curator reads mail, so each case's effects reach every channel.
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == provider.id)
            .values(webhook_url=sink.url("/hook/provider"), webhook_secret=WEBHOOK_SECRET)
        )
        session.execute(
            update(User).where(col(User.id) == curator.id).values(email="curator@provider.example")
        )
        world = World(
            engine=engine,
            referrer=staff.principal("referrer"),
            coordinator=staff.users["coordinator"],
            curator_id=curator.id or 0,
            provider_id=provider.id or 0,
        )
    return world


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else math.nan,
        "mean": statistics.fmean(values) if values else math.nan,
    }


def _processes() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds used so far, all threads), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()  # fields from "state" (the 3rd) on
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def _tree_cpu(processes: dict[int, tuple[int, float]], root: int) -> float:
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in processes.items() if ppid == parent and pid not in members]
        members.update(children)
        frontier.extend(children)
    return sum(processes[pid][1] for pid in members if pid in processes)


@dataclass
class Pids:
    prefect_server: int
    peers: int
    worker: int | None = None  # the `earlyhelp worker` of the phase


PARTS = ("worker", "committer", "prefect_server", "peers")


def cpu_snapshot(pids: Pids) -> dict[str, float]:
    """CPU seconds used so far by the worker, this process (it commits the transitions), the
    Prefect server, the peers, and the whole machine."""
    processes = _processes()
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return {
        "worker": _tree_cpu(processes, pids.worker) if pids.worker else 0.0,
        "committer": processes[os.getpid()][1],
        "prefect_server": _tree_cpu(processes, pids.prefect_server),
        "peers": _tree_cpu(processes, pids.peers),
        "machine_busy": (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS,  # minus idle and iowait
        "machine_total": sum(ticks) / CLOCK_TICKS,
    }


def cpu_report(before: dict[str, float], after: dict[str, float], effects: int) -> dict[str, Any]:
    used = {k: after[k] - before[k] for k in before}
    ours = sum(used[k] for k in PARTS)
    total = max(used["machine_total"], 1e-9)
    return {
        "cpu_s": {k: used[k] for k in PARTS},
        "cpu_ms_per_effect": {k: used[k] * 1000 / max(effects, 1) for k in PARTS},
        "machine_busy_share": used["machine_busy"] / total,
        # Other processes on the machine (the load is shared: say how much they took).
        "others_share": max(used["machine_busy"] - ours, 0.0) / total,
        "load_1m_at_end": os.getloadavg()[0],
    }


@dataclass
class Outcome:
    """What the database says about the effects of a set of cases."""

    rows: int
    rows_done: int
    rows_failed: int
    deliveries: int
    sent: int
    retried: int  # deliveries that took more than one attempt
    by_channel: dict[str, int]
    done_last: datetime | None
    delivery_latency: list[float]  # per delivery: sent_at − outbox.created_at
    effect_latency: list[float]  # per outbox row: its last delivery − created_at
    done_latency: list[float]  # per outbox row: done_at − created_at (after its flow run ended)


def outcome(reader: Any, case_ids: list[int]) -> Outcome:
    from sqlmodel import Session, col, select

    from models.outbox import Delivery, DeliveryStatus, Outbox, OutboxStatus

    with Session(reader) as session:
        rows = session.exec(select(Outbox).where(col(Outbox.case_id).in_(case_ids))).all()
        ids = [r.id for r in rows]
        deliveries = session.exec(select(Delivery).where(col(Delivery.outbox_id).in_(ids))).all()
    created = {r.id: r.created_at for r in rows}
    last_sent: dict[int, datetime] = {}
    delivery_latency = []
    by_channel: dict[str, int] = {}
    for d in deliveries:
        if d.status != DeliveryStatus.sent or d.sent_at is None:
            continue
        by_channel[d.channel] = by_channel.get(d.channel, 0) + 1
        delivery_latency.append((d.sent_at - created[d.outbox_id]).total_seconds())
        last_sent[d.outbox_id] = max(d.sent_at, last_sent.get(d.outbox_id, d.sent_at))
    done = [r for r in rows if r.status == OutboxStatus.done and r.done_at is not None]
    return Outcome(
        rows=len(rows),
        rows_done=len(done),
        rows_failed=sum(r.status == OutboxStatus.failed for r in rows),
        deliveries=len(deliveries),
        sent=len(delivery_latency),
        retried=sum(d.attempts > 1 for d in deliveries),
        by_channel=by_channel,
        done_last=max((r.done_at for r in done if r.done_at), default=None),
        delivery_latency=delivery_latency,
        effect_latency=[(t - created[i]).total_seconds() for i, t in last_sent.items()],
        done_latency=[(r.done_at - r.created_at).total_seconds() for r in done if r.done_at],
    )


def pending(reader: Any, case_ids: list[int]) -> int:
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from models.outbox import Outbox, OutboxStatus

    if not case_ids:
        return 0
    with Session(reader) as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(Outbox)
                .where(
                    col(Outbox.case_id).between(min(case_ids), max(case_ids)),
                    Outbox.status == OutboxStatus.pending,
                )
            ).one()
        )


class Committer(threading.Thread):
    """Commits `count` transitions, at `rate` per second when given, else as fast as it can."""

    def __init__(self, world: World, count: int, rate: float | None) -> None:
        super().__init__(name="committer", daemon=True)
        self.steps = world.transitions()
        self.count, self.rate = count, rate
        self.case_ids: list[int] = []
        self.commit_s: list[float] = []
        self.lag_s = 0.0  # how far behind its schedule the committer fell, at most
        self.error: BaseException | None = None
        self.started_at = self.ended_at = 0.0

    def run(self) -> None:
        try:
            self.started_at = time.perf_counter()
            for i in range(self.count):
                if self.rate:
                    due = self.started_at + i / self.rate
                    if (wait := due - time.perf_counter()) > 0:
                        time.sleep(wait)
                    else:
                        self.lag_s = max(self.lag_s, -wait)
                t = time.perf_counter()
                case_id = next(self.steps)()
                self.commit_s.append(time.perf_counter() - t)
                if not self.case_ids or self.case_ids[-1] != case_id:
                    self.case_ids.append(case_id)
            self.ended_at = time.perf_counter()
        except BaseException as error:
            self.error = error
            raise


@dataclass
class Worker:
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[Worker]:
    """`earlyhelp worker` (the relay and the sweeps) as the operator runs it; yields once its relay
    has started, and stops it with SIGTERM (it finishes its batch) afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen([str(EARLYHELP), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.perf_counter() + 120
        while b"outbox relay started" not in log.read_bytes():
            if process.poll() is not None:
                raise RuntimeError(f"earlyhelp worker exited with {process.returncode}; see {log}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"earlyhelp worker did not start in 120 s; see {log}")
            time.sleep(0.05)
        yield Worker(process)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_drained(reader: Any, committer: Committer | None, case_ids: list[int], limit_s: float) -> float:
    """Wait until the committer is done and no outbox row of its cases is pending; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        time.sleep(0.1)
        if committer is not None:
            if committer.error is not None:
                raise RuntimeError("the committer failed") from committer.error
            if committer.is_alive():
                continue
            case_ids = committer.case_ids
        if pending(reader, case_ids) == 0:
            break
    else:
        print(f"  ! gave up after {limit_s:.0f} s with rows still pending", flush=True)
    return time.perf_counter() - started


def commit_cases(world: World, cases: int) -> tuple[list[int], float]:
    committer = Committer(world, cases * TRANSITIONS_PER_CASE, rate=None)
    committer.run()
    return committer.case_ids, committer.ended_at - committer.started_at


@dataclass
class Bench:
    """What every phase needs."""

    world: World
    reader: Any  # a plain engine for polls and tallies
    worker_env: dict[str, str]
    tmp: Path
    pids: Pids
    limit_s: float
    sink: Peers

    running: Worker | None = None

    @contextlib.contextmanager
    def worker(self) -> Iterator[Worker]:
        with worker(self.worker_env, self.tmp / "worker.log") as running:
            self.pids.worker, self.running = running.process.pid, running
            try:
                yield running
            finally:
                self.pids.worker, self.running = None, None

    def mark(self) -> tuple[dict[str, float], dict[str, int]]:
        """CPU used so far and what the peers received so far."""
        return cpu_snapshot(self.pids), self.sink.counts()


def phase_report(
    bench: Bench,
    name: str,
    case_ids: list[int],
    wait_s: float,
    start: datetime,
    before: tuple[dict[str, float], dict[str, int]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    result = outcome(bench.reader, case_ids)
    received = bench.sink.counts()
    end = result.done_last or start
    span = max((end - start).total_seconds(), 1e-9)
    return {
        "phase": name,
        "cases": len(case_ids),
        "outbox_rows": result.rows,
        "rows_done": result.rows_done,
        "rows_failed": result.rows_failed,
        "deliveries": result.deliveries,
        "deliveries_sent": result.sent,
        "by_channel": result.by_channel,
        "received_by_peers": {k: v - before[1].get(k, 0) for k, v in received.items()},
        "deliveries_retried": result.retried,
        "wait_s": wait_s,
        "span_s": span,
        "effects_per_s": result.rows_done / span,
        "deliveries_per_s": result.sent / span,
        "commit_to_delivery_s": summary(result.delivery_latency),
        "commit_to_effect_delivered_s": summary(result.effect_latency),
        "commit_to_outbox_done_s": summary(result.done_latency),
        **cpu_report(before[0], cpu_snapshot(bench.pids), result.rows_done),
        **extra,
    }


@contextlib.contextmanager
def paused(process: subprocess.Popen[bytes], url: str) -> Iterator[None]:
    """Freeze the worker (SIGSTOP) at a moment it holds no SQLite lock, thaw it (SIGCONT) after.

    A worker frozen inside a write transaction would keep the committer waiting; so after each
    stop, check that a write transaction can begin at once, else let it run on a little and retry.
    """
    import sqlite3

    path = url.removeprefix("sqlite:///")
    for _ in range(100):
        process.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            break
        except sqlite3.OperationalError:  # locked by the frozen worker
            process.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()
    else:
        raise RuntimeError("could not pause the worker outside a transaction")
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


def backlog_phase(bench: Bench, name: str, cases: int) -> dict[str, Any]:
    """Commit every transition while the (warm) worker is frozen, then let it drain the outbox."""
    from models.common import utcnow

    assert bench.running is not None
    with paused(bench.running.process, bench.world.engine.url.render_as_string()):
        case_ids, commit_wall = commit_cases(bench.world, cases)
        print(
            f"{name}: {cases} cases, {cases * TRANSITIONS_PER_CASE} transitions committed"
            f" in {commit_wall:.1f} s with the worker frozen; it drains them",
            flush=True,
        )
        before = bench.mark()
        start = utcnow()
    wall = wait_drained(bench.reader, None, case_ids, bench.limit_s)
    report = phase_report(bench, name, case_ids, wall, start, before, {"commit_wall_s": commit_wall})
    print(f"  {report['rows_done']} rows in {report['span_s']:.1f} s", flush=True)
    return report


def steady_phase(bench: Bench, name: str, rate: float, seconds: float) -> dict[str, Any]:
    """Commit transitions at `rate` per second (from a thread of this process, as the API would)
    while a running worker delivers."""
    from models.common import utcnow

    count = max(1, round(rate * seconds))
    committer = Committer(bench.world, count, rate)
    print(f"{name}: {count} transitions at {rate:.1f}/s while the worker runs", flush=True)
    before = bench.mark()
    start = utcnow()
    committer.start()
    wall = wait_drained(bench.reader, committer, [], bench.limit_s)
    committer.join()
    report = phase_report(
        bench,
        name,
        committer.case_ids,
        wall,
        start,
        before,
        {
            "transitions": count,
            "rate_asked": rate,
            "effects_offered_per_s": rate * EFFECTS_PER_CASE / TRANSITIONS_PER_CASE,
            "rate_committed": count / max(committer.ended_at - committer.started_at, 1e-9),
            "committer_max_lag_s": committer.lag_s,
            "commit_ms": {k: v * 1000 for k, v in summary(committer.commit_s).items()},
        },
    )
    print(f"  drained {wall:.1f} s after the first commit", flush=True)
    return report


def pdf_cost(world: World, referral_ids: list[int], repeat: int) -> dict[str, float]:
    """Milliseconds per feedback PDF (the worker's PDF process renders one per e-mail), CPU and wall."""
    from sqlmodel import Session

    from flows.documents import feedback_pdf
    from models.common import utcnow

    wall, cpu = [], []
    size = 0
    with Session(world.engine) as session:
        for i in range(repeat):
            t, c = time.perf_counter(), time.thread_time()
            size = len(feedback_pdf(session, referral_ids[i % len(referral_ids)], utcnow().date()))
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.thread_time() - c) * 1000)
        session.rollback()
    return {"ms_wall_p50": percentile(wall, 50), "ms_cpu_mean": statistics.fmean(cpu), "bytes": size}


def naive_run(world: World, settings: Any, outbox_ids: list[int]) -> list[float]:
    """One synchronous flow run per effect, one after another; seconds per run."""
    from prefect import flow
    from sqlmodel import col, update

    from core.db import session_scope
    from flows import delivery
    from flows.delivery import deliver_chunk
    from models.common import utcnow
    from models.outbox import Outbox, OutboxStatus

    @flow(name="naive_deliver_one", persist_result=False, log_prints=False)
    def deliver_one(outbox_id: int) -> str:
        async def go() -> str:
            delivery.configure(world.engine, settings)  # an httpx client for this event loop
            (result,) = await deliver_chunk([outbox_id], {})
            await delivery.runtime().close()
            return str(result)

        result = asyncio.run(go())
        with session_scope(world.engine) as session:
            session.execute(
                update(Outbox)
                .where(col(Outbox.id) == outbox_id)
                .values(status=OutboxStatus.done, done_at=utcnow(), attempts=Outbox.attempts + 1)
            )
        return result

    times = []
    for outbox_id in outbox_ids:
        t = time.perf_counter()
        deliver_one(outbox_id)
        times.append(time.perf_counter() - t)
    return times


def naive_phase(bench: Bench, settings: Any, effects: int) -> dict[str, Any]:
    from sqlmodel import Session, col, select

    from models.outbox import Outbox, OutboxStatus

    cases, _ = commit_cases(bench.world, math.ceil((effects + 1) / EFFECTS_PER_CASE))
    with Session(bench.reader) as session:
        ids = [
            i
            for i in session.exec(
                select(Outbox.id)
                .where(col(Outbox.case_id).in_(cases), Outbox.status == OutboxStatus.pending)
                .order_by(col(Outbox.id))
            )
            if i is not None
        ][: effects + 1]
    print(f"naive: {len(ids)} synchronous flow runs, one per effect (the first not counted)", flush=True)
    times = naive_run(bench.world, settings, ids[:1])  # warm-up
    before = bench.mark()
    times = naive_run(bench.world, settings, ids[1:])
    received = bench.sink.counts()
    sent = outcome(bench.reader, cases).sent
    report = {
        "phase": "naive",
        "effects": len(times),
        "deliveries_sent_incl_warmup": sent,
        "run_s": summary(times),
        "total_s": sum(times),
        "effects_per_s": len(times) / sum(times),
        "received_by_peers": {k: v - before[1].get(k, 0) for k, v in received.items()},
        **cpu_report(before[0], cpu_snapshot(bench.pids), len(times)),
    }
    print(f"  {len(times)} runs in {sum(times):.1f} s", flush=True)
    return report


def machine_with_prefect() -> dict[str, Any]:
    import prefect

    return {
        **machine(),
        "prefect": prefect.__version__,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="earlyhelp-bench-effects-"))
    (tmp / "server").mkdir()
    (tmp / "client").mkdir()
    try:
        with (
            peers() as sink,
            prefect_server(tmp / "server", args.prefect_database) as (
                api_url,
                server_pid,
                server_start_s,
            ),
        ):
            print(f"prefect server healthy after {server_start_s:.1f} s at {api_url}", flush=True)
            # Prefect reads its settings on first import: point this process at the server first.
            os.environ["PREFECT_API_URL"] = api_url
            os.environ["PREFECT_HOME"] = str(tmp / "client")
            os.environ["PREFECT_LOGGING_LEVEL"] = args.prefect_log_level
            os.environ["PREFECT_LOGGING_TO_API_ENABLED"] = "false"
            os.environ["EARLYHELP_VAR_DIR"] = str(tmp)
            pids = Pids(prefect_server=server_pid, peers=sink.process.pid)
            return measure(args, tmp, sink, pids, server_start_s)
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in (tmp / "worker.log", tmp / "server" / "server.log"):
                if log.exists():
                    shutil.copy(log, args.keep_logs / log.name)
        shutil.rmtree(tmp, ignore_errors=True)


def measure(
    args: argparse.Namespace, tmp: Path, sink: Peers, pids: Pids, server_start_s: float
) -> dict[str, Any]:
    from sqlalchemy import create_engine, func
    from sqlmodel import Session, col, select

    from core.config import Settings
    from models.outbox import Delivery, DeliveryStatus
    from models.referrals import Referral

    url = f"sqlite:///{tmp / 'earlyhelp.db'}"
    zone = daytime_zone()
    world = seed(url, sink, zone)
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": url,
        "EARLYHELP_VAR_DIR": str(tmp),
        "EARLYHELP_SECRET_KEY": SECRET,
        "EARLYHELP_SMTP_HOST": "127.0.0.1",
        "EARLYHELP_SMTP_PORT": str(sink.smtp_port),
        "EARLYHELP_SMS_GATEWAY_URL": sink.url("/sms"),
        "EARLYHELP_LOG_LEVEL": "DEBUG",  # a line per relay batch with its timings (--keep-logs)
    }
    settings = Settings(
        database_url=url,
        var_dir=tmp,
        secret_key=SECRET,
        smtp_host="127.0.0.1",
        smtp_port=sink.smtp_port,
        sms_gateway_url=sink.url("/sms"),
    )
    # Polls and tallies read through a plain engine: no BEGIN IMMEDIATE, so they never take the
    # write lock the app's engine takes for every transaction.
    bench = Bench(world, create_engine(url), env, tmp, pids, args.limit, sink)
    report: dict[str, Any] = {
        "machine": machine_with_prefect(),
        "command": " ".join([".venv/bin/python", "bench/effects.py", *sys.argv[1:]]),
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "peers"},
        "settings": {
            "relay_batch_size": settings.relay_batch_size,
            "relay_idle_seconds": settings.relay_idle_seconds,
            "prefect_logging_level": args.prefect_log_level,
            "prefect_server_database": "postgresql" if args.prefect_database else "sqlite",
        },
        "prefect_server_start_s": server_start_s,
        "region_timezone": zone,
    }

    phases: dict[str, dict[str, Any]] = {}
    with bench.worker():
        # Its first flow runs import and connect what the rest reuse: not part of any phase.
        t = time.perf_counter()
        warm_ids, _ = commit_cases(world, args.warm_cases)
        wait_drained(bench.reader, None, warm_ids, args.limit)
        print(f"warm-up: {len(warm_ids)} cases delivered in {time.perf_counter() - t:.1f} s", flush=True)
        phases["backlog"] = backlog_phase(bench, "backlog", args.cases)
        phases["target_load"] = steady_phase(bench, "target_load", args.rate, args.seconds)
        capacity = phases["backlog"]["effects_per_s"] * TRANSITIONS_PER_CASE / EFFECTS_PER_CASE
        light_rate = args.light_rate or max(0.5, round(capacity / 2, 1))
        phases["light_load"] = steady_phase(bench, "light_load", light_rate, args.light_seconds)
    report["phases"] = phases
    # Requests Prefect's server refused with 503 while the worker ran (the relay re-sends them at
    # once: flows/flow_runs.py; Prefect's client alone would wait 2 s).
    server_log = (tmp / "server" / "server.log").read_text(errors="replace")
    report["prefect_server_503s"] = server_log.count("Encountered retryable exception")

    with Session(bench.reader) as session:
        referral_ids = [
            r for r in session.exec(select(Referral.id).order_by(col(Referral.id)).limit(20)) if r is not None
        ]
    pdf = pdf_cost(world, referral_ids, 40)
    backlog = phases["backlog"]
    pdfs = backlog["rows_done"] // EFFECTS_PER_CASE * 2  # two feedback e-mails per case
    report["pdf"] = {
        **pdf,
        "pdfs_in_backlog": pdfs,
        "share_of_backlog_span": pdfs * pdf["ms_cpu_mean"] / 1000 / backlog["span_s"],
    }

    report["naive"] = naive_phase(bench, settings, args.naive)

    # Did the peers receive what the database says was sent (every phase, the warm-up too)?
    counts = sink.counts()
    with Session(bench.reader) as session:
        recorded = dict(
            session.exec(
                select(Delivery.channel, func.count())
                .where(Delivery.status == DeliveryStatus.sent)
                .group_by(col(Delivery.channel))
            ).all()
        )
    report["received_by_peers"] = counts
    report["recorded_sent"] = recorded
    report["peers_agree"] = (
        counts.get("email", 0) == recorded.get("email", 0)
        and counts.get("/sms", 0) == recorded.get("sms", 0)
        and counts.get("/hook/provider", 0) == recorded.get("webhook", 0)
    )

    rate = backlog["effects_per_s"]
    ratio = rate / report["naive"]["effects_per_s"]
    p95 = phases["target_load"]["commit_to_delivery_s"]["p95"]
    report["targets"] = {
        "effects_per_s": {
            "target": TARGET_EFFECTS_PER_S,
            "backlog": rate,
            "met": rate >= TARGET_EFFECTS_PER_S,
        },
        "ratio_to_naive": {"target": TARGET_RATIO, "value": ratio, "met": ratio >= TARGET_RATIO},
        "p95_commit_to_delivery_s": {
            "target": TARGET_P95_S,
            "at_target_load": p95,
            "met": p95 <= TARGET_P95_S,
        },
    }
    return report


def print_table(report: dict[str, Any]) -> None:
    def lat(d: dict[str, float]) -> str:
        return f"{d['p50']:6.2f} {d['p95']:6.2f} {d['max']:6.2f}"

    print()
    print(
        f"{'phase':21} {'rows':>5} {'sent':>5} {'fail':>4} {'span s':>7} {'eff/s':>6} {'dlv/s':>6}"
        f"  {'commit→delivery s':>20}  {'CPU ms/effect':>23}  {'others':>6}"
    )
    print(
        f"{'':21} {'':>5} {'':>5} {'':>4} {'':>7} {'':>6} {'':>6}  {'p50    p95    max':>20}"
        f"  {'worker commit server peers':>23}  {'':>6}"
    )
    for name, p in report["phases"].items():
        cpu = p["cpu_ms_per_effect"]
        print(
            f"{name:21} {p['outbox_rows']:5d} {p['deliveries_sent']:5d} {p['rows_failed']:4d}"
            f" {p['span_s']:7.2f} {p['effects_per_s']:6.1f} {p['deliveries_per_s']:6.1f}"
            f"  {lat(p['commit_to_delivery_s']):>20}"
            f"  {cpu['worker']:6.1f} {cpu['committer']:6.1f} {cpu['prefect_server']:6.1f}"
            f" {cpu['peers']:5.1f}  {p['others_share']:6.0%}"
        )
    n = report["naive"]
    cpu = n["cpu_ms_per_effect"]
    print(
        f"{'naive (1 sync flow/eff)':21} {n['effects']:5d} {'':5} {'':4} {n['total_s']:7.2f}"
        f" {n['effects_per_s']:6.2f} {'':6}  {'(' + format(n['run_s']['p50'], '.2f') + ' s per run)':>20}"
        f"  {cpu['committer']:6.0f} {'':6} {cpu['prefect_server']:6.0f} {cpu['peers']:5.1f}"
        f"  {n['others_share']:6.0%}"
    )
    print("(naive: the flows run in this process; its CPU is shown in the worker column)")
    print("(others: share of the machine's CPU used by processes outside this benchmark during the phase)")
    for name in ("target_load", "light_load"):
        s = report["phases"][name]
        print(
            f"{name}: asked {s['rate_asked']:.1f} transitions/s ({s['effects_offered_per_s']:.0f} effects/s),"
            f" committed {s['rate_committed']:.1f}/s; commit p50 {s['commit_ms']['p50']:.1f} ms,"
            f" p95 {s['commit_ms']['p95']:.1f} ms"
        )
    pdf = report["pdf"]
    print(
        f"feedback PDF: {pdf['ms_cpu_mean']:.1f} ms CPU each ({pdf['bytes']} bytes);"
        f" {pdf['pdfs_in_backlog']} in the backlog ≈ {pdf['share_of_backlog_span']:.0%} of its span"
    )
    print(f"Prefect's server answered 503 (database locked) {report['prefect_server_503s']} times")
    print(
        f"peers received {report['received_by_peers']}; recorded as sent {report['recorded_sent']};"
        f" agree: {report['peers_agree']}"
    )
    t = report["targets"]

    def verdict(met: bool) -> str:
        return "MET" if met else "MISSED"

    print(
        f"\ntargets: ≥{t['effects_per_s']['target']:.0f} effects/s (backlog):"
        f" {t['effects_per_s']['backlog']:.1f} {verdict(t['effects_per_s']['met'])};"
        f" ≥{t['ratio_to_naive']['target']:.0f}× naive: {t['ratio_to_naive']['value']:.1f}×"
        f" {verdict(t['ratio_to_naive']['met'])};"
        f" p95 ≤{t['p95_commit_to_delivery_s']['target']:.0f} s (at target load):"
        f" {t['p95_commit_to_delivery_s']['at_target_load']:.2f} s"
        f" {verdict(t['p95_commit_to_delivery_s']['met'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=170, help="backlog cases, 6 effects each (170)")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="transitions/s at target load (50: 100 effects/s)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the target-load phase")
    parser.add_argument(
        "--light-rate", type=float, default=0.0, help="transitions/s at light load (0: half the capacity)"
    )
    parser.add_argument("--light-seconds", type=float, default=10.0, help="length of the light-load phase")
    parser.add_argument("--warm-cases", type=int, default=10, help="cases delivered before measuring")
    parser.add_argument("--naive", type=int, default=20, help="effects delivered the naive way")
    parser.add_argument("--limit", type=float, default=300.0, help="give up a phase after this long")
    parser.add_argument(
        "--prefect-log-level", default="WARNING", help="PREFECT_LOGGING_LEVEL of this process"
    )
    parser.add_argument(
        "--wait-idle", type=float, default=0.0, help="first wait up to this long for an idle machine"
    )
    parser.add_argument(
        "--prefect-database",
        default=None,
        help="the Prefect server's database: a PostgreSQL URL (dropped and created), or its own SQLite",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-logs", type=Path, default=None, help="copy the worker's and Prefect server's logs here"
    )
    parser.add_argument("--peers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # A script's own directory comes first on sys.path, and bench/transitions.py would shadow the
    # pytransitions package the app imports: move it to the end. Not dropped: the PDF process is
    # spawned, re-imports this script, and needs benchlib from bench/.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.append(sys.path.pop(0))
    if args.peers:
        run_peers()
        return
    if args.wait_idle:
        print(f"waiting (at most {args.wait_idle:.0f} s) for the machine to be idle", flush=True)
        idle = wait_idle(args.wait_idle, threshold=0.2)
        print(f"  busy: {idle['cpu_busy_at_start']:.0%} after {idle['waited_s']} s", flush=True)
    report = run(args)
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
