"""Who sees what (DESIGN §6): every query on people's data goes through one of these filters.

Out-of-scope objects answer 404, as if they did not exist; roles that never see a kind of data
answer 403.

A provider's specialist sees the cases of the teams she is in and of the sessions she gives (DESIGN
§6, issue 11), not every case of her provider. A member of a case's team from another organisation
(an invited specialist, models/teams.py) reads that case, its child and its sessions by id
(get_case, get_child), and changes nothing (require_own_case); her lists stay her own organisation's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import Session, and_, col, exists, or_, select

from api.deps import Principal
from core.errors import Forbidden, NotFound
from models.cases import Case
from models.children import Child
from models.deadlines import Deadline
from models.organisations import Organisation
from models.programmes import ServiceSession, SessionStatus
from models.referrals import MatchStatus, Referral
from models.teams import Agreement, TeamMember
from models.users import Role

# Roles that never read a child's record, even if someone put them in a team.
_NEVER_MEMBERS = frozenset({Role.analyst, Role.admin})


def _region_org_ids(principal: Principal) -> Any:
    return select(Organisation.id).where(Organisation.region_id == principal.org.region_id)


def in_team(case_id: Any, principal: Principal) -> Any:
    """SQL: the caller is a member of the case's team now (the partial index ix_team_member_active_user):
    of the case's provider, or of an organisation whose agreement with it is in force on the region's
    today (api/services/agreements.py)."""
    # Aliases here and below: the subquery keeps its own table even when the outer query reads the
    # same one (the «Сегодня» joins sessions), instead of correlating it away.
    member = aliased(TeamMember)
    owner = aliased(Case)
    return exists().where(
        col(member.user_id) == principal.id,
        col(member.case_id) == case_id,
        col(member.removed_at).is_(None),
        col(owner.id) == member.case_id,
        _team_agreement_holds(member, owner, principal),
    )


def _team_agreement_holds(member: Any, owner: Any, principal: Principal) -> Any:
    """SQL: the member is of the case's provider, or of an organisation whose agreement with it is in
    force on the region's today (an agreement past its term closes the door as one ended does)."""
    agreement = aliased(Agreement)
    today = principal.today
    return or_(
        col(member.organisation_id) == owner.provider_id,
        exists().where(
            col(agreement.provider_id) == owner.provider_id,
            col(agreement.partner_org_id) == member.organisation_id,
            col(agreement.ended_at).is_(None),
            col(agreement.signed_on) <= today,
            or_(col(agreement.valid_until).is_(None), col(agreement.valid_until) >= today),
        ),
    )


def _team_case_ids(principal: Principal) -> Any:
    """SQL: the ids of the cases whose team the caller is in now (any provider's)."""
    member, team_case = aliased(TeamMember), aliased(Case)
    return (
        select(member.case_id)
        .join(team_case, col(team_case.id) == member.case_id)
        .where(
            col(member.user_id) == principal.id,
            col(member.removed_at).is_(None),
            _team_agreement_holds(member, team_case, principal),
        )
    )


def _session_case_ids(principal: Principal) -> Any:
    """SQL: the ids of the cases where the caller gives (or is to give) a session
    (ix_session_specialist_time); a cancelled session is nothing she gives."""
    given = aliased(ServiceSession)
    return select(given.case_id).where(
        col(given.specialist_id) == principal.id, col(given.status) != SessionStatus.cancelled
    )


def _specialists(case: Any, principal: Principal) -> Any:
    """SQL on `case` (Case or an alias of it): the specialist's own cases — of her teams (any
    provider's), and of her provider where she gives sessions.

    Two small sets computed once (a few dozen cases, a thousand at most) that a list filters by: a
    correlated EXISTS per row made the specialist's «Сегодня» walk all her provider's cases (0.4 s
    on PostgreSQL with 100 000 cases, bench/RESULTS.md)."""
    return or_(
        col(case.id).in_(_team_case_ids(principal)),
        and_(case.provider_id == principal.org.id, col(case.id).in_(_session_case_ids(principal))),
    )


def _specialists_case_of(column: Any, principal: Principal) -> Any:
    """SQL: the case `column` names is one of the specialist's."""
    case = aliased(Case)
    return col(column).in_(select(case.id).where(_specialists(case, principal)))


def case_scope(principal: Principal) -> Any:
    if principal.is_provider_staff:
        if principal.role == Role.specialist:
            return _specialists(Case, principal)
        return Case.provider_id == principal.org.id
    if principal.is_regional_supervisor:
        return col(Case.provider_id).in_(_region_org_ids(principal))
    raise Forbidden("Просмотр случаев недоступен для вашей роли")


def deadline_scope(principal: Principal) -> Any:
    if principal.is_provider_staff:
        if principal.role == Role.specialist:
            mine = _specialists_case_of(Deadline.case_id, principal)
            return and_(Deadline.provider_id == principal.org.id, mine)
        return Deadline.provider_id == principal.org.id
    if principal.is_regional_supervisor:
        return col(Deadline.provider_id).in_(_region_org_ids(principal))
    raise Forbidden("Просмотр сроков недоступен для вашей роли")


def child_scope(principal: Principal) -> Any:
    # A child merged into another (models/registry.py) is gone from every door: its id answers 404.
    not_merged = col(Child.merged_into_id).is_(None)
    if principal.is_provider_staff:
        # Correlated, so one child is checked through the case.child_id index; an IN over the
        # provider's cases built the list of all its children for every lookup (bench/RESULTS.md).
        return and_(not_merged, exists().where(col(Case.child_id) == Child.id, case_scope(principal)))
    if principal.is_regional_supervisor:
        return and_(not_merged, Child.region_id == principal.org.region_id)
    raise Forbidden("Просмотр сведений о детях недоступен для вашей роли")


def referral_scope(principal: Principal) -> Any:
    """Who may list a referral at all; what each may see of it is api/services/disclosure.py's."""
    if principal.is_provider_staff and principal.role == Role.specialist:
        # The referrals of her cases only: the provider's intake is the coordinator's.
        return _specialists_case_of(Referral.case_id, principal)
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


def _may_be_invited(principal: Principal) -> bool:
    return principal.role not in _NEVER_MEMBERS and not principal.is_regional_supervisor


def get_case(session: Session, principal: Principal, case_id: int, *, invited: bool = True) -> Case:
    """The case if the caller may see it; NotFound otherwise (Forbidden for a role that sees no
    cases and is not in this case's team). `invited=False`: not through another organisation's team
    membership (a door that changes the case)."""
    refused: Forbidden | None = None
    try:
        case = session.exec(select(Case).where(Case.id == case_id, case_scope(principal))).first()
    except Forbidden as error:
        case, refused = None, error
    if case is None and invited and _may_be_invited(principal):
        case = session.exec(select(Case).where(Case.id == case_id, in_team(Case.id, principal))).first()
    if case is not None:
        return case
    if refused is not None:
        raise refused
    raise NotFound("Случай не найден", field="case_id")


def get_child(session: Session, principal: Principal, child_id: int, *, invited: bool = True) -> Child:
    """The child if the caller may see it (as get_case: through a team of one of its cases too)."""
    refused: Forbidden | None = None
    try:
        child = session.exec(select(Child).where(Child.id == child_id, child_scope(principal))).first()
    except Forbidden as error:
        child, refused = None, error
    if child is None and invited and _may_be_invited(principal):
        member = exists().where(col(Case.child_id) == Child.id, in_team(Case.id, principal))
        not_merged = col(Child.merged_into_id).is_(None)
        child = session.exec(select(Child).where(Child.id == child_id, member, not_merged)).first()
    if child is not None:
        return child
    if refused is not None:
        raise refused
    raise NotFound("Ребёнок не найден", field="child_id")


def is_invited(principal: Principal, case: Case) -> bool:
    """The caller sees the case only as an invited member of its team (another organisation)."""
    return not principal.is_regional_supervisor and principal.org.id != case.provider_id


def require_own_case(principal: Principal, case: Case) -> None:
    """An invited member of another organisation reads the case and changes nothing in it."""
    if is_invited(principal, case):
        raise Forbidden("Приглашённый специалист другой организации не может изменять случай")


def require_provider_staff(principal: Principal, roles: set[Role] | None = None) -> None:
    if not principal.is_provider_staff or (roles is not None and principal.role not in roles):
        raise Forbidden("Действие доступно только сотрудникам организации, оказывающей раннюю помощь")
