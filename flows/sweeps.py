"""Periodic sweeps: deadline enforcement and appointment reminders.

Every action is claimed with a conditional UPDATE (`... WHERE warned_at IS NULL`), so two sweeps
racing in two processes do each action once; on PostgreSQL an advisory lock also keeps a second
sweep from doing the work twice. Sweeps look at state, not at missed ticks, so a sweep after a
process was down catches up on everything that fell due meanwhile. Messages go to the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core.errors import DomainError
from core.tokens import SESSION_LINK
from models.cases import Case
from models.common import utcnow
from models.deadlines import Deadline, running
from models.links import ShortLink
from models.organisations import Organisation, Region
from models.outbox import Outbox
from models.programmes import ServiceSession, SessionReminder, SessionStatus
from standards import Standard, load_standard
from statemachines import fire
from statemachines.effects import effect_rows
from statemachines.fire import events_from
from statemachines.workflows import expire_workflow

log = logging.getLogger("earlyhelp.sweeps")
BATCH = 2000
_LOCK_KEYS = {"deadlines": 727_001, "reminders": 727_002, "reports": 727_004, "short_links": 727_005}


@dataclass
class SweepReport:
    warned: int = 0
    escalated: int = 0
    family_reminded: int = 0
    fired: list[tuple[int, str]] = field(default_factory=list)
    reminders: int = 0
    skipped: bool = False  # another process holds the sweep


@contextmanager
def leader(engine: Engine, name: str) -> Iterator[bool]:
    """PostgreSQL: one sweep of a kind at a time across replicas. SQLite: one host, claims suffice."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEYS[name]}).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEYS[name]})
            conn.commit()


def _outbox(session: Session, rows: list[dict[str, object]]) -> None:
    if rows:
        session.execute(insert(Outbox), rows)


def sweep_deadlines(engine: Engine, now: datetime | None = None) -> SweepReport:
    now = now or utcnow()
    report = SweepReport()
    with leader(engine, "deadlines") as ours:
        if not ours:
            return SweepReport(skipped=True)
        _warn(engine, now, report)
        _expire(engine, now, report)
    return report


def _claim(
    engine: Engine, now: datetime, stamp: str, conditions: list[Any], columns: list[Any]
) -> Iterator[tuple[Session, Sequence[Any]]]:
    """Claim due open deadlines a batch at a time by stamping `stamp` (warned_at / expired_at).

    The conditions are repeated on the UPDATE itself, so of two sweeps racing only one stamps a
    row. The caller adds its outbox rows to the yielded session; the batch then commits as one.
    """
    pending = [*running(), col(getattr(Deadline, stamp)).is_(None), *conditions]
    while True:
        with Session(engine) as session:
            due = select(col(Deadline.id)).where(*pending).order_by(col(Deadline.due_at)).limit(BATCH)
            claimed = session.execute(
                update(Deadline)
                .where(col(Deadline.id).in_(due), *pending)
                .values({stamp: now})
                .returning(*columns)
            ).all()
            yield session, claimed
            session.commit()
        if len(claimed) < BATCH:
            return


def _warn(engine: Engine, now: datetime, report: SweepReport) -> None:
    due = [col(Deadline.warn_at) <= now, col(Deadline.due_at) > now]
    for session, claimed in _claim(engine, now, "warned_at", due, [col(Deadline.id), col(Deadline.case_id)]):
        _outbox(
            session,
            [
                row
                for d_id, case_id in claimed
                for row in effect_rows("deadline_warning", case_id=case_id, context={"deadline_id": d_id})
            ],
        )
        report.warned += len(claimed)


def _expire(engine: Engine, now: datetime, report: SweepReport) -> None:
    columns = [col(Deadline.id), col(Deadline.case_id), col(Deadline.action), col(Deadline.event)]
    for session, claimed in _claim(engine, now, "expired_at", [col(Deadline.due_at) <= now], columns):
        rows: list[dict[str, object]] = []
        for d_id, case_id, action, event in claimed:
            trigger = "deadline_escalate"
            if action == "expire":
                # A workflow's deadline (statemachines/workflows.py): its own expiry step, which
                # writes its own effects.
                expire_workflow(session, d_id, now)
                continue
            if action == "fire_event" and event and _fire_timer_event(session, case_id, event, now, report):
                continue
            if action == "remind_family":
                trigger = "deadline_remind_family"
                report.family_reminded += 1
            else:
                report.escalated += 1
            rows += effect_rows(trigger, case_id=case_id, context={"deadline_id": d_id})
        _outbox(session, rows)


def _fire_timer_event(session: Session, case_id: int, event: str, now: datetime, report: SweepReport) -> bool:
    """Fire the timer's event if the case can still take it; False means escalate instead."""
    case = session.get(Case, case_id)
    if case is None or event not in events_from(case.state):
        return False
    savepoint = session.begin_nested()
    try:
        fire(session, case, event, actor=None, reason="Автоматически: наступил срок по стандарту", now=now)
    except DomainError as error:
        savepoint.rollback()
        log.info("timer event %s on case %s refused: %s", event, case_id, error)
        return False
    savepoint.commit()
    report.fired.append((case_id, event))
    return True


def sweep_reminders(engine: Engine, now: datetime | None = None) -> SweepReport:
    """Remind families of planned sessions, at the standard's hours before, never at night."""
    now = now or utcnow()
    report = SweepReport()
    with leader(engine, "reminders") as ours:
        if not ours:
            return SweepReport(skipped=True)
        with Session(engine) as session:
            horizon = max((h for s in _standards(session) for h in s.reminders.before_hours), default=0)
            upcoming = session.execute(
                select(ServiceSession, col(Case.referral_id), col(Region.code), col(Region.timezone))
                .join(Case, col(Case.id) == ServiceSession.case_id)
                .join(Organisation, col(Organisation.id) == Case.provider_id)
                .join(Region, col(Region.id) == Organisation.region_id)
                .where(
                    col(ServiceSession.status) == SessionStatus.planned,
                    col(ServiceSession.scheduled_at) > now,
                    col(ServiceSession.scheduled_at) <= now + timedelta(hours=horizon),
                )
            ).all()
            done = {
                (sid, hours)
                for sid, hours in session.execute(
                    select(col(SessionReminder.session_id), col(SessionReminder.hours_before)).where(
                        col(SessionReminder.session_id).in_([s.id for s, *_ in upcoming])
                    )
                )
            }
        for planned, referral_id, region_code, zone in upcoming:
            standard = load_standard(region_code)
            if standard.quiet_hours.contains(now.astimezone(ZoneInfo(zone)).time()):
                continue  # the next sweep after the night sends it
            due = [
                h
                for h in standard.reminders.before_hours
                if planned.scheduled_at - timedelta(hours=h) <= now
                and planned.created_at < planned.scheduled_at - timedelta(hours=h)
                and (planned.id, h) not in done
            ]
            if due and _claim_reminder(engine, planned, referral_id, due):
                report.reminders += 1
    return report


def _claim_reminder(
    engine: Engine, planned: ServiceSession, referral_id: int | None, hours: list[int]
) -> bool:
    """Record the due reminders and hand one message to the outbox, unless another sweep did."""
    with Session(engine) as session:
        try:
            session.execute(
                insert(SessionReminder),
                [{"session_id": planned.id, "hours_before": h, "created_at": utcnow()} for h in hours],
            )
            _outbox(
                session,
                effect_rows(
                    "session_reminder",
                    case_id=planned.case_id,
                    referral_id=referral_id,
                    context={"session_id": planned.id, "hours_before": min(hours)},
                ),
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def _standards(session: Session) -> list[Standard]:
    return [load_standard(code) for code in session.execute(select(col(Region.code))).scalars()]


def sweep_reports(engine: Engine, now: datetime | None = None) -> list[int]:
    """The yearly report's schedule (flows/reports.py, queue_scheduled): last year's form 1-РП
    queued once per region on/after the standard's generate_on; the worker's report job runs it."""
    from flows.reports import queue_scheduled

    with leader(engine, "reports") as ours:
        if not ours:
            return []
        return queue_scheduled(engine, now)


# An expired short link still answers «Ссылка устарела» (api/routes/family.py) for this long, so a
# family opening an old SMS learns why; then its row goes and the code answers «недействительна».
SHORT_LINKS_KEPT = timedelta(days=30)
SHORT_LINKS_EVERY_SECONDS = 3600


def sweep_short_links(engine: Engine, now: datetime | None = None) -> int:
    """Deletes the family short links expired more than SHORT_LINKS_KEPT ago: a code that opens
    nothing and names a child's session is not worth keeping. The number deleted."""
    now = now or utcnow()
    with leader(engine, "short_links") as ours:
        if not ours:
            return 0
        with Session(engine) as session:
            result = session.execute(
                delete(ShortLink).where(
                    col(ShortLink.purpose) == SESSION_LINK, col(ShortLink.expires_at) < now - SHORT_LINKS_KEPT
                )
            )
            deleted = cast(CursorResult[Any], result).rowcount
            session.commit()
    if deleted:
        log.info("short links expired over %s days ago deleted: %d", SHORT_LINKS_KEPT.days, deleted)
    return int(deleted or 0)
