"""Deadlines that are late or coming (DESIGN §3, the standard's timers): the overdue list of the API,
the supervisor's dashboard (counts by organisation, curator and step; the last weeks' chart; the XLSX
export) and the worklists all read them here. Scoping is api/scoping.py's deadline_scope; a suspended
case's clock is stopped, so its deadlines are neither late nor coming."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case as when
from sqlalchemy.orm import aliased
from sqlmodel import Session, and_, col, func, or_, select

from api.deps import Principal
from api.scoping import deadline_scope
from api.services.cases import days_late
from core.errors import Unprocessable
from models.cases import Case
from models.children import Child, full_name
from models.common import utcnow
from models.deadlines import OPEN, Deadline, DeadlineStatus, OverdueItem, running
from models.organisations import Organisation
from models.users import User
from statemachines import STATE_LABELS


@dataclass(frozen=True)
class OverdueFilter:
    organisation_id: int | None = None
    curator_id: int | None = None
    # Cases nobody curates (the pages' "без куратора" row); the API has no such filter.
    no_curator: bool = False
    state: str | None = None
    timer: str | None = None
    min_days_overdue: int = 0
    # Instead of the late ones: those falling due within the next N days...
    due_within_days: int | None = None
    # ...or whose warning time has come (a worklist's "what falls due").
    or_warned: bool = False


@dataclass
class OverduePage:
    items: list[OverdueItem]
    child_ids: list[int]  # each item's child, for the audit rows
    total: int
    now: datetime


def _conditions(principal: Principal, wanted: OverdueFilter, now: datetime) -> tuple[list[Any], bool]:
    if wanted.state is not None and wanted.state not in STATE_LABELS:
        raise Unprocessable(f"Неизвестное состояние «{wanted.state}»", field="state")
    conditions: list[Any] = [deadline_scope(principal), *running()]
    if wanted.due_within_days is None:
        conditions.append(col(Deadline.due_at) <= now - timedelta(days=wanted.min_days_overdue))
    else:
        coming = col(Deadline.due_at) <= now + timedelta(days=wanted.due_within_days)
        if wanted.or_warned:
            coming = or_(coming, col(Deadline.warn_at) <= now)
        conditions += [col(Deadline.due_at) > now, coming]
    if wanted.organisation_id is not None:
        conditions.append(Deadline.provider_id == wanted.organisation_id)
    if wanted.timer is not None:
        conditions.append(Deadline.timer == wanted.timer)
    needs_case = wanted.state is not None or wanted.no_curator
    if wanted.curator_id is not None:
        # The curator's few cases first (ix_case_curator), then their deadlines (by case_id): a join
        # on the curator made PostgreSQL walk the provider's deadlines checking each one's case.
        curated = select(Case.id).where(Case.curator_id == wanted.curator_id)
        conditions.append(col(Deadline.case_id).in_(curated))
    if wanted.no_curator:
        conditions.append(col(Case.curator_id).is_(None))
    if wanted.state is not None:
        conditions.append(Case.state == wanted.state)
    return conditions, needs_case


def overdue(
    session: Session,
    principal: Principal,
    wanted: OverdueFilter,
    *,
    limit: int,
    offset: int = 0,
    now: datetime | None = None,
) -> OverduePage:
    """Late (or coming) deadlines with their case, child, organisation and curator; the earliest
    due first, so the longest late lead."""
    now = now or utcnow()
    conditions, needs_case = _conditions(principal, wanted, now)
    count = select(func.count()).select_from(Deadline)
    if needs_case:
        count = count.join(Case, col(Case.id) == Deadline.case_id)
    total = session.exec(count.where(*conditions)).one()

    curator = aliased(User)
    rows = session.exec(
        select(Deadline, Case, Child, Organisation.name, curator.full_name)  # type: ignore[call-overload]
        .join(Case, col(Case.id) == Deadline.case_id)
        .join(Child, col(Child.id) == Case.child_id)
        .join(Organisation, col(Organisation.id) == Deadline.provider_id)
        .outerjoin(curator, curator.id == Case.curator_id)
        .where(*conditions)
        .order_by(col(Deadline.due_at), col(Deadline.id))
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        OverdueItem(
            deadline_id=d.id,
            case_id=c.id,
            provider_id=d.provider_id,
            provider_name=org_name,
            # A transfer's answer deadline is the receiving provider's, the case still the other's:
            # that provider learns the child's name and state (as the request shows), not its staff.
            curator_id=c.curator_id if c.provider_id == d.provider_id else None,
            curator_name=curator_name if c.provider_id == d.provider_id else None,
            child_name=full_name(child),
            state=c.state,
            state_label=STATE_LABELS[c.state],
            timer=d.timer,
            label=d.label,
            due_at=d.due_at,
            days_overdue=days_late(d.due_at, now),
            escalated=d.expired_at is not None,
        )
        for d, c, child, org_name, curator_name in rows
    ]
    return OverduePage(items=items, child_ids=[c.child_id for _, c, *_rest in rows], total=total, now=now)


# --- the dashboard ----------------------------------------------------------------------------


@dataclass
class CountRow:
    key: str  # the filter's value ("" for "no curator")
    label: str
    overdue: int
    soon: int


@dataclass
class Counts:
    soon_days: int
    overdue: int
    soon: int
    by_organisation: list[CountRow] = field(default_factory=list)
    by_curator: list[CountRow] = field(default_factory=list)
    by_step: list[CountRow] = field(default_factory=list)


def counts(
    session: Session, principal: Principal, *, soon_days: int = 7, now: datetime | None = None
) -> Counts:
    """Late and coming (within `soon_days`) running deadlines, counted by organisation, by the
    case's curator and by step (the standard's timer): one grouped query, the names after."""
    now = now or utcnow()
    late = func.sum(when((col(Deadline.due_at) <= now, 1), else_=0))
    coming = func.sum(when((col(Deadline.due_at) > now, 1), else_=0))
    groups = session.exec(
        select(  # type: ignore[call-overload]
            Deadline.provider_id, Case.curator_id, Deadline.timer, func.max(Deadline.label), late, coming
        )
        .join(Case, col(Case.id) == Deadline.case_id)
        .where(
            deadline_scope(principal),
            *running(),
            col(Deadline.due_at) <= now + timedelta(days=soon_days),
        )
        .group_by(col(Deadline.provider_id), col(Case.curator_id), col(Deadline.timer))
    ).all()
    orgs: dict[int, list[int]] = {}
    curators: dict[int | None, list[int]] = {}
    steps: dict[str, list[int]] = {}
    labels: dict[str, str] = {}
    for provider_id, curator_id, timer, label, o, s in groups:
        for key, table in ((provider_id, orgs), (curator_id, curators), (timer, steps)):
            total = table.setdefault(key, [0, 0])  # type: ignore[attr-defined]
            total[0] += int(o or 0)
            total[1] += int(s or 0)
        labels[timer] = label
    org_names = dict(
        session.exec(
            select(Organisation.id, Organisation.name).where(col(Organisation.id).in_(list(orgs)))
        ).all()
    )
    user_names = dict(
        session.exec(
            select(User.id, User.full_name).where(col(User.id).in_([i for i in curators if i is not None]))
        ).all()
    )

    def row(key: Any, label: str, totals: list[int]) -> CountRow:
        return CountRow(key="" if key is None else str(key), label=label, overdue=totals[0], soon=totals[1])

    return Counts(
        soon_days=soon_days,
        overdue=sum(t[0] for t in orgs.values()),
        soon=sum(t[1] for t in orgs.values()),
        by_organisation=sorted(
            (row(k, org_names.get(k, str(k)), t) for k, t in orgs.items()), key=lambda r: r.label
        ),
        by_curator=sorted(
            (
                row(k, user_names.get(k, "") if k is not None else "Без куратора", t)
                for k, t in curators.items()
            ),
            key=lambda r: (-r.overdue, -r.soon, r.label),  # the most behind first
        ),
        by_step=sorted((row(k, labels[k], t) for k, t in steps.items()), key=lambda r: (-r.overdue, r.label)),
    )


@dataclass
class WeekBar:
    start: date  # the week's Monday, in the region's zone
    end: date  # its Sunday
    count: int


def weekly_overdue(
    session: Session, principal: Principal, zone: ZoneInfo, *, weeks: int = 12, now: datetime | None = None
) -> list[WeekBar]:
    """For each of the last `weeks` calendar weeks (Monday to Sunday in the region's zone, the
    current one so far): how many deadlines fell due in it without their step done in time —
    missed (closed late), still open, or cancelled only after they fell due. One query."""
    now = now or utcnow()
    today = now.astimezone(zone).date()
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    bounds = [datetime.combine(first + timedelta(weeks=i), time(), zone) for i in range(weeks + 1)]
    due = col(Deadline.due_at)
    late = or_(
        and_(
            col(Deadline.status) == OPEN,
            or_(col(Deadline.paused_at).is_(None), col(Deadline.paused_at) > due),
        ),
        col(Deadline.status) == DeadlineStatus.missed.value,
        and_(col(Deadline.status) == DeadlineStatus.cancelled.value, col(Deadline.closed_at) > due),
    )
    sums = [func.sum(when((and_(due >= bounds[i], due < bounds[i + 1]), 1), else_=0)) for i in range(weeks)]
    found = session.exec(
        select(*sums).where(deadline_scope(principal), due >= bounds[0], due <= now, late)  # type: ignore[call-overload]
    ).one()
    return [
        WeekBar(
            start=first + timedelta(weeks=i), end=first + timedelta(weeks=i, days=6), count=int(found[i] or 0)
        )
        for i in range(weeks)
    ]


def filter_names(
    session: Session, principal: Principal, org_id: int | None, curator_id: int | None
) -> dict[str, str]:
    """The names of the organisation and the curator a dashboard filter gives, when they are in the
    caller's scope (the provider's head: her own; the region's supervisor: the region's)."""
    orgs = (
        {
            i
            for i in session.exec(
                select(Organisation.id).where(Organisation.region_id == principal.org.region_id)
            )
        }
        if principal.is_regional_supervisor
        else {principal.org.id}
    )
    names: dict[str, str] = {}
    if org_id is not None and org_id in orgs:
        org = session.get(Organisation, org_id)
        if org is not None:
            names["org"] = org.name
    if curator_id is not None:
        user = session.get(User, curator_id)
        if user is not None and user.organisation_id in orgs:
            names["curator"] = user.full_name
    return names
