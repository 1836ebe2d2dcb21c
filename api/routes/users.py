"""The administrator's work through the API: the users of the region's organisations. And the list of
a provider's staff that a coordinator picks a curator from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.services import users as service
from api.services.users import PasswordReset, UserCreate, UserUpdate, UserWithPassword
from models.common import IdParam
from models.users import ROLE_LABELS, Role, StaffMember, UserAdmin

router = APIRouter(tags=["Пользователи"], responses=responses(403, 404))


@router.get("/users", response_model=list[UserAdmin], summary="Пользователи организаций региона")
def list_users(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    organisation_id: IdParam | None = None,
    role: Role | None = None,
    active: bool | None = None,
) -> list[UserAdmin]:
    found, _ = service.list_users(
        session, principal, organisation_id=organisation_id, role=role, active=active
    )
    audit("read", "user", None, None)
    return [UserAdmin.of(u) for u in found]


@router.post(
    "/users",
    response_model=UserWithPassword,
    status_code=201,
    summary="Создать пользователя (пароль по правилам или созданный и показанный один раз)",
    responses=responses(409),
)
def create_user(
    body: UserCreate, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> UserWithPassword:
    user, generated = service.create_user(
        session,
        principal,
        login=body.login,
        full_name=body.full_name,
        role=body.role,
        organisation_id=body.organisation_id,
        email=body.email,
        password=body.password,
    )
    audit("create", "user", user.id, None)
    return UserWithPassword(user=UserAdmin.of(user), password=generated)


@router.get("/users/{user_id}", response_model=UserAdmin, summary="Пользователь")
def get_user(user_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> UserAdmin:
    user = service.get_user(session, principal, user_id)
    audit("read", "user", user.id, None)
    return UserAdmin.of(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserAdmin,
    summary="Изменить ФИО, e-mail или роль",
    responses=responses(409),
)
def update_user(
    user_id: IdParam, body: UserUpdate, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> UserAdmin:
    user = service.update_user(
        session, principal, user_id, full_name=body.full_name, email=body.email, role=body.role
    )
    audit("update", "user", user.id, None)
    return UserAdmin.of(user)


@router.post(
    "/users/{user_id}/disable",
    response_model=UserAdmin,
    summary="Отключить пользователя: все его токены перестают действовать сразу",
    responses=responses(409),
)
def disable_user(user_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> UserAdmin:
    user = service.change_active(session, principal, user_id, active=False)
    audit("disable", "user", user.id, None)
    return UserAdmin.of(user)


@router.post("/users/{user_id}/enable", response_model=UserAdmin, summary="Включить пользователя")
def enable_user(user_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> UserAdmin:
    user = service.change_active(session, principal, user_id, active=True)
    audit("enable", "user", user.id, None)
    return UserAdmin.of(user)


@router.post(
    "/users/{user_id}/password",
    response_model=UserWithPassword,
    summary="Сбросить пароль (сеансы пользователя завершаются)",
)
def reset_password(
    user_id: IdParam, body: PasswordReset, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> UserWithPassword:
    user, generated = service.reset_password(session, principal, user_id, body.password)
    audit("password", "user", user.id, None)
    return UserWithPassword(user=UserAdmin.of(user), password=generated)


@router.get(
    "/organisations/{org_id}/staff",
    response_model=list[StaffMember],
    summary="Сотрудники организации ранней помощи (например, role=curator — выбрать куратора)",
)
def list_staff(
    org_id: IdParam,
    principal: CurrentUser,
    session: SessionDep,
    role: Annotated[Role | None, Query()] = None,
) -> list[StaffMember]:
    return [
        StaffMember(id=u.id or 0, full_name=u.full_name, role=u.role, role_label=ROLE_LABELS[u.role])
        for u in service.staff_of(session, principal, org_id, role)
    ]
