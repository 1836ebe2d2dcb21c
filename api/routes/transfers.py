"""Transfer of a case to another provider (statemachines/transfer.py; api/services/transfers.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import AuditDep, CurrentUser, SessionDep
from api.openapi import responses
from api.scoping import get_case
from api.services import transfers as service
from models.common import INT32_MAX, IdParam
from models.transfers import TransferAccept, TransferCreate, TransferPublic, TransferRefuse, TransferWithdraw

router = APIRouter(tags=["Передача случая"], responses=responses(403))


@router.post(
    "/cases/{case_id}/transfers",
    status_code=201,
    response_model=TransferPublic,
    summary="Запросить передачу случая в другую организацию, оказывающую раннюю помощь",
    # 409: the case already has a pending transfer; 422: target, reason, consent or a closed case.
    responses=responses(404, 409),
)
def request_transfer(
    case_id: IdParam, body: TransferCreate, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TransferPublic:
    case = get_case(session, principal, case_id)
    transfer = service.request(session, principal, case, body)
    audit("create", "transfer", transfer.id, case.child_id)
    return service.public(session, principal, [transfer])[0]


@router.get("/transfers", summary="Запросы о передаче случаев: входящие и исходящие")
def list_transfers(
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    direction: Annotated[str | None, Query(description="incoming — входящие, outgoing — исходящие")] = None,
    status: Annotated[str | None, Query(description="requested, accepted, refused, withdrawn")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> dict[str, Any]:
    rows, items, total = service.listed(
        session, principal, direction=direction, status=status, limit=limit, offset=offset
    )
    audit.many("read", "transfer", service.audit_rows(session, rows))
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferPublic,
    summary="Запрос о передаче: сведения для решения",
    responses=responses(404),
)
def get_transfer(
    transfer_id: IdParam, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TransferPublic:
    transfer = service.visible(session, principal, transfer_id)
    audit("read", "transfer", transfer.id, service.child_id_of(session, transfer))
    return service.public(session, principal, [transfer])[0]


@router.post(
    "/transfers/{transfer_id}/accept",
    response_model=TransferPublic,
    summary="Принять случай (и назначить куратора своей организации)",
    responses=responses(404, 409),
)
def accept_transfer(
    transfer_id: IdParam, body: TransferAccept, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TransferPublic:
    transfer = service.visible(session, principal, transfer_id)
    case = service.accept(session, principal, transfer, body.curator_id)
    audit("transition", "transfer", transfer.id, case.child_id)
    return service.public(session, principal, [transfer])[0]


@router.post(
    "/transfers/{transfer_id}/refuse",
    response_model=TransferPublic,
    summary="Отказать в приёме случая с указанием причины",
    responses=responses(404, 409),
)
def refuse_transfer(
    transfer_id: IdParam, body: TransferRefuse, principal: CurrentUser, session: SessionDep, audit: AuditDep
) -> TransferPublic:
    transfer = service.visible(session, principal, transfer_id)
    service.refuse(session, principal, transfer, body.reason)
    audit("transition", "transfer", transfer.id, service.child_id_of(session, transfer))
    return service.public(session, principal, [transfer])[0]


@router.post(
    "/transfers/{transfer_id}/withdraw",
    response_model=TransferPublic,
    summary="Отозвать запрос о передаче",
    responses=responses(404, 409),
)
def withdraw_transfer(
    transfer_id: IdParam,
    principal: CurrentUser,
    session: SessionDep,
    audit: AuditDep,
    body: TransferWithdraw | None = None,
) -> TransferPublic:
    transfer = service.visible(session, principal, transfer_id)
    service.withdraw(session, principal, transfer, body.reason if body else None)
    audit("transition", "transfer", transfer.id, service.child_id_of(session, transfer))
    return service.public(session, principal, [transfer])[0]
