"""Attempts to reach a family: recorded by the provider's staff, read by whoever may see the case."""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.deps import Principal
from api.scoping import require_own_case, require_provider_staff
from core.errors import Unprocessable
from models.cases import Case, ContactAttempt, ContactAttemptIn
from models.common import utcnow
from statemachines import FINAL_STATES


def require_recorder(principal: Principal) -> None:
    """Raises Forbidden unless the caller is staff of a provider (who records contact attempts)."""
    require_provider_staff(principal)


def add_contact_attempt(
    session: Session, principal: Principal, case: Case, attempt: ContactAttemptIn
) -> ContactAttempt:
    """Records one attempt to reach the family (flushed, so it has an id); the caller audits it.

    Raises Forbidden (role) or Unprocessable (closed case, a time in the future).
    """
    require_recorder(principal)
    require_own_case(principal, case)
    if case.state in FINAL_STATES:
        raise Unprocessable("Случай закрыт", field="case_id")
    if attempt.at > utcnow():
        raise Unprocessable("Время попытки не может быть в будущем", field="at")
    assert case.id is not None
    row = ContactAttempt(case_id=case.id, recorded_by_id=principal.id, **attempt.model_dump())
    session.add(row)
    session.flush()
    return row


def list_contact_attempts(session: Session, principal: Principal, case: Case) -> list[ContactAttempt]:
    """The case's contact attempts, oldest first (a held or missed session records one too)."""
    return list(
        session.exec(
            select(ContactAttempt).where(ContactAttempt.case_id == case.id).order_by(col(ContactAttempt.at))
        )
    )
