"""A case's multidisciplinary team («междисциплинарная команда»): the curator leads it, members join by
specialist role, from the case's provider or, invited, from an organisation with an agreement in force
with it (api/services/agreements.py).

Membership is what opens a case to a specialist and to an invited specialist (api/scoping.py). The
API (api/routes/teams.py) and the case page (api/pages/teams.py) call these; each checks the role;
the caller writes the audit row. Functions that take a `Case` expect it from api.scoping.get_case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.deps import Principal
from api.scoping import in_team
from api.services.agreements import partners_in_force, region_today
from api.services.cases import summary
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.cases import Case, CaseSummary
from models.children import Child
from models.common import utcnow
from models.organisations import Organisation
from models.teams import TeamMember, TeamMemberIn, TeamMemberPublic, TeamPublic
from models.users import Role, User
from standards import load_standard
from statemachines import FINAL_STATES
from statemachines.fire import region_of

# Who forms a case's team: the provider's curator, intake coordinator and head.
TEAM_EDITORS = frozenset({Role.curator, Role.intake_coordinator, Role.supervisor})
# Who of the provider's own staff can be a member (the others coordinate; they do not give help).
PROVIDER_MEMBER_ROLES = frozenset({Role.specialist, Role.curator})
# Who of a partner organisation can be invited: its staff who work with children, not the region's
# analysts and administrators (they never see a child's record).
PARTNER_MEMBER_ROLES = frozenset(
    {Role.referrer, Role.specialist, Role.curator, Role.intake_coordinator, Role.supervisor}
)
LEAD_ROLE = "curator"


def can_edit(principal: Principal, case: Case) -> bool:
    return (
        principal.is_provider_staff
        and principal.org.id == case.provider_id
        and principal.role in TEAM_EDITORS
        and case.state not in FINAL_STATES
    )


def _require_editor(principal: Principal, case: Case) -> None:
    if not (
        principal.is_provider_staff
        and principal.org.id == case.provider_id
        and principal.role in TEAM_EDITORS
    ):
        raise Forbidden("Команду случая формируют куратор, координатор и руководитель организации")
    if case.state in FINAL_STATES:
        raise Unprocessable("Случай закрыт; изменить команду нельзя", field="case_id")


def role_labels(session: Session, case: Case) -> dict[str, str]:
    """The standard's specialist roles (code → label), in the standard's order."""
    return {r.code: r.label for r in load_standard(region_of(session, case).code).specialist_roles}


def active_members(session: Session, case: Case) -> list[TeamMember]:
    return list(
        session.exec(
            select(TeamMember)
            .where(TeamMember.case_id == case.id, col(TeamMember.removed_at).is_(None))
            .order_by(col(TeamMember.id))
        )
    )


def team(session: Session, case: Case) -> TeamPublic:
    """The lead (the case's curator) first, then the members by the standard's order of roles."""
    assert case.id is not None
    labels = role_labels(session, case)
    order = {code: n for n, code in enumerate(labels)}
    # A member of another organisation whose agreement has run past its term reads nothing any more
    # (api/scoping.in_team): she is not shown as a member either.
    provider = session.get(Organisation, case.provider_id)
    assert provider is not None
    partners = partners_in_force(session, case.provider_id, region_today(session, provider.region_id))
    members = [
        m
        for m in active_members(session, case)
        if m.organisation_id == case.provider_id or m.organisation_id in partners
    ]
    users = {
        u.id: u for u in session.exec(select(User).where(col(User.id).in_([m.user_id for m in members])))
    }
    org_ids = {m.organisation_id for m in members}
    curator = session.get(User, case.curator_id) if case.curator_id else None
    if curator is not None:
        org_ids.add(curator.organisation_id)
    orgs = {o.id: o for o in session.exec(select(Organisation).where(col(Organisation.id).in_(org_ids)))}
    shown: list[TeamMemberPublic] = []
    if curator is not None:
        assert curator.id is not None
        shown.append(
            TeamMemberPublic(
                id=None,
                user_id=curator.id,
                full_name=curator.full_name,
                organisation_id=curator.organisation_id,
                organisation_name=orgs[curator.organisation_id].name,
                specialist_role=LEAD_ROLE,
                specialist_role_label="Ведущий специалист — куратор по работе с семьей",
                lead=True,
                invited=curator.organisation_id != case.provider_id,
                added_at=None,
            )
        )
    for m in sorted(members, key=lambda m: (order.get(m.specialist_role, len(order)), m.id or 0)):
        user = users[m.user_id]
        shown.append(
            TeamMemberPublic(
                id=m.id,
                user_id=m.user_id,
                full_name=user.full_name,
                organisation_id=m.organisation_id,
                organisation_name=orgs[m.organisation_id].name,
                specialist_role=m.specialist_role,
                specialist_role_label=labels.get(m.specialist_role, m.specialist_role),
                lead=False,
                invited=m.organisation_id != case.provider_id,
                added_at=m.added_at,
            )
        )
    return TeamPublic(case_id=case.id, members=shown)


def _member_problem(
    session: Session, case: Case, user: User | None, region_id: int
) -> tuple[str, str] | None:
    """Why `user` cannot join the case's team (a message and its field), or None."""
    if user is None or not user.is_active:
        return "Пользователь не найден", "user_id"
    org = session.get(Organisation, user.organisation_id)
    if org is None or org.region_id != region_id:
        return "Пользователь не найден", "user_id"
    if org.id == case.provider_id:
        if user.role not in PROVIDER_MEMBER_ROLES:
            return "В команду входят специалисты и кураторы организации", "user_id"
        return None
    if user.role not in PARTNER_MEMBER_ROLES:
        return "Этот пользователь не может входить в команду случая", "user_id"
    if org.id not in partners_in_force(session, case.provider_id, region_today(session, region_id)):
        provider = session.get(Organisation, case.provider_id)
        assert provider is not None
        return (
            f"У организации «{org.name}» нет действующего соглашения о межведомственном "
            f"взаимодействии с «{provider.name}»",
            "user_id",
        )
    return None


def add_member(session: Session, principal: Principal, case: Case, body: TeamMemberIn) -> TeamMember:
    """Adds a person to the case's team (flushed, with an id). Raises Forbidden (role), Unprocessable
    naming the field (closed case, unknown role, a person who may not join) or Conflict (already in)."""
    _require_editor(principal, case)
    assert case.id is not None and principal.user.id is not None
    if body.specialist_role not in role_labels(session, case):
        raise Unprocessable(
            f"Роли специалиста «{body.specialist_role}» нет в стандарте региона", field="specialist_role"
        )
    user = session.get(User, body.user_id)
    if problem := _member_problem(session, case, user, principal.org.region_id):
        message, field = problem
        raise Unprocessable(message, field=field)
    assert user is not None
    if user.id == case.curator_id:
        raise Conflict("Куратор случая уже ведёт его команду", field="user_id")
    already = session.exec(
        select(TeamMember.id).where(
            TeamMember.case_id == case.id, TeamMember.user_id == user.id, col(TeamMember.removed_at).is_(None)
        )
    ).first()
    if already is not None:
        raise Conflict("Этот специалист уже в команде случая", field="user_id")
    member = TeamMember(
        case_id=case.id,
        user_id=body.user_id,
        organisation_id=user.organisation_id,
        specialist_role=body.specialist_role,
        added_by_id=principal.user.id,
    )
    try:
        # Two editors adding the same person at once: the partial unique index decides, 409 not 500.
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError:
        raise Conflict("Этот специалист уже в команде случая", field="user_id") from None
    return member


def remove_member(session: Session, principal: Principal, case: Case, member_id: int) -> TeamMember:
    """Ends a membership now (the row stays: who was in the team and when). Raises Forbidden,
    NotFound (not this case's) or Conflict (already removed)."""
    _require_editor(principal, case)
    member = session.get(TeamMember, member_id)
    if member is None or member.case_id != case.id:
        raise NotFound("Участник команды не найден", field="member_id")
    if member.removed_at is not None:
        raise Conflict("Участник уже исключён из команды", field="member_id")
    member.removed_at = utcnow()
    member.removed_by_id = principal.user.id
    session.add(member)
    session.flush()
    return member


@dataclass(frozen=True)
class Candidate:
    user_id: int
    full_name: str
    organisation_name: str
    invited: bool


def candidates(session: Session, case: Case) -> list[Candidate]:
    """Who may join the case's team now (for the page's select): the provider's specialists and
    curators, and the staff of organisations with an agreement in force; not those already in."""
    provider = session.get(Organisation, case.provider_id)
    assert provider is not None
    partners = partners_in_force(session, case.provider_id, region_today(session, provider.region_id))
    taken = {m.user_id for m in active_members(session, case)}
    if case.curator_id:
        taken.add(case.curator_id)
    rows = session.exec(
        select(User, Organisation)
        .join(Organisation, Organisation.id == User.organisation_id)  # type: ignore[arg-type]
        .where(
            col(User.is_active).is_(True),
            col(User.organisation_id).in_([case.provider_id, *partners]),
        )
        .order_by(col(Organisation.id) != case.provider_id, col(Organisation.name), col(User.full_name))
    )
    found = []
    for user, org in rows:
        own = org.id == case.provider_id
        allowed = PROVIDER_MEMBER_ROLES if own else PARTNER_MEMBER_ROLES
        if user.id in taken or user.role not in allowed:
            continue
        assert user.id is not None
        found.append(Candidate(user.id, user.full_name, org.name, not own))
    return found


def end_partner_memberships(session: Session, provider_id: int, partner_org_id: int, now: datetime) -> int:
    """After an agreement ends: the partner's staff leave the provider's teams, unless another
    agreement with the partner is still in force. Returns how many memberships ended."""
    provider = session.get(Organisation, provider_id)
    assert provider is not None
    if partner_org_id in partners_in_force(session, provider_id, region_today(session, provider.region_id)):
        return 0
    members = session.exec(
        select(TeamMember)
        .join(Case, col(Case.id) == TeamMember.case_id)
        .where(
            Case.provider_id == provider_id,
            TeamMember.organisation_id == partner_org_id,
            col(TeamMember.removed_at).is_(None),
        )
    ).all()
    for member in members:
        member.removed_at = now
        session.add(member)
    session.flush()
    return len(members)


def my_cases(session: Session, principal: Principal) -> list[CaseSummary]:
    """The open cases of the teams the caller is in (any organisation's), the latest changed first:
    how an invited specialist finds them, since her organisation's lists never hold them."""
    rows = session.exec(
        select(Case, Child)
        .join(Child, col(Child.id) == Case.child_id)
        .where(in_team(Case.id, principal), col(Case.state).not_in(FINAL_STATES))
        .order_by(col(Case.updated_at).desc(), col(Case.id).desc())
        .limit(100)
    ).all()
    return [CaseSummary(**summary(case, child)) for case, child in rows]
