"""Accounts: creating users, their e-mail, role, password, disabling them and ending their tokens.

One set of rules for every door: `earlyhelp user ...` / `earlyhelp token ...`, the administrators'
API (api/routes/users.py) and their pages (api/pages/admin.py) all call these functions. The
administrators' functions below add their scope: the users of the organisations of their region.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.security import PASSWORD_MAX_LENGTH, generate_password, hash_password, password_problem
from api.services.organisations import get_organisation
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.common import DbId, utcnow
from models.organisations import ORG_KIND_LABELS, Organisation, OrgKind
from models.users import ROLE_LABELS, ApiToken, Role, User, UserAdmin, login_problem, normalise_email

# What the administrators' API and pages take (api/routes/users.py, api/pages/admin.py).

Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(normalise_email)]
FullName = Annotated[str, Field(min_length=1, max_length=300)]
Password = Annotated[
    str | None,
    Field(
        default=None,
        max_length=PASSWORD_MAX_LENGTH,
        description="Пароль по правилам (не короче 10 символов, не логин, не из списка "
        "распространённых); без него пароль будет создан и показан один раз",
    ),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(min_length=1, max_length=100)
    full_name: FullName
    email: Email
    role: Role
    organisation_id: DbId
    password: Password = None


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full_name: FullName | None = None
    email: Email | None = None
    role: Role | None = None


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Password = None


class UserWithPassword(BaseModel):
    user: UserAdmin
    # The generated password, shown this once; null when the administrator gave one.
    password: str | None


# Which roles an organisation of each kind can hold (a curator belongs to a provider, an analyst to
# the regional centre); anything else would be an account that can do nothing or the wrong things.
_PROVIDER_ONLY = {Role.intake_coordinator, Role.curator, Role.specialist}
_ROLE_ORG_KINDS: dict[Role, set[OrgKind]] = {
    **{role: {OrgKind.provider} for role in _PROVIDER_ONLY},
    Role.supervisor: {OrgKind.provider, OrgKind.rrmc},
    Role.analyst: {OrgKind.rrmc},
    Role.admin: {OrgKind.rrmc},
    Role.referrer: set(OrgKind) - {OrgKind.rrmc},
}


def role_kinds(role: Role) -> list[OrgKind]:
    """The kinds of organisation that can hold the role, in the order of OrgKind."""
    return [kind for kind in OrgKind if kind in _ROLE_ORG_KINDS[role]]


def role_problem(role: Role, org: Organisation) -> str | None:
    if org.kind not in _ROLE_ORG_KINDS[role]:
        return f"Роль «{ROLE_LABELS[role]}» недоступна в организации вида «{ORG_KIND_LABELS[org.kind]}»"
    return None


def new_user(
    session: Session,
    *,
    login: str,
    full_name: str,
    role: Role,
    org: Organisation,
    email: str | None,
    password: str | None,
) -> User:
    """A new user (flushed, so it has its id). Without a password the account signs in by API token
    only (another system); a person's account needs a password and an e-mail."""
    if problem := login_problem(login):
        raise Unprocessable(problem, field="login")
    if problem := role_problem(role, org):
        raise Unprocessable(problem, field="role")
    if password is not None:
        if email is None:
            raise Unprocessable("Укажите e-mail: на него приходят уведомления о работе", field="email")
        if problem := password_problem(password, login):
            raise Unprocessable(problem, field="password")
    if session.exec(select(User.id).where(User.login == login)).first() is not None:
        raise Conflict(f"Логин {login} уже занят", field="login")
    assert org.id is not None
    user = User(
        organisation_id=org.id,
        login=login,
        full_name=full_name,
        role=role,
        email=email,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """A new password by the policy; every session the user had ends."""
    if problem := password_problem(password, user.login):
        raise Unprocessable(problem, field="password")
    user.password_hash = hash_password(password)
    user.token_generation += 1


def end_sessions(user: User) -> None:
    """Every session JWT of the user stops working at once (API tokens are revoked one by one)."""
    user.token_generation += 1


def set_active(user: User, active: bool) -> None:
    """A disabled user's tokens fail from the next request (get_principal checks is_active); its
    sessions end for good, its API tokens work again if it is enabled again."""
    if not active and user.is_active:
        end_sessions(user)
    user.is_active = active


def revoke_api_tokens(
    session: Session, *, token_id: int | None = None, name: str | None = None, user_id: int | None = None
) -> int:
    """Revoke API tokens by id, or by name (of one user, if given); the number revoked."""
    conditions: list[Any] = [col(ApiToken.revoked_at).is_(None)]
    if token_id is not None:
        conditions.append(ApiToken.id == token_id)
    if name is not None:
        conditions.append(ApiToken.name == name)
    if user_id is not None:
        conditions.append(ApiToken.user_id == user_id)
    if len(conditions) == 1:
        raise ValueError("укажите токен: номер или имя")
    result = session.execute(update(ApiToken).where(*conditions).values(revoked_at=utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


# The administrators' API: scoped to the organisations of the administrator's region.


def require_admin(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise Forbidden("Управление пользователями доступно только администратору")


def list_users(
    session: Session,
    principal: Principal,
    *,
    organisation_id: int | None = None,
    role: Role | None = None,
    active: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[User], int]:
    """The region's users matching the filters, a page of them when `limit` is given, and how
    many match in all."""
    require_admin(principal)
    conditions: list[Any] = [Organisation.region_id == principal.org.region_id]
    if organisation_id is not None:
        conditions.append(User.organisation_id == organisation_id)
    if role is not None:
        conditions.append(User.role == role)
    if active is not None:
        conditions.append(col(User.is_active).is_(active))
    joined = select(User).join(Organisation, Organisation.id == User.organisation_id)  # type: ignore[arg-type]
    query = joined.where(*conditions).order_by(col(User.organisation_id), col(User.full_name), col(User.id))
    if limit is None:
        found = list(session.exec(query))
        return found, len(found)
    total = session.exec(
        select(func.count())
        .select_from(User)
        .join(Organisation, Organisation.id == User.organisation_id)  # type: ignore[arg-type]
        .where(*conditions)
    ).one()
    return list(session.exec(query.offset(offset).limit(limit))), total


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    require_admin(principal)
    user = session.exec(
        select(User)
        .join(Organisation, Organisation.id == User.organisation_id)  # type: ignore[arg-type]
        .where(User.id == user_id, Organisation.region_id == principal.org.region_id)
    ).first()
    if user is None:
        raise NotFound("Пользователь не найден", field="user_id")
    return user


def create_user(
    session: Session,
    principal: Principal,
    *,
    login: str,
    full_name: str,
    role: Role,
    organisation_id: int,
    email: str,
    password: str | None,
) -> tuple[User, str | None]:
    """The new user and, when no password was given, the generated one (to be shown once)."""
    require_admin(principal)
    org = get_organisation(session, principal, organisation_id, field="organisation_id")
    generated = generate_password(login) if password is None else None
    user = new_user(
        session,
        login=login,
        full_name=full_name,
        role=role,
        org=org,
        email=email,
        password=password if password is not None else generated,
    )
    return user, generated


def update_user(
    session: Session,
    principal: Principal,
    user_id: int,
    *,
    full_name: str | None = None,
    email: str | None = None,
    role: Role | None = None,
) -> User:
    user = get_user(session, principal, user_id)
    if role is not None and role != user.role:
        if user.id == principal.id:
            raise Conflict("Свою роль администратор изменить не может", field="role")
        org = session.get(Organisation, user.organisation_id)
        assert org is not None
        if problem := role_problem(role, org):
            raise Unprocessable(problem, field="role")
        user.role = role
        end_sessions(user)  # a session must not keep the rights of the old role
    if full_name is not None:
        user.full_name = full_name
    if email is not None:
        user.email = email
    session.add(user)
    return user


def change_active(session: Session, principal: Principal, user_id: int, active: bool) -> User:
    user = get_user(session, principal, user_id)
    if not active and user.id == principal.id:
        raise Conflict("Администратор не может отключить сам себя", field="user_id")
    set_active(user, active)
    session.add(user)
    return user


def reset_password(
    session: Session, principal: Principal, user_id: int, password: str | None
) -> tuple[User, str | None]:
    """A new password (the given one by the policy, or a generated one returned to show once)."""
    user = get_user(session, principal, user_id)
    generated = generate_password(user.login) if password is None else None
    set_password(user, password if password is not None else generated or "")
    session.add(user)
    return user, generated


def staff_of(session: Session, principal: Principal, org_id: int, role: Role | None) -> list[User]:
    """The active staff of a provider, for a coordinator to pick a curator from: visible to that
    provider's own staff, its region's supervisors (РРМЦ) and its region's administrator."""
    org = session.get(Organisation, org_id)
    in_region = org is not None and org.region_id == principal.org.region_id
    allowed = in_region and (
        principal.org.id == org_id or principal.is_regional_supervisor or principal.role == Role.admin
    )
    if org is None or not allowed or org.kind != OrgKind.provider:
        raise NotFound("Организация не найдена", field="org_id")
    query = select(User).where(User.organisation_id == org_id, col(User.is_active).is_(True))
    if role is not None:
        query = query.where(User.role == role)
    return list(session.exec(query.order_by(col(User.full_name), col(User.id))))
