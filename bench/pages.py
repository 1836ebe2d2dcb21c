"""Benchmark: server time of every staff page (issue 10) with 100 000 cases, SQLite and PostgreSQL.

What it measures: each page of ``bench/pagelist.py`` (one table: URL template, the demo login that
opens it), fetched by ``GET`` through the app in this process (``api.main.create_app(settings,
engine)`` driven by ``fastapi.testclient.TestClient``: no sockets, no browser). Every page is
fetched ``--warmup`` times untimed, then ``--requests`` times one after another, each timed on its
own with ``time.perf_counter`` around the client's call: that wall time is the server's time for
the page (routing, the session cookie's check, the service queries, the audit rows, Jinja2) plus
the test client's own overhead (about 1 ms). ``in app`` is the same request timed inside the ASGI
app (``overdue.InApp``: from the request's arrival to its last byte), without the client. The
browser's time (CSS, layout) is not included. A page stops early after ``--max-seconds`` with at
least 5 timed requests (or after twice that with fewer); a page whose first request took over a
second gets no further warm-up. The first (untimed) request of each page runs with every SQL statement
timed (count, total, the slowest three), to show where a slow page's time goes; a page whose first
request takes over half of ``--max-seconds`` is not repeated (that one cold request is its sample).

The session cookie comes from ``POST /login`` (form: login, password ``demo``), once per role. A page
whose path no route matches is reported as ``missing`` (not on main yet) and skipped; any other
answer than 200 is reported with its status and not timed.

Data: ``bench/overdue.py``'s seeding, imported and reused (one region from ``api.demo.seed_region``;
``--curators`` curators per provider; children, referrals, cases over the states, 40 % of open cases
overdue on their main deadline; the deadlines the app opens for each state), with ``--curators``
1000 per provider by default so that the demo's ``curator`` has about 55 cases (a caseload), not
1 400. On top of that, bulk-inserted here: the history rows of the path each case took to its state
(actors, payloads and reasons as ``fire`` writes them), a legal representative and the
personal-data consent per child, contact attempts, the need conclusion, the ИПРП with two planned
services and weekly sessions (held, missed, planned up to two weeks ahead) for cases past
``ipr_development``, and the outbox rows of each case's last event (``statemachines.effects
.effect_rows``), settled, with their deliveries. All referrals come from the demo's one referring
organisation, so the referrer's list is a worst case (100 000 referrals).

The seeded database is cached: the SQLite file under ``var/bench/`` (its name says the size and the
seed; ``--reseed`` rebuilds it), the PostgreSQL database ``--postgres-db`` (``eh_bench_pages``,
its COMMENT says the same). Each run measures a copy of it (a file copy; ``CREATE DATABASE ...
TEMPLATE``), dropped at the end so one run's audit rows and sessions do not pile up, migrated to
head first (``core.migrate.upgrade``). The cache remembers each migration file's SHA-256: one that
changed since (a placeholder migration filled in later) is run again on the copy (stamped back to
the revision before it, then upgraded).

Measured objects (picked in the copy): the case of the demo curator in ``ipr_implementation`` with
the most sessions; that case's referral for the referrer; search ``q`` = ``--query`` (``Жук``: one
child in eight has that surname, the common-surname case); the family page from a link to the
case's next planned session (``/f/<code>``, the short link made by ``flows.targets
.session_short_links`` as the relay makes it for a reminder).

Run (on an idle 2-core machine: seeding 8 minutes on SQLite and 15-30 on PostgreSQL the first time;
then about 6 minutes, most of it the XLSX export)::

    .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --backends sqlite --cases 5000 --requests 10

It prints a table and writes ``bench/results/pages.json``; ``--markdown bench/results/pages.json``
prints that as the Markdown table of bench/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchlib import machine

# overdue.py imports the same way; transitions.py would shadow the pytransitions package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

import argparse
import hashlib
import json
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import overdue
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from pagelist import PAGES, Page, family_code, route_exists
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlmodel import Session, SQLModel, col

from api.demo import need_payload
from api.main import create_app
from core.config import Settings
from core.db import make_engine, session_scope
from core.migrate import alembic_config, upgrade
from models.cases import Case, CaseHistory, ContactAttempt, ContactChannel
from models.children import Channel, Child, LegalRepresentative, Relation
from models.common import today_in, utcnow
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Region
from models.outbox import Delivery, DeliveryStatus, Outbox, OutboxStatus
from models.programmes import (
    Ipr,
    NeedConclusion,
    NeedOutcome,
    PlannedService,
    ServiceForm,
    ServiceSession,
    SessionStatus,
)
from models.users import User
from statemachines import child_facts
from statemachines.effects import effect_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pages.json"
CACHE = ROOT / "var" / "bench"
REGION = overdue.REGION
SECRET = overdue.SECRET
P95_TARGET_MS = 50.0
BATCH = overdue.BATCH
# Bump when what seed_more() writes changes: the cached databases are then rebuilt.
SEED_VERSION = 3

# The events that bring a case to each state (the demo's paths, api/demo.py).
PATHS: dict[str, list[str]] = {
    "referred": [],
    "need_determination": ["accept"],
    "consultation": ["accept", "determine_need"],
    "ipr_development": ["accept", "determine_need"],
    "no_need": ["accept", "determine_need"],
    "ipr_implementation": ["accept", "determine_need", "approve_ipr"],
    "ipr_assessment": ["accept", "determine_need", "approve_ipr", "start_assessment"],
    "transition": ["accept", "determine_need", "approve_ipr", "begin_transition"],
    "suspended": ["accept", "determine_need", "approve_ipr", "suspend"],
    # The transition ends in adaptation, and the case completes when that ends (statemachines/journey.py).
    "completed": ["accept", "determine_need", "approve_ipr", "begin_transition", "enrol", "complete"],
    "declined": ["accept", "decline"],
    "lost_contact": ["accept", "mark_lost_contact"],
    "rejected": ["reject"],
}
TARGET: dict[str, str] = {
    "accept": "need_determination",
    "approve_ipr": "ipr_implementation",
    "start_assessment": "ipr_assessment",
    "begin_transition": "transition",
    "enrol": "adaptation",
    "complete": "completed",
    "suspend": "suspended",
    "decline": "declined",
    "mark_lost_contact": "lost_contact",
    "reject": "rejected",
}
OUTCOME = {"consultation": "consultation", "no_need": "no_need"}  # else ipr
REASONS = {
    "suspend": "Госпитализация ребёнка",
    "decline": "Семья переезжает в другой регион",
    "reject": None,
}
CONCLUSION = "Выявлены трудности в развитии общения; рекомендована ИПРП."
MESSAGE = "Служба ранней помощи: изменения по направлению ребёнка. Тел. 8 800 000-00-00"
GOALS = ["Ребёнок выражает просьбы жестами и словами в повседневных ситуациях"]
WITH_IPR = {"ipr_implementation", "ipr_assessment", "transition", "suspended", "completed"}
WITH_CONCLUSION = WITH_IPR | {"consultation", "ipr_development", "no_need"}
WITH_SESSIONS = {"ipr_implementation", "ipr_assessment", "transition", "suspended", "completed"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Cached seeded databases
# --------------------------------------------------------------------------------------------


def seed_key(args: argparse.Namespace) -> str:
    return (
        f"pages-v{SEED_VERSION}-cases{args.cases}-seed{args.seed}-cur{args.curators}"
        f"-closed{args.closed_share}-overdue{args.overdue_share}-fire{args.fire_share}"
    )


class CachedSqlite(overdue.SqliteBackend):
    """The seeded file lives in var/bench/ under its key; runs measure copies in a temporary directory."""

    def __init__(self, cache: Path, workdir: Path) -> None:
        super().__init__(workdir)
        self.template = cache

    def cached(self) -> bool:
        return self.template.exists()

    def clear(self) -> None:
        for path in (self.template, Path(f"{self.template}-wal"), Path(f"{self.template}-shm"), self.sidecar):
            path.unlink(missing_ok=True)

    @property
    def sidecar(self) -> Path:
        return self.template.with_suffix(".migrations.json")

    def mark(self, key: str, migrations: dict[str, str]) -> None:
        # The file name is the key; beside it, the migrations' contents it was migrated with.
        self.sidecar.write_text(json.dumps(migrations, indent=1) + "\n")

    def recorded(self) -> dict[str, str]:
        return dict(json.loads(self.sidecar.read_text())) if self.sidecar.exists() else {}

    def close(self) -> None:
        pass  # keep the cache


class CachedPostgres(overdue.PostgresBackend):
    """The seeded database keeps its name across runs; its COMMENT holds the seed key."""

    def __init__(self, admin_url: str, name: str, key: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.base = name
        self.key = key
        self.created = []

    def _comment(self) -> str:
        with self.admin.connect() as conn:
            comment = conn.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": self.base},
            ).scalar()
        return str(comment or "")

    def cached(self) -> bool:
        return self._comment().split("\n", 1)[0] == self.key

    def clear(self) -> None:
        self._create(self.base, None)
        self.created.remove(self.base)  # kept at the end: it is the cache

    def mark(self, key: str, migrations: dict[str, str]) -> None:
        # The key, then the migrations' contents it was migrated with (JSON: hex digests, no quotes).
        comment = f"{key}\n{json.dumps(migrations)}".replace("'", "''")
        with self.admin.connect() as conn:
            conn.execute(text(f"COMMENT ON DATABASE \"{self.base}\" IS '{comment}'"))

    def recorded(self) -> dict[str, str]:
        _, _, rest = self._comment().partition("\n")
        return dict(json.loads(rest)) if rest else {}


def migration_digests() -> dict[str, str]:
    """Each migration's revision and the SHA-256 of its file."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {
        rev.revision: hashlib.sha256(Path(rev.path).read_bytes()).hexdigest()
        for rev in scripts.walk_revisions()
    }


def remigrate(url: str, recorded: dict[str, str]) -> str | None:
    """Migrate a copy of the cache to head. A migration whose file changed since the cache was
    migrated (a placeholder filled in later, as the parallel page work does) is run again: the copy
    is stamped back to the revision before the first changed one, then upgraded."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    current = migration_digests()
    order = list(reversed(list(scripts.walk_revisions())))
    changed = [r for r in order if r.revision in recorded and recorded[r.revision] != current[r.revision]]
    note = None
    if changed:
        back = changed[0].down_revision
        assert back is None or isinstance(back, str)
        command.stamp(alembic_config(url), back or "base")
        note = f"migrations changed since seeding: {[r.revision for r in changed]}; re-run from {back}"
        log(note)
    upgrade(url)
    return note


def seed_more(engine: Engine, args: argparse.Namespace) -> dict[str, int]:
    """History, family, consents, programmes, sessions and deliveries over overdue.py's cases."""
    rng = random.Random(args.seed + 1)
    zone = ZoneInfo(REGION[2])
    today = today_in(REGION[2])
    now = utcnow()
    rows: dict[str, int] = {}
    with session_scope(engine) as session:
        staff = dict(
            session.execute(
                select(col(User.login), col(User.id)).where(
                    col(User.login).in_(["referrer", "coordinator", "curator", "specialist"])
                )
            ).all()
        )
        next_id = {
            table: int(session.execute(select(func.coalesce(func.max(table.id), 0))).scalar_one()) + 1  # type: ignore[attr-defined]
            for table in (Ipr, PlannedService, Outbox)
        }
        buffers: dict[type[SQLModel], list[dict[str, Any]]] = {
            table: []
            for table in (
                CaseHistory,
                LegalRepresentative,
                Consent,
                ContactAttempt,
                NeedConclusion,
                Ipr,
                PlannedService,
                ServiceSession,
                Outbox,
                Delivery,
            )
        }

        def flush() -> None:
            for table, buffer in buffers.items():
                for start in range(0, len(buffer), BATCH):
                    session.execute(insert(table), buffer[start : start + BATCH])
                rows[str(table.__tablename__)] = rows.get(str(table.__tablename__), 0) + len(buffer)
                buffer.clear()

        cases = session.execute(
            select(
                col(Case.id),
                col(Case.child_id),
                col(Case.state),
                col(Case.curator_id),
                col(Case.opened_at),
                col(Case.updated_at),
                col(Case.closed_at),
            ).order_by(col(Case.id))
        ).all()

        def aware(value: datetime) -> datetime:
            return value if value.tzinfo else value.replace(tzinfo=UTC)

        for index, (case_id, child_id, state, curator_id, opened_at, updated_at, closed_at) in enumerate(
            cases
        ):
            opened, last = aware(opened_at), aware(closed_at or updated_at)
            if last <= opened:
                last = opened + timedelta(hours=1)
            curator = curator_id or staff["curator"]
            events = PATHS[state]
            span = (last - opened) / max(len(events), 1)
            history = [
                {
                    "case_id": case_id,
                    "from_state": None,
                    "to_state": "referred",
                    "event": "refer",
                    "actor_id": staff["referrer"],
                    "at": opened,
                    "payload": {},
                    "reason": None,
                }
            ]
            current, at = "referred", opened
            approved: datetime | None = None
            for number, event in enumerate(events, start=1):
                at = opened + span * number if number < len(events) else last
                target = OUTCOME.get(state, "ipr_development") if event == "determine_need" else TARGET[event]
                payload: dict[str, Any] = {}
                if event == "accept":
                    payload = {"curator_id": curator}
                elif event == "determine_need":
                    payload = need_payload(OUTCOME.get(state, "ipr"), CONCLUSION)
                elif event == "begin_transition":
                    payload = {"destination": "МБДОУ «Детский сад № 12»"}
                elif event == "enrol":
                    ends = (at + timedelta(days=92)).date()
                    payload = {"enrolled_on": at.date().isoformat(), "adaptation_ends_on": ends.isoformat()}
                elif event == "start_assessment":
                    payload = {"kind": "intermediate"}
                elif event == "approve_ipr":
                    approved = at
                actor = staff["coordinator"] if event in ("accept", "reject", "determine_need") else curator
                history.append(
                    {
                        "case_id": case_id,
                        "from_state": current,
                        "to_state": target,
                        "event": event,
                        "actor_id": actor,
                        "at": at,
                        "payload": payload,
                        "reason": REASONS.get(event),
                    }
                )
                current = target
            buffers[CaseHistory].extend(history)
            referral_day = opened.astimezone(zone).date()
            buffers[LegalRepresentative].append(
                {
                    "child_id": child_id,
                    "full_name": "Законный представитель",
                    "relation": Relation.mother,
                    "phone": f"+7 900 {case_id % 1000:03d}-{case_id % 100:02d}-00",
                    "email": None,
                    "preferred_channel": Channel.sms,
                }
            )
            buffers[Consent].append(
                {
                    "child_id": child_id,
                    "kind": ConsentKind.personal_data,
                    "status": ConsentStatus.given,
                    "date": referral_day,
                    "document_ref": f"Согласие № {case_id}",
                    "recorded_by_id": staff["referrer"],
                    "recorded_at": opened,
                }
            )
            if state in ("need_determination", "lost_contact") or rng.random() < 0.1:
                for attempt in range(3 if state == "lost_contact" else rng.randint(1, 2)):
                    buffers[ContactAttempt].append(
                        {
                            "case_id": case_id,
                            "at": opened + timedelta(days=attempt + 1, hours=2),
                            "channel": ContactChannel.phone,
                            "successful": state != "lost_contact" and attempt > 0,
                            "note": None,
                            "recorded_by_id": staff["coordinator"],
                        }
                    )
            if state in WITH_CONCLUSION:
                conclusion_set = need_payload(OUTCOME.get(state, "ipr"), CONCLUSION)
                buffers[NeedConclusion].append(
                    {
                        "case_id": case_id,
                        "outcome": NeedOutcome(OUTCOME.get(state, "ipr")),
                        "text": CONCLUSION,
                        "concluded_on": history[2]["at"].astimezone(zone).date(),
                        "duration_minutes": 90,
                        "forms": conclusion_set.get("forms", []),
                        "activities": conclusion_set.get("activities", []),
                        "author_id": staff["coordinator"],
                        "created_at": history[2]["at"],
                    }
                )
            if state in WITH_IPR and approved is not None:
                ipr_id = next_id[Ipr]
                next_id[Ipr] += 1
                start = approved.astimezone(zone).date()
                buffers[Ipr].append(
                    {
                        "id": ipr_id,
                        "case_id": case_id,
                        "period_start": start,
                        "period_end": start + timedelta(days=180),
                        "goals": GOALS,
                        "parent_agreed_on": start,
                        "agreement_document_ref": "Согласие № 17",
                        "status": "active",
                        "created_by_id": curator,
                        "created_at": approved,
                    }
                )
                service_id = next_id[PlannedService]
                next_id[PlannedService] += 2
                buffers[PlannedService].extend(
                    [
                        {
                            "id": service_id,
                            "ipr_id": ipr_id,
                            "service_code": "communication_development",
                            "specialist_role": "speech_therapist",
                            "form": ServiceForm.in_person,
                            "count": 24,
                            "minutes": 45,
                        },
                        {
                            "id": service_id + 1,
                            "ipr_id": ipr_id,
                            "service_code": "family_support",
                            "specialist_role": "psychologist",
                            "form": ServiceForm.remote,
                            "count": 6,
                            "minutes": 60,
                        },
                    ]
                )
                if state in WITH_SESSIONS:
                    buffers[ServiceSession].extend(
                        sessions(
                            rng, case_id, service_id, start, today, zone, state, staff["specialist"], now
                        )
                    )
            # The last event's effects, settled, with what was delivered.
            last_event = history[-1]
            for effect in effect_rows(
                last_event["event"],
                case_id=case_id,
                referral_id=case_id,
                context={"actor_id": last_event["actor_id"], "payload": last_event["payload"]},
            ):
                outbox_id = next_id[Outbox]
                next_id[Outbox] += 1
                done = last_event["at"] + timedelta(minutes=1)
                buffers[Outbox].append(
                    {
                        **effect,
                        "id": outbox_id,
                        "status": OutboxStatus.done,
                        "attempts": 1,
                        "available_at": last_event["at"],
                        "created_at": last_event["at"],
                        "done_at": done,
                    }
                )
                family = effect["kind"] == "notify_family"
                buffers[Delivery].append(
                    {
                        "outbox_id": outbox_id,
                        "case_id": case_id,
                        "recipient": "Законный представитель" if family else "Организация",
                        "channel": "sms" if family else "email",
                        "address": "+79000000000" if family else "org@example.org",
                        "template": effect["template"],
                        "subject": None,
                        "text": MESSAGE,
                        "status": DeliveryStatus.skipped if index % 3 else DeliveryStatus.sent,
                        "attempts": 1,
                        "error": "канал не настроен" if index % 3 else None,
                        "created_at": done,
                        "updated_at": done,
                        "sent_at": None if index % 3 else done,
                    }
                )
            if len(buffers[CaseHistory]) >= BATCH * 4:
                flush()
            if (index + 1) % 20_000 == 0:
                log(f"history, programmes, sessions: {index + 1} cases")
        flush()
        if engine.dialect.name == "postgresql":
            overdue.reset_sequences(session)
        # Written past the journey's doors: the children's facts as the doors keep them.
        for region_id in session.execute(select(col(Region.id))).scalars():
            child_facts.refresh_region(session, region_id)
    return rows


def sessions(
    rng: random.Random,
    case_id: int,
    service_id: int,
    start: date,
    today: date,
    zone: ZoneInfo,
    state: str,
    specialist_id: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Weekly sessions from the ИПРП's start: the last 10 before today, and those of the next 14 days."""
    weekday_offset = rng.randint(0, 6)
    hour = rng.choice([9, 10, 11, 14, 15, 16])
    first = start + timedelta(days=weekday_offset)
    ahead = 0 if state in ("suspended", "completed") else 14
    days = [
        first + timedelta(weeks=w)
        for w in range(0, 60)
        if first + timedelta(weeks=w) <= today + timedelta(days=ahead)
    ]
    result = []
    for day in days[-12:]:
        at = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
        past = at < now
        roll = rng.random()
        status = (
            (
                SessionStatus.held
                if roll < 0.85
                else SessionStatus.missed
                if roll < 0.95
                else SessionStatus.cancelled
            )
            if past
            else SessionStatus.planned
        )
        result.append(
            {
                "case_id": case_id,
                "planned_service_id": service_id,
                "service_code": "communication_development",
                "form": ServiceForm.in_person,
                "scheduled_at": at,
                "duration_minutes": 45,
                "specialist_id": specialist_id if case_id % 50 == 0 else None,
                "status": status,
                "notes": None,
                "family_response": None,
                "family_response_at": None,
                "created_at": at - timedelta(days=7),
                "updated_at": at if past else at - timedelta(days=7),
            }
        )
    return result


def ensure_seeded(backend: CachedSqlite | CachedPostgres, args: argparse.Namespace) -> dict[str, Any]:
    key = seed_key(args)
    if backend.cached() and not args.reseed:
        log(f"{backend.name}: seeded database found ({key})")
        return {"cached": True, "key": key}
    backend.clear()
    log(f"{backend.name}: seeding {args.cases} cases (overdue.py's seeding)")
    started = time.perf_counter()
    seeded = overdue.seed(backend, args)  # type: ignore[arg-type]
    log(f"{backend.name}: base seeded in {seeded.seconds:.0f} s: {seeded.rows}")
    engine = make_engine(backend.template_url())
    try:
        more = seed_more(engine, args)
        log(f"{backend.name}: more rows: {more}")
        overdue.analyse(engine)
    finally:
        engine.dispose()
    backend.mark(key, migration_digests())
    return {
        "cached": False,
        "key": key,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": {**seeded.rows, **more},
        "mix": seeded.mix,
    }


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass
class Picked:
    values: dict[str, Any]
    about: dict[str, Any]


def pick_objects(engine: Engine, app: Any, args: argparse.Namespace) -> Picked:
    with Session(engine) as session:
        users = dict(session.execute(select(col(User.login), col(User.id))).all())
        curator = users["curator"]
        curator_cases = int(
            session.execute(
                select(func.count()).select_from(Case).where(col(Case.curator_id) == curator)
            ).scalar_one()
        )
        curator_open = int(
            session.execute(
                select(func.count())
                .select_from(Case)
                .where(col(Case.curator_id) == curator, col(Case.closed_at).is_(None))
            ).scalar_one()
        )
        counted = (
            select(col(Case.id), func.count(col(ServiceSession.id)).label("n"))
            .join(ServiceSession, col(ServiceSession.case_id) == col(Case.id))
            .where(col(Case.curator_id) == curator, col(Case.state) == "ipr_implementation")
            .group_by(col(Case.id))
            .order_by(text("n DESC"), col(Case.id))
            .limit(1)
        )
        case_id, case_sessions = session.execute(counted).one()
        case = session.get(Case, case_id)
        assert case is not None
        history = int(
            session.execute(
                select(func.count()).select_from(CaseHistory).where(col(CaseHistory.case_id) == case_id)
            ).scalar_one()
        )
        planned = session.execute(
            select(ServiceSession)
            .where(
                col(ServiceSession.case_id) == case_id,
                col(ServiceSession.status) == SessionStatus.planned,
                col(ServiceSession.scheduled_at) > utcnow(),
            )
            .order_by(col(ServiceSession.scheduled_at))
            .limit(1)
        ).scalar_one()
        planned_id, planned_at = planned.id or 0, planned.scheduled_at
        query_key = args.query.casefold().replace("ё", "е")
        matches = int(
            session.execute(
                select(func.count()).select_from(Child).where(col(Child.name_key).like(f"{query_key}%"))
            ).scalar_one()
        )
    # After the read: the short link is written in a transaction of its own (SQLite: one writer).
    code = family_code(engine, planned_id, planned_at, app.state.keys, REGION[0])
    return Picked(
        values={"case_id": case_id, "referral_id": case.referral_id, "q": args.query, "code": code},
        about={
            "curator_cases": curator_cases,
            "curator_open_cases": curator_open,
            "case_id": case_id,
            "case_history_rows": history,
            "case_sessions": case_sessions,
            "referral_id": case.referral_id,
            "q": args.query,
            "children_matching_q_prefix": matches,
        },
    )


def sign_in(client: TestClient, login: str) -> str:
    response = client.post("/login", data={"login": login, "password": "demo"}, follow_redirects=False)
    token = response.cookies.get("eh_session")
    client.cookies.clear()
    if response.status_code != 303 or not token:
        raise RuntimeError(f"{login} could not sign in: {response.status_code}")
    return str(token)


def page_title(body: str) -> str:
    match = re.search(r"<title>(.*?)</title>", body, re.S)
    return " ".join(match.group(1).split()) if match else body[:120]


def measure_page(
    client: TestClient,
    inapp: overdue.InApp,
    engine: Engine,
    page: Page,
    url: str,
    cookie: str | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    headers = {"Cookie": f"eh_session={cookie}"} if cookie else {}
    # The first request, untimed for the percentiles, runs with every SQL statement timed.
    with overdue.statement_timer(engine) as seen:
        t0 = time.perf_counter()
        first = client.get(url, headers=headers, follow_redirects=False)
        first_s = time.perf_counter() - t0
    row: dict[str, Any] = {"url": page.template, "login": page.login or "—", "what": page.what}
    if first.status_code != 200:
        row["status"] = f"HTTP {first.status_code}"
        row["title"] = page_title(first.text) if not page.binary else ""
        return row
    row["status"] = "ok"
    row["bytes"] = len(first.content)
    row["sql"] = {
        "statements": len(seen),
        "seconds": round(sum(s[3] for s in seen), 4),
        "request_seconds": round(first_s, 4),
        "slowest": [
            {"ms": round(seconds * 1000, 2), "sql": " ".join(sql.split())[:400]}
            for _kind, sql, _params, seconds in sorted(seen, key=lambda s: -s[3])[:3]
        ],
    }
    if first_s > args.max_seconds / 2:
        # Too slow to repeat: the first (cold) request is the only sample.
        row["requests"] = 1
        row["single_cold_request"] = True
        row.update(overdue.percentiles([first_s]))
        return row
    # A page that takes seconds is warm after its first request, and is timed fewer times.
    for _ in range(args.warmup if first_s < 1.0 else 0):
        client.get(url, headers=headers, follow_redirects=False)
    inapp.samples.clear()
    samples: list[float] = []
    statuses: set[int] = set()
    started = time.monotonic()
    for _ in range(args.requests):
        t0 = time.perf_counter()
        response = client.get(url, headers=headers, follow_redirects=False)
        samples.append(time.perf_counter() - t0)
        statuses.add(response.status_code)
        elapsed = time.monotonic() - started
        if (len(samples) >= 5 and elapsed > args.max_seconds) or elapsed > 2 * args.max_seconds:
            break
    if statuses != {200}:
        row["status"] = f"HTTP {sorted(statuses)}"
    row["requests"] = len(samples)
    row.update(overdue.percentiles(samples))
    row["in_app"] = overdue.percentiles(inapp.samples)
    return row


def measure(backend_name: str, url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    settings = Settings(database_url=url, relay_in_serve=False, secret_key=SECRET, var_dir=workdir)
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    try:
        app = create_app(settings, engine)
        picked = pick_objects(engine, app, args)
        log(f"{backend_name}: measuring {picked.about}")
        inapp = overdue.InApp(app)
        with TestClient(inapp) as client:
            cookies: dict[str, str] = {}
            for page in selected_pages(args):
                page_url = page.url(picked.values)
                if not route_exists(app, page_url):
                    results[page.name] = {
                        "url": page.template,
                        "login": page.login or "—",
                        "what": page.what,
                        "status": "missing",
                    }
                    log(f"{backend_name} {page.name}: missing (no route for {page.template})")
                    continue
                if page.login and page.login not in cookies:
                    cookies[page.login] = sign_in(client, page.login)
                row = measure_page(client, inapp, engine, page, page_url, cookies.get(page.login or ""), args)
                results[page.name] = row
                if row["status"] == "ok":
                    log(
                        f"{backend_name} {page.name}: p50 {row['p50_ms']} p95 {row['p95_ms']} "
                        f"max {row['max_ms']} ms ({row['requests']} requests, {row['bytes']} bytes; "
                        f"{row['sql']['statements']} SQL statements, {row['sql']['seconds'] * 1000:.0f} ms "
                        f"of {row['sql']['request_seconds'] * 1000:.0f}; slowest "
                        f"{row['sql']['slowest'][0]['ms'] if row['sql']['slowest'] else 0} ms)"
                    )
                else:
                    log(f"{backend_name} {page.name}: {row['status']} {row.get('title', '')}")
        with Session(engine) as session:
            counts = {
                str(table.__tablename__): int(
                    session.execute(select(func.count()).select_from(table)).scalar_one()
                )
                for table in (Case, CaseHistory, ServiceSession, User)
            }
    finally:
        engine.dispose()
    # Other work on the machine (the load average: 2 means both cores busy) skews the numbers.
    load = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]}
    return {"picked": picked.about, "rows": counts, "load_average": load, "pages": results}


def selected_pages(args: argparse.Namespace) -> list[Page]:
    if not args.pages:
        return PAGES
    wanted = {name.strip() for name in args.pages.split(",")}
    return [page for page in PAGES if page.name in wanted]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    backends = list(report["backends"])
    header = f"{'page':28} {'login':12}" + "".join(f" {b + ' p50/p95/max ms':>30}" for b in backends)
    print()
    print(header)
    for page in selected_pages(report["_args"]):
        line = f"{page.name:28} {page.login or '—':12}"
        for backend in backends:
            row = report["backends"][backend]["pages"].get(page.name, {})
            line += f" {cell(row):>30}"
        print(line)
    print()
    for backend in backends:
        print(f"{backend}: load average before/after {report['backends'][backend]['load_average']}")
    for line in report["verdict"]:
        print(line)


def markdown(report: dict[str, Any]) -> str:
    """The results as the Markdown table bench/RESULTS.md shows (``--markdown FILE.json``)."""
    backends = list(report["backends"])
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    head = "| page | URL | login |" + "".join(
        f" {names.get(b, b)} p50 / p95 / max | first |" for b in backends
    )
    lines = [head, "|---|---|---|" + "---|---:|" * len(backends)]
    order = [p.name for p in PAGES]
    seen = [n for n in order if any(n in report["backends"][b]["pages"] for b in backends)]
    for name in seen:
        some = next(
            report["backends"][b]["pages"][name] for b in backends if name in report["backends"][b]["pages"]
        )
        line = f"| {name} | `{some['url']}` | {some['login']} |"
        for backend in backends:
            row = report["backends"][backend]["pages"].get(name, {})
            if not row or row["status"] != "ok":
                line += f" {row.get('status', '—') if row else '—'} | |"
                continue
            if row.get("single_cold_request"):
                text_ = f"**{row['p50_ms'] / 1000:.1f} s** (one request)"
            else:
                p95 = f"{row['p95_ms']:.1f}"
                p95 = p95 if row["p95_ms"] < P95_TARGET_MS else f"**{p95}**"
                text_ = f"{row['p50_ms']:.1f} / {p95} / {row['max_ms']:.1f}"
            first = row["sql"]["request_seconds"] * 1000
            line += f" {text_} | {first:.0f} |"
        lines.append(line)
    return "\n".join(lines)


def cell(row: dict[str, Any]) -> str:
    if not row:
        return "—"
    if row["status"] != "ok":
        return row["status"]
    if row.get("single_cold_request"):
        return f"{row['p50_ms']:.0f} (1 request) !"
    flag = "" if row["p95_ms"] < P95_TARGET_MS else " !"
    return f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f} / {row['max_ms']:.1f}{flag}"


def verdict(report: dict[str, Any]) -> list[str]:
    lines = []
    for backend, result in report["backends"].items():
        rows = result["pages"]
        measured = {name: row for name, row in rows.items() if row["status"] == "ok"}
        over = sorted(name for name, row in measured.items() if row["p95_ms"] >= P95_TARGET_MS)
        missing = sorted(name for name, row in rows.items() if row["status"] == "missing")
        failing = sorted(name for name, row in rows.items() if row["status"] not in ("ok", "missing"))
        lines.append(
            f"{backend}: {len(measured)} pages measured, p95 < {P95_TARGET_MS:.0f} ms on "
            f"{len(measured) - len(over)}; over: {', '.join(over) or 'none'}; "
            f"missing: {', '.join(missing) or 'none'}; not 200: {', '.join(failing) or 'none'}"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=100_000, help="cases to seed (100000)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page first (5)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="stop timing a page after this long with >= 5 requests, or twice this long (60)",
    )
    parser.add_argument("--pages", default="", help="comma-separated page names (default: all)")
    parser.add_argument("--query", default="Жук", help="the search page's q (Жук: a common surname)")
    parser.add_argument("--curators", type=int, default=1000, help="curators per provider (1000)")
    parser.add_argument("--closed-share", type=float, default=0.2, help="share of closed cases (0.2)")
    parser.add_argument("--overdue-share", type=float, default=0.4, help="share of open cases overdue (0.4)")
    parser.add_argument(
        "--fire-share", type=float, default=0.01, help="transition_start overdue share (0.01)"
    )
    parser.add_argument("--seed", type=int, default=10, help="random seed (10)")
    parser.add_argument("--reseed", action="store_true", help="rebuild the cached seeded databases")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin connection used to CREATE DATABASE (default: local postgres)",
    )
    parser.add_argument("--postgres-db", default="eh_bench_pages", help="the cached seeded database's name")
    parser.add_argument(
        "--wait-idle", type=float, default=0.0, help="wait up to this many seconds for other bench/ processes"
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
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "postgres"}:
        raise SystemExit(f"unknown backends: {backends}")
    idle = (
        overdue.wait_idle(args.wait_idle)
        if args.wait_idle
        else {"others_at_start": overdue.other_benchmarks()}
    )
    report: dict[str, Any] = {
        "benchmark": "pages",
        "command": " ".join(["python", *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": overdue.code_revision(),
        "machine": machine(),
        "args": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "postgres_url"
        },
        "timing": "wall time of each GET through TestClient in this process (server time + ~1 ms of client)",
        "target_p95_ms": P95_TARGET_MS,
        "idle": idle,
        "backends": {},
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="earlyhelp-bench-pages-") as tmp:
        workdir = Path(tmp)
        for name in backends:
            backend: CachedSqlite | CachedPostgres = (
                CachedSqlite(CACHE / f"{seed_key(args)}.db", workdir)
                if name == "sqlite"
                else CachedPostgres(args.postgres_url, args.postgres_db, seed_key(args))
            )
            try:
                seeding = ensure_seeded(backend, args)
                url = backend.copy("run")
                seeding["remigrated"] = remigrate(url, backend.recorded())
                try:
                    result = measure(name, url, workdir, args)
                finally:
                    backend.drop(url)
                report["backends"][name] = {"seed": seeding, **result}
                if name == "postgres":
                    report["machine"]["postgres"] = overdue.server_version(backend)  # type: ignore[arg-type]
            finally:
                backend.close()
                if isinstance(backend, CachedPostgres):
                    backend.admin.dispose()
    report["verdict"] = verdict(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    printable = {k: v for k, v in report.items()}
    args.output.write_text(json.dumps(printable, ensure_ascii=False, indent=2, default=str) + "\n")
    report["_args"] = args
    print_table(report)
    print(f"\nwritten {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
