from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import get_case
from api.services import cases as service
from api.services import contacts, programmes
from core.errors import DomainError, NotFound, Unprocessable
from models.cases import Case, CaseDetail, CaseUpdate, ContactAttempt, ContactAttemptIn, EventRequest
from models.common import INT32_MAX, IdParam
from models.programmes import IprPublic
from statemachines import STATES

router = APIRouter(tags=["Случаи"], responses=responses(403))

STATE_NAMES = [name for name, _ in STATES]


class PreconditionRequired(DomainError):
    status_code = 428
    code = "version_required"


def _version(if_match: str | None, body_version: int | None) -> int:
    """The version the client saw: from If-Match ("3" or W/"3") or from the body."""
    if if_match is not None:
        raw = if_match.strip().removeprefix("W/").strip('"')
        if not (raw.isascii() and raw.isdigit()) or int(raw) > INT32_MAX:
            raise Unprocessable("Заголовок If-Match должен содержать версию случая", field="If-Match")
        return int(raw)
    if body_version is None:
        raise PreconditionRequired(
            "Укажите версию случая (поле version или заголовок If-Match), чтобы не затереть изменения коллег",
            field="version",
        )
    return body_version


def _etag(response: Response, case: Case) -> None:
    response.headers["ETag"] = f'"{case.version}"'


@router.get("/cases", summary="Случаи с фильтрами")
def list_cases(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    state: Annotated[list[str] | None, Query(description="Состояние (можно несколько)")] = None,
    provider_id: IdParam | None = None,
    curator_id: IdParam | None = None,
    child_id: IdParam | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    undelivered: Annotated[
        bool, Query(description="Только случаи с сообщениями, не доставленными никому (нужны действия)")
    ] = False,
) -> dict[str, Any]:
    for value in state or []:
        if value not in STATE_NAMES:
            raise Unprocessable(
                f"Неизвестное состояние «{value}»; допустимые: {', '.join(STATE_NAMES)}",
                field="state",
            )
    items, total = service.list_cases(
        session,
        principal,
        states=state or [],
        provider_id=provider_id,
        curator_id=curator_id,
        child_id=child_id,
        undelivered=undelivered,
        limit=limit,
        offset=offset,
    )
    audit.many("read", "case", [(c.id, c.child_id) for c in items])
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="Случай: состояние, доступные действия, история",
    responses=responses(404),
)
def get_case_detail(
    case_id: IdParam, response: Response, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> CaseDetail:
    case = get_case(session, principal, case_id)
    audit("read", "case", case.id, case.child_id)
    _etag(response, case)
    return service.detail(session, principal, case)


@router.post(
    "/cases/{case_id}/events/{event}",
    response_model=CaseDetail,
    summary="Выполнить событие маршрута (переход)",
    # 409: the event is not allowed in the state, or the version is stale; 422: a guard failed.
    responses=responses(404, 409, 428),
)
def fire_event(
    case_id: IdParam,
    event: str,
    body: EventRequest,
    response: Response,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    if_match: Annotated[str | None, Header()] = None,
) -> CaseDetail:
    case = get_case(session, principal, case_id)
    expected = _version(if_match, body.version)
    service.fire_event(
        session, principal, case, event, version=expected, payload=body.payload, reason=body.reason
    )
    audit("transition", "case", case.id, case.child_id)
    _etag(response, case)
    return service.detail(session, principal, case)


@router.patch(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="Назначить куратора",
    responses=responses(404, 409),
)
def update_case(
    case_id: IdParam,
    body: CaseUpdate,
    response: Response,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
) -> CaseDetail:
    service.require_curator_assigner(principal)
    case = get_case(session, principal, case_id)
    service.assign_curator(session, principal, case, body.curator_id, body.version)
    audit("update", "case", case.id, case.child_id)
    _etag(response, case)
    return service.detail(session, principal, case)


@router.post(
    "/cases/{case_id}/contact-attempts",
    status_code=201,
    summary="Зарегистрировать попытку связаться с семьёй",
    responses=responses(404, 409),
)
def add_contact_attempt(
    case_id: IdParam, body: ContactAttemptIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ContactAttempt:
    contacts.require_recorder(principal)
    case = get_case(session, principal, case_id)
    attempt = contacts.add_contact_attempt(session, principal, case, body)
    audit("create", "contact_attempt", attempt.id, case.child_id)
    return attempt


@router.get(
    "/cases/{case_id}/contact-attempts", summary="Попытки связаться с семьёй", responses=responses(404)
)
def list_contact_attempts(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[ContactAttempt]:
    case = get_case(session, principal, case_id)
    audit("read", "contact_attempt", case.id, case.child_id)
    return contacts.list_contact_attempts(session, principal, case)


@router.get(
    "/cases/{case_id}/ipr",
    response_model=IprPublic,
    summary="ИПРП случая: цели, срок, согласие родителя, услуги с их id и ходом занятий",
    responses=responses(404),
)
def get_ipr(case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep) -> IprPublic:
    case = get_case(session, principal, case_id)
    ipr = programmes.current_ipr(session, principal, case)
    if ipr is None:
        raise NotFound("У случая нет действующей ИПРП", field="case_id")
    audit("read", "ipr", ipr.id, case.child_id)
    return ipr
