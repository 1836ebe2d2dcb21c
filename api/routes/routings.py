"""Routing («маршрутизация») and the inter-agency consilium: the API (issue 11).

Routes are thin: api/services/routings.py and consilia.py decide who may do what and write it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import Session

from api.deps import AuditDep, CurrentUser, Principal, SessionDep, SettingsDep
from api.openapi import responses
from api.scoping import get_case
from api.services import consilia, routings
from core.errors import Unprocessable
from models.common import INT32_MAX, IdParam
from models.routings import (
    ConsiliumHold,
    ConsiliumIn,
    ConsiliumPublic,
    Reason,
    RoutingAnswer,
    RoutingIn,
    RoutingPublic,
)
from statemachines.routing import ROUTING

router = APIRouter(tags=["Маршрутизация и консилиумы"], responses=responses(403))


@router.post(
    "/cases/{case_id}/routings",
    status_code=201,
    response_model=RoutingPublic,
    summary="Направить семью в другую организацию (маршрутизация)",
    responses=responses(404, 409),
)
def create_routing(
    case_id: IdParam,
    body: RoutingIn,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    settings: SettingsDep,
) -> RoutingPublic:
    routings.require_router(principal)
    case = get_case(session, principal, case_id)
    routing = routings.create(session, principal, case, body, public_url=settings.public_url)
    audit("create", "routing", routing.id, case.child_id)
    return routings.public(session, principal, [routing])[0]


@router.get(
    "/cases/{case_id}/routings",
    response_model=list[RoutingPublic],
    summary="Направления семьи в другие организации по случаю",
    responses=responses(404),
)
def case_routings(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[RoutingPublic]:
    case = get_case(session, principal, case_id)
    items = routings.for_case(session, principal, case)
    audit.many("read", "routing", [(r.id, case.child_id) for r in items])
    return items


@router.get(
    "/routings",
    summary="Направления: сотрудникам организации ранней помощи — по их случаям; "
    "организации, в которую направлена семья, — адресованные ей (минимум сведений)",
)
def list_routings(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    status: Annotated[str | None, Query(description="sent / answered / expired / cancelled")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> dict[str, Any]:
    if status is not None and status not in ROUTING.state_labels:
        raise Unprocessable(
            f"Неизвестное состояние «{status}»; допустимые: {', '.join(ROUTING.state_labels)}", field="status"
        )
    items, total = routings.listing(session, principal, status=status, limit=limit, offset=offset)
    audit.many("read", "routing", routings.audit_rows(session, items))
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "/routings/{routing_id}/answer",
    summary="Записать результат направления (организация, в которую направлена семья, или куратор)",
    responses=responses(404, 409),
)
def answer_routing(
    routing_id: IdParam, body: RoutingAnswer, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> dict[str, Any]:
    routing = routings.get_routing(session, principal, routing_id)
    routings.answer(session, principal, routing, body)
    audit("update", "routing", routing.id, routings.child_of(session, routing))
    return _one(session, principal, routing.id or 0)


@router.post(
    "/routings/{routing_id}/cancel",
    summary="Отменить направление (организация ранней помощи)",
    responses=responses(404, 409),
)
def cancel_routing(
    routing_id: IdParam, body: Reason, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> dict[str, Any]:
    routing = routings.get_routing(session, principal, routing_id)
    routings.cancel(session, principal, routing, body.reason.strip())
    audit("update", "routing", routing.id, routings.child_of(session, routing))
    return _one(session, principal, routing.id or 0)


def _one(session: Session, principal: Principal, routing_id: int) -> dict[str, Any]:
    """The routing as this caller may see it: in full for the provider, minimal for the target."""
    routing = routings.get_routing(session, principal, routing_id)
    if principal.is_provider_staff or principal.is_regional_supervisor:
        return routings.public(session, principal, [routing])[0].model_dump(mode="json")
    return routings.incoming(session, [routing])[0].model_dump(mode="json")


@router.post(
    "/cases/{case_id}/consilia",
    status_code=201,
    response_model=ConsiliumPublic,
    summary="Назначить межведомственный консилиум и пригласить организации",
    responses=responses(404, 409),
)
def plan_consilium(
    case_id: IdParam, body: ConsiliumIn, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ConsiliumPublic:
    consilia.require_organiser(principal)
    case = get_case(session, principal, case_id)
    consilium = consilia.plan(session, principal, case, body)
    audit("create", "consilium", consilium.id, case.child_id)
    return consilia.public(session, principal, [consilium])[0]


@router.get(
    "/cases/{case_id}/consilia",
    response_model=list[ConsiliumPublic],
    summary="Межведомственные консилиумы по случаю",
    responses=responses(404),
)
def case_consilia(
    case_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> list[ConsiliumPublic]:
    case = get_case(session, principal, case_id)
    items = consilia.for_case(session, principal, case)
    audit.many("read", "consilium", [(c.id, case.child_id) for c in items])
    return items


@router.post(
    "/consilia/{consilium_id}/hold",
    response_model=ConsiliumPublic,
    summary="Записать решения и рекомендации консилиума (и направить семью, если решено)",
    responses=responses(404, 409),
)
def hold_consilium(
    consilium_id: IdParam,
    body: ConsiliumHold,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    settings: SettingsDep,
) -> ConsiliumPublic:
    consilia.require_organiser(principal)
    consilium, case = consilia.get_consilium(session, principal, consilium_id)
    consilia.hold(session, principal, consilium, case, body, public_url=settings.public_url)
    audit("update", "consilium", consilium.id, case.child_id)
    return consilia.public(session, principal, [consilium])[0]


@router.post(
    "/consilia/{consilium_id}/cancel",
    response_model=ConsiliumPublic,
    summary="Отменить консилиум (приглашённые организации получат сообщение)",
    responses=responses(404, 409),
)
def cancel_consilium(
    consilium_id: IdParam, body: Reason, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> ConsiliumPublic:
    consilia.require_organiser(principal)
    consilium, case = consilia.get_consilium(session, principal, consilium_id)
    consilia.cancel(session, principal, consilium, case, body.reason.strip())
    audit("update", "consilium", consilium.id, case.child_id)
    return consilia.public(session, principal, [consilium])[0]
