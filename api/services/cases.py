"""Reading cases as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.scoping import case_scope
from models.cases import Case, CaseDetail, CaseHistory, CaseSummary, HistoryPublic
from models.children import Child, full_name
from models.common import utcnow
from models.deadlines import Deadline, DeadlinePublic
from models.outbox import Delivery, DeliveryPublic, EffectPublic, Outbox, OutboxStatus
from models.users import User
from statemachines import STATE_LABELS, available_events
from statemachines.effects import enqueue


def summary(case: Case, child: Child) -> dict[str, Any]:
    assert case.id is not None
    return {
        "id": case.id,
        "child_id": case.child_id,
        "child_name": full_name(child),
        "child_birth_date": child.birth_date,
        "provider_id": case.provider_id,
        "curator_id": case.curator_id,
        "state": case.state,
        "state_label": STATE_LABELS[case.state],
        "version": case.version,
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
        "closed_at": case.closed_at,
    }


def list_cases(
    session: Session,
    principal: Principal,
    *,
    states: Sequence[str] = (),
    provider_id: int | None = None,
    curator_id: int | None = None,
    child_id: int | None = None,
    undelivered: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[CaseSummary], int]:
    conditions = [case_scope(principal)]
    if undelivered:
        # Effects that reached nobody wait for a person (an e-mail to add, a curator to assign).
        conditions.append(
            col(Case.id).in_(
                select(Outbox.case_id).where(
                    Outbox.status == OutboxStatus.undelivered, col(Outbox.case_id).is_not(None)
                )
            )
        )
    if states:
        conditions.append(col(Case.state).in_(states))
    if provider_id is not None:
        conditions.append(Case.provider_id == provider_id)
    if curator_id is not None:
        conditions.append(Case.curator_id == curator_id)
    if child_id is not None:
        conditions.append(Case.child_id == child_id)
    total = session.exec(select(func.count()).select_from(Case).where(*conditions)).one()
    rows = session.exec(
        select(Case, Child)
        .join(Child, Child.id == Case.child_id)  # type: ignore[arg-type]
        .where(*conditions)
        .order_by(col(Case.updated_at).desc(), col(Case.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [CaseSummary(**summary(case, child)) for case, child in rows], total


def tell_new_curator(session: Session, case: Case, previous: int | None, principal: Principal) -> None:
    """A curator assigned after acceptance is told, as one assigned at acceptance is."""
    if case.curator_id is None or case.curator_id == previous:
        return
    user: User = principal.user
    enqueue(
        session,
        "curator_assigned",
        case_id=case.id,
        referral_id=case.referral_id,
        context={"payload": {"curator_id": case.curator_id}, "actor_id": user.id},
    )


def detail(session: Session, principal: Principal, case: Case) -> CaseDetail:
    child = session.get(Child, case.child_id)
    assert child is not None
    history = session.exec(
        select(CaseHistory).where(CaseHistory.case_id == case.id).order_by(col(CaseHistory.id))
    ).all()
    allowed, blocked = available_events(session, case, principal.user)
    return CaseDetail(
        **summary(case, child),
        suspended_from=case.suspended_from,
        referral_id=case.referral_id,
        allowed_events=allowed,
        blocked=blocked,
        history=[HistoryPublic.model_validate(h, from_attributes=True) for h in history],
        effects=effects(session, case),
        deadlines=deadlines(session, case),
    )


def days_late(due_at: datetime, now: datetime) -> int:
    """Whole days past due (0 on the day it fell due, negative before)."""
    return (now - due_at).days


def deadlines(session: Session, case: Case) -> list[DeadlinePublic]:
    now = utcnow()
    rows = session.exec(select(Deadline).where(Deadline.case_id == case.id).order_by(col(Deadline.id))).all()
    return [
        DeadlinePublic(
            id=d.id or 0,
            case_id=d.case_id,
            timer=d.timer,
            label=d.label,
            status=d.status,
            due_at=d.due_at,
            warn_at=d.warn_at,
            paused=d.paused_at is not None,
            closed_at=d.closed_at,
            days_overdue=max(days_late(d.due_at, now), 0)
            if d.status == "open" and d.paused_at is None
            else 0,
        )
        for d in rows
    ]


def effects(session: Session, case: Case) -> list[EffectPublic]:
    rows = session.exec(select(Outbox).where(Outbox.case_id == case.id).order_by(col(Outbox.id))).all()
    deliveries: dict[int, list[DeliveryPublic]] = {}
    for d in session.exec(select(Delivery).where(Delivery.case_id == case.id).order_by(col(Delivery.id))):
        deliveries.setdefault(d.outbox_id, []).append(DeliveryPublic.model_validate(d, from_attributes=True))
    return [
        EffectPublic(
            id=r.id or 0,
            kind=r.kind,
            template=r.template,
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            created_at=r.created_at,
            done_at=r.done_at,
            deliveries=deliveries.get(r.id or 0, []),
        )
        for r in rows
    ]
