from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.services.overdue import OverdueFilter
from api.services.overdue import overdue as find_overdue
from models.common import INT32_MAX, IdParam

router = APIRouter(tags=["Сроки"], responses=responses(403))


@router.get("/overdue", summary="Просроченные (и подходящие) сроки по случаям")
def overdue(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    organisation_id: IdParam | None = None,
    curator_id: IdParam | None = None,
    state: str | None = None,
    timer: Annotated[
        str | None, Query(max_length=64, description="Вид срока (имя таймера стандарта)")
    ] = None,
    min_days_overdue: Annotated[int, Query(ge=0, le=3650)] = 0,
    due_within_days: Annotated[
        int | None,
        Query(ge=0, le=365, description="Вместо просроченных: сроки, наступающие в ближайшие N дней"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> dict[str, Any]:
    wanted = OverdueFilter(
        organisation_id=organisation_id,
        curator_id=curator_id,
        state=state,
        timer=timer,
        min_days_overdue=min_days_overdue,
        due_within_days=due_within_days,
    )
    page = find_overdue(session, principal, wanted, limit=limit, offset=offset)
    audit.many(
        "read", "deadline", [(i.case_id, child) for i, child in zip(page.items, page.child_ids, strict=True)]
    )
    return {"items": page.items, "total": page.total, "limit": limit, "offset": offset, "now": page.now}
