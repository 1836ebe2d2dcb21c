from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import get_case, require_provider_staff
from api.services import attendance
from core.errors import NotFound, Unprocessable
from models.common import IdParam, utcnow
from models.programmes import (
    ServiceSession,
    SessionIn,
    SessionPublic,
    SessionStatus,
    SessionUpdate,
)
from models.users import User
from standards import load_standard
from statemachines import FINAL_STATES
from statemachines.effects import enqueue
from statemachines.fire import region_of

router = APIRouter(tags=["Занятия"], responses=responses(403, 404))


def _public(row: ServiceSession) -> SessionPublic:
    return SessionPublic.model_validate(row, from_attributes=True)


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
    require_provider_staff(principal)
    case = get_case(session, principal, case_id)
    if case.state in FINAL_STATES or case.state in ("referred", "suspended"):
        raise Unprocessable("В текущем состоянии случая занятия не планируются", field="case_id")
    region = region_of(session, case)
    attendance.check_service(session, case, body, load_standard(region.code))
    if body.scheduled_at < utcnow():
        raise Unprocessable("Нельзя запланировать занятие в прошлом", field="scheduled_at")
    if body.specialist_id is not None:
        specialist = session.get(User, body.specialist_id)
        if specialist is None or specialist.organisation_id != case.provider_id:
            raise Unprocessable("Специалист не найден в этой организации", field="specialist_id")
    assert case.id is not None
    row = ServiceSession(case_id=case.id, status=SessionStatus.planned, **body.model_dump())
    session.add(row)
    session.flush()
    enqueue(
        session,
        "session_planned",
        case_id=case.id,
        referral_id=case.referral_id,
        context={"session_id": row.id},
    )
    audit("create", "session", row.id, case.child_id)
    return _public(row)


@router.get("/cases/{case_id}/sessions", response_model=list[SessionPublic], summary="Занятия по случаю")
def list_sessions(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[SessionPublic]:
    case = get_case(session, principal, case_id)
    audit("read", "session", case.id, case.child_id)
    rows = session.exec(
        select(ServiceSession)
        .where(ServiceSession.case_id == case.id)
        .order_by(col(ServiceSession.scheduled_at))
    )
    return [_public(r) for r in rows]


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
    require_provider_staff(principal)
    case = get_case(session, principal, case_id)
    row = session.get(ServiceSession, session_id)
    if row is None or row.case_id != case.id:
        raise NotFound("Занятие не найдено", field="session_id")
    if row.status != SessionStatus.planned:
        raise Unprocessable("Отметка о занятии уже сделана", field="status")
    if body.status == SessionStatus.planned:
        raise Unprocessable("Укажите итог занятия: held, missed или cancelled", field="status")
    if body.status in (SessionStatus.held, SessionStatus.missed) and row.scheduled_at > utcnow():
        raise Unprocessable("Занятие ещё не наступило", field="status")
    row.status = body.status
    row.notes = body.notes
    row.updated_at = utcnow()
    session.add(row)
    if body.status in (SessionStatus.held, SessionStatus.missed):
        attendance.record(session, case, row, principal.user)
    audit("update", "session", row.id, case.child_id)
    return _public(row)
