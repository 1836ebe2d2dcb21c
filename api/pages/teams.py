"""Pages of the multidisciplinary team and the agreements: the case card's part «Междисциплинарная
команда» with its add and remove forms, «Мои команды» (the cases of the teams the caller is in, the
way an invited specialist of another organisation finds them), and the agreements' admin pages.
Everything goes through api/services/teams.py and api/services/agreements.py, as the API does.
"""

from __future__ import annotations

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
from api.pages.web import PageAuditDep, PageUser, read_form, redirect, render
from api.services import agreements as agreement_service
from api.services import teams as service
from api.services.organisations import list_organisations
from core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.common import IdParam
from models.organisations import OrgKind
from models.teams import AgreementIn, TeamMemberIn

router = APIRouter(include_in_schema=False)


# --- the case card's part ---------------------------------------------------------------------


def _team_part(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    editable = service.can_edit(principal, case)
    return {
        "team": service.team(session, case),
        "can_edit": editable,
        "candidates": [
            (c.user_id, f"{c.full_name} — {c.organisation_name}" + (" (приглашённый)" if c.invited else ""))
            for c in (service.candidates(session, case) if editable else [])
        ],
        "roles": list(service.role_labels(session, case).items()) if editable else [],
    }


case_sections.register("team", "pages/cases/_team.html", _team_part, order=40)

TEAM_FIELDS: dict[str | None, str] = {
    "user_id": "team-user_id",
    "specialist_role": "team-specialist_role",
    None: "team-user_id",
}


@router.post("/cases/{case_id}/team", response_class=HTMLResponse)
async def add_member(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = CaseProblems(form="team")
    problems.keep(form)
    user_id, role = form.get("team-user_id"), form.get("team-specialist_role")
    if not user_id:
        problems.errors["team-user_id"] = "Выберите специалиста"
    if not role:
        problems.errors["team-specialist_role"] = "Выберите роль в команде"
    if problems.errors:
        return _again(request, session, principal, case, problems, audit)
    if not (user_id.isascii() and user_id.isdigit() and len(user_id) < 10):
        problems.errors["team-user_id"] = "Выберите специалиста из списка"
        return _again(request, session, principal, case, problems, audit)
    try:
        body = TeamMemberIn.model_validate({"user_id": int(user_id), "specialist_role": role})
    except ValidationError as invalid:
        for error in validation_errors(invalid.errors()):
            problems.errors.setdefault(TEAM_FIELDS.get(error["field"], "team-user_id"), error["message"])
        return _again(request, session, principal, case, problems, audit)
    return CardForm(request, session, principal, case, problems, audit).act(
        TEAM_FIELDS,
        lambda: service.add_member(session, principal, case, body),
        audited=("create", "team_member"),
        done="team_add#h-team",
        refusals=(Conflict, Unprocessable, Forbidden),
    )


@router.post("/cases/{case_id}/team/{member_id}/remove", response_class=HTMLResponse)
async def remove_member(
    request: Request,
    case_id: IdParam,
    member_id: IdParam,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
) -> Response:
    await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = CaseProblems(form="team")
    return CardForm(request, session, principal, case, problems, audit).act(
        TEAM_FIELDS,
        lambda: service.remove_member(session, principal, case, member_id),
        audited=("update", "team_member"),
        done="team_remove#h-team",
        refusals=(Conflict, Unprocessable, Forbidden, NotFound),
    )


# --- «Мои команды» ----------------------------------------------------------------------------


@router.get("/teams", response_class=HTMLResponse)
def my_teams(request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep) -> HTMLResponse:
    cases = service.my_cases(session, principal)
    audit.many("read", "case", [(c.id, c.child_id) for c in cases])
    return render(request, "pages/teams/mine.html", {"title": "Мои команды", "cases": cases})


# --- agreements -------------------------------------------------------------------------------

AGREEMENT_FIELDS = ("provider_id", "partner_org_id", "number", "signed_on", "valid_until")
AGREEMENT_DONE = {"created": "Соглашение зарегистрировано.", "ended": "Соглашение прекращено."}


def _agreements_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = agreement_service.list_agreements(session, principal)
    manage = agreement_service.can_manage(principal)
    orgs = list_organisations(session, principal) if manage else []
    return render(
        request,
        "pages/teams/agreements.html",
        {
            "title": "Соглашения о межведомственном взаимодействии",
            "agreements": rows,
            "can_manage": manage,
            "providers": [(o.id, o.name) for o in orgs if o.kind == OrgKind.provider],
            "partners": [(o.id, o.name) for o in orgs],
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
        },
        status,
    )


@router.get("/admin/agreements", response_class=HTMLResponse)
def agreements_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    done: str | None = Query(default=None, max_length=20),
) -> HTMLResponse:
    return _agreements_page(request, session, principal, notice=AGREEMENT_DONE.get(done or ""))


@router.post("/admin/agreements", response_class=HTMLResponse)
async def create_agreement(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    agreement_service.require_manager(principal)
    values = {name: form.get(name) for name in AGREEMENT_FIELDS}
    errors: dict[str, str] = {}
    raw: dict[str, Any] = {k: v for k, v in values.items() if v}
    for name in ("provider_id", "partner_org_id"):  # ids of the form's selects: a JSON body's numbers
        if values[name]:
            ok = values[name].isascii() and values[name].isdigit() and len(values[name]) < 10
            raw[name] = int(values[name]) if ok else 0
    for name, message in (
        ("provider_id", "Выберите организацию, оказывающую раннюю помощь"),
        ("partner_org_id", "Выберите организацию-партнёра"),
        ("number", "Укажите номер соглашения"),
        ("signed_on", "Укажите дату подписания"),
    ):
        if not values[name]:
            errors[name] = message
    body: AgreementIn | None = None
    if not errors:
        try:
            body = AgreementIn.model_validate(raw)
        except ValidationError as invalid:
            for error in validation_errors(invalid.errors()):
                errors.setdefault(error["field"] if error["field"] in values else "number", error["message"])
    if body is None:
        return _agreements_page(request, session, principal, errors=errors, values=values, status=422)
    savepoint = session.begin_nested()
    try:
        created = agreement_service.create_agreement(session, principal, body)
    except DomainError as refused:
        savepoint.rollback()
        field = refused.field if refused.field in values else "partner_org_id"
        errors[field or "partner_org_id"] = refused.message
        return _agreements_page(request, session, principal, errors=errors, values=values, status=422)
    savepoint.commit()
    audit("create", "agreement", created.id, None)
    return redirect("/admin/agreements?done=created")


@router.post("/admin/agreements/{agreement_id}/end", response_class=HTMLResponse)
async def end_agreement(
    request: Request, agreement_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    await read_form(request, principal)
    agreement_service.end_agreement(session, principal, agreement_id)
    audit("update", "agreement", agreement_id, None)
    return redirect("/admin/agreements?done=ended")
