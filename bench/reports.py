"""Benchmark: the yearly report over 100 000 journeys and the registries' search (issue 12).

What it measures, on SQLite and PostgreSQL, on a region of ``--n`` (100 000) journeys:

* **The yearly report** (form 1-РП) of ``--year`` (last year by default), end to end, as the flow's
  tasks do it (flows/reports.py), called directly: *statistics* (``api.services.statistics.compute``),
  *form* (``statistics.suppress``, ``flows.reports.extras`` and ``build_form`` for the full and the
  analyst's copy), *xlsx* and *pdf* (``flows.report_files``, both copies). One cold run, then
  ``--runs`` (3), each step timed with ``time.perf_counter``; the table shows the best and the median
  of the total and of each step. Then once through the Prefect flow (``--no-flow`` skips it): a
  queued ``ReportRun`` claimed and run by ``flows.reports.run_report`` as the worker does, on a
  temporary Prefect server (``prefect_test_harness``; its start-up is not counted), timed from the
  call to its return and by stage (the flow's progress hook). A median over the 10 s target (or
  ``--profile``) is profiled (cProfile, the top functions go to the JSON) and its slowest SQL
  statements are EXPLAINed.
* **The public provider registry** (no login): ``GET /api/v1/public/regions/{code}/providers`` and
  the region's page ``/public/{code}``, ``--requests`` (300) requests each, cycling through filters
  (none, a municipality with many providers and one with few, a form, a name fragment ``q``,
  combinations, ``age_months``) over every seeded region, each timed on its own through the app in
  this process (``fastapi.testclient.TestClient``: no sockets; the client adds ~1 ms).
* **The target-group registry** as the region's РРМЦ supervisor: ``GET /api/v1/registry/children``
  (an API token) and the page ``/registry`` (a session cookie), ``--requests`` each, cycling through
  19 filters (each category, a criterion, a municipality, a state, a provider, referral and opening
  dates, a name prefix, the sorts, page 20, and five filters at once).

p50/p95/max per search, per path (the public search per region) and p50 per filter; when a p95
misses the 50 ms target (or ``--profile``), the slowest filter's statements with their plans
(``EXPLAIN QUERY PLAN`` / ``EXPLAIN (ANALYZE, BUFFERS)``). A search whose route is not there is
reported as missing.

Data: the generated region of the statistics' tests (``tests/region_gen.py``, ``generate(n=--n,
seed=--seed, providers=--gen-providers, keep=False)``): journeys with their history, conclusions,
ИПРП, sessions by form, deadlines met and late, transfers and routings, referred over two years
(2024-2025). On top of it, bulk-inserted here: ``--providers`` (1 200) public providers over the
generated region (about half of them) and ``--regions`` (3) more regions, with municipalities,
forms, ages and free places; the generated region's own providers get those fields too.
``--data pages`` uses bench/pages.py's seeding instead (one region; no transfers or routings).

The seeded database is cached like ``bench/pages.py``'s: the SQLite file under ``var/bench/`` (its
name is the seed key), and the PostgreSQL database ``--postgres-db`` (``eh_bench_reports``; its
COMMENT holds the key). The key includes a digest of every migration file and of the generator, so
the cache is rebuilt when either changes (or with ``--reseed``). Each run measures a copy (a file
copy; ``CREATE DATABASE ... TEMPLATE``), dropped at the end. Before measuring each backend the
script waits (up to ``--wait-idle`` s, 600) for the machine to be idle (``benchlib.wait_idle``) and
records what it found, with the load average.

Run (seeding 2-4 minutes per database the first time; then about 2 minutes each, plus the wait)::

    .venv/bin/python bench/reports.py
    .venv/bin/python bench/reports.py --sqlite-only --n 5000 --runs 1 --requests 50

It prints a table and writes ``bench/results/reports.json``; ``--markdown bench/results/reports.json``
prints that as the Markdown table of bench/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchlib import machine, wait_idle

# overdue.py imports the same way; transitions.py would shadow the pytransitions package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import overdue
import pages
from fastapi.testclient import TestClient
from pagelist import route_exists
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from api.main import create_app
from api.security import new_api_token
from core.config import Settings
from core.db import make_engine, reads_engine, session_scope
from core.migrate import upgrade
from models.children import Child
from models.organisations import Region
from models.users import ApiToken, User

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reports.json"
CACHE = ROOT / "var" / "bench"
GENERATOR = ROOT / "tests" / "region_gen.py"
SECRET = overdue.SECRET
REPORT_TARGET_S = 10.0
P95_TARGET_MS = 50.0
API = "/api/v1"
# Bump when what this script seeds changes: the cached databases are then rebuilt.
SEED_VERSION = 1


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class NotLanded(RuntimeError):
    """A part of issue 12 this bench needs is not on main (yet): what is missing."""


# --------------------------------------------------------------------------------------------
# Cached seeded databases
# --------------------------------------------------------------------------------------------


def code_digest() -> str:
    """The migrations' and the generator's contents: the cache is rebuilt when they change."""
    digest = hashlib.sha256(json.dumps(pages.migration_digests(), sort_keys=True).encode())
    if GENERATOR.exists():
        digest.update(GENERATOR.read_bytes())
    return digest.hexdigest()[:12]


def seed_key(args: argparse.Namespace) -> str:
    return (
        f"reports-v{SEED_VERSION}-{args.data}-n{args.n}-seed{args.seed}-gp{args.gen_providers}"
        f"-prov{args.providers}-reg{args.regions}"
        f"-{code_digest()}"
    )


class CachedSqlite(pages.CachedSqlite):
    def cached(self) -> bool:
        # The sidecar is written last (mark): a file without it is a seeding that failed.
        return self.template.exists() and self.sidecar.exists()


def ensure_seeded(
    backend: pages.CachedSqlite | pages.CachedPostgres, args: argparse.Namespace
) -> dict[str, Any]:
    key = seed_key(args)
    if backend.cached() and not args.reseed:
        log(f"{backend.name}: seeded database found ({key})")
        return {"cached": True, "key": key}
    backend.clear()
    if isinstance(backend, pages.CachedSqlite):
        # Older keys' files of this size (an earlier migration or generator) are of no more use: 0.5 GB each.
        for old in CACHE.glob(f"reports-*-n{args.n}-*.db"):
            if old != backend.template:
                for path in (
                    old,
                    Path(f"{old}-wal"),
                    Path(f"{old}-shm"),
                    old.with_suffix(".migrations.json"),
                ):
                    path.unlink(missing_ok=True)
    url = backend.template_url()
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        log(f"{backend.name}: generating a region of {args.n} journeys ({args.data})")
        generated = generate_region(engine, args)
        generated_s = time.perf_counter() - started
        log(f"{backend.name}: generated in {generated_s:.0f} s: {generated}")
        providers = seed_providers(engine, args)
        log(f"{backend.name}: public providers: {providers}")
        overdue.analyse(engine)
        rows = table_counts(engine)
    finally:
        engine.dispose()
    backend.mark(key, pages.migration_digests())
    return {
        "cached": False,
        "key": key,
        "seconds": round(time.perf_counter() - started, 1),
        "generator_seconds": round(generated_s, 1),
        "generated": generated,
        "providers": providers,
        "rows": rows,
    }


def table_counts(engine: Engine) -> dict[str, int]:
    from sqlmodel import SQLModel

    wanted = ("child", "case", "case_history", "referral", "deadline", "service_session", "organisation")
    counts: dict[str, int] = {}
    with Session(engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in wanted:
                counts[table.name] = int(
                    session.execute(select(func.count()).select_from(table)).scalar_one()
                )
    return counts


# --------------------------------------------------------------------------------------------
# Data: the generated region (part C) and the public providers (part A)
# --------------------------------------------------------------------------------------------


def generate_region(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """The statistics tests' generated region, at `args.n` journeys (or bench/pages.py's seeding)."""
    if args.data == "pages" or not GENERATOR.exists():
        return seed_like_pages(engine, args)
    # tests/ is not an installed package: the checkout's root on the path finds it.
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from tests import region_gen

    # keep=False: the plan without its journeys (100 000 of them need not stay in memory).
    plan = region_gen.generate(engine, n=args.n, seed=args.seed, providers=args.gen_providers, keep=False)
    return {
        "source": "tests/region_gen.py",
        "region": plan.region_code,
        "providers": len(plan.provider_ids),
        "referrals": f"{plan.first_day} .. {plan.last_day}",
        "now": plan.now.isoformat(),
        "cases_by_state": cases_by_state(engine),
    }


def cases_by_state(engine: Engine) -> dict[str, int]:
    from models.cases import Case

    with Session(engine) as session:
        return {
            str(state): int(count)
            for state, count in session.execute(
                select(col(Case.state), func.count()).group_by(col(Case.state)).order_by(col(Case.state))
            )
        }


def seed_like_pages(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """bench/pages.py's 100 000 cases (overdue.py's children, referrals, cases and deadlines; then the
    history, conclusions, ИПРП and sessions): one region, no transfers or routings, one criterion."""

    class Into(overdue.SqliteBackend):
        # overdue.seed() migrates and fills the backend's template URL: the engine's database here.
        def __init__(self) -> None:
            self.name = engine.dialect.name

        def template_url(self) -> str:
            return engine.url.render_as_string(hide_password=False)

    options = argparse.Namespace(
        cases=args.n,
        seed=args.seed,
        curators=max(1, min(1000, args.n // 100)),
        closed_share=0.35,
        overdue_share=0.3,
        fire_share=0.01,
    )
    seeded = overdue.seed(Into(), options)
    more = pages.seed_more(engine, options)
    return {"source": "bench/pages.py's seeding", "rows": {**seeded.rows, **more}}


PROVIDER_NAMES = [
    "Центр ранней помощи «Солнышко»",
    "Служба ранней помощи при детской поликлинике",
    "Реабилитационный центр для детей «Радуга»",
    "Центр психолого-педагогической, медицинской и социальной помощи",
    "Детский сад комбинированного вида, консультационный пункт",
    "Автономная некоммерческая организация «Шаг навстречу»",
    "Комплексный центр социального обслуживания населения",
    "Благотворительный фонд «Вместе»",
]
STREETS = ["ул. Ленина", "ул. Гагарина", "пр. Мира", "ул. Садовая", "ул. Школьная", "ул. Молодёжная"]
MUNICIPALITY_WORDS = [
    "Центральный",
    "Северный",
    "Южный",
    "Заречный",
    "Лесной",
    "Озёрный",
    "Приморский",
    "Степной",
    "Горный",
    "Речной",
    "Луговой",
    "Сосновый",
    "Берёзовский",
    "Каменский",
    "Никольский",
    "Троицкий",
]
FORMS = ["in_person", "remote", "home", "group"]


def municipalities(rng: random.Random, count: int) -> list[str]:
    names = [f"{w} район" for w in MUNICIPALITY_WORDS] + [f"г. {w}ск" for w in MUNICIPALITY_WORDS]
    return rng.sample(names, min(count, len(names)))


def seed_providers(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """`args.providers` public providers over the generated region and `args.regions` more regions,
    bulk-inserted with the public registry's fields (part A's columns of `organisation`)."""
    from sqlalchemy import insert

    from models.organisations import Organisation

    rng = random.Random(args.seed + 2)
    columns = set(Organisation.__table__.c.keys())  # type: ignore[attr-defined]
    if "municipality" not in columns:
        raise NotLanded("the public registry's columns of organisation (part A) are not on main")
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        first = main_region(session)
        # The journeys' municipalities, and more: a region has more of them than the generator's four.
        known = sorted(
            m
            for (m,) in session.execute(
                select(col(Child.municipality)).where(col(Child.region_id) == first.id).distinct()
            )
            if m
        )
        places = known + [m for m in municipalities(rng, 12) if m not in known]
        regions: list[tuple[int, list[str]]] = [(first.id or 0, places)]
        # The journeys' own providers get the public fields too (they have none from the generator).
        for org in session.execute(
            select(Organisation).where(
                col(Organisation.region_id) == first.id, col(Organisation.kind) == "provider"
            )
        ).scalars():
            org.municipality = (org.service_area or [places[0]])[0]
            org.forms = sorted(rng.sample(FORMS, rng.randint(1, 4)), key=FORMS.index)
            org.age_from_months, org.age_to_months = 0, 36
            org.free_places = rng.randint(0, 40)
            org.free_places_updated_at = now
        for number in range(1, args.regions + 1):
            region = Region(code=f"bench{number}", name=f"Область № {number}", timezone="Europe/Moscow")
            session.add(region)
            session.flush()
            regions.append((region.id or 0, municipalities(rng, rng.randint(8, 30))))
        # The generated region holds about half of them: it is the one searched most.
        weights = [3.0] + [1.0] * args.regions
        rows: list[dict[str, Any]] = []
        per_region: dict[int, int] = {}
        for index in range(args.providers):
            region_id, places = rng.choices(regions, weights=weights)[0]
            per_region[region_id] = per_region.get(region_id, 0) + 1
            place = rng.choice(places)
            forms = sorted(rng.sample(FORMS, rng.randint(1, 4)), key=FORMS.index)
            age_from = rng.choice([0, 0, 0, 3, 6, 12])
            row = {
                "region_id": region_id,
                "name": f"{rng.choice(PROVIDER_NAMES)} № {index + 1}",
                "kind": "provider",
                "inn": None,
                "email": f"provider{index + 1}@example.org",
                "phone": f"+7 800 {index % 1000:03d}-{index % 100:02d}-00",
                "address": f"{place}, {rng.choice(STREETS)}, д. {rng.randint(1, 120)}",
                "webhook_url": None,
                "webhook_secret": None,
                "service_area": rng.sample(places, rng.randint(1, min(4, len(places))))
                if rng.random() < 0.7
                else [],
                "is_active": True,
                "created_at": now,
                "municipality": place,
                "ownership": "state" if rng.random() < 0.7 else "non_state",
                "site": f"https://provider{index + 1}.example.org" if rng.random() < 0.6 else None,
                "forms": forms,
                "age_from_months": age_from,
                "age_to_months": rng.choice([36, 36, 48, 84]),
                "free_places": rng.randint(0, 40) if rng.random() < 0.8 else None,
                "free_places_updated_at": now if rng.random() < 0.8 else None,
                "working_hours": "пн–пт 9:00–18:00",
                "public_note": None,
                "is_public": rng.random() < 0.97,
            }
            rows.append({k: v for k, v in row.items() if k in columns})
        for start in range(0, len(rows), overdue.BATCH):
            session.execute(insert(Organisation), rows[start : start + overdue.BATCH])
    return {"providers": len(rows), "per_region": per_region}


def main_region(session: Session) -> Region:
    """The region of the journeys: the one with the most children."""
    region_id = session.execute(
        select(col(Child.region_id)).group_by(col(Child.region_id)).order_by(func.count().desc()).limit(1)
    ).scalar_one()
    region = session.get(Region, region_id)
    assert region is not None
    return region


# --------------------------------------------------------------------------------------------
# The yearly report (parts C and D)
# --------------------------------------------------------------------------------------------


@dataclass
class Subject:
    """What the measurements run on, picked in the measured copy."""

    region_id: int
    region_code: str
    year: int
    start: date
    end: date
    values: dict[str, Any] = field(default_factory=dict)
    reads: Engine | None = None  # the read-only engine beside the measured one (core.db.reads_engine)


def report_steps(engine: Engine, subject: Subject) -> list[tuple[str, Callable[[Any], Any]]]:
    """The yearly report's steps as the flow's tasks do them (flows/reports.py), called directly,
    each given the previous step's result (a step returning bytes passes its input on):
    statistics: C's exact statistics of the year (api/services/statistics.compute);
    form: the analyst's suppressed copy (statistics.suppress), the ages and providers the statistics
      do not hold (flows.reports.extras, twice) and the form's rows (build_form, twice);
    xlsx, pdf: both forms (full and suppressed) as XLSX and as PDF (flows/report_files.py)."""
    from api.services import statistics as stats_service
    from flows import reports as report_flow
    from flows.report_files import build_form, form_pdf, form_xlsx
    from standards import load_standard

    min_cell = load_standard(subject.region_code).statistics.min_cell
    made_on, due_on = date(subject.year + 1, 1, 15), date(subject.year + 1, 4, 15)
    reads = subject.reads or reads_engine(engine)
    subject.reads = reads

    def compute(_: Any) -> Any:
        with Session(reads) as session:
            return stats_service.compute(session, subject.region_id, subject.start, subject.end)

    def form(exact: Any) -> Any:
        hidden = stats_service.suppress(exact, min_cell)
        with Session(reads) as session:
            full_extras = report_flow.extras(
                session, subject.region_id, subject.start, subject.end, min_cell, False
            )
            hidden_extras = report_flow.extras(
                session, subject.region_id, subject.start, subject.end, min_cell, True
            )
        return (
            build_form(exact, full_extras, subject.year, made_on, due_on),
            build_form(hidden, hidden_extras, subject.year, made_on, due_on),
        )

    def xlsx(forms: Any) -> bytes:
        return b"".join(form_xlsx(f) for f in forms)

    def pdf(forms: Any) -> bytes:
        return b"".join(form_pdf(f) for f in forms)

    return [("statistics", compute), ("form", form), ("xlsx", xlsx), ("pdf", pdf)]


def run_report(engine: Engine, subject: Subject, *, profile: bool = False) -> dict[str, Any]:
    steps = report_steps(engine, subject)
    timings: dict[str, float] = {}
    sizes: dict[str, int] = {}
    profiler = cProfile.Profile() if profile else None
    result: Any = None
    started = time.perf_counter()
    for name, step in steps:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        result_next = step(result)
        if profiler:
            profiler.disable()
        timings[name] = time.perf_counter() - t0
        if isinstance(result_next, bytes | bytearray):
            sizes[name] = len(result_next)
        else:
            result = result_next
    total = time.perf_counter() - started
    row: dict[str, Any] = {
        "total_s": round(total, 3),
        "steps_s": {k: round(v, 3) for k, v in timings.items()},
    }
    row["bytes"] = sizes
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        row["profile"] = out.getvalue().splitlines()[:80]
    return row


def measure_report(engine: Engine, subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    # The report reads through core.db.reads_engine (as the flow does): time the statements of both.
    subject.reads = subject.reads or reads_engine(engine)
    try:
        with overdue.statement_timer(engine) as writes, overdue.statement_timer(subject.reads) as seen:
            first = run_report(engine, subject)
    except NotLanded as missing:
        return {"status": "missing", "why": str(missing)}
    if subject.reads is not engine:
        seen += writes
    first["sql"] = slowest(seen, engine, explain=False)
    log(f"report: first (cold) run {first['total_s']} s {first['steps_s']}; SQL {first['sql']['seconds']} s")
    for number in range(args.runs):
        row = run_report(engine, subject)
        log(f"report run {number + 1}: {row['total_s']} s {row['steps_s']}")
        runs.append(row)
    totals = [r["total_s"] for r in runs] or [first["total_s"]]
    steps = list(first["steps_s"])
    result: dict[str, Any] = {
        "status": "ok",
        "year": subject.year,
        "first": first,
        "runs": runs,
        "best_s": min(totals),
        "median_s": round(statistics.median(totals), 3),
        "steps_median_s": {
            s: round(statistics.median([r["steps_s"][s] for r in runs or [first]]), 3) for s in steps
        },
        "steps_best_s": {s: round(min(r["steps_s"][s] for r in runs or [first]), 3) for s in steps},
    }
    if result["median_s"] >= REPORT_TARGET_S or args.profile:
        log("report: profiling one run (cProfile) and EXPLAINing its slowest statements")
        with overdue.statement_timer(subject.reads) as seen:
            profiled = run_report(engine, subject, profile=True)
        result["profile"] = profiled["profile"]
        result["profiled_sql"] = slowest(seen, engine, explain=True)
    if args.flow:
        result["flow"] = measure_flow(engine, subject)
    return result


def measure_flow(engine: Engine, subject: Subject) -> dict[str, Any]:
    """One run of the yearly report through its Prefect flow, as the worker runs it: a queued
    ReportRun claimed, then flows.reports.run_report (statistics → XLSX → PDF → stored → the РРМЦ
    told, with progress on the row and in a Prefect artifact), on a temporary Prefect server
    (prefect_test_harness; its start-up is not counted)."""
    import asyncio

    from prefect.testing.utilities import prefect_test_harness

    from flows import reports as report_flow
    from models.reports import ReportKind, ReportRun

    log("report: starting a temporary Prefect server for one flow run")
    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=180):
        server_s = time.perf_counter() - t0
        with session_scope(engine) as session:
            run = ReportRun(kind=ReportKind.form_1rp, region_id=subject.region_id, year=subject.year)
            session.add(run)
            session.flush()
            run_id = run.id or 0
        worker = "bench-reports"
        if not report_flow.claim(engine, run_id, worker):
            return {"status": "not claimed"}
        # The flow reports each stage as it starts (the CLI's --wait hook): the time between them.
        marks: list[tuple[str, float]] = []

        def on_progress(_run: int, _progress: int, stage: str) -> None:
            marks.append((stage, time.perf_counter()))

        started = time.perf_counter()
        status = asyncio.run(
            report_flow.run_report(engine, run_id, worker, "http://127.0.0.1:8000", on_progress)
        )
        seconds = time.perf_counter() - started
        ends = [t for _, t in marks[1:]] + [started + seconds]
        stages = {stage: round(end - t, 3) for (stage, t), end in zip(marks, ends, strict=True)}
    with Session(engine) as session:
        done = session.get(ReportRun, run_id)
        assert done is not None
        row = {
            "status": "ok" if status == "done" else f"run {status}: {done.error}",
            "seconds": round(seconds, 3),
            "prefect_server_start_s": round(server_s, 1),
            "run_started_to_finished_s": round((done.finished_at - done.started_at).total_seconds(), 3)
            if done.finished_at and done.started_at
            else None,
            "before_first_stage_s": round(marks[0][1] - started, 3) if marks else None,
            "stages_s": stages,
            "xlsx_bytes": done.xlsx_size,
            "pdf_bytes": done.pdf_size,
        }
    log(f"report through the flow: {row}")
    return row


def slowest(seen: list[tuple[str, str, Any, float]], engine: Engine, *, explain: bool) -> dict[str, Any]:
    ordered = sorted(seen, key=lambda s: -s[3])[:5]
    return {
        "statements": len(seen),
        "seconds": round(sum(s[3] for s in seen), 3),
        "slowest": [
            {
                "ms": round(seconds * 1000, 1),
                "sql": " ".join(sql.split())[:600],
                **(
                    {"plan": overdue.explain(engine, sql, params)}
                    if explain and sql.lstrip().upper().startswith("SELECT")
                    else {}
                ),
            }
            for _kind, sql, params, seconds in ordered
        ],
    }


# --------------------------------------------------------------------------------------------
# Registry searches through the app (parts A and B)
# --------------------------------------------------------------------------------------------


@dataclass
class Probe:
    name: str
    what: str
    path: str
    auth: str | None  # None: no login; "token": the РРМЦ's API token; "cookie": the РРМЦ's session
    variants: list[dict[str, Any]]


def probes(subject: Subject) -> list[Probe]:
    """The searches to time, with filter values found in the copy (see pick_subject)."""
    found: list[Probe] = []
    public: list[dict[str, Any]] = []
    for region in subject.values.get("public_regions", []):
        code, places, words = region["code"], region["municipalities"], region["q"]
        path = f"{API}/public/regions/{code}/providers"
        # The same filters for each region: none, each filter alone, and combined.
        for variant in (
            {},
            {"municipality": places[0]},
            {"municipality": places[-1]},
            {"form": "home"},
            {"form": "remote"},
            {"q": words[0]},
            {"q": words[-1]},
            {"municipality": places[0], "form": "in_person"},
            {"municipality": places[-1], "form": "group", "q": words[0]},
            {"age_months": 18},
        ):
            public.append({"_path": path, **variant})
    if public:
        found.append(Probe("public-api", "public providers API, no login", "", None, public))
        # The region's public page for parents: the same search as a form (its age is not in months).
        page = [
            {
                **{k: v for k, v in variant.items() if k not in ("_path", "age_months")},
                "_path": variant["_path"]
                .replace(f"{API}/public/regions/", "/public/")
                .removesuffix("/providers"),
            }
            for variant in public
        ]
        found.append(Probe("public-page", "public region page, no login", "", None, page))
    v = subject.values
    if v.get("municipalities"):
        year = subject.year
        places, criteria, providers = v["municipalities"], v["criteria"], v["providers"]
        surname: str = v["surname"]
        api = [
            {},
            {"category": "in_need"},
            {"category": "served"},
            {"criterion": criteria[0]},
            {"criterion": criteria[-1], "category": "served"},
            {"municipality": places[0]},
            {"municipality": places[-1], "category": "in_need"},
            {"state": "ipr_implementation"},
            {"state": "completed", "category": "served"},
            {"provider_id": providers[0]},
            {"provider_id": providers[-1], "category": "served"},
            {"referred_from": f"{year}-01-01", "referred_to": f"{year}-12-31"},
            {"opened_from": f"{year}-04-01", "opened_to": f"{year}-06-30", "category": "served"},
            {"q": surname[:3]},
            {"q": surname, "municipality": places[0]},
            {"sort": "-birth_date"},
            {"sort": "newest", "category": "in_need"},
            {"page": 20},
            {
                "category": "served",
                "municipality": places[0],
                "criterion": criteria[0],
                "referred_from": f"{year}-01-01",
                "referred_to": f"{year}-12-31",
            },
        ]
        found.append(
            Probe("registry-api", "target-group registry API, РРМЦ", f"{API}/registry/children", "token", api)
        )
        # The page names the provider filter `provider`.
        page_variants = [
            {("provider" if k == "provider_id" else k): val for k, val in variant.items()} for variant in api
        ]
        found.append(
            Probe("registry-page", "target-group registry page, РРМЦ", "/registry", "cookie", page_variants)
        )
    return found


def measure_probe(
    client: TestClient,
    inapp: overdue.InApp,
    engine: Engine,
    probe: Probe,
    headers: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    rng = random.Random(args.seed)

    def url(params: dict[str, Any]) -> str:
        path = params.get("_path", probe.path)
        query = urlencode(
            {k: v for k, v in params.items() if v not in (None, "") and not k.startswith("_")}, doseq=True
        )
        return f"{path}?{query}" if query else path

    # Each filter once, untimed, with its statements timed: where a slow filter's time goes.
    per_filter_sql: dict[str, Any] = {}
    statuses: dict[str, int] = {}
    for variant in probe.variants:
        with overdue.statement_timer(engine) as seen:
            response = client.get(url(variant), headers=headers)
        statuses[url(variant)] = response.status_code
        per_filter_sql[url(variant)] = seen
    bad = {u: s for u, s in statuses.items() if s != 200}
    if bad:
        return {"status": "not 200", "answers": bad, "what": probe.what}
    for _ in range(args.warmup):
        for variant in probe.variants:
            client.get(url(variant), headers=headers)
    order = [probe.variants[i % len(probe.variants)] for i in range(args.requests)]
    rng.shuffle(order)
    inapp.samples.clear()
    samples: list[float] = []
    by_filter: dict[str, list[float]] = {}
    answers: set[int] = set()
    for variant in order:
        target = url(variant)
        t0 = time.perf_counter()
        response = client.get(target, headers=headers)
        elapsed = time.perf_counter() - t0
        answers.add(response.status_code)
        samples.append(elapsed)
        by_filter.setdefault(target, []).append(elapsed)
    row: dict[str, Any] = {
        "status": "ok" if answers == {200} else f"HTTP {sorted(answers)}",
        "what": probe.what,
        "path": probe.path,
        "requests": len(samples),
        "filters": len(probe.variants),
        **overdue.percentiles(samples),
        "in_app": overdue.percentiles(inapp.samples),
        "by_path": {
            path: {"requests": len(values), **overdue.percentiles(values)}
            for path, values in sorted(by_path(by_filter).items())
        },
        "by_filter_p50_ms": {
            target: round(statistics.median(values) * 1000, 2) for target, values in sorted(by_filter.items())
        },
    }
    if row.get("p95_ms", 0) >= P95_TARGET_MS or args.profile:
        worst = max(by_filter, key=lambda t: statistics.median(by_filter[t]))
        row["slowest_filter"] = worst
        row["slowest_filter_sql"] = slowest(per_filter_sql[worst], engine, explain=True)
    return row


def by_path(by_filter: dict[str, list[float]]) -> dict[str, list[float]]:
    """The samples by path without the query: the public search per region."""
    grouped: dict[str, list[float]] = {}
    for target, values in by_filter.items():
        grouped.setdefault(target.split("?", 1)[0], []).extend(values)
    return grouped


def measure_searches(app: Any, engine: Engine, subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    inapp = overdue.InApp(app)
    with TestClient(inapp) as client:
        auth = credentials(client, engine, subject.values["rrmc_login"])
        for probe in probes(subject):
            path = probe.variants[0].get("_path", probe.path) if probe.variants else probe.path
            if not route_exists(app, path):
                results[probe.name] = {"status": "missing", "what": probe.what, "path": path}
                log(f"{probe.name}: missing (no route for {path})")
                continue
            headers = auth.get(probe.auth or "", {})
            row = measure_probe(client, inapp, engine, probe, headers, args)
            results[probe.name] = row
            if row["status"] == "ok":
                log(
                    f"{probe.name}: p50 {row['p50_ms']} p95 {row['p95_ms']} max {row['max_ms']} ms "
                    f"({row['requests']} requests over {row['filters']} filters)"
                )
            else:
                log(f"{probe.name}: {row['status']} {row.get('answers', '')}")
    return results


def credentials(client: TestClient, engine: Engine, login: str) -> dict[str, dict[str, str]]:
    """The region's РРМЦ supervisor's API token and session cookie (seed_region's: password demo)."""
    with session_scope(engine) as session:
        user = session.execute(select(User).where(col(User.login) == login)).scalar_one()
        token, digest = new_api_token()
        session.add(ApiToken(user_id=user.id or 0, name="bench-reports", token_hash=digest))
    return {
        "token": {"Authorization": f"Bearer {token}"},
        "cookie": {"Cookie": f"eh_session={pages.sign_in(client, login)}"},
    }


# --------------------------------------------------------------------------------------------
# One backend
# --------------------------------------------------------------------------------------------


def pick_subject(engine: Engine, args: argparse.Namespace) -> Subject:
    """The region of the journeys, the report's year, and filter values found in the data."""
    from models.cases import Case
    from models.organisations import Organisation
    from models.referrals import Referral

    with Session(engine) as session:
        region = main_region(session)
        regions = session.execute(select(col(Region.id), col(Region.code)).order_by(col(Region.id))).all()
        public_regions: list[dict[str, Any]] = []
        for region_id, code in regions:
            # The municipality with the most providers and one with the fewest: wide and narrow.
            counted = session.execute(
                select(col(Organisation.municipality), func.count())
                .where(col(Organisation.region_id) == region_id, col(Organisation.municipality).is_not(None))
                .group_by(col(Organisation.municipality))
                .order_by(func.count().desc(), col(Organisation.municipality))
            ).all()
            if counted:
                public_regions.append(
                    {
                        "code": code,
                        "municipalities": [counted[0][0], counted[-1][0]],
                        "providers": sum(n for _, n in counted),
                        # A word in many names, and one in few.
                        "q": ["ранней", "Радуга"],
                    }
                )
        # The registry's filters: the commonest values (wide) and a narrow combination.
        places = [
            m
            for (m,) in session.execute(
                select(col(Child.municipality))
                .where(col(Child.region_id) == region.id)
                .group_by(col(Child.municipality))
                .order_by(func.count().desc())
            )
            if m
        ]
        criteria: dict[str, int] = {}
        for (listed,) in session.execute(select(col(Referral.criteria)).limit(5000)):
            for code in listed or []:
                criteria[code] = criteria.get(code, 0) + 1
        providers = [
            p
            for (p,) in session.execute(
                select(col(Case.provider_id))
                .group_by(col(Case.provider_id))
                .order_by(func.count().desc(), col(Case.provider_id))
            )
        ]
        surname = session.execute(
            select(col(Child.last_name))
            .where(col(Child.region_id) == region.id)
            .group_by(col(Child.last_name))
            .order_by(func.count().desc())
            .limit(1)
        ).scalar_one()
        login = session.execute(
            select(col(User.login))
            .join(Organisation, col(Organisation.id) == col(User.organisation_id))
            .where(col(Organisation.region_id) == region.id, col(Organisation.kind) == "rrmc")
            .where(col(User.role) == "supervisor")
            .order_by(col(User.id))
            .limit(1)
        ).scalar_one()
    year = args.year or (datetime.now(UTC).year - 1)
    return Subject(
        region_id=region.id or 0,
        region_code=region.code,
        year=year,
        start=date(year, 1, 1),
        end=date(year, 12, 31),
        values={
            "public_regions": public_regions,
            "municipalities": places,
            "criteria": sorted(criteria, key=lambda c: -criteria[c]),
            "providers": providers,
            "surname": surname,
            "rrmc_login": login,
        },
    )


def measure(backend_name: str, url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    settings = Settings(
        database_url=url, relay_in_serve=False, secret_key=SECRET, var_dir=workdir, freeze_gc_on_start=True
    )
    load_before = os.getloadavg()
    try:
        subject = pick_subject(engine, args)
        log(f"{backend_name}: yearly report for {subject.year}, region {subject.region_code}")
        report = measure_report(engine, subject, args) if not args.searches_only else {"status": "skipped"}
        app = create_app(settings, engine)
        searches = measure_searches(app, engine, subject, args)
    finally:
        engine.dispose()
    load = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return {
        "subject": {**subject.values, "year": subject.year},
        "load_average": load,
        "report": report,
        "searches": searches,
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def verdict_report(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return row.get("status", "—")
    return "PASS" if row["median_s"] < REPORT_TARGET_S else "MISS"


def verdict_search(row: dict[str, Any]) -> str:
    if row.get("status") != "ok":
        return row.get("status", "—")
    return "PASS" if row["p95_ms"] < P95_TARGET_MS else "MISS"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """[what, target, backend cells…] for the printed and the Markdown table."""
    backends = list(report["backends"])
    rows: list[list[str]] = []

    def report_cell(r: dict[str, Any], key: str | None) -> str:
        if r.get("status") != "ok":
            return r.get("status", "—")
        if key is None:
            return f"{r['best_s']:.2f} / {r['median_s']:.2f} s {verdict_report(r)}"
        return f"{r['steps_best_s'][key]:.2f} / {r['steps_median_s'][key]:.2f} s"

    steps: list[str] = []
    for b in backends:
        r = report["backends"][b]["report"]
        if r.get("status") == "ok":
            steps = steps or list(r["steps_median_s"])
    rows.append(
        ["yearly report, best / median", f"< {REPORT_TARGET_S:.0f} s"]
        + [report_cell(report["backends"][b]["report"], None) for b in backends]
    )
    for step in steps:
        rows.append(
            [f"  step: {step}", ""] + [report_cell(report["backends"][b]["report"], step) for b in backends]
        )
    flows = [report["backends"][b]["report"].get("flow") for b in backends]
    if any(flows):
        rows.append(
            ["  through the Prefect flow, once", ""]
            + [
                (f"{f['seconds']:.2f} s" if f and f.get("status") == "ok" else (f or {}).get("status", "—"))
                for f in flows
            ]
        )
    names: list[str] = []
    for b in backends:
        names += [n for n in report["backends"][b]["searches"] if n not in names]
    for name in names:
        cells = []
        what = name
        for b in backends:
            r = report["backends"][b]["searches"].get(name, {})
            what = r.get("what", what)
            if r.get("status") != "ok":
                cells.append(r.get("status", "—"))
            else:
                cells.append(
                    f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['max_ms']:.1f} ms {verdict_search(r)}"
                )
        rows.append([f"{name}: {what}, p50 / p95 / max", f"p95 < {P95_TARGET_MS:.0f} ms", *cells])
    return rows


def print_table(report: dict[str, Any]) -> None:
    backends = list(report["backends"])
    print()
    print(f"{'':58} {'target':>14}" + "".join(f" {b:>34}" for b in backends))
    for row in table_rows(report):
        print(f"{row[0][:58]:58} {row[1]:>14}" + "".join(f" {c:>34}" for c in row[2:]))
    print()
    for b in backends:
        print(f"{b}: load average before/after {report['backends'][b]['load_average']}")
    print(f"idle: {report['idle']}")


def markdown(report: dict[str, Any]) -> str:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    backends = list(report["backends"])
    lines = [
        "| what | target |" + "".join(f" {names.get(b, b)} |" for b in backends),
        "|---|---|" + "---|" * len(backends),
    ]
    for row in table_rows(report):
        cells = [c.replace("MISS", "**MISS**") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100_000, help="journeys to generate (100000)")
    parser.add_argument("--sqlite-only", action="store_true", help="measure SQLite only")
    parser.add_argument("--postgres-only", action="store_true", help="measure PostgreSQL only")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the yearly report (3)")
    parser.add_argument("--year", type=int, default=0, help="the report's year (default: last year)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per search (300)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes over the filters first (1)")
    parser.add_argument("--no-flow", dest="flow", action="store_false", help="skip the run through the flow")
    parser.add_argument("--searches-only", action="store_true", help="skip the yearly report")
    parser.add_argument(
        "--profile", action="store_true", help="profile and EXPLAIN even what meets its target"
    )
    parser.add_argument("--providers", type=int, default=1200, help="public providers to seed (1200)")
    parser.add_argument(
        "--gen-providers", type=int, default=20, help="providers holding the generated journeys (20)"
    )
    parser.add_argument("--regions", type=int, default=3, help="regions beside the generated one (3)")
    parser.add_argument("--seed", type=int, default=12, help="random seed (12)")
    parser.add_argument(
        "--data",
        choices=["generator", "pages"],
        default="generator",
        help="tests/region_gen.py's region (default), or bench/pages.py's seeding",
    )
    parser.add_argument("--reseed", action="store_true", help="rebuild the cached seeded databases")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin connection used to CREATE DATABASE (default: local postgres)",
    )
    parser.add_argument("--postgres-db", default="eh_bench_reports", help="the cached seeded database's name")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=600.0,
        help="wait up to this many seconds for an idle machine (600)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="print the Markdown table of a results JSON and stop"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    backends = (
        ["sqlite"] if args.sqlite_only else ["postgres"] if args.postgres_only else ["sqlite", "postgres"]
    )
    report: dict[str, Any] = {
        "benchmark": "reports",
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": overdue.code_revision(),
        "machine": machine(),
        "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "postgres_url"
        },
        "timing": "perf_counter around direct calls (report), around each GET through TestClient (searches)",
        "targets": {"report_s": REPORT_TARGET_S, "search_p95_ms": P95_TARGET_MS},
        "backends": {},
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="earlyhelp-bench-reports-") as tmp:
        workdir = Path(tmp)
        for name in backends:
            backend: pages.CachedSqlite | pages.CachedPostgres = (
                CachedSqlite(CACHE / f"{seed_key(args)}.db", workdir)
                if name == "sqlite"
                else pages.CachedPostgres(args.postgres_url, args.postgres_db, seed_key(args))
            )
            try:
                seeding = ensure_seeded(backend, args)
                url = backend.copy("run")
                try:
                    upgrade(url)
                    # Seeding is done; the numbers want a machine others are not busy on.
                    idle = wait_idle(args.wait_idle)
                    log(f"{name}: idle check {idle}")
                    result = measure(name, url, workdir, args)
                finally:
                    backend.drop(url)
                report["backends"][name] = {"seed": seeding, "idle": idle, **result}
                if name == "postgres":
                    report["machine"]["postgres"] = overdue.server_version(backend)  # type: ignore[arg-type]
            finally:
                backend.close()
                if isinstance(backend, pages.CachedPostgres):
                    backend.admin.dispose()
    report["idle"] = {b: report["backends"][b]["idle"] for b in report["backends"]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    print_table(report)
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
