"""Cases as the API and the pages show and change them: listing, the detail card, events, the curator.

Every function takes the caller (`Principal`) and does its own role check, so the API routes and the
web pages share one rule. Functions that take a `Case` expect it from `api.scoping.get_case` (scoped).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select, update

from api.deps import Principal
from api.scoping import case_scope, require_own_case, require_provider_staff
from api.services import transfers
from api.services.standard import latest_conclusion
from core.errors import Unprocessable
from models.cases import Case, CaseDetail, CaseHistory, CaseSummary, HistoryPublic
from models.children import Child, full_name
from models.common import utcnow
from models.deadlines import Deadline, DeadlinePublic
from models.outbox import Delivery, DeliveryPublic, EffectPublic, Outbox, OutboxStatus
from models.users import Role, User
from statemachines import FINAL_STATES, STATE_LABELS, StaleVersion, available_events, fire
from statemachines.effects import enqueue
from statemachines.guards import curator_problem

# Who may assign or change a case's curator.
CURATOR_ASSIGNERS = frozenset({Role.intake_coordinator, Role.supervisor})


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


def require_curator_assigner(principal: Principal) -> None:
    """Raises Forbidden unless the caller may assign curators (provider coordinator or supervisor)."""
    require_provider_staff(principal, set(CURATOR_ASSIGNERS))


def can_assign_curator(principal: Principal) -> bool:
    return principal.is_provider_staff and principal.role in CURATOR_ASSIGNERS


def assign_curator(
    session: Session, principal: Principal, case: Case, curator_id: int | None, version: int
) -> Case:
    """Sets (or clears, with None) the case's curator if the case still has `version`.

    Raises Forbidden (role), Unprocessable (closed case, curator not of the provider) or StaleVersion.
    The new curator is told through the outbox. The caller writes the audit row.
    """
    require_curator_assigner(principal)
    require_own_case(principal, case)
    if case.state in FINAL_STATES:
        raise Unprocessable("Случай закрыт; изменить его нельзя", field="case_id")
    if problem := curator_problem(session, case.provider_id, curator_id):
        raise Unprocessable(problem, field="curator_id")
    previous_curator = case.curator_id
    result = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == version)  # type: ignore[arg-type]
        .values(curator_id=curator_id, version=version + 1, updated_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion(case.version)
    session.refresh(case)
    tell_new_curator(session, case, previous_curator, principal)
    return case


def fire_event(
    session: Session,
    principal: Principal,
    case: Case,
    event: str,
    *,
    version: int,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Case:
    """Fires a journey event through the one door (statemachines.fire) with the version the user saw.

    Raises NotAllowed/Forbidden/StaleVersion (409/403) or Unprocessable (a guard or the payload).
    The caller writes the audit row ("transition").
    """
    # An invited member of another organisation fires nothing here, not even an event its
    # organisation may fire through its own door (the ДОО's `enrol`: api/services/enrolments.py).
    require_own_case(principal, case)
    fire(
        session,
        case,
        event,
        actor=principal.user,
        payload=payload,
        reason=reason,
        expected_version=version,
    )
    return case


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
        pending_transfer=transfers.pending_for_case(session, principal, case),
        conclusion=latest_conclusion(session, case),
        destination_org_id=case.destination_org_id,
        adaptation_starts_on=case.adaptation_starts_on,
        adaptation_ends_on=case.adaptation_ends_on,
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
