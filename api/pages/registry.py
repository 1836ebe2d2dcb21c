"""The target-group registry's pages: the list (with its XLSX for the РРМЦ), likely duplicates, a
pair side by side with «Объединить записи» through a check-answers screen or «Это разные дети», and
the merge history with «Отменить объединение». Everything goes through api/services/registry.py and
merges.py, as the API does, and is audited as the API audits it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from openpyxl import Workbook
from openpyxl.styles import Font
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.pages.cases import EVENT_NAMES
from api.pages.web import PageAudit, PageAuditDep, PageUser, form_id, read_form, redirect, region_zone, render
from api.services import merges
from api.services import registry as service
from core.errors import Conflict, DomainError, Forbidden, Unprocessable
from models.common import IdParam
from models.registry import (
    CATEGORY_LABELS,
    MERGE_EVENT,
    UNDO_EVENT,
    Category,
    DistinctIn,
    DuplicatePair,
    MergeIn,
    RegistrySort,
)
from models.users import Role

router = APIRouter(include_in_schema=False)

# The case card's history names the merge's rows (api/pages/cases.py shows event_names).
EVENT_NAMES.update(
    {
        MERGE_EVENT: "Записи о ребёнке объединены (реестр детей)",
        UNDO_EVENT: "Объединение записей о ребёнке отменено",
    }
)

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000  # rows in one XLSX; the sheet says when the list was longer
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SORT_LABELS = {
    RegistrySort.name: "по фамилии",
    RegistrySort.birth_date: "по дате рождения (старшие первыми)",
    RegistrySort.birth_date_desc: "по дате рождения (младшие первыми)",
    RegistrySort.newest: "недавно зарегистрированные первыми",
}
DONE = {
    "merged": "Записи объединены. Если это ошибка, объединение можно отменить ниже.",
    "undone": "Объединение отменено: записи снова раздельные.",
    "distinct": "Пара отмечена как разные дети и убрана из списка.",
    "restored": "Отметка «разные дети» снята: пара вернулась в список.",
}


# --- the list -------------------------------------------------------------------------------------


@dataclass
class Wanted:
    """The list's query string, read and checked (422 with the field for garbage)."""

    filter: service.RegistryFilter
    page: int
    raw: dict[str, str]

    def query(self, **changes: str) -> str:
        values = {**self.raw, **changes}
        return urlencode({k: v for k, v in values.items() if v})


DATE_FIELDS = ("referred_from", "referred_to", "opened_from", "opened_to")


def _wanted(request: Request) -> tuple[Wanted, dict[str, str]]:
    params = request.query_params
    raw = {
        name: (params.get(name) or "").strip()[:200]
        for name in ("category", "criterion", "municipality", "state", "provider", "q", "sort", *DATE_FIELDS)
    }
    errors: dict[str, str] = {}
    category = Category.identified
    if raw["category"]:
        try:
            category = Category(raw["category"])
        except ValueError:
            errors["category"] = "Неизвестный список"
    sort = RegistrySort.name
    if raw["sort"]:
        try:
            sort = RegistrySort(raw["sort"])
        except ValueError:
            errors["sort"] = "Неизвестный порядок"
    dates: dict[str, date | None] = {}
    for name in DATE_FIELDS:
        dates[name] = None
        if raw[name]:
            try:
                dates[name] = date.fromisoformat(raw[name])
            except ValueError:
                errors[name] = "Дата в формате ДД.ММ.ГГГГ"
    provider = None
    if raw["provider"]:
        provider = form_id(raw["provider"])
        if provider is None:
            errors["provider"] = "Выберите организацию из списка"
    page_raw = params.get("page") or "1"
    page = form_id(page_raw) or 1
    wanted = service.RegistryFilter(
        category=category,
        criterion=raw["criterion"] or None,
        municipality=raw["municipality"] or None,
        state=raw["state"] or None,
        provider_id=provider,
        q=raw["q"] or None,
        sort=sort,
        **dates,
    )
    return Wanted(filter=wanted, page=max(page, 1), raw=raw), errors


@router.get("/registry", response_class=HTMLResponse)
def registry_page(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    service.require_reader(principal)
    wanted, errors = _wanted(request)
    found = None
    if not errors:
        try:
            found = service.registry_page(
                session, principal, wanted.filter, page=wanted.page, per_page=PAGE_SIZE
            )
        except Unprocessable as error:
            errors[error.field or "q"] = error.message
    if found is not None:
        audit.many("read", "child", [(row.id, row.id) for row in found.items])
    total = found.total if found else 0
    return render(
        request,
        "pages/registry/list.html",
        {
            "title": "Реестр детей целевой группы",
            "found": found,
            "errors": errors,
            "raw": wanted.raw,
            "category": wanted.filter.category.value,
            "categories": [(c.value, label) for c, label in CATEGORY_LABELS.items()],
            "category_urls": {
                c.value: "/registry?" + wanted.query(category=c.value, page="") for c in Category
            },
            "options": service.options(session, principal),
            "sorts": [(s.value, label) for s, label in SORT_LABELS.items()],
            "page": wanted.page,
            "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "page_url": "/registry?" + wanted.query(page="") + "&",
            "xlsx_url": "/registry/children.xlsx?" + wanted.query(page="")
            if principal.is_regional_supervisor
            else None,
            "reviewer": _is_reviewer(principal),
        },
        422 if errors else 200,
    )


def _is_reviewer(principal: Principal) -> bool:
    return principal.is_regional_supervisor or (
        principal.is_provider_staff and principal.role == Role.supervisor
    )


XLSX_HEADERS = [
    "Ребёнок",
    "Дата рождения",
    "Район",
    "Критерии",
    "Первое направление",
    "Кто направил",
    "Организации ранней помощи",
    "Состояние случая",
    "Нуждаемость",
    "Дата заключения",
    "Дата ИПРП",
    "Дата закрытия",
    "Итог",
]
DATE_COLUMNS = (2, 5, 10, 11, 12)


@router.get("/registry/children.xlsx")
def registry_xlsx(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    """The РРМЦ's export of the list as filtered (up to EXPORT_LIMIT rows)."""
    if not principal.is_regional_supervisor:
        raise Forbidden("Выгрузка реестра доступна РРМЦ")
    wanted, errors = _wanted(request)
    if errors:
        field, message = next(iter(errors.items()))
        raise Unprocessable(message, field=field)
    ids, _ = service.page_ids(session, principal, wanted.filter, limit=EXPORT_LIMIT)
    rows = service.rows(session, principal, ids)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Реестр"
    sheet.append(XLSX_HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for number, row in enumerate(rows, start=2):
        name = " ".join(p for p in (row.last_name, row.first_name, row.middle_name) if p)
        sheet.append(
            [
                name,
                row.birth_date,
                row.municipality or "",
                "; ".join(row.criteria_labels),
                row.first_referral_date,
                "; ".join(row.sources),
                "; ".join(row.providers),
                row.state_label or "",
                row.need_outcome_label or "",
                row.need_concluded_on,
                row.ipr_agreed_on,
                row.closed_on,
                row.final_state_label or "",
            ]
        )
        for column in DATE_COLUMNS:
            sheet.cell(row=number, column=column).number_format = "DD.MM.YYYY"
        # Names come from referrers: one starting with "=" is text, not a formula.
        for column in range(1, len(XLSX_HEADERS) + 1):
            if (cell := sheet.cell(row=number, column=column)).data_type == "f":
                cell.data_type = "s"
    if len(ids) >= EXPORT_LIMIT:
        # The walk stopped at the limit: there may be more (the count stops at COUNT_CAP + 1).
        sheet.append([])
        sheet.append([f"Показаны первые {len(rows)}; сузьте отбор, чтобы выгрузить остальных."])
    for letter, width in zip(
        "ABCDEFGHIJKLM", (36, 14, 24, 50, 14, 40, 40, 26, 36, 14, 14, 14, 26), strict=True
    ):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    audit.many("export", "child", [(row.id, row.id) for row in rows])
    stamp = datetime.now(region_zone(session, principal)).strftime("%Y-%m-%d")
    return Response(
        buffer.getvalue(),
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="reestr-detey-{stamp}.xlsx"'},
    )


# --- likely duplicates ----------------------------------------------------------------------------


def _audit_pairs(audit: PageAudit, pairs: list[DuplicatePair]) -> None:
    ids = list(dict.fromkeys(i for p in pairs for i in (p.first.id, p.second.id)))
    audit.many("read", "child", [(i, i) for i in ids])


@router.get("/registry/duplicates", response_class=HTMLResponse)
def duplicates_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    pairs = service.duplicate_pairs(session, principal)
    _audit_pairs(audit, pairs)
    marked = merges.distinct_pairs(session, principal)
    return render(
        request,
        "pages/registry/duplicates.html",
        {
            "title": "Вероятные дубликаты",
            "pairs": pairs,
            "marked": marked,
            "notice": DONE.get(done or ""),
            "limit": service.DUPLICATES_LIMIT,
        },
    )


def _pair_page(
    request: Request,
    session: Session,
    principal: Principal,
    audit: PageAudit,
    first: int,
    second: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    found = merges.pair(session, principal, first, second)
    _audit_pairs(audit, [found])
    return render(
        request,
        "pages/registry/pair.html",
        {
            "title": "Сравнение записей",
            "pair": found,
            "errors": errors or {},
            "values": values or {},
            "message": message,
        },
        status,
    )


@router.get("/registry/duplicates/{first}/{second}", response_class=HTMLResponse)
def pair_page(
    request: Request,
    first: IdParam,
    second: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> HTMLResponse:
    return _pair_page(request, session, principal, audit, first, second)


def _merge_choice(
    form: Any, first: int, second: int
) -> tuple[dict[str, str], dict[str, str], MergeIn | None]:
    values = {"keep": form.get("keep"), "reason": form.get("reason")}
    errors: dict[str, str] = {}
    keep = form_id(values["keep"])
    if keep not in (first, second):
        errors["keep-" + str(first)] = "Выберите запись, которая останется"
    if not values["reason"]:
        errors["reason"] = "Укажите, почему это один и тот же ребёнок"
    elif len(values["reason"]) > 2000:
        errors["reason"] = "Не более 2000 символов"
    if errors or keep is None:
        return values, errors, None
    other = second if keep == first else first
    return values, errors, MergeIn(keep_child_id=keep, merge_child_id=other, reason=values["reason"])


@router.post("/registry/duplicates/{first}/{second}/check", response_class=HTMLResponse)
async def check_merge(
    request: Request,
    first: IdParam,
    second: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> HTMLResponse:
    """The check-answers screen before the merge: which record stays, what moves, what is filled."""
    form = await read_form(request, principal)
    values, errors, body = _merge_choice(form, first, second)
    if body is None:
        return _pair_page(
            request, session, principal, audit, first, second, errors=errors, values=values, status=422
        )
    found = merges.pair(session, principal, first, second)
    _audit_pairs(audit, [found])
    keep = found.first if found.first.id == body.keep_child_id else found.second
    gone = found.second if keep is found.first else found.first
    preview = merges.preview(session, body.keep_child_id, body.merge_child_id)
    return render(
        request,
        "pages/registry/check.html",
        {
            "title": "Проверьте перед объединением",
            "pair": found,
            "keep": keep,
            "gone": gone,
            "reason": body.reason,
            "preview": preview,
            "kind_labels": merges.KIND_LABELS,
            "filled_labels": merges.FILLED_LABELS,
        },
    )


@router.post("/registry/duplicates/{first}/{second}/merge", response_class=HTMLResponse)
async def do_merge(
    request: Request,
    first: IdParam,
    second: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    values, errors, body = _merge_choice(form, first, second)
    if body is None:
        return _pair_page(
            request, session, principal, audit, first, second, errors=errors, values=values, status=422
        )
    savepoint = session.begin_nested()
    try:
        row = merges.merge(session, principal, body)
    except (Conflict, Unprocessable, Forbidden) as refused:
        savepoint.rollback()
        return _pair_page(
            request,
            session,
            principal,
            audit,
            first,
            second,
            values=values,
            message=refused.message,
            status=refused.status_code,
        )
    savepoint.commit()
    audit.many("merge", "child_merge", [(row.id, row.keep_child_id), (row.id, row.merge_child_id)])
    return redirect("/registry/merges?done=merged")


@router.post("/registry/duplicates/{first}/{second}/distinct", response_class=HTMLResponse)
async def mark_distinct(
    request: Request,
    first: IdParam,
    second: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    reason = form.get("distinct-reason")
    if len(reason) > 2000:
        return _pair_page(
            request,
            session,
            principal,
            audit,
            first,
            second,
            errors={"distinct-reason": "Не более 2000 символов"},
            values={"distinct-reason": reason},
            status=422,
        )
    savepoint = session.begin_nested()
    try:
        row = merges.mark_distinct(
            session,
            principal,
            DistinctIn(first_child_id=first, second_child_id=second, reason=reason or None),
        )
    except (Conflict, Unprocessable, ValidationError) as refused:
        savepoint.rollback()
        message = refused.message if isinstance(refused, DomainError) else "Проверьте введённые данные"
        return _pair_page(request, session, principal, audit, first, second, message=message, status=409)
    savepoint.commit()
    audit.many("create", "distinct_children", [(row.id, row.child_low_id), (row.id, row.child_high_id)])
    return redirect("/registry/duplicates?done=distinct")


@router.post("/registry/distinct-pairs/{distinct_id}/delete", response_class=HTMLResponse)
async def unmark_distinct(
    request: Request, distinct_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    await read_form(request, principal)
    row = merges.unmark_distinct(session, principal, distinct_id)
    audit.many("delete", "distinct_children", [(row.id, row.child_low_id), (row.id, row.child_high_id)])
    return redirect("/registry/duplicates?done=restored")


# --- the merge history ----------------------------------------------------------------------------


def _merges_page(
    request: Request,
    session: Session,
    principal: Principal,
    audit: PageAudit,
    *,
    notice: str | None = None,
    message: str | None = None,
    failed: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = merges.merges(session, principal)
    audit.many("read", "child_merge", [(r.id, r.keep_child_id) for r in rows])
    return render(
        request,
        "pages/registry/merges.html",
        {
            "title": "Журнал объединений записей",
            "merges": merges.public(session, rows),
            "notice": notice,
            "message": message,
            "failed": failed,
            "kind_labels": merges.KIND_LABELS,
        },
        status,
    )


@router.get("/registry/merges", response_class=HTMLResponse)
def merges_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    return _merges_page(request, session, principal, audit, notice=DONE.get(done or ""))


@router.post("/registry/merges/{merge_id}/undo", response_class=HTMLResponse)
async def undo_merge(
    request: Request, merge_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    reason = form.get("reason")[:2000] or None
    savepoint = session.begin_nested()
    try:
        row = merges.undo(session, principal, merge_id, reason)
    except Conflict as refused:
        savepoint.rollback()
        return _merges_page(
            request, session, principal, audit, message=refused.message, failed=merge_id, status=409
        )
    savepoint.commit()
    audit.many("merge_undo", "child_merge", [(row.id, row.keep_child_id), (row.id, row.merge_child_id)])
    return redirect("/registry/merges?done=undone")
