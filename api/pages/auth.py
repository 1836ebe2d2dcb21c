"""Sign in, sign out, and each role's home."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep, SettingsDep, Unauthorized
from api.pages.web import COOKIE, HOME, PageUser, read_form, redirect, render, safe_next
from api.security import ThrottleUnavailable, issue_jwt
from api.services.auth import TooManyAttempts, authenticate, end_session

router = APIRouter(include_in_schema=False)


def _login_page(
    request: Request, next_url: str | None, error: str = "", login: str = "", status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "pages/login.html",
        {"title": "Вход", "next": next_url or "", "error": error, "login": login},
        status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    return _login_page(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    form = await read_form(request, None)
    login, password, next_url = form.get("login"), form.get("password"), safe_next(form.get("next"))
    if not login or not password:
        return _login_page(request, next_url, "Введите логин и пароль", login, 422)
    if len(login) > 100 or len(password) > 128:
        return _login_page(request, next_url, "Неверный логин или пароль", "", 401)
    address = request.client.host if request.client else "unknown"
    try:
        user = authenticate(session, request.app.state.login_throttle, login, password, address)
    except Unauthorized:
        return _login_page(request, next_url, "Неверный логин или пароль", login, 401)
    except TooManyAttempts as refused:
        page = _login_page(request, next_url, refused.message, login, 429)
        page.headers["Retry-After"] = str(refused.wait)
        return page
    except ThrottleUnavailable:
        return _login_page(request, next_url, "Вход временно недоступен; повторите через минуту", login, 503)
    assert user.id is not None
    token = issue_jwt(user.id, user.token_generation, request.app.state.keys, settings.jwt_ttl_minutes)
    response = redirect(next_url or HOME[user.role])
    response.set_cookie(
        COOKIE,
        token,
        max_age=settings.jwt_ttl_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, principal: PageUser, session: SessionDep) -> Response:
    await read_form(request, principal)
    end_session(session, principal)
    response = redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(principal: PageUser) -> RedirectResponse:
    return RedirectResponse(HOME[principal.role], status_code=303)
