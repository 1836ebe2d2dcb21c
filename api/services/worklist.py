"""What needs a provider's staff member now (DESIGN §9: a worklist, not a menu): her cases by state,
sessions of today and tomorrow, families nobody could reach, new referrals, cases with no curator,
referrals awaiting a match review. Every query is within api/scoping.py's case_scope (or
referral_scope); the deadlines are api/services/overdue.py's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.scoping import case_scope, referral_scope
from api.services import referrals as referral_service
from api.services.cases import summary
from models.cases import Case, CaseSummary, ContactAttempt
from models.children import Child, full_name
from models.common import utcnow
from models.organisations import Region
from models.outbox import EffectKind, Outbox, OutboxStatus
from models.programmes import SERVICE_FORM_LABELS, ServiceSession, SessionStatus
from models.referrals import MatchStatus, Referral, ReferralPublic
from models.users import User
from standards import load_standard
from statemachines import FINAL_STATES, STATE_LABELS

# A worklist shows what needs doing, not an archive: at most this many rows per list.
LIST_LIMIT = 100


def _cases(session: Session, principal: Principal, *conditions: Any) -> list[CaseSummary]:
    latest = (col(Case.updated_at).desc(), col(Case.id).desc())
    # The page's cases first, then their children: a join first read a child for every match.
    wanted = (
        select(Case.id)
        .where(case_scope(principal), col(Case.state).not_in(FINAL_STATES), *conditions)
        .order_by(*latest)
        .limit(LIST_LIMIT)
    )
    rows = session.exec(
        select(Case, Child)
        .join(Child, col(Child.id) == Case.child_id)
        .where(col(Case.id).in_(wanted))
        .order_by(*latest)
    ).all()
    return [CaseSummary(**summary(case, child)) for case, child in rows]


def curated_cases(session: Session, principal: Principal) -> list[CaseSummary]:
    """The open cases the caller curates, the latest changed first."""
    return _cases(session, principal, Case.curator_id == principal.id)


def new_referrals(session: Session, principal: Principal) -> list[CaseSummary]:
    """Cases waiting for the provider to accept or reject the referral."""
    return _cases(session, principal, Case.state == "referred")


def without_curator(session: Session, principal: Principal) -> list[CaseSummary]:
    """Accepted open cases that nobody curates (a referral's case gets one when accepted)."""
    return _cases(session, principal, col(Case.curator_id).is_(None), Case.state != "referred")


def specialist_cases(session: Session, principal: Principal) -> list[CaseSummary]:
    """Open cases of the teams the caller is in and of the sessions she gives (or is to give): a
    specialist's scope is exactly these (api/scoping.py)."""
    return _cases(session, principal)


def awaiting_match_review(
    session: Session, principal: Principal
) -> tuple[list[Referral], list[ReferralPublic]]:
    """Referrals of a child the caller's organisation serves, waiting for it to confirm the match;
    as the disclosure rule lets the caller see them."""
    rows = list(
        session.exec(
            select(Referral)
            .where(
                referral_scope(principal),
                col(Referral.match_status) == MatchStatus.awaiting_review,
                col(Referral.match_reviewer_id) == principal.org.id,
            )
            .order_by(col(Referral.id))
            .limit(LIST_LIMIT)
        ).all()
    )
    return rows, referral_service.publish(session, principal, rows)


@dataclass
class SessionItem:
    id: int
    case_id: int
    child_id: int
    child_name: str
    service: str
    form: str
    scheduled_at: datetime
    duration_minutes: int
    specialist_name: str | None
    family_response: str | None


def day_bounds(zone: ZoneInfo, now: datetime | None = None) -> tuple[date, datetime, datetime, datetime]:
    """Today in the region's zone, and the starts of today, tomorrow and the day after."""
    today = (now or utcnow()).astimezone(zone).date()
    starts = [datetime.combine(today + timedelta(days=i), time(), zone) for i in range(3)]
    return today, starts[0], starts[1], starts[2]


def sessions_between(
    session: Session,
    principal: Principal,
    start: datetime,
    end: datetime,
    *,
    specialist_id: int | None = None,
    curator_id: int | None = None,
) -> list[SessionItem]:
    """Planned sessions from `start` to `end` in the caller's cases: given by `specialist_id`, or
    in the cases `curator_id` curates."""
    conditions: list[Any] = [
        case_scope(principal),
        ServiceSession.status == SessionStatus.planned,
        col(ServiceSession.scheduled_at) >= start,
        col(ServiceSession.scheduled_at) < end,
    ]
    if specialist_id is not None:
        conditions.append(ServiceSession.specialist_id == specialist_id)
    if curator_id is not None:
        conditions.append(Case.curator_id == curator_id)
    specialist = aliased(User)
    rows = session.exec(
        select(ServiceSession, Case, Child, specialist.full_name)  # type: ignore[call-overload]
        .join(Case, col(Case.id) == ServiceSession.case_id)
        .join(Child, col(Child.id) == Case.child_id)
        .outerjoin(specialist, col(specialist.id) == ServiceSession.specialist_id)
        .where(*conditions)
        .order_by(col(ServiceSession.scheduled_at), col(ServiceSession.id))
        .limit(LIST_LIMIT)
    ).all()
    region = session.get(Region, principal.org.region_id)
    labels = {s.code: s.label for s in load_standard(region.code if region else None).services}
    return [
        SessionItem(
            id=row.id or 0,
            case_id=case.id or 0,
            child_id=child.id or 0,
            child_name=full_name(child),
            service=labels.get(row.service_code, row.service_code),
            form=SERVICE_FORM_LABELS.get(row.form, str(row.form)),
            scheduled_at=row.scheduled_at,
            duration_minutes=row.duration_minutes,
            specialist_name=name,
            family_response=row.family_response,
        )
        for row, case, child, name in rows
    ]


@dataclass
class UnreachableItem:
    case: CaseSummary
    failed_attempts: int  # since the last successful contact
    last_failed_at: datetime | None
    undelivered: int  # messages to the family that reached nobody


def unreachable(session: Session, principal: Principal, curator_id: int) -> list[UnreachableItem]:
    """Open cases `curator_id` curates whose family could not be reached: the latest contact
    attempt failed, or a message to the family reached nobody."""
    later_success = aliased(ContactAttempt)
    failed = (
        select(ContactAttempt.case_id, func.count(), func.max(ContactAttempt.at))
        .join(Case, col(Case.id) == ContactAttempt.case_id)
        .where(
            case_scope(principal),
            Case.curator_id == curator_id,
            col(Case.state).not_in(FINAL_STATES),
            col(ContactAttempt.successful).is_(False),
            ~exists().where(
                col(later_success.case_id) == ContactAttempt.case_id,
                col(later_success.successful).is_(True),
                col(later_success.at) > ContactAttempt.at,
            ),
        )
        .group_by(col(ContactAttempt.case_id))
    )
    attempts = {case_id: (n, at) for case_id, n, at in session.exec(failed).all()}
    lost = (
        select(Outbox.case_id, func.count())
        .join(Case, col(Case.id) == Outbox.case_id)
        .where(
            case_scope(principal),
            Case.curator_id == curator_id,
            col(Case.state).not_in(FINAL_STATES),
            Outbox.kind == EffectKind.notify_family,
            Outbox.status == OutboxStatus.undelivered,
        )
        .group_by(col(Outbox.case_id))
    )
    undelivered: dict[int, int] = {case_id: n for case_id, n in session.exec(lost).all() if case_id}
    ids = sorted(set(attempts) | set(undelivered))[:LIST_LIMIT]
    if not ids:
        return []
    cases = {c.id: c for c in _cases(session, principal, col(Case.id).in_(ids))}
    return [
        UnreachableItem(
            case=cases[i],
            failed_attempts=attempts.get(i, (0, None))[0],
            last_failed_at=attempts.get(i, (0, None))[1],
            undelivered=undelivered.get(i, 0),
        )
        for i in ids
        if i in cases
    ]


def by_state(cases: Sequence[CaseSummary]) -> list[tuple[str, str, list[CaseSummary]]]:
    """Cases grouped by state in the journey's order: (state, label, cases)."""
    groups: dict[str, list[CaseSummary]] = {}
    for case in cases:
        groups.setdefault(case.state, []).append(case)
    return [(state, label, groups[state]) for state, label in STATE_LABELS.items() if state in groups]
