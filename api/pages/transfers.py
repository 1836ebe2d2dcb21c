"""Pages of the transfer between providers: the list of incoming and outgoing requests, one request
with its accept / refuse / withdraw forms, and the case card's two parts (the banner of a pending
transfer, the request form). Everything goes through api/services/transfers.py, as the API does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.errors import validation_errors
from api.pages import case_sections
from api.pages.cases import CardForm, _again, _visible_case
from api.pages.cases import Problems as CaseProblems
from api.pages.web import PageAuditDep, PageUser, form_id, read_form, redirect, render
from api.services import transfers as service
from api.services import users as users_service
from core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.common import IdParam, today_in
from models.transfers import Transfer, TransferCreate
from models.users import Role
from statemachines.fire import region_of
from statemachines.journey import FINAL_STATES

router = APIRouter(include_in_schema=False)

DONE = {
    "accepted": "Случай принят: он теперь в вашей организации.",
    "refused": "Отказ отправлен запросившей организации.",
    "withdrawn": "Запрос о передаче отозван.",
}
CURATOR_ROLES = (Role.curator, Role.supervisor)


# --- the case card's parts --------------------------------------------------------------------


def _banner(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    pending = service.pending_for_case(session, principal, case)
    if pending is None:
        return None
    return {"transfer": pending, "can_withdraw": "withdraw" in pending.allowed_actions}


def _request_form(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    if case.state in FINAL_STATES or not service.may_request(principal, case):
        return None
    if service.pending_for_case(session, principal, case) is not None:
        return None
    return {"targets": [(o.id, o.name) for o in service.targets(session, case)]}


case_sections.register("transfer-banner", "pages/cases/_transfer_banner.html", _banner, slot="top", order=10)
case_sections.register("transfer-request", "pages/cases/_transfer_request.html", _request_form, order=90)

# Form fields of the request form, by the service's field names.
REQUEST_FIELDS: dict[str | None, str] = {
    "to_provider_id": "transfer-to_provider_id",
    "reason": "transfer-reason",
    "consent": "transfer-consent_date",
    "consent.date": "transfer-consent_date",
    "consent.document_ref": "transfer-consent_document",
    None: "transfer-to_provider_id",
}


@router.post("/cases/{case_id}/transfers", response_class=HTMLResponse)
async def request_transfer(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = CaseProblems(form="transfer")
    problems.keep(form)
    target = form.get("transfer-to_provider_id")
    if not target:
        problems.errors["transfer-to_provider_id"] = "Выберите организацию, которой передаётся случай"
    if not form.get("transfer-reason").strip():
        problems.errors["transfer-reason"] = "Укажите причину передачи"
    if problems.errors:
        return _again(request, session, principal, case, problems, audit)
    consent_date = form.get("transfer-consent_date")
    try:
        body = TransferCreate.model_validate(
            {
                "to_provider_id": form_id(target) or 0,
                "reason": form.get("transfer-reason"),
                "consent": {
                    "date": consent_date,
                    "document_ref": form.get("transfer-consent_document") or None,
                }
                if consent_date
                else None,
            }
        )
    except ValidationError as invalid:
        for error in validation_errors(invalid.errors()):
            problems.errors.setdefault(
                REQUEST_FIELDS.get(error["field"], "transfer-to_provider_id"), error["message"]
            )
        return _again(request, session, principal, case, problems, audit)
    return CardForm(request, session, principal, case, problems, audit).act(
        REQUEST_FIELDS,
        lambda: service.request(session, principal, case, body),
        audited=("create", "transfer"),
        done="transfer_request",
        refusals=(Conflict, Unprocessable, Forbidden),
    )


@router.post("/cases/{case_id}/transfers/{transfer_id}/withdraw", response_class=HTMLResponse)
async def withdraw_from_card(
    request: Request,
    case_id: IdParam,
    transfer_id: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    transfer = _visible(session, principal, transfer_id)
    if transfer.case_id != case.id:
        raise NotFound("Запрос о передаче не найден", field="transfer_id")
    problems = CaseProblems(form="transfer-withdraw")
    problems.keep(form)
    reason = form.get("withdraw-reason") or None
    return CardForm(request, session, principal, case, problems, audit).act(
        {None: "withdraw-reason"},
        lambda: service.withdraw(session, principal, transfer, reason),
        audited=("transition", "transfer"),
        key=transfer.id,
        done="transfer_withdraw",
        refusals=(Conflict, Unprocessable, Forbidden),
    )


# --- the list and one request -----------------------------------------------------------------


def _visible(session: Session, principal: Principal, transfer_id: int) -> Transfer:
    """The request if the caller may see it; otherwise the 404 page (a page never says it exists)."""
    try:
        return service.visible(session, principal, transfer_id)
    except Forbidden as refused:
        raise NotFound("Запрос о передаче не найден", field="transfer_id") from refused


@router.get("/transfers", response_class=HTMLResponse)
def transfers_page(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    try:
        service.require_staff(principal)
    except Forbidden as refused:
        raise NotFound("Страница не найдена") from refused
    sections: list[tuple[str, str, list[Any]]] = []
    if principal.is_provider_staff:
        wanted = [
            ("incoming", "Входящие: вас просят принять случай"),
            ("outgoing", "Исходящие: ваши запросы"),
        ]
    else:
        wanted = [("all", "Передачи случаев в регионе")]
    for key, heading in wanted:
        rows, items, _ = service.listed(
            session, principal, direction=None if key == "all" else key, limit=200, offset=0
        )
        audit.many("read", "transfer", service.audit_rows(session, rows))
        sections.append((key, heading, items))
    return render(request, "pages/transfers/list.html", {"title": "Передачи случаев", "sections": sections})


@dataclass
class Problems:
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    status: int = 422
    form: str | None = None


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    transfer: Transfer,
    audit: PageAuditDep,
    problems: Problems | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    shown = service.public(session, principal, [transfer])[0]
    audit("read", "transfer", transfer.id, service.child_id_of(session, transfer))
    curators: list[tuple[int, str]] = []
    if "accept" in shown.allowed_actions:
        staff = users_service.staff_of(session, principal, transfer.to_provider_id, None)
        curators = [(u.id or 0, u.full_name) for u in staff if u.role in CURATOR_ROLES]
    case = session.get(Case, transfer.case_id)
    assert case is not None
    # A link to the card only for those who may open it (the case's provider, the РРМЦ).
    opens_case = principal.is_regional_supervisor or case.provider_id == principal.org.id
    problems = problems or Problems()
    context = {
        "title": f"Передача случая № {transfer.case_id}",
        "t": shown,
        "curators": curators,
        "opens_case": opens_case,
        "errors": problems.errors,
        "values": problems.values,
        "failed_form": problems.form,
        "notice": notice,
        "today": today_in(region_of(session, case).timezone).isoformat(),
    }
    return render(
        request, "pages/transfers/detail.html", context, problems.status if problems.errors else 200
    )


@router.get("/transfers/{transfer_id}", response_class=HTMLResponse)
def transfer_page(
    request: Request,
    transfer_id: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
) -> Response:
    transfer = _visible(session, principal, transfer_id)
    return _detail(request, session, principal, transfer, audit, notice=DONE.get(done or ""))


def _failed(
    request: Request,
    session: Session,
    principal: Principal,
    transfer: Transfer,
    audit: PageAuditDep,
    problems: Problems,
    error: DomainError,
    target: str,
) -> HTMLResponse:
    session.refresh(transfer)
    problems.errors[target] = error.message
    problems.status = error.status_code if error.status_code in (409, 422) else 422
    return _detail(request, session, principal, transfer, audit, problems)


@router.post("/transfers/{transfer_id}/{action}", response_class=HTMLResponse)
async def answer(
    request: Request,
    transfer_id: IdParam,
    action: str,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    form = await read_form(request, principal)
    if action not in ("accept", "refuse", "withdraw"):
        raise NotFound("Страница не найдена")
    transfer = _visible(session, principal, transfer_id)
    problems = Problems(form=action)
    problems.values = {k: v.strip() for k, v in form.items if k != "csrf"}
    target = f"{action}-reason"
    savepoint = session.begin_nested()
    try:
        if action == "accept":
            target = "accept-curator_id"
            raw = form.get("accept-curator_id")
            curator_id = form_id(raw)
            if raw and curator_id is None:
                raise Unprocessable("Выберите куратора из списка", field="curator_id")
            service.accept(session, principal, transfer, curator_id)
        elif action == "refuse":
            reason = form.get("refuse-reason")
            if len(reason) > 2000:
                raise Unprocessable("Причина — не длиннее 2000 символов", field="reason")
            service.refuse(session, principal, transfer, reason)
        else:
            service.withdraw(session, principal, transfer, (form.get("withdraw-reason") or "")[:2000] or None)
    except (Conflict, Unprocessable, Forbidden) as refused:
        savepoint.rollback()
        return _failed(request, session, principal, transfer, audit, problems, refused, target)
    savepoint.commit()
    audit("transition", "transfer", transfer.id, service.child_id_of(session, transfer))
    done = {"accept": "accepted", "refuse": "refused", "withdraw": "withdrawn"}[action]
    if action == "accept":
        return redirect(f"/cases/{transfer.case_id}?done=transfer_accept")
    return redirect(f"/transfers/{transfer.id}?done={done}")
