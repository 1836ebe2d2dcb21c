"""The receiving organisation's door (issue 11, the transition): the staff of a ДОО (or of another
programme's organisation) named as a case's destination see the children coming to them, with the
minimum, and confirm a child's enrolment, which fires `enrol` through the one door
(statemachines.fire: the event is marked `by_destination`; the ДОО's user is its actor).

Nobody else passes: other roles get 403, an id that is not coming to the caller's organisation 404.
The caller writes the audit rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, or_, select

from api.deps import Principal
from core.errors import Forbidden, NotFound
from models.cases import Case
from models.children import Child, full_name
from models.enrolments import EnrolmentPublic
from models.organisations import Organisation
from models.users import Role, User
from standards import load_standard
from statemachines import STATE_LABELS, fire
from statemachines.fire import region_of
from statemachines.guards import RECEIVING_KINDS, age_limit_date

# What a receiving organisation sees: children on their way, in adaptation, and those whose
# adaptation there ended; not a case that ended otherwise (a family's refusal is not its business).
VISIBLE_STATES = ("transition", "adaptation", "suspended")


def is_receiver(principal: Principal) -> bool:
    """The caller works at an organisation that can receive children (a ДОО, another programme)."""
    return principal.role == Role.referrer and principal.org.kind in RECEIVING_KINDS


def require_receiver(principal: Principal) -> None:
    """Raises Forbidden unless the caller works at an organisation that can receive children."""
    if not is_receiver(principal):
        raise Forbidden("Сведения о поступлении детей доступны сотрудникам принимающей организации (ДОО)")


def _scope(principal: Principal) -> Any:
    return (col(Case.destination_org_id) == principal.org.id) & or_(
        col(Case.state).in_(VISIBLE_STATES),
        (col(Case.state) == "completed") & col(Case.adaptation_starts_on).is_not(None),
    )


def _public(session: Session, case: Case, child: Child, provider: Organisation) -> EnrolmentPublic:
    curator = session.get(User, case.curator_id) if case.curator_id else None
    limit = load_standard(region_of(session, case).code).age.max_months_at_referral
    return EnrolmentPublic(
        case_id=case.id or 0,
        child_name=full_name(child),
        child_birth_date=child.birth_date,
        provider_name=provider.name,
        provider_phone=provider.phone,
        curator_name=curator.full_name if curator else None,
        curator_email=curator.email if curator else None,
        state=case.state,
        state_label=STATE_LABELS[case.state],
        expected_on=age_limit_date(child.birth_date, limit),
        enrolled_on=case.adaptation_starts_on,
        adaptation_ends_on=case.adaptation_ends_on,
    )


def list_enrolments(session: Session, principal: Principal) -> list[tuple[Case, EnrolmentPublic]]:
    """The children coming to (or in adaptation at) the caller's organisation, the expected first."""
    require_receiver(principal)
    rows = session.exec(
        select(Case, Child, Organisation)
        .join(Child, col(Child.id) == Case.child_id)
        .join(Organisation, col(Organisation.id) == Case.provider_id)
        .where(_scope(principal))
        .order_by(col(Case.adaptation_starts_on).desc(), col(Child.birth_date), col(Case.id))
    ).all()
    # Those still expected first (no enrolment date yet), then the latest enrolments.
    items = [(case, _public(session, case, child, provider)) for case, child, provider in rows]
    items.sort(key=lambda item: item[1].enrolled_on is not None)
    return items


def get_enrolment(session: Session, principal: Principal, case_id: int) -> Case:
    """A case coming to the caller's organisation; NotFound for any other id."""
    require_receiver(principal)
    case = session.exec(select(Case).where(col(Case.id) == case_id, _scope(principal))).first()
    if case is None:
        raise NotFound("Ребёнок не найден среди поступающих в вашу организацию", field="case_id")
    return case


def public(session: Session, case: Case) -> EnrolmentPublic:
    child = session.get(Child, case.child_id)
    provider = session.get(Organisation, case.provider_id)
    assert child is not None and provider is not None
    return _public(session, case, child, provider)


def confirm(session: Session, principal: Principal, case_id: int, enrolled_on: date) -> Case:
    """The ДОО confirms the child came on `enrolled_on`: `enrol` fires with the ДОО's user as actor,
    the adaptation period of the region's length begins. Raises NotFound, NotAllowed (409: not
    expected any more, e.g. already enrolled) or GuardFailed (422: an impossible date)."""
    case = get_enrolment(session, principal, case_id)
    fire(
        session,
        case,
        "enrol",
        actor=principal.user,
        payload={"enrolled_on": enrolled_on.isoformat(), "destination_org_id": case.destination_org_id},
    )
    return case
