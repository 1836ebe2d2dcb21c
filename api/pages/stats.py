"""The statistics pages: the region's and a provider's numbers over any period, with charts.

The same numbers as GET /api/v1/stats (api/services/stats.py statistics_for decides whose and
whether suppressed), laid out as tables, server-drawn SVG bars (each with a text equivalent: the
table beside it) and a CSV of the same rows. The period comes from a GET form: a year, a quarter of
it, or two dates.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.pages.web import PageUser, render
from api.services import stats as stats_service
from api.services.statistics import (
    FUNNEL,
    Breakdown,
    Cell,
    Statistics,
    csv_rows,
)
from core.errors import Forbidden, Unprocessable
from models.programmes import SERVICE_FORM_LABELS
from statemachines import STATE_LABELS

router = APIRouter(include_in_schema=False)

QUARTERS = [
    ("", "Весь год"),
    ("1", "I квартал"),
    ("2", "II квартал"),
    ("3", "III квартал"),
    ("4", "IV квартал"),
]
YEARS_BACK = 6
CHART_LABEL = 44  # characters of a label beside a bar; the table beside the chart has it whole


# --- charts: inline SVG drawn here, no script ---------------------------------------------------


@dataclass
class Bar:
    label: str
    shown: str  # the number as the table shows it («<5» when suppressed)
    x: float
    y: float
    width: float
    height: float


def short(label: str) -> str:
    return label if len(label) <= CHART_LABEL else label[: CHART_LABEL - 1].rstrip() + "…"


def row_chart(
    values: list[tuple[str, float | None, str]],
    width: int = 720,
    label_width: int = 330,
    biggest: float | None = None,
) -> dict[str, Any]:
    """Horizontal bars with their labels on the left, one row of 26 units each; a suppressed value
    (None) draws no bar, only its «<5»."""
    row, value_room = 26, 70
    top = biggest or max((v or 0 for _, v, _ in values), default=0) or 1
    room = width - label_width - value_room
    bars = [
        Bar(short(label), shown, label_width, i * row + 4, room * (value or 0) / top, row - 8)
        for i, (label, value, shown) in enumerate(values)
    ]
    return {"bars": bars, "width": width, "height": len(values) * row + 8, "label_width": label_width}


def cells_chart(cells: list[Cell]) -> dict[str, Any]:
    return row_chart([(c.label, c.value, c.shown) for c in cells])


# --- the period ---------------------------------------------------------------------------------


@dataclass
class Period:
    year: str
    quarter: str
    start: str
    end: str
    provider_id: str

    def query(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})


def _date(raw: str, name: str, errors: dict[str, str]) -> date | None:
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Укажите дату в виде ГГГГ-ММ-ДД (например, 2025-01-31)"
        return None
    if not 1900 <= value.year <= 2199:
        errors[name] = "Дата вне допустимого диапазона"
        return None
    return value


def parse_period(request: Request, today: date) -> tuple[Period, date, date, int | None, dict[str, str]]:
    """The form's values, the period they name and the provider; errors by field (Russian)."""
    q = request.query_params
    period = Period(
        year=q.get("year", "").strip()[:4],
        quarter=q.get("quarter", "").strip()[:1],
        start=q.get("start", "").strip()[:10],
        end=q.get("end", "").strip()[:10],
        provider_id=q.get("provider_id", "").strip()[:10],
    )
    errors: dict[str, str] = {}
    year = today.year
    if period.year:
        if period.year.isascii() and period.year.isdigit() and 2000 <= int(period.year) <= today.year:
            year = int(period.year)
        else:
            errors["year"] = f"Выберите год с 2000 по {today.year}"
    if period.quarter and period.quarter not in "1234":
        errors["quarter"] = "Выберите квартал"
    start, end = date(year, 1, 1), min(date(year, 12, 31), today)
    if period.quarter in ("1", "2", "3", "4"):
        first = (int(period.quarter) - 1) * 3 + 1
        start = date(year, first, 1)
        end = (date(year + 1, 1, 1) if first == 10 else date(year, first + 3, 1)) - timedelta(days=1)
    if period.start or period.end:
        if not period.start:
            errors["start"] = "Укажите начало периода"
        if not period.end:
            errors["end"] = "Укажите конец периода"
        given_start = _date(period.start, "start", errors) if period.start else None
        given_end = _date(period.end, "end", errors) if period.end else None
        if given_start and given_end:
            start, end = given_start, given_end
    provider_id: int | None = None
    if period.provider_id:
        if (
            period.provider_id.isascii()
            and period.provider_id.isdigit()
            and 0 < int(period.provider_id) < 2**31
        ):
            provider_id = int(period.provider_id)
        else:
            errors["provider_id"] = "Выберите организацию из списка"
    if not errors:
        try:
            stats_service.check_period(start, end)
        except Unprocessable as error:
            errors[error.field or "start"] = error.message
    return period, start, end, provider_id, errors


def _states(session: Session, principal: Principal) -> Breakdown:
    """The cases in each state now (GET /api/v1/stats/cases), suppressed for the analyst as the rest."""
    return stats_service.state_counts(session, principal)


def _charts(stats: Statistics) -> dict[str, Any]:
    outcomes = {c.code: c for c in stats.outcomes.cells}
    sessions: list[tuple[str, float | None, str]] = []
    for table in stats.sessions_by_form:
        assert table.total is not None
        held = table.get("held")
        form = table.title.partition(": ")[2]
        sessions.append((f"{form}: назначено", table.total.value, table.total.shown))
        sessions.append((f"{form}: проведено", held.value, held.shown))
    return {
        "funnel": cells_chart([outcomes[code] for code in FUNNEL]),
        "sources": cells_chart(stats.referrals_by_source.cells),
        "criteria": cells_chart(stats.referrals_by_criterion.cells),
        "timeliness": row_chart(
            [
                (t.label, t.on_time.share * 100 if t.on_time.share is not None else None, t.on_time.shown)
                for t in stats.timeliness
            ],
            biggest=100,
        ),
        "sessions": row_chart(sessions),
    }


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    if not stats_service.may_see_statistics(principal):
        raise Forbidden("Статистика недоступна для вашей роли")
    period, start, end, provider_id, errors = parse_period(request, principal.today)
    regional = stats_service.is_regional_viewer(principal)
    context: dict[str, Any] = {
        "title": "Статистика",
        "period": period,
        "errors": errors,
        "regional": regional,
        "years": [str(principal.today.year - i) for i in range(YEARS_BACK)],
        "year_options": [(str(principal.today.year - i),) * 2 for i in range(YEARS_BACK)],
        "quarters": QUARTERS,
        "providers": [(str(o.id), o.name) for o in stats_service.providers(session, principal)],
        "states": _states(session, principal),
        "form_labels": SERVICE_FORM_LABELS,
        "state_labels": STATE_LABELS,
        "stats": None,
    }
    if errors:
        return render(request, "pages/stats/index.html", context, status=422)
    stats = stats_service.statistics_for(session, principal, start, end, provider_id)
    context |= {"stats": stats, "charts": _charts(stats), "csv_url": "/stats.csv?" + period.query()}
    return render(request, "pages/stats/index.html", context)


# What a spreadsheet would read as a formula (an organisation's name typed by an administrator).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: str) -> str:
    """A CSV cell a spreadsheet shows as the text it is (CSV injection): a leading quote before = + - @."""
    return "'" + value if value.startswith(FORMULA_START) else value


@router.get("/stats.csv")
def stats_csv(request: Request, principal: PageUser, session: SessionDep) -> Response:
    if not stats_service.may_see_statistics(principal):
        raise Forbidden("Статистика недоступна для вашей роли")
    _, start, end, provider_id, errors = parse_period(request, principal.today)
    if errors:
        field, message = next(iter(errors.items()))
        raise Unprocessable(message, field=field)
    stats = stats_service.statistics_for(session, principal, start, end, provider_id)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    rows = [
        ["Статистика ранней помощи", "", stats.provider_name or stats.region_name, ""],
        ["Период", "", f"{stats.start:%d.%m.%Y} – {stats.end:%d.%m.%Y}", ""],
    ]
    if stats.suppressed:
        note = f"числа от 1 до {stats.min_cell - 1} скрыты («<{stats.min_cell}»)"
        if stats.round_to:
            note += f", остальные округлены до кратных {stats.round_to}"
        rows.append(["Примечание", "", note, ""])
    rows += csv_rows(stats)
    writer.writerows([[as_text(value) for value in row] for row in rows])
    name = f"statistika-{stats.start:%Y-%m-%d}-{stats.end:%Y-%m-%d}.csv"
    # A BOM, so that Excel reads the Cyrillic as UTF-8.
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
