"""The target-group registry: children identified, in need and served; likely duplicates and their merge."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.services import merges
from api.services import registry as service
from models.common import IdParam, JsonDate
from models.registry import (
    Category,
    DistinctChildren,
    DistinctIn,
    DistinctPublic,
    DuplicatePair,
    MergeIn,
    MergePublic,
    RegistryPage,
    RegistrySort,
    UndoIn,
)

router = APIRouter(tags=["Реестр детей целевой группы"], responses=responses(403))

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    # A query string is text: "0" would pass as a Unix time otherwise (lax parsing of dates).
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_from_datetime_parsing", "Input should be a valid date (YYYY-MM-DD)")
    return value


# A date of a query string: YYYY-MM-DD only, within the years a request may name.
QueryDate = Annotated[JsonDate, BeforeValidator(_iso_date)]


@router.get(
    "/registry/children",
    response_model=RegistryPage,
    summary="Реестр детей целевой группы: выявлены, нуждаются, получают помощь",
)
def registry_children(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    category: Category = Category.identified,
    criterion: Annotated[str | None, Query(max_length=64, description="Код критерия нуждаемости")] = None,
    municipality: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(max_length=32, description="Состояние случая")] = None,
    provider_id: IdParam | None = None,
    referred_from: Annotated[QueryDate | None, Query(description="Дата направления с")] = None,
    referred_to: Annotated[QueryDate | None, Query(description="Дата направления по")] = None,
    opened_from: Annotated[QueryDate | None, Query(description="Случай открыт с")] = None,
    opened_to: Annotated[QueryDate | None, Query(description="Случай открыт по")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Часть ФИО")] = None,
    sort: RegistrySort = RegistrySort.name,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> RegistryPage:
    wanted = service.RegistryFilter(
        category=category,
        criterion=criterion or None,
        municipality=municipality or None,
        state=state or None,
        provider_id=provider_id,
        referred_from=referred_from,
        referred_to=referred_to,
        opened_from=opened_from,
        opened_to=opened_to,
        q=q or None,
        sort=sort,
    )
    found = service.registry_page(session, principal, wanted, page=page, per_page=per_page)
    audit.many("read", "child", [(row.id, row.id) for row in found.items])
    return found


@router.get(
    "/registry/duplicates",
    response_model=list[DuplicatePair],
    summary="Вероятные дубликаты записей о детях",
)
def duplicates(principal: CurrentUser, session: SessionDep, audit: AuditDep) -> list[DuplicatePair]:
    pairs = service.duplicate_pairs(session, principal)
    ids = list(dict.fromkeys(i for p in pairs for i in (p.first.id, p.second.id)))
    audit.many("read", "child", [(i, i) for i in ids])
    return pairs


@router.post(
    "/registry/distinct-pairs",
    response_model=DistinctPublic,
    status_code=201,
    summary="Отметить пару записей как разных детей",
    responses=responses(404, 409),
)
def mark_distinct(
    body: DistinctIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> DistinctPublic:
    row = merges.mark_distinct(session, principal, body)
    audit.many("create", "distinct_children", [(row.id, row.child_low_id), (row.id, row.child_high_id)])
    return _distinct_public(row)


@router.delete(
    "/registry/distinct-pairs/{distinct_id}",
    response_model=DistinctPublic,
    summary="Снять отметку «разные дети»: пара вернётся в список дубликатов",
    responses=responses(404),
)
def unmark_distinct(
    distinct_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> DistinctPublic:
    row = merges.unmark_distinct(session, principal, distinct_id)
    audit.many("delete", "distinct_children", [(row.id, row.child_low_id), (row.id, row.child_high_id)])
    return _distinct_public(row)


def _distinct_public(row: DistinctChildren) -> DistinctPublic:
    assert row.id is not None
    return DistinctPublic(
        id=row.id,
        first_child_id=row.child_low_id,
        second_child_id=row.child_high_id,
        reason=row.reason,
        marked_by_id=row.marked_by_id,
        marked_at=row.marked_at,
    )


@router.post(
    "/registry/merges",
    response_model=MergePublic,
    status_code=201,
    summary="Объединить две записи об одном ребёнке",
    responses=responses(404, 409),
)
def merge(body: MergeIn, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> MergePublic:
    row = merges.merge(session, principal, body)
    audit.many("merge", "child_merge", [(row.id, row.keep_child_id), (row.id, row.merge_child_id)])
    return merges.public(session, [row])[0]


@router.get("/registry/merges", response_model=list[MergePublic], summary="Журнал объединений записей")
def list_merges(principal: CurrentUser, session: SessionDep, audit: AuditDep) -> list[MergePublic]:
    rows = merges.merges(session, principal)
    audit.many("read", "child_merge", [(r.id, r.keep_child_id) for r in rows])
    return merges.public(session, rows)


@router.get(
    "/registry/merges/{merge_id}",
    response_model=MergePublic,
    summary="Одно объединение записей",
    responses=responses(404),
)
def get_merge(merge_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> MergePublic:
    row = merges.get_merge(session, principal, merge_id)
    audit.many("read", "child_merge", [(row.id, row.keep_child_id), (row.id, row.merge_child_id)])
    return merges.public(session, [row])[0]


@router.post(
    "/registry/merges/{merge_id}/undo",
    response_model=MergePublic,
    summary="Отменить объединение записей",
    responses=responses(404, 409),
)
def undo_merge(
    merge_id: IdParam,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    body: UndoIn | None = None,
) -> MergePublic:
    row = merges.undo(session, principal, merge_id, body.reason if body else None)
    audit.many("merge_undo", "child_merge", [(row.id, row.keep_child_id), (row.id, row.merge_child_id)])
    return merges.public(session, [row])[0]
