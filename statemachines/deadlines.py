"""Deadlines follow the journey: opened when a case enters a timer's states, closed when it
leaves them, paused while it is suspended. Called by `fire`, in its transaction."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.workdays import WorkCalendar, due_dates, end_of_day, start_of_work
from models.cases import Case
from models.children import Child
from models.deadlines import Deadline, DeadlineStatus
from models.referrals import Referral
from standards import Standard, TimerDef
from statemachines.journey import FINAL_STATES

ENDINGS_THAT_CANCEL = {"declined", "lost_contact", "rejected"}


# Anchors of fixed dates: a pause does not move them (the child grows older during a suspension
# too; the adaptation period in the pre-school goes on).
FIXED_ANCHORS = frozenset({"birth_date", "adaptation_end"})


def _anchor(session: Session, case: Case, timer: TimerDef, today: date) -> date:
    if timer.anchor == "adaptation_end":
        # Set by the enrolment (statemachines/records.py start_adaptation) in the same UPDATE.
        ends = session.exec(select(col(Case.adaptation_ends_on)).where(Case.id == case.id)).one()
        return ends or today
    if timer.anchor == "birth_date":
        child = session.get(Child, case.child_id)
        assert child is not None
        return child.birth_date
    if timer.anchor == "referral_date" and case.referral_id:
        referral = session.get(Referral, case.referral_id)
        if referral is not None:
            return referral.referral_date
    return today


def working_days_lost(calendar: WorkCalendar, paused: date, resumed: date) -> int:
    """The working days a pause took from the clock: those from the day of the suspension up to the
    day before the resumption (a case suspended and resumed on the same day loses none)."""
    lost, day = 0, paused
    while day < resumed:
        lost += calendar.is_working_day(day)
        day += timedelta(days=1)
    return lost


def _resume(row: Deadline, standard: Standard, calendar: WorkCalendar, zone: ZoneInfo, now: datetime) -> None:
    """Resume: the clock restarts where it stopped. A deadline moves by the working days of the
    pause, in the region's calendar, and falls due at the end of its (new) day as before; a warning
    keeps its start-of-work hour. A deadline anchored on the date of birth does not move: the child
    grows older during a suspension too."""
    assert row.paused_at is not None
    timer = standard.timer(row.timer)
    if timer is None or timer.anchor not in FIXED_ANCHORS:
        lost = working_days_lost(calendar, row.paused_at.astimezone(zone).date(), now.astimezone(zone).date())
        if lost:
            row.due_at = end_of_day(calendar.add_working_days(row.due_at.astimezone(zone).date(), lost), zone)
            if row.warn_at is not None:
                warn_day = calendar.add_working_days(row.warn_at.astimezone(zone).date(), lost)
                row.warn_at = start_of_work(warn_day, zone)
    row.paused_at = None


def on_transition(
    session: Session,
    case: Case,
    source: str | None,
    dest: str,
    standard: Standard,
    zone: ZoneInfo,
    now: datetime,
) -> None:
    assert case.id is not None
    open_rows = list(
        session.exec(
            select(Deadline).where(Deadline.case_id == case.id, Deadline.status == DeadlineStatus.open)
        )
    )
    # A workflow's deadline ("transfer.answer", "routing.answer") runs beside the journey: neither
    # paused nor closed by its steps; only the end of the case ends it.
    workflow_rows = [row for row in open_rows if "." in row.timer]
    open_rows = [row for row in open_rows if "." not in row.timer]
    if dest in FINAL_STATES:
        for row in workflow_rows:
            row.status = DeadlineStatus.cancelled
            row.closed_at = now
            row.paused_at = None
            session.add(row)
    if dest == "suspended":
        for row in open_rows:
            row.paused_at = now
            session.add(row)
        return
    calendar = WorkCalendar(standard.calendar)
    if source == "suspended":
        for row in open_rows:
            if row.paused_at is not None:
                _resume(row, standard, calendar, zone, now)
                session.add(row)
    running = {row.timer for row in open_rows}
    for row in open_rows:
        timer = standard.timer(row.timer)
        if timer is not None and dest in timer.states:
            continue
        if dest in ENDINGS_THAT_CANCEL:
            row.status = DeadlineStatus.cancelled
        elif timer is not None and timer.anchor == "adaptation_end":
            # The day the case ends (its own timer completes it), not a task anyone is late with.
            row.status = DeadlineStatus.met
        else:
            row.status = DeadlineStatus.met if now <= row.due_at else DeadlineStatus.missed
        row.closed_at = now
        row.paused_at = None
        running.discard(row.timer)
        session.add(row)
    today = now.astimezone(zone).date()
    for timer in standard.timers:
        if dest not in timer.states or timer.name in running:
            continue
        due, warn = due_dates(timer, _anchor(session, case, timer, today), calendar)
        session.add(
            Deadline(
                case_id=case.id,
                provider_id=case.provider_id,
                timer=timer.name,
                label=timer.label,
                action=timer.on_expiry,
                event=timer.event,
                status=DeadlineStatus.open,
                due_at=end_of_day(due, zone),
                warn_at=start_of_work(warn, zone) if warn else None,
                opened_at=now,
            )
        )
