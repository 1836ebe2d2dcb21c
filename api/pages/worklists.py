"""Worklists and overviews (DESIGN §9): «Сегодня» for a provider's staff, the supervisor's
dashboard with its list of cases and their XLSX, the search of children (the statistics moved to
api/pages/stats.py).

Every list comes from the same service functions as the API (api/services/overdue.py, children.py,
worklist.py) and is audited as the API audits it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.pages.web import PageAuditDep, PageUser, region_zone, render, require_roles
from api.scoping import child_scope
from api.services import children as children_service
from api.services import overdue as overdue_service
from api.services import transfers, worklist
from api.services.disclosure import display_snils, shown_snils
from api.services.overdue import OverdueFilter
from core.errors import Unprocessable
from models.children import full_name
from models.common import utcnow
from models.users import Role
from statemachines import FINAL_STATES, STATE_LABELS

router = APIRouter(include_in_schema=False)

SOON_DAYS = 7  # "falls due soon": within a week, or its warning time has come
PAGE_SIZE = 25
CURATOR_ROWS = 30  # the dashboard's curators: those most behind (a region has hundreds)
EXPORT_LIMIT = 10_000  # rows in one XLSX; the sheet says when the list was longer


# --- charts: inline SVG drawn here, no script ---------------------------------------------------


@dataclass
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


def column_chart(values: list[tuple[str, int]], width: int = 720, height: int = 220) -> dict[str, Any]:
    """Vertical bars (one per value) in a viewBox of width × height, room left below for labels."""
    top, bottom, gap = 24, 36, 8
    biggest = max((v for _, v in values), default=0) or 1
    step = width / max(len(values), 1)
    area = height - top - bottom
    bars = []
    for i, (label, value) in enumerate(values):
        h = area * value / biggest
        bars.append(Bar(label, value, i * step + gap / 2, top + area - h, step - gap, h))
    return {"bars": bars, "width": width, "height": height, "base": top + area, "step": step}


# --- «Сегодня» ----------------------------------------------------------------------------------


@router.get("/today", response_class=HTMLResponse)
def today(request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep) -> HTMLResponse:
    require_roles(principal, Role.curator, Role.intake_coordinator, Role.specialist)
    zone = region_zone(session, principal)
    day, start, tomorrow, after = worklist.day_bounds(zone)
    context: dict[str, Any] = {
        "title": "Сегодня",
        "today": day,
        "soon_days": SOON_DAYS,
        "role": principal.role,
    }
    read_cases: list[tuple[int | None, int | None]] = []
    if principal.role == Role.curator:
        mine = OverdueFilter(curator_id=principal.id)
        late = overdue_service.overdue(session, principal, mine, limit=50)
        soon = overdue_service.overdue(
            session,
            principal,
            OverdueFilter(curator_id=principal.id, due_within_days=SOON_DAYS, or_warned=True),
            limit=50,
        )
        cases = worklist.curated_cases(session, principal)
        unreachable = worklist.unreachable(session, principal, principal.id)
        context.update(
            late=late,
            soon=soon,
            groups=worklist.by_state(cases),
            case_count=len(cases),
            **_two_days(
                worklist.sessions_between(session, principal, start, after, curator_id=principal.id), tomorrow
            ),
            unreachable=unreachable,
        )
        _audit_deadlines(audit, late, soon)
        read_cases += [(c.id, c.child_id) for c in cases]
        read_cases += [(u.case.id, u.case.child_id) for u in unreachable]
    elif principal.role == Role.intake_coordinator:
        late = overdue_service.overdue(session, principal, OverdueFilter(), limit=50)
        referred = worklist.new_referrals(session, principal)
        free = worklist.without_curator(session, principal)
        rows, reviews = worklist.awaiting_match_review(session, principal)
        context.update(late=late, referred=referred, without_curator=free, reviews=reviews)
        # Requests of other providers to take a case over, waiting for this one's answer.
        asked, incoming, _ = transfers.listed(session, principal, direction="incoming", status="requested")
        context.update(incoming_transfers=incoming)
        audit.many("read", "transfer", transfers.audit_rows(session, asked))
        _audit_deadlines(audit, late)
        read_cases += [(c.id, c.child_id) for c in [*referred, *free]]
        audit.many("read", "referral", [(r.id, r.child_id) for r in rows])
    else:
        cases = worklist.specialist_cases(session, principal)
        context.update(
            **_two_days(
                worklist.sessions_between(session, principal, start, after, specialist_id=principal.id),
                tomorrow,
            ),
            cases=cases,
        )
        read_cases += [(c.id, c.child_id) for c in cases]
    sessions = [*context.get("sessions_today", []), *context.get("sessions_tomorrow", [])]
    audit.many("read", "session", [(s.case_id, s.child_id) for s in sessions])
    audit.many("read", "case", list(dict.fromkeys(read_cases)))
    return render(request, "pages/worklists/today.html", context)


def _two_days(
    sessions: list[worklist.SessionItem], tomorrow: datetime
) -> dict[str, list[worklist.SessionItem]]:
    """Today's and tomorrow's sessions, read in one query."""
    return {
        "sessions_today": [s for s in sessions if s.scheduled_at < tomorrow],
        "sessions_tomorrow": [s for s in sessions if s.scheduled_at >= tomorrow],
    }


def _audit_deadlines(audit: PageAuditDep, *pages: overdue_service.OverduePage) -> None:
    for page in pages:
        audit.many(
            "read", "deadline", [(i.case_id, c) for i, c in zip(page.items, page.child_ids, strict=True)]
        )


# --- the supervisor's dashboard -----------------------------------------------------------------

STATUS_LABELS = {"overdue": "Просроченные сроки", "soon": f"Сроки в ближайшие {SOON_DAYS} дней"}


@dataclass
class DashboardQuery:
    status: str = "overdue"
    org: int | None = None
    curator: int | None = None
    no_curator: bool = False
    step: str | None = None
    state: str | None = None
    page: int = 1

    def filter(self) -> OverdueFilter:
        return OverdueFilter(
            organisation_id=self.org,
            curator_id=self.curator,
            no_curator=self.no_curator,
            timer=self.step,
            state=self.state,
            due_within_days=SOON_DAYS if self.status == "soon" else None,
        )

    def query(self, **changes: Any) -> str:
        values: dict[str, Any] = {
            "status": self.status,
            "org": self.org,
            "curator": "none" if self.no_curator else self.curator,
            "step": self.step,
            "state": self.state,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _int(value: str | None, name: str) -> int | None:
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise Unprocessable("Ожидается целое число", field=name)
    return int(value)


def _dashboard_query(request: Request) -> DashboardQuery:
    params = request.query_params
    status = params.get("status") or "overdue"
    if status not in STATUS_LABELS:
        raise Unprocessable("Допустимые значения: overdue, soon", field="status")
    curator = params.get("curator") or None
    step = params.get("step") or None
    if step is not None and len(step) > 64:
        raise Unprocessable("Значение слишком длинное", field="step")
    state = params.get("state") or None
    if state is not None and state not in STATE_LABELS:
        raise Unprocessable("Неизвестное состояние", field="state")
    page = _int(params.get("page"), "page") or 1
    return DashboardQuery(
        status=status,
        org=_int(params.get("org"), "org"),
        curator=None if curator == "none" else _int(curator, "curator"),
        no_curator=curator == "none",
        step=step,
        state=state,
        page=max(page, 1),
    )


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    require_roles(principal, Role.supervisor)
    zone = region_zone(session, principal)
    at, (counts, weeks) = _cached(
        request,
        "dashboard",
        principal,
        lambda: (
            overdue_service.counts(session, principal, soon_days=SOON_DAYS),
            overdue_service.weekly_overdue(session, principal, zone),
        ),
    )
    chart = column_chart([(f"{w.start:%d.%m}", w.count) for w in weeks])
    return render(
        request,
        "pages/worklists/dashboard.html",
        {
            "title": "Сводка по срокам",
            "counts": counts,
            "weeks": weeks,
            "chart": chart,
            "at": at,
            "curator_rows": CURATOR_ROWS,
            "regional": principal.is_regional_supervisor,
            "base": DashboardQuery(),
        },
    )


# The dashboard's counts and chart aggregate every running deadline of the scope (tens of thousands
# in a region), the statistics every case: computed at most once a minute per scope and process, and
# the page says as of when. The lists behind the numbers are always read live.
SUMMARY_SECONDS = 60.0

T = TypeVar("T")


def _scope_key(principal: Principal) -> tuple[str, int]:
    if principal.role == Role.analyst or principal.is_regional_supervisor:
        return ("region", principal.org.region_id)
    return ("org", principal.org.id or 0)


def _cached(
    request: Request, name: str, principal: Principal, compute: Callable[[], T]
) -> tuple[datetime, T]:
    cache: dict[tuple[str, str, int], tuple[float, datetime, Any]] | None = getattr(
        request.app.state, "page_summaries", None
    )
    if cache is None:
        cache = request.app.state.page_summaries = {}
    key = (name, *_scope_key(principal))
    now = time.monotonic()
    found = cache.get(key)
    if found is not None and now - found[0] < SUMMARY_SECONDS:
        return found[1], found[2]  # type: ignore[no-any-return]
    at, value = utcnow(), compute()
    cache[key] = (now, at, value)
    return at, value


def _names(session: Session, principal: Principal, wanted: DashboardQuery) -> dict[str, str]:
    """What the filters name, for the page's heading (ids of the caller's scope only)."""
    names = overdue_service.filter_names(session, principal, wanted.org, wanted.curator)
    if wanted.no_curator:
        names["curator"] = "без куратора"
    if wanted.state is not None:
        names["state"] = STATE_LABELS[wanted.state]
    return names


@router.get("/dashboard/cases", response_class=HTMLResponse)
def dashboard_cases(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    require_roles(principal, Role.supervisor)
    wanted = _dashboard_query(request)
    found = overdue_service.overdue(
        session, principal, wanted.filter(), limit=PAGE_SIZE, offset=(wanted.page - 1) * PAGE_SIZE
    )
    _audit_deadlines(audit, found)
    pages = max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    step_label = found.items[0].label if wanted.step and found.items else wanted.step
    return render(
        request,
        "pages/worklists/dashboard_cases.html",
        {
            "title": STATUS_LABELS[wanted.status],
            "wanted": wanted,
            "found": found,
            "page": wanted.page,
            "pages": pages,
            "names": _names(session, principal, wanted),
            "step_label": step_label,
            "page_url": "/dashboard/cases?" + wanted.query() + "&",
            "xlsx_url": "/dashboard/cases.xlsx?" + wanted.query(),
            "status_labels": STATUS_LABELS,
        },
    )


XLSX_HEADERS = [
    "№ случая",
    "Ребёнок",
    "Организация",
    "Куратор",
    "Состояние случая",
    "Срок (шаг)",
    "Срок наступает",
    "Дней просрочки",
    "Передано руководителю",
]
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/dashboard/cases.xlsx")
def dashboard_cases_xlsx(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    require_roles(principal, Role.supervisor)
    wanted = _dashboard_query(request)
    zone = region_zone(session, principal)
    found = overdue_service.overdue(session, principal, wanted.filter(), limit=EXPORT_LIMIT)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Сроки"
    sheet.append(XLSX_HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    # The row counted here: openpyxl's sheet.max_row looks at every cell written so far (quadratic).
    for row, item in enumerate(found.items, start=2):
        sheet.append(
            [
                item.case_id,
                item.child_name,
                item.provider_name,
                item.curator_name or "",
                item.state_label,
                item.label,
                item.due_at.astimezone(zone).date(),
                max(item.days_overdue, 0),
                "да" if item.escalated else "нет",
            ]
        )
        sheet.cell(row=row, column=7).number_format = "DD.MM.YYYY"
        # Names come from referrers and administrators: one starting with "=" is text, not a formula
        # (openpyxl writes such a string as a formula, and a spreadsheet would run it).
        for column in range(2, 7):
            if (cell := sheet.cell(row=row, column=column)).data_type == "f":
                cell.data_type = "s"
    if found.total > len(found.items):
        sheet.append([])
        sheet.append([f"Показаны первые {len(found.items)} из {found.total}; сузьте отбор."])
    for letter, width in zip("ABCDEFGHI", (10, 36, 40, 30, 26, 40, 16, 16, 22), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    audit.many(
        "export",
        "case",
        list(dict.fromkeys((i.case_id, c) for i, c in zip(found.items, found.child_ids, strict=True))),
    )
    stamp = datetime.now(zone).strftime("%Y-%m-%d")
    return Response(
        buffer.getvalue(),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="sroki-{wanted.status}-{stamp}.xlsx"'},
    )


# --- search -------------------------------------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep) -> HTMLResponse:
    params = request.query_params
    q = (params.get("q") or "").strip()
    snils = (params.get("snils") or "").strip()
    context: dict[str, Any] = {"title": "Поиск детей", "q": q, "snils": snils, "errors": {}, "results": None}
    child_scope(principal)  # a role that may not search is told so (403) before it types anything
    if not q and not snils:
        return render(request, "pages/worklists/search.html", context)
    errors: dict[str, str] = {}
    if len(q) > 200:
        errors["q"] = "Не более 200 символов"
    if len(snils) > 14:
        errors["snils"] = "СНИЛС должен состоять из 11 цифр"
    page = _int(params.get("page"), "page") or 1
    if not errors:
        try:
            children, total = children_service.search(
                session,
                principal,
                q=q or None,
                snils=snils or None,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
                with_total=True,
            )
        except Unprocessable as error:
            errors[error.field if error.field in ("q", "snils") else "q"] = error.message
    if errors:
        context["errors"] = errors
        return render(request, "pages/worklists/search.html", context, 422)
    audit.many("search", "child", [(c.id, c.id) for c in children])
    cases = children_service.current_cases(session, principal, [c.id or 0 for c in children])
    context.update(
        results=[
            {
                "child": c,
                "name": full_name(c),
                "snils": display_snils(shown_snils(principal, c.snils)),
                "case": cases.get(c.id or 0),
            }
            for c in children
        ],
        total=total or 0,
        total_capped=(total or 0) > children_service.SEARCH_COUNT_CAP,
        count_cap=children_service.SEARCH_COUNT_CAP,
        page=page,
        pages=max((min(total or 0, children_service.SEARCH_COUNT_CAP) + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        page_url="/search?" + urlencode({k: v for k, v in (("q", q), ("snils", snils)) if v}) + "&",
        state_labels=STATE_LABELS,
        final_states=FINAL_STATES,
    )
    return render(request, "pages/worklists/search.html", context)
