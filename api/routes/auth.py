from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.openapi import responses
from api.security import PASSWORD_MAX_LENGTH, LoginThrottle, ThrottleUnavailable, issue_jwt
from api.services.auth import TooManyAttempts, authenticate, end_session
from models.users import ROLE_LABELS, UserPublic

router = APIRouter(tags=["Вход"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(min_length=1, max_length=100)
    # The policy's maximum: every password that can be set can be typed here.
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def _refused(status: int, code: str, message: str, retry_after: int) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": code, "message": message, "field": None, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


@router.post(
    "/auth/login",
    response_model=TokenOut,
    summary="Вход по логину и паролю",
    description=(
        "Неудачные попытки ограничены по логину и по адресу клиента: при превышении — 429 "
        "с заголовком Retry-After (через сколько секунд можно повторить)."
    ),
    responses=responses(401, 429),
)
def login(body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep) -> TokenOut | Response:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    try:
        user = authenticate(session, throttle, body.login, body.password, address)
    except TooManyAttempts as refused:
        return _refused(429, refused.code, refused.message, refused.wait)
    except ThrottleUnavailable:
        return _refused(503, "unavailable", "Вход временно недоступен; повторите через минуту", 60)
    assert user.id is not None
    token = issue_jwt(user.id, user.token_generation, request.app.state.keys, settings.jwt_ttl_minutes)
    return TokenOut(access_token=token, expires_in=settings.jwt_ttl_minutes * 60)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Выход: отозвать предъявленный токен",
    description=(
        "Сеансовый токен (JWT) перестаёт действовать сразу; другие сеансы пользователя остаются. "
        "API-токен, предъявленный здесь, отзывается навсегда."
    ),
)
def logout(principal: CurrentUser, session: SessionDep) -> Response:
    end_session(session, principal)
    return Response(status_code=204)


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
        email=u.email,
    )
