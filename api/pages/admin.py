"""The administrator's pages: the region's users and organisations (with the CSV import), and the
region's standard shown read-only to the administrator and the supervisors.

Each page calls the services the API calls (api/services/users.py, api/services/organisations.py),
so the region scope, the role rules and the password policy are the same on both doors; a page only
turns a form into a service call and the service's refusal into the form again with its errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import object_session
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.errors import validation_errors
from api.pages.web import Form, PageAuditDep, PageUser, read_form, redirect, render, require_roles
from api.services import organisations as orgs
from api.services import public_registry
from api.services import users as accounts
from api.services.standard import region_standard
from core.errors import DomainError
from models.common import IdParam
from models.organisations import ORG_KIND_LABELS, OWNERSHIP_LABELS, Organisation, OrgKind, Region
from models.programmes import SERVICE_FORM_LABELS
from models.users import ROLE_LABELS, Role, User
from statemachines.journey import STATES

router = APIRouter(include_in_schema=False)

Errors = dict[str, str]

# The order of the kinds in a select: the ones an administrator adds most often first.
KIND_ORDER = [
    OrgKind.provider,
    OrgKind.health,
    OrgKind.social,
    OrgKind.education,
    OrgKind.ngo,
    OrgKind.pmpk,
    OrgKind.mse,
    OrgKind.orphanage,
    OrgKind.rrmc,
]
KIND_OPTIONS = [(kind.value, ORG_KIND_LABELS[kind]) for kind in KIND_ORDER]
ROLE_OPTIONS = [(role.value, ROLE_LABELS[role]) for role in Role]


def _admin(principal: Principal) -> None:
    require_roles(principal, Role.admin)


def _pydantic_errors(error: ValidationError) -> Errors:
    found: Errors = {}
    for item in validation_errors(error.errors()):
        name = item["field"].split(".")[0] or "form"
        found.setdefault(name, item["message"])
    return found


def _domain_errors(error: DomainError, default_field: str) -> Errors:
    return {error.field or default_field: error.message}


# --- users ------------------------------------------------------------------------------------


def _org_names(session: Session, principal: Principal) -> dict[int, Organisation]:
    return {
        org.id: org
        for org in orgs.list_organisations(session, principal, active_only=False)
        if org.id is not None
    }


def _choice(value: str | None, allowed: set[str]) -> str:
    return value if value in allowed else ""


USERS_PER_PAGE = 50


@router.get("/admin/users", response_class=HTMLResponse)
def users_list(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    _admin(principal)
    region_orgs = _org_names(session, principal)
    params = request.query_params
    chosen = {
        "org": _choice(params.get("org"), {str(org_id) for org_id in region_orgs}),
        "role": _choice(params.get("role"), {role.value for role in Role}),
        "active": _choice(params.get("active"), {"yes", "no"}),
    }
    raw = params.get("page", "1")
    page = int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 100_000 else 1
    found, total = accounts.list_users(
        session,
        principal,
        organisation_id=int(chosen["org"]) if chosen["org"] else None,
        role=Role(chosen["role"]) if chosen["role"] else None,
        active={"yes": True, "no": False}.get(chosen["active"]),
        limit=USERS_PER_PAGE,
        offset=(page - 1) * USERS_PER_PAGE,
    )
    audit("read", "user", None, None)
    return render(
        request,
        "pages/admin/users.html",
        {
            "title": "Пользователи",
            "users": found,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // USERS_PER_PAGE)),
            "page_url": "/admin/users?" + urlencode({k: v for k, v in chosen.items() if v}) + "&",
            "orgs": region_orgs,
            "role_labels": ROLE_LABELS,
            "chosen": chosen,
            "filtered": any(chosen.values()),
            "org_options": [(str(org_id), org.name) for org_id, org in region_orgs.items()],
            "role_options": ROLE_OPTIONS,
            "active_options": [("yes", "Активные"), ("no", "Отключённые")],
        },
    )


def _role_hints() -> list[tuple[str, str]]:
    return [
        (ROLE_LABELS[role], ", ".join(ORG_KIND_LABELS[kind] for kind in accounts.role_kinds(role)))
        for role in Role
    ]


def _user_form(
    request: Request,
    session: SessionDep,
    principal: Principal,
    values: dict[str, str],
    errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    org_options = [
        (str(org.id), f"{org.name} — {ORG_KIND_LABELS[org.kind]}")
        for org in orgs.list_organisations(session, principal)
    ]
    return render(
        request,
        "pages/admin/user_new.html",
        {
            "title": "Новый пользователь",
            "values": values,
            "errors": errors or {},
            "role_options": ROLE_OPTIONS,
            "org_options": org_options,
            "role_hints": _role_hints(),
        },
        status,
    )


@router.get("/admin/users/new", response_class=HTMLResponse)
def user_new(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    _admin(principal)
    return _user_form(request, session, principal, {})


@router.post("/admin/users/new", response_class=HTMLResponse)
async def user_create(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    _admin(principal)
    form = await read_form(request, principal)
    values = {name: form.get(name) for name in ("login", "full_name", "email", "role", "organisation_id")}
    errors: Errors = {}
    for name, label in (
        ("login", "Укажите логин"),
        ("full_name", "Укажите ФИО"),
        ("email", "Укажите e-mail"),
        ("role", "Выберите роль"),
        ("organisation_id", "Выберите организацию"),
    ):
        if not values[name]:
            errors[name] = label
    if values["organisation_id"] and not (
        values["organisation_id"].isascii() and values["organisation_id"].isdigit()
    ):
        errors["organisation_id"] = "Выберите организацию"
    body: accounts.UserCreate | None = None
    if not errors:
        try:
            body = accounts.UserCreate.model_validate(
                {**values, "organisation_id": int(values["organisation_id"])}
            )
        except ValidationError as error:
            errors = _pydantic_errors(error)
    if body is None:
        return _user_form(request, session, principal, values, errors, 422)
    try:
        user, password = accounts.create_user(
            session,
            principal,
            login=body.login,
            full_name=body.full_name,
            role=body.role,
            organisation_id=body.organisation_id,
            email=body.email,
            password=None,
        )
    except DomainError as error:
        session.rollback()
        return _user_form(request, session, principal, values, _domain_errors(error, "login"), 422)
    audit("create", "user", user.id, None)
    return render(
        request,
        "pages/admin/user_password.html",
        {
            "title": "Пользователь создан",
            "heading": "Пользователь создан",
            "account": user,
            "password": password,
            "org": session.get(Organisation, user.organisation_id),
            "role_labels": ROLE_LABELS,
        },
    )


def _user_page(
    request: Request,
    session: Session,
    principal: Principal,
    user: User,
    *,
    notice: str = "",
    errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/admin/user.html",
        {
            "title": user.full_name,
            "account": user,
            "org": session.get(Organisation, user.organisation_id),
            "role_labels": ROLE_LABELS,
            "is_self": user.id == principal.id,
            "notice": notice,
            "errors": errors or {},
        },
        status,
    )


_NOTICES = {
    "disabled": "Пользователь отключён: его сеансы завершены, войти он не сможет.",
    "enabled": "Пользователь включён: он снова может войти.",
    "updated": "Изменения сохранены. Если изменилась роль, сеансы пользователя завершены.",
}


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_view(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    _admin(principal)
    user = accounts.get_user(session, principal, user_id)
    audit("read", "user", user.id, None)
    notice = _NOTICES.get(request.query_params.get("done", ""), "")
    return _user_page(request, session, principal, user, notice=notice)


def _edit_form(
    request: Request,
    session: Session,
    user: User,
    values: dict[str, str],
    errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "pages/admin/user_edit.html",
        {
            "title": f"Изменить: {user.full_name}",
            "account": user,
            "org": session.get(Organisation, user.organisation_id),
            "values": values,
            "errors": errors or {},
            "role_options": ROLE_OPTIONS,
        },
        status,
    )


@router.get("/admin/users/{user_id}/edit", response_class=HTMLResponse)
def user_edit(request: Request, user_id: IdParam, principal: PageUser, session: SessionDep) -> HTMLResponse:
    _admin(principal)
    user = accounts.get_user(session, principal, user_id)
    values = {"full_name": user.full_name, "email": user.email or "", "role": str(user.role)}
    return _edit_form(request, session, user, values)


@router.post("/admin/users/{user_id}/edit", response_class=HTMLResponse)
async def user_update(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    _admin(principal)
    user = accounts.get_user(session, principal, user_id)
    form = await read_form(request, principal)
    values = {name: form.get(name) for name in ("full_name", "email", "role")}
    errors: Errors = {}
    if not values["full_name"]:
        errors["full_name"] = "Укажите ФИО"
    if not values["email"]:
        errors["email"] = "Укажите e-mail"
    body: accounts.UserUpdate | None = None
    if not errors:
        try:
            body = accounts.UserUpdate.model_validate({**values, "role": values["role"] or None})
        except ValidationError as error:
            errors = _pydantic_errors(error)
    if body is None:
        return _edit_form(request, session, user, values, errors, 422)
    try:
        user = accounts.update_user(
            session, principal, user_id, full_name=body.full_name, email=body.email, role=body.role
        )
    except DomainError as error:
        session.rollback()
        user = accounts.get_user(session, principal, user_id)
        return _edit_form(request, session, user, values, _domain_errors(error, "role"), 422)
    audit("update", "user", user.id, None)
    return redirect(f"/admin/users/{user_id}?done=updated")


@router.get("/admin/users/{user_id}/disable", response_class=HTMLResponse)
def user_disable_check(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep
) -> HTMLResponse:
    return _confirm_page(request, session, principal, user_id, "disable", "Отключить пользователя")


def _confirm_page(
    request: Request, session: Session, principal: Principal, user_id: int, action: str, title: str
) -> HTMLResponse:
    """The check page before a weighty change of an account (GOV.UK: confirm before a weighty submit)."""
    _admin(principal)
    user = accounts.get_user(session, principal, user_id)
    return render(
        request,
        "pages/admin/user_confirm.html",
        {
            "title": title,
            "account": user,
            "org": session.get(Organisation, user.organisation_id),
            "action": action,
            "role_labels": ROLE_LABELS,
        },
    )


@router.post("/admin/users/{user_id}/disable", response_class=HTMLResponse)
async def user_disable(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    _admin(principal)
    await read_form(request, principal)
    try:
        user = accounts.change_active(session, principal, user_id, active=False)
    except DomainError as error:
        if error.status_code == 404:
            raise
        session.rollback()
        user = accounts.get_user(session, principal, user_id)
        return _user_page(request, session, principal, user, errors={"actions": error.message}, status=409)
    audit("disable", "user", user.id, None)
    return redirect(f"/admin/users/{user_id}?done=disabled")


@router.post("/admin/users/{user_id}/enable", response_class=HTMLResponse)
async def user_enable(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    _admin(principal)
    await read_form(request, principal)
    user = accounts.change_active(session, principal, user_id, active=True)
    audit("enable", "user", user.id, None)
    return redirect(f"/admin/users/{user_id}?done=enabled")


@router.get("/admin/users/{user_id}/password", response_class=HTMLResponse)
def user_password_check(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep
) -> HTMLResponse:
    return _confirm_page(request, session, principal, user_id, "password", "Сбросить пароль")


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
async def user_password(
    request: Request, user_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    _admin(principal)
    await read_form(request, principal)
    user, password = accounts.reset_password(session, principal, user_id, None)
    audit("password", "user", user.id, None)
    return render(
        request,
        "pages/admin/user_password.html",
        {
            "title": "Пароль сброшен",
            "heading": "Пароль сброшен",
            "account": user,
            "password": password,
            "org": session.get(Organisation, user.organisation_id),
            "role_labels": ROLE_LABELS,
        },
    )


# --- organisations ----------------------------------------------------------------------------


@router.get("/admin/organisations", response_class=HTMLResponse)
def organisations_list(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    _admin(principal)
    found = orgs.list_organisations(session, principal, active_only=False)
    saved = request.query_params.get("saved", "")
    notice = next((f"Сохранено: {org.name}" for org in found if str(org.id) == saved), "")
    region = session.get(Region, principal.org.region_id)
    return render(
        request,
        "pages/admin/organisations.html",
        {
            "title": "Организации",
            "organisations": found,
            "kind_labels": ORG_KIND_LABELS,
            "notice": notice,
            # Why a provider is not in the public registry (None: it is).
            "unpublished": {org.id: public_registry.publication_problem(org) for org in found},
            "region_code": region.code if region else "",
        },
    )


_ORG_FIELDS = (
    "name",
    "kind",
    "inn",
    "email",
    "phone",
    "address",
    "service_area",
    "webhook_url",
    "municipality",
    "ownership",
    "site",
    "age_from_months",
    "age_to_months",
    "free_places",
    "working_hours",
    "public_note",
)
OWNERSHIP_OPTIONS = [(o.value, label) for o, label in OWNERSHIP_LABELS.items()]
FORM_OPTIONS = [(f.value, label) for f, label in SERVICE_FORM_LABELS.items()]


def _org_form_values(form: Form) -> dict[str, Any]:
    """The form's values as the page shows them again: text, the forms' codes, the public switch."""
    values: dict[str, Any] = {name: form.get(name) for name in _ORG_FIELDS}
    values["forms"] = form.getlist("forms")
    values["is_public"] = form.get("is_public") == "yes"
    return values


def _org_values(org: Organisation) -> dict[str, Any]:
    return {
        "name": org.name,
        "kind": OrgKind(org.kind).value,
        "inn": org.inn or "",
        "email": org.email or "",
        "phone": org.phone or "",
        "address": org.address or "",
        "service_area": "\n".join(org.service_area or []),
        "webhook_url": org.webhook_url or "",
        "municipality": org.municipality or "",
        "ownership": org.ownership or "",
        "site": org.site or "",
        "forms": list(org.forms or []),
        "age_from_months": "" if org.age_from_months is None else str(org.age_from_months),
        "age_to_months": "" if org.age_to_months is None else str(org.age_to_months),
        "free_places": "" if org.free_places is None else str(org.free_places),
        "working_hours": org.working_hours or "",
        "public_note": org.public_note or "",
        "is_public": org.is_public,
    }


def _org_form(
    request: Request,
    values: dict[str, Any],
    *,
    org: Organisation | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    owner = object_session(org) if org is not None else None
    region = owner.get(Region, org.region_id) if owner is not None and org is not None else None
    return render(
        request,
        "pages/admin/organisation_form.html",
        {
            "title": org.name if org else "Новая организация",
            "org": org,
            "region_code": region.code if region else "",
            "values": values,
            "errors": errors or {},
            "kind_options": KIND_OPTIONS,
            "ownership_options": OWNERSHIP_OPTIONS,
            "form_options": FORM_OPTIONS,
        },
        status,
    )


def _org_submitted(form_values: dict[str, Any], org: Organisation | None = None) -> dict[str, Any]:
    """The form as the models take it: municipalities one a line (or separated by commas), numbers
    from text, the forms' checkboxes as a list. Free places go to the model only when they changed:
    saving the form for another field does not restate (and re-date) them."""
    submitted = {name: form_values[name] for name in _ORG_FIELDS}
    submitted["forms"] = form_values["forms"]
    submitted["is_public"] = form_values["is_public"]
    submitted = orgs.numbers_from_text(submitted, ("age_from_months", "age_to_months", "free_places"))
    if org is not None and submitted["free_places"] == org.free_places:
        del submitted["free_places"]
    return submitted


@router.get("/admin/organisations/new", response_class=HTMLResponse)
def organisation_new(request: Request, principal: PageUser) -> HTMLResponse:
    _admin(principal)
    return _org_form(request, {"kind": OrgKind.provider.value, "forms": [], "is_public": True})


def _saved_page(request: Request, org: Organisation, secret: str | None, heading: str) -> Response:
    if secret is None:
        return redirect(f"/admin/organisations?saved={org.id}")
    return render(
        request,
        "pages/admin/organisation_secret.html",
        {"title": heading, "heading": heading, "org": org, "secret": secret},
    )


@router.post("/admin/organisations/new", response_class=HTMLResponse)
async def organisation_create(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    _admin(principal)
    form = await read_form(request, principal)
    values = _org_form_values(form)
    try:
        body = orgs.OrganisationCreate.model_validate(_org_submitted(values))
    except ValidationError as error:
        return _org_form(request, values, errors=_pydantic_errors(error), status=422)
    try:
        org, secret = orgs.create_organisation(session, principal, body)
    except DomainError as error:
        session.rollback()
        return _org_form(request, values, errors=_domain_errors(error, "name"), status=422)
    audit("create", "organisation", org.id, None)
    return _saved_page(request, org, secret, "Организация добавлена")


@router.get("/admin/organisations/import", response_class=HTMLResponse)
def organisations_import_form(request: Request, principal: PageUser) -> HTMLResponse:
    _admin(principal)
    return _import_page(request)


def _import_page(
    request: Request,
    *,
    report: orgs.ImportReport | None = None,
    errors: Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    # The whole request must fit the app's body limit: the file, less room for the form around it.
    limit = request.app.state.settings.max_body_bytes - 4096
    return render(
        request,
        "pages/admin/organisations_import.html",
        {
            "title": "Загрузка организаций из CSV",
            "columns": orgs.CSV_COLUMNS,
            "kind_options": KIND_OPTIONS,
            "report": report,
            "errors": errors or {},
            "limit_kb": limit // 1024,
            "limit_bytes": limit,
        },
        status,
    )


@router.get("/admin/organisations/import/sample.csv")
def organisations_import_sample(principal: PageUser) -> Response:
    _admin(principal)
    return Response(
        orgs.SAMPLE_CSV.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="organisations-sample.csv"'},
    )


@router.post("/admin/organisations/import", response_class=HTMLResponse)
async def organisations_import(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> HTMLResponse:
    _admin(principal)
    await read_form(request, principal)
    upload = (await request.form()).get("file")
    data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
    if not data:
        return _import_page(request, errors={"file": "Выберите файл CSV"}, status=422)
    try:
        report, created = orgs.import_csv(session, principal, data)
    except DomainError as error:
        session.rollback()
        return _import_page(request, errors={"file": error.message}, status=422)
    audit.many("create", "organisation", [(org_id, None) for org_id in created])
    return _import_page(request, report=report, status=200)


@router.get("/admin/organisations/{org_id}", response_class=HTMLResponse)
def organisation_edit(
    request: Request, org_id: IdParam, principal: PageUser, session: SessionDep
) -> HTMLResponse:
    _admin(principal)
    org = orgs.get_organisation(session, principal, org_id)
    return _org_form(request, _org_values(org), org=org)


@router.post("/admin/organisations/{org_id}", response_class=HTMLResponse)
async def organisation_update(
    request: Request, org_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    _admin(principal)
    org = orgs.get_organisation(session, principal, org_id)
    form = await read_form(request, principal)
    values = _org_form_values(form)
    submitted: dict[str, Any] = _org_submitted(values, org)
    submitted["new_webhook_secret"] = form.get("new_webhook_secret") == "yes"
    try:
        body = orgs.OrganisationUpdate.model_validate(submitted)
    except ValidationError as error:
        return _org_form(request, values, org=org, errors=_pydantic_errors(error), status=422)
    try:
        org, secret = orgs.update_organisation(session, principal, org_id, body)
    except DomainError as error:
        session.rollback()
        org = orgs.get_organisation(session, principal, org_id)
        return _org_form(request, values, org=org, errors=_domain_errors(error, "name"), status=422)
    audit("update", "organisation", org.id, None)
    return _saved_page(request, org, secret, "Организация сохранена")


# --- the region's standard --------------------------------------------------------------------


@router.get("/standard", response_class=HTMLResponse)
def standard_page(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    """The region's standard, read-only, from the function GET /api/v1/standard answers with."""
    require_roles(principal, Role.admin, Role.supervisor)
    standard = region_standard(session, principal)
    return render(
        request,
        "pages/admin/standard.html",
        {"title": "Стандарт ранней помощи", "standard": standard, "state_labels": dict(STATES)},
    )
