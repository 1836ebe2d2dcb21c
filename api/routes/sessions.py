from __future__ import annotations

from fastapi import APIRouter

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import get_case
from api.services import attendance
from models.common import IdParam
from models.programmes import SessionIn, SessionPublic, SessionUpdate

router = APIRouter(tags=["Занятия"], responses=responses(403, 404))


@router.post(
    "/cases/{case_id}/sessions",
    response_model=SessionPublic,
    status_code=201,
    summary="Запланировать занятие (услугу)",
    responses=responses(409),
)
def plan_session(
    case_id: IdParam, body: SessionIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> SessionPublic:
    attendance.require_planner(principal)
    case = get_case(session, principal, case_id)
    row = attendance.plan_session(session, principal, case, body)
    audit("create", "session", row.id, case.child_id)
    return attendance.public(row)


@router.get("/cases/{case_id}/sessions", response_model=list[SessionPublic], summary="Занятия по случаю")
def list_sessions(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[SessionPublic]:
    case = get_case(session, principal, case_id)
    audit("read", "session", case.id, case.child_id)
    return [attendance.public(r) for r in attendance.list_sessions(session, principal, case)]


@router.patch(
    "/cases/{case_id}/sessions/{session_id}",
    response_model=SessionPublic,
    summary="Отметить занятие: проведено, пропущено, отменено",
    responses=responses(409),
)
def update_session(
    case_id: IdParam,
    session_id: IdParam,
    body: SessionUpdate,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
) -> SessionPublic:
    attendance.require_planner(principal)
    case = get_case(session, principal, case_id)
    row = attendance.update_session(session, principal, case, session_id, body)
    audit("update", "session", row.id, case.child_id)
    return attendance.public(row)
