from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from api.deps import CurrentUser, SessionDep, SettingsDep, Unauthorized
from api.security import issue_jwt, verify_password
from models.users import ROLE_LABELS, User, UserPublic

router = APIRouter(tags=["Вход"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/auth/login", response_model=TokenOut, summary="Вход по логину и паролю")
def login(body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep) -> TokenOut:
    user = session.exec(select(User).where(User.login == body.login)).first()
    if (
        user is None
        or not user.is_active
        or not user.password_hash
        or not verify_password(body.password, user.password_hash)
    ):
        raise Unauthorized("Неверный логин или пароль", field="login")
    assert user.id is not None
    token = issue_jwt(user.id, request.app.state.jwt_secret, settings.jwt_ttl_minutes)
    return TokenOut(access_token=token, expires_in=settings.jwt_ttl_minutes * 60)


@router.get("/me", response_model=UserPublic, summary="Текущий пользователь")
def me(principal: CurrentUser) -> UserPublic:
    u = principal.user
    assert u.id is not None
    return UserPublic(
        id=u.id,
        login=u.login,
        full_name=u.full_name,
        role=u.role,
        role_label=ROLE_LABELS[u.role],
        organisation_id=u.organisation_id,
    )
