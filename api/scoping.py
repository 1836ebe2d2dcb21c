"""Who sees what (DESIGN §6): every query on people's data goes through one of these filters.

Out-of-scope objects answer 404, as if they did not exist; roles that never see a kind of data
answer 403.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, and_, col, exists, or_, select

from api.deps import Principal
from core.errors import Forbidden, NotFound
from models.cases import Case
from models.children import Child
from models.deadlines import Deadline
from models.organisations import Organisation
from models.referrals import MatchStatus, Referral
from models.users import Role


def _region_org_ids(principal: Principal) -> Any:
    return select(Organisation.id).where(Organisation.region_id == principal.org.region_id)


def case_scope(principal: Principal) -> Any:
    if principal.is_provider_staff:
        return Case.provider_id == principal.org.id
    if principal.is_regional_supervisor:
        return col(Case.provider_id).in_(_region_org_ids(principal))
    raise Forbidden("Просмотр случаев недоступен для вашей роли")


def deadline_scope(principal: Principal) -> Any:
    if principal.is_provider_staff:
        return Deadline.provider_id == principal.org.id
    if principal.is_regional_supervisor:
        return col(Deadline.provider_id).in_(_region_org_ids(principal))
    raise Forbidden("Просмотр сроков недоступен для вашей роли")


def child_scope(principal: Principal) -> Any:
    if principal.is_provider_staff:
        # Correlated, so one child is checked through the case.child_id index; an IN over the
        # provider's cases built the list of all its children for every lookup (bench/RESULTS.md).
        return exists().where(col(Case.child_id) == Child.id, col(Case.provider_id) == principal.org.id)
    if principal.is_regional_supervisor:
        return Child.region_id == principal.org.region_id
    raise Forbidden("Просмотр сведений о детях недоступен для вашей роли")


def referral_scope(principal: Principal) -> Any:
    """Who may list a referral at all; what each may see of it is api/services/disclosure.py's."""
    if principal.is_provider_staff:
        # Addressed to it, handed to its case, or waiting for it to confirm a match.
        return or_(
            Referral.provider_id == principal.org.id,
            col(Referral.case_id).in_(select(Case.id).where(Case.provider_id == principal.org.id)),
            and_(
                col(Referral.match_status) == MatchStatus.awaiting_review,
                col(Referral.match_reviewer_id) == principal.org.id,
            ),
        )
    if principal.is_regional_supervisor:
        return col(Referral.provider_id).in_(_region_org_ids(principal))
    if principal.role == Role.referrer:
        return or_(
            Referral.created_by_org_id == principal.org.id,
            Referral.referring_org_id == principal.org.id,
        )
    raise Forbidden("Просмотр направлений недоступен для вашей роли")


def get_case(session: Session, principal: Principal, case_id: int) -> Case:
    case = session.exec(select(Case).where(Case.id == case_id, case_scope(principal))).first()
    if case is None:
        raise NotFound("Случай не найден", field="case_id")
    return case


def get_child(session: Session, principal: Principal, child_id: int) -> Child:
    child = session.exec(select(Child).where(Child.id == child_id, child_scope(principal))).first()
    if child is None:
        raise NotFound("Ребёнок не найден", field="child_id")
    return child


def require_provider_staff(principal: Principal, roles: set[Role] | None = None) -> None:
    if not principal.is_provider_staff or (roles is not None and principal.role not in roles):
        raise Forbidden("Действие доступно только сотрудникам организации, оказывающей раннюю помощь")
