from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import deadline_scope
from api.services.cases import days_late
from core.errors import Unprocessable
from models.cases import Case
from models.children import Child, full_name
from models.common import INT32_MAX, IdParam, utcnow
from models.deadlines import Deadline, OverdueItem, running
from models.organisations import Organisation
from models.users import User
from statemachines import STATE_LABELS

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
    if state is not None and state not in STATE_LABELS:
        raise Unprocessable(f"Неизвестное состояние «{state}»", field="state")
    now = utcnow()
    # A suspended case's clock is stopped: its deadlines are neither late nor coming.
    conditions = [deadline_scope(principal), *running()]
    if due_within_days is None:
        conditions.append(col(Deadline.due_at) <= now - timedelta(days=min_days_overdue))
    else:
        conditions += [
            col(Deadline.due_at) > now,
            col(Deadline.due_at) <= now + timedelta(days=due_within_days),
        ]
    if organisation_id is not None:
        conditions.append(Deadline.provider_id == organisation_id)
    if timer is not None:
        conditions.append(Deadline.timer == timer)
    needs_case = curator_id is not None or state is not None
    if curator_id is not None:
        conditions.append(Case.curator_id == curator_id)
    if state is not None:
        conditions.append(Case.state == state)

    count = select(func.count()).select_from(Deadline)
    if needs_case:
        count = count.join(Case, col(Case.id) == Deadline.case_id)
    total = session.exec(count.where(*conditions)).one()

    curator = aliased(User)
    rows = session.exec(
        select(Deadline, Case, Child, Organisation.name, curator.full_name)  # type: ignore[call-overload]
        .join(Case, col(Case.id) == Deadline.case_id)
        .join(Child, col(Child.id) == Case.child_id)
        .join(Organisation, col(Organisation.id) == Deadline.provider_id)
        .outerjoin(curator, curator.id == Case.curator_id)
        .where(*conditions)
        .order_by(col(Deadline.due_at), col(Deadline.id))
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        OverdueItem(
            deadline_id=d.id,
            case_id=c.id,
            provider_id=d.provider_id,
            provider_name=org_name,
            curator_id=c.curator_id,
            curator_name=curator_name,
            child_name=full_name(child),
            state=c.state,
            state_label=STATE_LABELS[c.state],
            timer=d.timer,
            label=d.label,
            due_at=d.due_at,
            days_overdue=days_late(d.due_at, now),
            escalated=d.expired_at is not None,
        )
        for d, c, child, org_name, curator_name in rows
    ]
    audit.many(
        "read", "deadline", [(i.case_id, c.child_id) for i, (_, c, *_rest) in zip(items, rows, strict=True)]
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset, "now": now}
