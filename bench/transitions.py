"""Benchmark: latency and throughput of journey transitions through the HTTP API (issue 2).

What it measures, for SQLite and PostgreSQL, on a database holding ``--cases`` cases (10 000):

* ``in-process``: ``POST /api/v1/cases/{id}/events/{event}`` through ``fastapi.testclient.TestClient``
  (the ASGI app in this process, no sockets);
* ``uvicorn``: the same POSTs to a real ``earlyhelp serve`` started as a subprocess on a free
  loopback port, over one keep-alive ``httpx.Client``; plus the time from spawning
  ``earlyhelp serve`` to its first 200 from ``/healthz`` (median of ``--startup-runs`` spawns) and
  the resident memory (VmRSS, ``/proc/<pid>/status``) of the server process and of the processes
  it started (Prefect's temporary server), at start and after the run.

Every measured event is one HTTP POST timed on its own with ``time.perf_counter``; requests are
sequential (one client). Each measured case starts in ``referred`` and walks a realistic journey
(accept → determine_need → approve_ipr → suspend → resume → start_assessment → revise_ipr →
approve_ipr → begin_transition → enrol; ``--steps`` takes a prefix of it, 5 by default). The
client tracks the case version from each response, so there is no extra GET per event. ``events/s``
is measured POSTs divided by the wall time of the measuring loop. A few warm-up cases per mode
(``--warmup``) are fired first and not counted.

The uvicorn mode runs ``earlyhelp serve`` as it ships: with its child ``earlyhelp worker`` (the
outbox relay and the sweeps), which delivers every event's effects through Prefect flows while the
measurement runs, on the same two cores. Before measuring, the bench waits until the relay has
delivered the warm-up's effects (so Prefect's temporary server is up); it reports how many effects
the relay delivered during the measurement and how many were still pending, and clears that backlog
before the next phase. The in-process mode is the API alone (the app process never runs the relay),
and so is ``--no-relay`` (``EARLYHELP_RELAY_IN_SERVE=false``) for the uvicorn mode.

Seeding: a fresh SQLite file in a temporary directory and a fresh PostgreSQL database
(``earlyhelp_bench_<pid>``, dropped at the end), migrated with ``core.migrate.upgrade``. A region
with users of every role comes from ``api.demo.seed_region``; one referral goes through the real
``register()`` and is the reference; for the others, child, representative, personal-data consent
and referral rows are bulk-inserted and each case is opened by the app's own ``open_case``. Every
table is then compared, rows and filled columns, between the reference and a bulk-seeded case, so
seeding fails loudly when ``register()`` starts writing something new. ``--spread`` cases are
walked on to other states through ``statemachines.fire``; the effects of all this history are
marked delivered, so the relay starts idle.

Run (7-11 minutes on 2 cores; ``--wait-idle 600`` first waits for the other work on the machine)::

    .venv/bin/python bench/transitions.py --wait-idle 600
    .venv/bin/python bench/transitions.py --backends sqlite --cases 2000 --events-cases 200 --no-relay

It prints a table and writes ``bench/results/transitions.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchlib import cpu_busy, machine, wait_idle

# This file shares its name with the pytransitions package, and a script's own directory comes first
# on sys.path: move it to the end, or `from transitions import Machine` in the app would import this
# file. (Kept on the path: spawned child processes re-import the script and need benchlib.)
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, insert, or_, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, col, select

from api.demo import need_payload, seed_region
from api.main import create_app
from api.security import new_api_token
from api.services.referrals import register, request_hash
from core.config import Settings
from core.db import make_engine, session_scope
from core.migrate import upgrade
from models.cases import Case, ContactAttempt, ContactChannel
from models.children import (
    Channel,
    Child,
    ChildIn,
    LegalRepresentative,
    Relation,
    RepresentativeIn,
    Sex,
    snils_with_control,
)
from models.common import today_in, utcnow
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import OrgKind
from models.outbox import Outbox, OutboxStatus
from models.referrals import ConsentGiven, MatchStatus, Referral, ReferralCreate
from models.users import ApiToken, User
from statemachines import fire, open_case

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "transitions.json"
EARLYHELP = Path(sys.executable).parent / "earlyhelp"
API = "/api/v1"


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now.

    Family messages wait for the morning during the region's quiet hours (21:00-09:00), so in a
    real zone the relay's work would depend on the hour of the run; at noon it delivers everything.
    """
    offset = 12 - datetime.now(UTC).hour
    offset = offset + 24 if offset < -12 else offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"  # Etc/GMT-3 is UTC+3


REGION = ("demo", "Демонстрационная область", midday_zone())
SECRET = "bench-secret-key-of-sufficient-length-for-hs256"
SQLITE_P95_TARGET_MS = 20.0
RSS_TARGET_MB = 250.0

# --------------------------------------------------------------------------------------------
# The journey each measured case walks
# --------------------------------------------------------------------------------------------

CONCLUSION = "Выявлены трудности в развитии общения; рекомендована ИПРП."
DESTINATION = "МБДОУ «Детский сад № 12 „Солнышко“»"


def ipr_payload(today: date) -> dict[str, Any]:
    return {
        "goals": ["Ребёнок выражает просьбы жестами и словами в повседневных ситуациях"],
        "services": [
            {
                "service_code": "communication_development",
                "specialist_role": "speech_therapist",
                "form": "in_person",
                "count": 24,
                "minutes": 45,
            },
            {"service_code": "family_support", "form": "remote", "count": 6, "minutes": 60},
        ],
        "period_start": today.isoformat(),
        "period_end": (today + timedelta(days=180)).isoformat(),
        "parent_agreement": {"agreed": True, "date": today.isoformat(), "document_ref": "Согласие № 17"},
    }


@dataclass(frozen=True)
class Step:
    event: str
    who: str  # "coordinator" or "curator" of the case's provider
    payload: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def journey(today: date) -> list[Step]:
    """Referred → adaptation through a programme, an assessment, a revision and a suspension (the
    case completes when adaptation ends, months later: not a step a request can take)."""
    return [
        Step("accept", "coordinator"),  # payload: the provider's curator, filled in per case
        Step("determine_need", "coordinator", need_payload("ipr", CONCLUSION)),
        Step("approve_ipr", "curator", ipr_payload(today)),
        Step("suspend", "curator", reason="Госпитализация ребёнка"),
        Step("resume", "curator"),
        Step("start_assessment", "curator", {"kind": "intermediate"}),
        Step("revise_ipr", "curator"),
        Step("approve_ipr", "curator", ipr_payload(today)),
        Step("begin_transition", "curator", {"destination": DESTINATION}),
        Step("enrol", "curator", {"enrolled_on": today.isoformat()}),
    ]


# Paths that bring `--spread` background cases to other states (fired in-process, not measured).
SPREAD_PATHS: list[list[Step]] = [
    [Step("accept", "coordinator")],
    [
        Step("accept", "coordinator"),
        Step("determine_need", "coordinator", need_payload("consultation", CONCLUSION)),
    ],
    [
        Step("accept", "coordinator"),
        Step("determine_need", "coordinator", need_payload("no_need", "Развитие по возрасту.")),
    ],
    [Step("reject", "coordinator", {"reason_code": "outside_service_area"})],
    [Step("accept", "coordinator"), Step("decline", "curator", reason="Семья переезжает")],
    [Step("accept", "coordinator"), Step("mark_lost_contact", "curator")],
]


def spread_path(index: int, today: date) -> list[Step]:
    full = journey(today)
    # ipr_development, ipr_implementation, suspended, ipr_assessment, transition, adaptation
    paths = [*SPREAD_PATHS, full[:2], full[:3], full[:4], full[:6], [*full[:3], full[8]], full]
    return paths[index % len(paths)]


# --------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------

LAST_NAMES = ["Алексеев", "Белов", "Васильев", "Григорьев", "Дмитриев", "Ёлкин", "Жуков", "Зайцев"]
FIRST_NAMES = ["Артём", "Матвей", "Семён", "Фёдор", "Лев", "Марк", "Тимофей", "Иван", "Пётр"]
MIDDLE_NAMES = ["Игоревич", "Сергеевич", "Алексеевич", "Романович", "Николаевич"]
CRITERIA = [["parental_concern"], ["development_features", "health_group_4_5"], ["disabled_child"]]


@dataclass(frozen=True)
class ProviderStaff:
    provider_id: int
    curator_id: int
    coordinator: User
    curator: User
    tokens: dict[str, str]  # "coordinator"/"curator" -> API token


@dataclass
class Seeded:
    url: str
    cases: dict[int, int]  # case id -> provider id, every case still in `referred`
    staff: dict[int, ProviderStaff]  # by provider id
    seconds: float
    spread: int
    total_cases: int


def snils(seed: int) -> str:
    return snils_with_control(200_000_000 + seed * 7919)


def referral_body(seed: int, provider_id: int, today: date) -> ReferralCreate:
    last = LAST_NAMES[seed % len(LAST_NAMES)]
    return ReferralCreate(
        provider_id=provider_id,
        child=ChildIn(
            last_name=last,
            first_name=FIRST_NAMES[seed % len(FIRST_NAMES)],
            middle_name=MIDDLE_NAMES[seed % len(MIDDLE_NAMES)],
            sex=Sex.male,
            birth_date=today - timedelta(days=30 + seed % 850),  # under 3 years on any day of the run
            snils=snils(seed),
            municipality="Центральный район",
        ),
        representatives=[
            RepresentativeIn(
                full_name=f"{last}а Ирина Ивановна",
                relation=Relation.mother,
                phone="+7 900 000-00-00",
                email=f"family{seed}@example.org",
                preferred_channel=Channel.sms,
            )
        ],
        criteria=CRITERIA[seed % len(CRITERIA)],
        consent_personal_data=ConsentGiven(date=today, document_ref=f"Согласие № {seed}"),
    )


def next_id(session: Session, table: type[SQLModel]) -> int:
    column = SQLModel.metadata.tables[table.__tablename__].c.id  # type: ignore[index]
    return int(session.execute(select(func.coalesce(func.max(column), 0))).scalar_one()) + 1


def bulk_referrals(
    session: Session,
    count: int,
    first_seed: int,
    region_id: int,
    providers: list[int],
    referrer: User,
    today: date,
) -> dict[int, int]:
    """`count` referrals as register() stores them; case id -> provider id.

    Child, representative, consent and referral rows are bulk-inserted; each case is opened by the
    app's own `open_case` (case, first history row, outbox rows: whatever that door writes today).
    """
    tables: list[type[SQLModel]] = [Child, LegalRepresentative, Consent, Referral]
    start = {table: next_id(session, table) for table in tables}
    rows: dict[type[SQLModel], list[dict[str, Any]]] = {table: [] for table in tables}
    referral_date = today_in(REGION[2])
    opened: list[tuple[int, int, int]] = []  # child id, referral id, provider id
    for n in range(count):
        seed = first_seed + n
        provider_id = providers[seed % len(providers)]
        body = referral_body(seed, provider_id, today)
        child_id, referral_id = start[Child] + n, start[Referral] + n
        now = utcnow()
        child = Child(id=child_id, region_id=region_id, **body.child.model_dump())
        child.refresh_name_key()
        rows[Child].append(child.model_dump(warnings=False))
        rows[LegalRepresentative].extend(
            LegalRepresentative(
                id=start[LegalRepresentative] + n, child_id=child_id, **r.model_dump()
            ).model_dump(warnings=False)
            for r in body.representatives
        )
        assert body.consent_personal_data is not None
        rows[Consent].append(
            Consent(
                id=start[Consent] + n,
                child_id=child_id,
                kind=ConsentKind.personal_data,
                status=ConsentStatus.given,
                date=body.consent_personal_data.date,
                document_ref=body.consent_personal_data.document_ref,
                recorded_by_id=referrer.id or 0,
                recorded_at=now,
            ).model_dump(warnings=False)
        )
        rows[Referral].append(
            Referral(
                id=referral_id,
                child_id=child_id,
                provider_id=provider_id,
                referring_org_id=referrer.organisation_id,
                created_by_id=referrer.id or 0,
                created_by_org_id=referrer.organisation_id,
                criteria=body.criteria,
                referral_date=referral_date,
                case_id=None,  # set below, once the case exists (as register() does)
                linked_to_existing=False,
                submitted=body.model_dump(
                    mode="json", include={"child", "representatives", "consent_personal_data"}
                ),
                match_status=MatchStatus.none,
                idempotency_key=f"bench-{seed}",
                request_hash=request_hash(body),
                created_at=now,
            ).model_dump(warnings=False)
        )
        opened.append((child_id, referral_id, provider_id))
    for table in tables:
        for chunk in range(0, len(rows[table]), 2000):
            session.execute(insert(table), rows[table][chunk : chunk + 2000])
    if session.get_bind().dialect.name == "postgresql":
        reset_sequences(session)  # before the app inserts into these tables itself
    cases: dict[int, int] = {}
    links: list[dict[str, int]] = []
    for child_id, referral_id, provider_id in opened:
        case = open_case(
            session, child_id=child_id, provider_id=provider_id, referral_id=referral_id, actor=referrer
        )
        assert case.id is not None
        cases[case.id] = provider_id
        links.append({"id": referral_id, "case_id": case.id})
    session.flush()
    session.execute(update(Referral), links)
    return cases


def check_shape(session: Session, reference_case: int, bulk_case: int) -> None:
    """Every table holds the same rows, with the same columns filled, for a bulk-seeded case as
    for the case register() made: if the app starts writing something new, seeding says so."""

    def rows_of(case_id: int) -> dict[str, list[frozenset[str]]]:
        case = session.get(Case, case_id)
        assert case is not None and case.referral_id is not None
        keys = {"case_id": case_id, "child_id": case.child_id, "referral_id": case.referral_id}
        own = {"case": case_id, "child": case.child_id, "referral": case.referral_id}
        found: dict[str, list[frozenset[str]]] = {}
        for table in SQLModel.metadata.sorted_tables:
            conditions = [table.c[k] == v for k, v in keys.items() if k in table.c]
            if table.name in own:
                conditions.append(table.c.id == own[table.name])
            if conditions:
                result = session.execute(table.select().where(or_(*conditions))).mappings()
                found[table.name] = sorted(
                    frozenset(k for k, v in row.items() if v is None) for row in result
                )
        return found

    reference, bulk = rows_of(reference_case), rows_of(bulk_case)
    for name, rows in reference.items():
        if rows != bulk[name]:
            raise RuntimeError(
                f"seeding is out of date: table {name} holds {rows} (empty columns) for a case "
                f"register() made, {bulk[name]} for a bulk-seeded one"
            )


def seed(url: str, total_cases: int, spread: int) -> Seeded:
    """Migrate, create the region, `total_cases` cases in `referred`, walk `spread` of them on."""
    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    today = today_in(REGION[2])
    try:
        with session_scope(engine) as session:
            staff_rows = seed_region(session, *REGION)
            providers = [o for o in staff_rows.orgs if o.kind == OrgKind.provider]
            staff: dict[int, ProviderStaff] = {}
            for provider, suffix in zip(providers, ["", "2"], strict=True):
                coordinator = staff_rows.users["coordinator" + suffix]
                curator = staff_rows.users["curator" + suffix]
                tokens = {}
                for who, user in (("coordinator", coordinator), ("curator", curator)):
                    token, digest = new_api_token()
                    session.add(ApiToken(user_id=user.id or 0, name="bench", token_hash=digest))
                    tokens[who] = token
                staff[provider.id or 0] = ProviderStaff(
                    provider.id or 0, curator.id or 0, coordinator, curator, tokens
                )
            provider_ids = list(staff)
            # One referral through the service, as a referrer would make it: the reference shape.
            reference = register(
                session,
                staff_rows.principal("referrer"),
                referral_body(0, provider_ids[0], today),
                idempotency_key="bench-0",
            ).referral
            assert reference.case_id is not None
            cases = {reference.case_id: provider_ids[0]}
            session.flush()
            cases |= bulk_referrals(
                session,
                total_cases - 1,
                1,
                staff_rows.region.id or 0,
                provider_ids,
                staff_rows.users["referrer"],
                today,
            )
            check_shape(session, reference.case_id, max(cases))
        with session_scope(engine) as session:
            for index, case_id in enumerate(sorted(cases)[-spread:] if spread else []):
                walk(session, case_id, staff[cases.pop(case_id)], spread_path(index, today))
        with session_scope(engine) as session:
            # The effects of all this history were delivered long ago: the relay starts idle.
            session.execute(
                update(Outbox)
                .where(col(Outbox.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.done, attempts=1, done_at=utcnow(), claimed_by="bench-seed")
            )
    finally:
        engine.dispose()
    return Seeded(url, cases, staff, time.perf_counter() - started, spread, total_cases)


def reset_sequences(session: Session) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move them past the rows."""
    for table in SQLModel.metadata.sorted_tables:
        if "id" in table.c:
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f'coalesce((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'
                )
            )


def walk(session: Session, case_id: int, staff: ProviderStaff, steps: list[Step]) -> None:
    case = session.get(Case, case_id)
    assert case is not None
    if any(step.event == "mark_lost_contact" for step in steps):
        session.add_all(
            ContactAttempt(
                case_id=case_id,
                at=utcnow() - timedelta(days=5 - i),
                channel=ContactChannel.phone,
                successful=False,
                recorded_by_id=staff.coordinator.id or 0,
            )
            for i in range(5)
        )
    for step in steps:
        actor = staff.coordinator if step.who == "coordinator" else staff.curator
        fire(session, case, step.event, actor=actor, payload=payload_of(step, staff), reason=step.reason)


def payload_of(step: Step, staff: ProviderStaff) -> dict[str, Any]:
    return {"curator_id": staff.curator_id} if step.event == "accept" else step.payload


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    mode: str
    samples: list[tuple[str, float]] = field(default_factory=list)  # (event, seconds)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        per_event: dict[str, list[float]] = {}
        for event, seconds in self.samples:
            per_event.setdefault(event, []).append(seconds)
        tenth = max(len(self.samples) // 10, 1)
        return {
            "backend": self.backend,
            "mode": self.mode,
            "events": len(self.samples),
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            **percentiles([s for _, s in self.samples]),
            "events_per_s": round(len(self.samples) / self.wall_seconds, 1) if self.wall_seconds else 0.0,
            "wall_s": round(self.wall_seconds, 2),
            "per_event": {event: {"events": len(v), **percentiles(v)} for event, v in per_event.items()},
            # Does latency drift as the run writes history and audit rows? First vs last tenth.
            "p50_first_tenth_ms": percentiles([s for _, s in self.samples[:tenth]])["p50_ms"],
            "p50_last_tenth_ms": percentiles([s for _, s in self.samples[-tenth:]])["p50_ms"],
            **self.extra,
        }


def percentiles(seconds: list[float]) -> dict[str, float]:
    if len(seconds) < 2:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }


def fire_journeys(
    client: httpx.Client, seeded: Seeded, case_ids: list[int], steps: list[Step], run: Run | None
) -> None:
    """Walk each case through `steps`, one POST per event, timing each POST (run=None: warm-up).

    A refused event ends that case's walk; a broken connection ends the phase (both are errors)."""
    headers = {
        provider_id: {who: {"Authorization": f"Bearer {token}"} for who, token in staff.tokens.items()}
        for provider_id, staff in seeded.staff.items()
    }
    errors = run.errors if run is not None else []
    started = time.perf_counter()
    try:
        for case_id in case_ids:
            staff = seeded.staff[seeded.cases[case_id]]
            version = 1
            for step in steps:
                body: dict[str, Any] = {"version": version, "payload": payload_of(step, staff)}
                if step.reason:
                    body["reason"] = step.reason
                url = f"{API}/cases/{case_id}/events/{step.event}"
                t0 = time.perf_counter()
                response = client.post(url, json=body, headers=headers[staff.provider_id][step.who])
                elapsed = time.perf_counter() - t0
                if response.status_code != 200:
                    errors.append(
                        f"case {case_id} {step.event}: {response.status_code} {response.text[:300]}"
                    )
                    break
                new_version = int(response.json()["version"])
                if new_version != version + 1:
                    raise RuntimeError(
                        f"case {case_id}: version {version} -> {new_version} after {step.event}"
                    )
                version = new_version
                if run is not None:
                    run.samples.append((step.event, elapsed))
    except httpx.TransportError as error:
        errors.append(f"connection lost: {error!r}")
    if run is not None:
        run.wall_seconds = time.perf_counter() - started
    elif errors:
        raise RuntimeError(f"warm-up failed: {errors[0]}")


# The outbox relay delivers the effects of every event in the background (Prefect flows), in the
# same process as the API. The bench lets it start up (the warm-up's effects delivered) before
# measuring, counts what it delivered during the measurement, and clears what was left afterwards
# so that the next phase starts with an idle relay.


def outbox_counts(url: str) -> dict[str, int]:
    """Outbox rows by status; `due` are the pending rows the relay may take now."""
    engine = create_engine(url, poolclass=NullPool)  # plain reads: no BEGIN IMMEDIATE on SQLite
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(col(Outbox.status), func.count()).group_by(col(Outbox.status)))
            counts = {str(status): int(count) for status, count in rows}
            counts["due"] = int(
                conn.execute(
                    select(func.count())
                    .select_from(Outbox)
                    .where(col(Outbox.status) == OutboxStatus.pending, col(Outbox.available_at) <= utcnow())
                ).scalar_one()
            )
            return counts
    finally:
        engine.dispose()


def wait_for_relay(url: str, timeout: float) -> float | None:
    """Seconds until no outbox row is due, or None after `timeout`."""
    started = time.perf_counter()
    while outbox_counts(url)["due"]:
        if time.perf_counter() - started > timeout:
            return None
        time.sleep(0.25)
    return time.perf_counter() - started


def clear_backlog(url: str) -> int:
    """Give up the effects still pending at the end of a phase (they are not the next phase's)."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            result = session.execute(
                update(Outbox)
                .where(col(Outbox.status) == OutboxStatus.pending)
                .values(status=OutboxStatus.failed, lease_until=None, last_error="bench: left at phase end")
            )
            return int(result.rowcount)  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def measure_phase(
    client: httpx.Client,
    seeded: Seeded,
    cases: list[int],
    warmup: list[int],
    steps: list[Step],
    run: Run,
    relay: bool,
) -> None:
    """Warm up, let the relay catch up, measure; note what the relay did meanwhile."""
    fire_journeys(client, seeded, warmup, steps, None)
    if relay:
        waited = wait_for_relay(seeded.url, timeout=180)
        run.extra["relay_warmup_drain_s"] = round(waited, 1) if waited is not None else "timeout"
    before = outbox_counts(seeded.url)
    fire_journeys(client, seeded, cases, steps, run)
    after = outbox_counts(seeded.url)
    enqueued = sum(v for k, v in after.items() if k != "due") - sum(
        v for k, v in before.items() if k != "due"
    )
    # Settled by the relay: done, or undelivered (reached nobody, e.g. no channel configured here).
    settled = (OutboxStatus.done, OutboxStatus.undelivered)
    delivered = sum(after.get(s, 0) - before.get(s, 0) for s in settled)
    run.extra |= {
        "effects_enqueued": enqueued,
        "effects_done_during_run": delivered,
        "effects_done_per_s": round(delivered / run.wall_seconds, 1) if run.wall_seconds else 0.0,
        "effects_pending_at_end": after.get(OutboxStatus.pending, 0),
        "effects_due_at_end": after["due"],
    }


def measure_in_process(
    backend: str,
    seeded: Seeded,
    var_dir: Path,
    cases: list[int],
    warmup: list[int],
    steps: list[Step],
    relay: bool,
) -> Run:
    settings = Settings(database_url=seeded.url, var_dir=var_dir, secret_key=SECRET, relay_in_serve=relay)
    engine = make_engine(seeded.url)
    run = Run(backend, "in-process")
    try:
        with TestClient(create_app(settings, engine)) as client:
            measure_phase(client, seeded, cases, warmup, steps, run, relay)
    finally:
        engine.dispose()
        run.extra["effects_cleared_after"] = clear_backlog(seeded.url)
    return run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def mib(status_value: str) -> float:
    return round(int(status_value.split()[0]) / 1024, 1)  # "123456 kB"


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def memory(pid: int) -> dict[str, Any]:
    """VmRSS of the server process and of every process it started (e.g. Prefect's server)."""
    status = proc_status(pid)
    if "VmRSS" not in status:  # exiting: only its threads are left
        return {"state": status.get("State", "?")}
    children: dict[int, dict[str, Any]] = {}
    for child in descendants(pid):
        try:
            children[child] = {"cmdline": cmdline(child)[:200], "rss_mb": mib(proc_status(child)["VmRSS"])}
        except (FileNotFoundError, ProcessLookupError):
            continue
    rss = mib(status["VmRSS"])
    return {
        "rss_mb": rss,
        "rss_peak_mb": mib(status["VmHWM"]),
        "threads": int(status["Threads"]),
        "children": children,
        "tree_rss_mb": round(rss + sum(float(c["rss_mb"]) for c in children.values()), 1),
    }


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    startup_seconds: float
    log: Path
    seen_children: set[int] = field(default_factory=set)
    orphans: dict[int, str] = field(default_factory=dict)  # still running after the server exited


@contextmanager
def earlyhelp_serve(url: str, var_dir: Path, log: Path, relay: bool) -> Iterator[Server]:
    """`earlyhelp serve` on a free loopback port; yields once /healthz answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": url,
        "EARLYHELP_VAR_DIR": str(var_dir),  # the app keeps Prefect's home here too
        "EARLYHELP_SECRET_KEY": SECRET,
        "EARLYHELP_RELAY_IN_SERVE": "true" if relay else "false",
        "PYTHONFAULTHANDLER": "1",  # a crash leaves its tracebacks in the log
    }
    env.pop("PREFECT_HOME", None)  # the bench's own, for its in-process app
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(EARLYHELP), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=var_dir.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, base_url, 0.0, log)
        try:
            with httpx.Client(base_url=base_url, timeout=2.0) as probe:
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"earlyhelp serve exited with {process.returncode}; see {log}")
                    try:
                        if probe.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(f"earlyhelp serve did not answer within 60 s; see {log}")
                    time.sleep(0.005)
            server.startup_seconds = time.perf_counter() - started
            yield server
        finally:
            if process.poll() is None:
                server.seen_children |= set(descendants(process.pid))
                process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown (stops the relay)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            time.sleep(2)
            for child in sorted(server.seen_children):  # processes the server left behind
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    server.orphans[child] = cmdline(child)[:200]
                    os.kill(child, signal.SIGTERM)


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def measure_uvicorn(
    backend: str,
    seeded: Seeded,
    work_dir: Path,
    cases: list[int],
    warmup: list[int],
    steps: list[Step],
    startup_runs: int,
    relay: bool,
) -> Run:
    run = Run(backend, "uvicorn")
    var_dir = work_dir / f"var-{backend}"
    startups: list[float] = []
    for attempt in range(startup_runs - 1):  # extra starts, only for the time to the first answer
        with earlyhelp_serve(
            seeded.url, var_dir, work_dir / f"serve-{backend}-{attempt}.log", relay
        ) as server:
            startups.append(server.startup_seconds)
    try:
        with earlyhelp_serve(seeded.url, var_dir, work_dir / f"serve-{backend}.log", relay) as server:
            startups.append(server.startup_seconds)
            pid = server.process.pid
            run.extra["server_cmdline"] = cmdline(pid)
            run.extra["memory_at_start"] = memory(pid)
            with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
                measure_phase(client, seeded, cases, warmup, steps, run, relay)
            after = memory(pid)
            if "rss_mb" in after and server.process.poll() is None:
                run.extra["memory_after"] = after
                server.seen_children |= set(descendants(pid))
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.process.wait(timeout=30)
                run.errors.append(
                    f"earlyhelp serve died ({after.get('state')}, exit code {server.process.returncode}): "
                    f"{log_tail(server.log)}"
                )
    finally:
        run.extra["effects_cleared_after"] = clear_backlog(seeded.url)
    # `earlyhelp serve` stopped with SIGINT should take its children (Prefect's server) with it.
    run.extra["left_running_after_serve_exit"] = server.orphans
    run.extra["startup_s"] = [round(s, 3) for s in startups]
    run.extra["startup_median_s"] = round(statistics.median(startups), 3)
    return run


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database next to `admin_url`'s; dropped afterwards."""
    name = f"earlyhelp_bench_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_unreachable(admin_url: str) -> str | None:
    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except OperationalError as error:
        return str(error.orig or error).splitlines()[0]
    finally:
        engine.dispose()


def bench_backend(backend: str, url: str, work_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    today = today_in(REGION[2])
    steps = journey(today)[: args.steps]
    print(f"[{backend}] seeding {args.cases} cases ...", flush=True)
    seeded = seed(url, args.cases, args.spread)
    print(f"[{backend}] seeded in {seeded.seconds:.1f} s", flush=True)
    ids = sorted(seeded.cases)
    n, w = args.events_cases, args.warmup
    if len(ids) < 2 * (n + w):
        raise SystemExit(f"--cases too small: need {2 * (n + w) + args.spread} for these options")
    in_process_cases, uvicorn_cases = ids[:n], ids[n : 2 * n]
    warm_in, warm_uv = ids[2 * n : 2 * n + w], ids[2 * n + w : 2 * n + 2 * w]
    print(f"[{backend}] in-process: {n} cases x {len(steps)} events ...", flush=True)
    # The app process never runs the relay (embedded mode's relay is serve's child process).
    in_process = measure_in_process(
        backend, seeded, work_dir / "var-in-process", in_process_cases, warm_in, steps, False
    )
    print(f"[{backend}] uvicorn: {n} cases x {len(steps)} events ...", flush=True)
    served = measure_uvicorn(
        backend, seeded, work_dir, uvicorn_cases, warm_uv, steps, args.startup_runs, args.relay
    )
    return {
        "seed_s": round(seeded.seconds, 1),
        "cases": seeded.total_cases,
        "spread_cases": seeded.spread,
        "runs": [in_process.summary(), served.summary()],
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def code_revision() -> dict[str, Any]:
    """The commit measured, and the files of the app (outside bench/) changed since."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown"}
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return {"commit": head, "app_files_changed": changed}


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'backend':<9} {'mode':<11} {'events':>7} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'ev/s':>8}"
    )
    print()
    print(f"revision {results['revision']}; load average {results['load_average_at_start']} at start")
    print(header)
    print("-" * len(header))
    for backend, result in results["backends"].items():
        if "skipped" in result:
            print(f"{backend:<9} skipped: {result['skipped']}")
            continue
        for r in result["runs"]:
            print(
                f"{backend:<9} {r['mode']:<11} {r['events']:>7} {r['errors']:>4} {r['p50_ms']:>8.2f} "
                f"{r['p95_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['events_per_s']:>8.1f}"
            )
    print()
    for backend, result in results["backends"].items():
        if "skipped" in result:
            continue
        print(f"{backend}: seeded {result['cases']} cases in {result['seed_s']} s")
        served = result["runs"][1]
        print(
            f"{backend}: earlyhelp serve -> first 200 on /healthz: {served['startup_s']} s "
            f"(median {served['startup_median_s']} s)"
        )
        start, after = served.get("memory_at_start"), served.get("memory_after")
        if start and after:
            children = "; ".join(f"{c['rss_mb']} MiB {c['cmdline'][:60]}" for c in after["children"].values())
            print(
                f"{backend}: serve RSS {start['rss_mb']} MiB at start, {after['rss_mb']} MiB after the run "
                f"(peak {after['rss_peak_mb']} MiB); with its child processes {after['tree_rss_mb']} MiB"
                f" [{children or 'no children'}]"
            )
        if served.get("left_running_after_serve_exit"):
            print(
                f"{backend}: still running 2 s after earlyhelp serve exited (killed by the bench): "
                f"{served['left_running_after_serve_exit']}"
            )
        for r in result["runs"]:
            if "effects_enqueued" in r:
                print(
                    f"{backend}/{r['mode']}: relay delivered {r['effects_done_during_run']} of "
                    f"{r['effects_enqueued']} effects during the run ({r['effects_done_per_s']}/s), "
                    f"{r['effects_pending_at_end']} pending at the end"
                )
    print()
    print("p95 per event (ms):")
    for backend, result in results["backends"].items():
        for r in result.get("runs", []):
            cells = ", ".join(f"{e} {v['p95_ms']:.1f}" for e, v in r["per_event"].items())
            print(f"  {backend}/{r['mode']}: {cells}")
    print()
    for name, verdict in results["targets"].items():
        print(f"target {name}: {verdict}")


def targets(results: dict[str, Any]) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    sqlite = results["backends"].get("sqlite", {})
    if "runs" in sqlite:
        worst = max(r["p95_ms"] for r in sqlite["runs"])
        met = "met" if worst < SQLITE_P95_TARGET_MS else "NOT met"
        verdicts["sqlite p95 < 20 ms"] = f"{met} (worst of the modes: {worst} ms)"
    for backend, result in results["backends"].items():
        after = result.get("runs", [{}, {}])[1].get("memory_after")
        if after:
            tree, alone = after["tree_rss_mb"], after["rss_mb"]
            met = "met" if tree < RSS_TARGET_MB else "NOT met"
            verdicts[f"{backend} serve RSS < 250 MB"] = (
                f"{met} ({tree} MiB with child processes; the uvicorn process alone {alone} MiB)"
            )
    return verdicts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000, help="cases in the database (default 10000)")
    parser.add_argument(
        "--events-cases",
        type=int,
        default=1000,
        help="cases walked through the journey per mode (default 1000)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=5,
        help="events per measured case: a prefix of the 10-event journey (default 5)",
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="unmeasured warm-up cases per mode (default 10)"
    )
    parser.add_argument(
        "--spread",
        type=int,
        default=600,
        help="background cases walked to other states while seeding (default 600)",
    )
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=3,
        help="spawns of earlyhelp serve timed to the first answer (default 3)",
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin connection used to CREATE DATABASE (default: local postgres)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        help="wait up to this many seconds for the CPUs to be idle (<15%% busy) before starting",
    )
    parser.add_argument(
        "--relay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the outbox relay beside the API, as `earlyhelp serve` does by default (default: on)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (SQLite file, server logs)"
    )
    args = parser.parse_args()
    if not 1 <= args.steps <= 10:
        parser.error("--steps must be between 1 and 10")
    return args


def main() -> int:
    args = parse_args()
    results: dict[str, Any] = {
        "benchmark": "transitions",
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        # Other work on the machine skews latencies: how busy it was before the run.
        "idle_wait": wait_idle(args.wait_idle)
        if args.wait_idle
        else {"cpu_busy_at_start": round(cpu_busy(), 3)},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "revision": code_revision(),  # after the wait: the code that is measured
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "journey": [step.event for step in journey(date.today())[: args.steps]],
        "backends": {},
    }
    work_dir = Path(tempfile.mkdtemp(prefix="earlyhelp-bench-"))
    # Prefect reads its settings on first import (the relay's, in the in-process app): a home of
    # its own, and only warnings on the console.
    os.environ["PREFECT_HOME"] = str(work_dir / "prefect-in-process")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    failed = True
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "sqlite":
                url = f"sqlite:///{work_dir / 'earlyhelp.db'}"
                results["backends"]["sqlite"] = bench_backend("sqlite", url, work_dir, args)
            elif backend == "postgres":
                problem = postgres_unreachable(args.postgres_url)
                if problem:
                    print(f"[postgres] skipped: cannot connect to {args.postgres_url}: {problem}", flush=True)
                    results["backends"]["postgres"] = {"skipped": problem}
                    continue
                with postgres_database(args.postgres_url) as url:
                    results["backends"]["postgres"] = bench_backend("postgres", url, work_dir, args)
            else:
                raise SystemExit(f"unknown backend {backend!r}; use sqlite,postgres")
        failed = any(r["errors"] for b in results["backends"].values() for r in b.get("runs", []))
    finally:
        if args.keep or failed:
            print(f"kept {work_dir} (database, server logs)")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = targets(results)
    print_table(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    print(f"\nwritten {args.output}")
    for b in results["backends"].values():
        for r in b.get("runs", []):
            for error in r["first_errors"]:
                print(f"ERROR {r['backend']}/{r['mode']}: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
