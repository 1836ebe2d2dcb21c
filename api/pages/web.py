"""What every staff page shares: the session cookie, the page's caller and audit, forms with their
CSRF token, the templates and their Russian filters.

Pages call the same service modules as the API (api/services/): scoping and the disclosure rule
are written once. A page only turns HTTP (a form, a query string) into a service call and the
result into HTML.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from api.deps import Audit, Principal, SessionDep, Unauthorized, principal_from_token
from core.errors import DomainError, Unprocessable
from core.text import plural
from models.common import control_character
from models.organisations import Region
from models.users import ROLE_LABELS, Role

COOKIE = "eh_session"
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)


class LoginRequired(DomainError):
    """No valid session cookie: the page answers with a redirect to /login (api/errors.py)."""

    status_code = 401
    code = "login_required"


class CsrfFailed(DomainError):
    status_code = 403
    code = "csrf"


# --- the caller -------------------------------------------------------------------------------


def get_page_principal(request: Request, session: SessionDep) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired("Войдите в систему")
    try:
        principal = principal_from_token(request, session, token)
    except Unauthorized as error:
        raise LoginRequired("Сеанс истёк; войдите снова") from error
    if principal.credential is None or principal.credential.jti is None:
        raise LoginRequired("Войдите в систему")  # API tokens are not page sessions
    # What the page's frame shows, copied now: an error rolls the session back and expires the rows.
    request.state.viewer = Viewer(
        full_name=principal.user.full_name,
        role=principal.role,
        org_name=principal.org.name,
        csrf=csrf_token(principal),
        receives_children=receives_children(principal),
    )
    request.state.zone = region_zone(session, principal)
    return principal


@dataclass(frozen=True)
class Viewer:
    full_name: str
    role: Role
    org_name: str
    csrf: str
    # Staff of a ДОО (or another receiving organisation): the menu has «Поступающие дети».
    receives_children: bool = False


PageUser = Annotated[Principal, Depends(get_page_principal)]


class PageAudit(Audit):
    """The audit log as the API writes it, for a page's caller."""

    def __init__(self, request: Request, session: SessionDep, principal: PageUser) -> None:
        super().__init__(request, session, principal)


PageAuditDep = Annotated[PageAudit, Depends()]


def require_roles(principal: Principal, *roles: Role) -> None:
    from core.errors import Forbidden

    if principal.role not in roles:
        raise Forbidden("Эта страница недоступна для вашей роли")


# --- forms ------------------------------------------------------------------------------------


def csrf_token(principal: Principal | None) -> str:
    """Bound to the session: its jti is a secret only the session cookie (HttpOnly) carries."""
    if principal is None or principal.credential is None or principal.credential.jti is None:
        return ""
    return hmac.new(principal.credential.jti.encode(), b"earlyhelp-csrf", hashlib.sha256).hexdigest()[:40]


class Form:
    """A submitted form: values as strings, refused when a control character is in one."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.items:
            if key == name:
                return value.strip()
        return default

    def getlist(self, name: str) -> list[str]:
        return [value.strip() for key, value in self.items if key == name]

    def __contains__(self, name: str) -> bool:
        return any(key == name for key, _ in self.items)


async def read_form(request: Request, principal: Principal | None) -> Form:
    """The form of a POST, after its CSRF token is checked (none for the login form)."""
    raw = await request.form()
    items: list[tuple[str, str]] = []
    for key, value in raw.multi_items():
        if not isinstance(value, str):
            continue  # files are read by the page that takes them
        if char := control_character(key) or control_character(value):
            raise Unprocessable(f"Недопустимый управляющий символ {char} в поле формы", field=key)
        items.append((key, value))
    form = Form(items)
    if principal is not None:
        expected = csrf_token(principal)
        if not hmac.compare_digest(form.get("csrf"), expected):
            raise CsrfFailed("Форма устарела: обновите страницу и отправьте её снова")
    return form


def form_id(raw: str) -> int | None:
    """An id typed in (or chosen in) a form: ASCII digits only, at most 9 of them; None otherwise.
    (`str.isdigit` alone takes '²' and '١', which int() then refuses with a 500.)"""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


# --- rendering --------------------------------------------------------------------------------


def region_zone(session: Session, principal: Principal) -> ZoneInfo:
    region = session.get(Region, principal.org.region_id)
    return ZoneInfo(region.timezone if region else "Europe/Moscow")


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    base: dict[str, Any] = {
        "user": viewer,
        "role_label": ROLE_LABELS[viewer.role] if viewer else "",
        "nav": nav_of(viewer),
        "current": current_nav(nav_of(viewer), request.url.path),
        "csrf": viewer.csrf if viewer else "",
        "tz": getattr(request.state, "zone", None),
        "path": request.url.path,
    }
    base.update(context or {})
    return templates.TemplateResponse(request, template, base, status_code=status)


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see-other, so a reload does not send the form again."""
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(value: str | None) -> str | None:
    """Only a path of this site: never //host or a scheme (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    return value


# Where each role starts (DESIGN §9: a worklist, not a menu) and what its menu holds.
HOME: dict[Role, str] = {
    Role.referrer: "/referrals",
    Role.intake_coordinator: "/today",
    Role.curator: "/today",
    Role.specialist: "/today",
    Role.supervisor: "/dashboard",
    Role.analyst: "/stats",
    Role.admin: "/admin/users",
}

NAV: dict[Role, list[tuple[str, str]]] = {
    Role.referrer: [
        ("/referrals", "Мои направления"),
        ("/referrals/new", "Направить ребёнка"),
        # Families a provider routed to this organisation (api/pages/routings.py).
        ("/routings", "Направленные к нам семьи"),
        # Cases whose team this organisation's specialist was invited to (api/pages/teams.py).
        ("/teams", "Мои команды"),
    ],
    Role.intake_coordinator: [
        ("/today", "Сегодня"),
        ("/referrals", "Направления"),
        ("/search", "Поиск детей"),
        ("/transfers", "Передачи"),
        # The organisation's public registry page: free places, forms (api/pages/public.py).
        ("/my-organisation", "Наша организация"),
    ],
    Role.curator: [("/today", "Сегодня"), ("/search", "Поиск детей"), ("/routings", "Маршрутизация")],
    Role.specialist: [("/today", "Сегодня"), ("/search", "Поиск детей")],
    Role.supervisor: [
        ("/dashboard", "Сводка"),
        ("/referrals", "Направления"),
        ("/transfers", "Передачи"),
        ("/search", "Поиск детей"),
        ("/standard", "Стандарт"),
        ("/admin/agreements", "Соглашения"),
        ("/registry", "Реестр детей"),
        ("/stats", "Статистика"),
        ("/reports", "Отчёты"),
        ("/my-organisation", "Наша организация"),
    ],
    Role.analyst: [("/stats", "Статистика"), ("/reports", "Отчёты")],
    Role.admin: [
        ("/admin/users", "Пользователи"),
        ("/admin/organisations", "Организации"),
        ("/admin/agreements", "Соглашения"),
        ("/standard", "Стандарт"),
    ],
}


# The receiving organisation's staff (api/pages/enrolments.py): the children coming to it.
RECEIVER_NAV = [("/enrolments", "Поступающие дети")]


def receives_children(principal: Principal) -> bool:
    from api.services.enrolments import is_receiver

    return is_receiver(principal)


def nav_of(viewer: Viewer | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    return NAV.get(viewer.role, []) + (RECEIVER_NAV if viewer.receives_children else [])


def current_nav(nav: list[tuple[str, str]], path: str) -> str | None:
    """The menu item the page belongs to: the longest one whose address starts the path."""
    matching = [href for href, _ in nav if path == href or path.startswith(href.rstrip("/") + "/")]
    return max(matching, key=len) if matching else None


# --- Russian filters --------------------------------------------------------------------------


def _local(value: datetime, zone: ZoneInfo | None) -> datetime:
    return value.astimezone(zone) if zone and value.tzinfo else value


def ru_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    return f"{value:%d.%m.%Y}"


def ru_datetime(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    if value is None:
        return "—"
    return f"{_local(value, zone):%d.%m.%Y %H:%M}"


templates.env.filters["ru_date"] = ru_date
templates.env.filters["ru_datetime"] = ru_datetime
templates.env.globals["plural"] = plural
