"""The staff pages of issue 10 as one table, shared by bench/pages.py and bench/screenshots.py.

Each row: a name (the key in the JSON and the screenshot's file name), a URL template, the demo
login that opens it (None: no login) and a short description. Templates are filled from the
values the scripts pick in their database: ``{case_id}``, ``{referral_id}``, ``{q}``, ``{code}``.

A page whose path no route of the app matches is "missing" (it is not on main yet): the scripts
report it and go on. The check asks the app's own router, so a 404 *page* of an existing route
(a case the user may not see) is not mistaken for a missing page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.routing import Match


@dataclass(frozen=True)
class Page:
    name: str
    template: str
    login: str | None
    what: str
    binary: bool = False  # a download, not a picture (no screenshot)

    def url(self, values: dict[str, Any]) -> str:
        return self.template.format(**values)


PAGES: list[Page] = [
    Page("login", "/login", None, "sign-in form"),
    Page("today", "/today", "curator", "curator's «Сегодня»"),
    Page("today-coordinator", "/today", "coordinator", "intake coordinator's «Сегодня»"),
    Page("today-specialist", "/today", "specialist", "specialist's «Сегодня» (her sessions)"),
    Page("case", "/cases/{case_id}", "curator", "case page (ipr_implementation, history, sessions)"),
    Page("dashboard", "/dashboard", "head", "supervisor dashboard, provider's head"),
    Page("dashboard-region", "/dashboard", "rrmc", "supervisor dashboard, РРМЦ (whole region)"),
    Page("dashboard-cases", "/dashboard/cases", "head", "dashboard's list of cases"),
    Page("dashboard-xlsx", "/dashboard/cases.xlsx", "head", "the list exported to XLSX", binary=True),
    Page("search", "/search?q={q}", "coordinator", "search of children, common surname prefix"),
    Page("stats", "/stats", "analyst", "statistics"),
    Page("referrals", "/referrals", "referrer", "referrer's list of referrals"),
    Page("referral-new", "/referrals/new", "referrer", "referral form"),
    Page("referral", "/referrals/{referral_id}", "referrer", "one referral with its feedback"),
    Page("referrals-incoming", "/referrals", "coordinator", "a provider's incoming referrals"),
    Page("admin-users", "/admin/users", "admin", "users"),
    Page("admin-user-new", "/admin/users/new", "admin", "new user form"),
    Page("admin-organisations", "/admin/organisations", "admin", "organisations"),
    Page("admin-organisation-new", "/admin/organisations/new", "admin", "new organisation form"),
    Page("admin-organisations-import", "/admin/organisations/import", "admin", "organisations' CSV import"),
    Page("standard", "/standard", "head", "the region's standard, read-only"),
    Page("family", "/f/{code}", None, "family page from a reminder link"),
]


def route_exists(app: Any, url: str, method: str = "GET") -> bool:
    """Whether some route of `app` (the FastAPI app, not a wrapper) answers `method` on `url`'s path."""
    scope = {"type": "http", "path": urlsplit(url).path, "root_path": "", "method": method, "headers": []}
    for route in app.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


def family_code(engine: Any, session_id: int, scheduled_at: Any, keys: Any, region_code: str) -> str:
    """The code of the family page's short link to a session, made as the relay makes it for a
    reminder (``flows.targets.session_short_links``), valid until the standard's hours after it."""
    from datetime import timedelta

    from core.tokens import session_link_expiry
    from flows.targets import session_short_links
    from standards import load_standard

    hours = load_standard(region_code).reminders.link_valid_hours_after
    expires = session_link_expiry(scheduled_at + timedelta(hours=hours), keys)
    return session_short_links(engine, {session_id: expires})[session_id]
