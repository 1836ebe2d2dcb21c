"""The referrer's pages: the referral form with its check-answers page, the list of referrals and
one referral with the feedback its organisation may see.

The form is turned into the API's own `ReferralCreate` and checked by the same service function
as `POST /api/v1/referrals` (api/services/referrals.py: `check`, then `register`); what a referral
shows is decided by api/services/disclosure.py, as for `GET /api/v1/referrals/{id}`.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.deps import Principal, SessionDep
from api.errors import validation_errors
from api.pages.web import Form, PageAuditDep, PageUser, read_form, redirect, render, require_roles
from api.routes.referrals import feedback_pdf
from api.services import disclosure
from api.services import referrals as service
from core.errors import Unprocessable
from flows.documents import OUTCOME_LABELS
from models.cases import Case
from models.children import CHANNEL_LABELS, RELATION_LABELS, Sex
from models.common import IdParam
from models.organisations import Region
from models.programmes import SERVICE_FORM_LABELS
from models.referrals import ReferralCreate
from models.users import Role
from standards import load_standard
from statemachines.journey import STATE_LABELS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
REPRESENTATIVES = 2  # blocks on the form; the API takes up to 4

SEX_LABELS = {Sex.female: "Женский", Sex.male: "Мужской"}

# The form's fields (their names are the API's field paths) and their Russian labels.
LABELS: dict[str, str] = {
    "provider_id": "Организация ранней помощи",
    "child.last_name": "Фамилия ребёнка",
    "child.first_name": "Имя ребёнка",
    "child.middle_name": "Отчество ребёнка",
    "child.birth_date": "Дата рождения",
    "child.sex": "Пол",
    "child.snils": "СНИЛС ребёнка",
    "child.municipality": "Муниципальное образование",
    "criteria": "Критерии",
    "criteria_document_ref": "Подтверждающий документ",
    "consent_personal_data.date": "Дата согласия",
    "consent_personal_data.document_ref": "Документ о согласии",
    "referral_date": "Дата направления",
    "comment": "Комментарий",
}
for _i in range(REPRESENTATIVES):
    LABELS |= {
        f"representatives.{_i}.full_name": f"Представитель {_i + 1}: Фамилия Имя Отчество",
        f"representatives.{_i}.relation": f"Представитель {_i + 1}: кем приходится ребёнку",
        f"representatives.{_i}.phone": f"Представитель {_i + 1}: телефон",
        f"representatives.{_i}.email": f"Представитель {_i + 1}: электронная почта",
        f"representatives.{_i}.preferred_channel": f"Представитель {_i + 1}: как сообщать",
    }
CHILD_FIELDS = ("last_name", "first_name", "middle_name", "birth_date", "sex", "snils", "municipality")
REP_FIELDS = ("full_name", "relation", "phone", "email", "preferred_channel")


def _self_referral(principal: Principal) -> bool:
    """A provider's coordinator (or head) registers a parent's own request; a referrer refers.
    The API's rule (api/services/referrals._check_who_refers) refuses anyone else."""
    if principal.role == Role.referrer:
        return False
    if principal.is_provider_staff and principal.role in (Role.intake_coordinator, Role.supervisor):
        return True
    require_roles(principal, Role.referrer)  # the 403 page
    return False


def _body(form: Form, principal: Principal) -> dict[str, Any]:
    """The API's request body from the form: empty fields are absent, as a client would send them."""

    def text(name: str) -> str | None:
        return form.get(name) or None

    self_referral = _self_referral(principal)
    provider = str(principal.org.id) if self_referral else form.get("provider_id")
    child = {name: value for name in CHILD_FIELDS if (value := text(f"child.{name}")) is not None}
    representatives = []
    for i in range(REPRESENTATIVES):
        rep = {
            name: value for name in REP_FIELDS if (value := text(f"representatives.{i}.{name}")) is not None
        }
        if set(rep) - {"preferred_channel"}:
            representatives.append(rep)
    consent = {
        name: value for name in ("date", "document_ref") if (value := text(f"consent_personal_data.{name}"))
    }
    body: dict[str, Any] = {
        "provider_id": int(provider)
        if provider.isascii() and provider.isdigit() and len(provider) < 10
        else provider or None,
        "child": child,
        "representatives": representatives,
        "criteria": form.getlist("criteria"),
        "criteria_document_ref": text("criteria_document_ref"),
        "comment": text("comment"),
        "referral_date": text("referral_date"),
        "self_referral": self_referral,
        "consent_personal_data": consent or None,
    }
    return {key: value for key, value in body.items() if value is not None}


def _field_of(path: str) -> str:
    """The form field an error of the API's body belongs to (the nearest one that is on the form)."""
    if path.startswith("criteria"):
        return "criteria"
    parts = path.split(".")
    while parts:
        if ".".join(parts) in LABELS:
            return ".".join(parts)
        parts.pop()
    if path.startswith("consent_personal_data"):
        return "consent_personal_data.date"
    if path.startswith("representatives"):
        return "representatives.0.full_name"
    return "child.last_name"


def _message(field: str, message: str, kind: str = "") -> str:
    label = LABELS.get(field, "")
    if kind == "missing" or (field == "criteria" and kind == "too_short"):
        return "Отметьте хотя бы один критерий" if field == "criteria" else f"Укажите: {label.lower()}"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        return f"{label}: введите дату в формате ДД.ММ.ГГГГ"
    return f"{label}: {message}" if label and not message.startswith(label) else message


def _validate(
    session: SessionDep, principal: Principal, form: Form
) -> tuple[ReferralCreate | None, dict[str, str]]:
    """The body as the API would take it, checked as `POST /referrals` checks it; or the errors."""
    errors: dict[str, str] = {}
    try:
        body = ReferralCreate.model_validate(_body(form, principal))
    except ValidationError as invalid:
        for error in validation_errors(invalid.errors()):
            field = _field_of(error["field"])
            errors.setdefault(field, _message(field, error["message"], error["type"]))
        return None, errors
    try:
        service.check(session, principal, body)
    except Unprocessable as refused:
        field = _field_of(refused.field or "")
        errors[field] = _message(field, refused.message)
        return None, errors
    return body, errors


def _form_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    form: Form | None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    standard = load_standard(_region_code(session, principal))
    values = {key: value for key, value in (form.items if form else []) if key != "csrf"}
    return render(
        request,
        "pages/referrals/new.html",
        {
            "title": "Обращение родителя" if _self_referral(principal) else "Направить ребёнка",
            "self_referral": _self_referral(principal),
            "providers": [(p.id, p.name) for p in service.providers(session, principal)],
            "criteria": [(c.code, c.label) for c in standard.criteria],
            "checked": set(form.getlist("criteria")) if form else set(),
            "values": values,
            "errors": errors or {},
            "sex_labels": SEX_LABELS,
            "relations": list(RELATION_LABELS.items()),
            "channels": list(CHANNEL_LABELS.items()),
            "representatives": range(REPRESENTATIVES),
            "labels": LABELS,
        },
        status,
    )


def _region_code(session: SessionDep, principal: Principal) -> str:
    region = session.get(Region, principal.org.region_id)
    assert region is not None
    return region.code


@router.get("/referrals/new", response_class=HTMLResponse)
def new_referral(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    return _form_page(request, session, principal, None)


@router.post("/referrals/new", response_class=HTMLResponse)
async def check_referral(request: Request, principal: PageUser, session: SessionDep) -> HTMLResponse:
    """The form is sent: its errors, or the check-answers page («Проверьте сведения»)."""
    form = await read_form(request, principal)
    if form.get("action") == "edit":  # «Изменить» on the check page: the form as it was filled
        return _form_page(request, session, principal, _without(form, "action", "idempotency_key"))
    body, errors = _validate(session, principal, form)
    if body is None:
        return _form_page(request, session, principal, form, errors, 422)
    return _check_page(request, session, principal, form, body)


def _without(form: Form, *names: str) -> Form:
    return Form([(key, value) for key, value in form.items if key not in names])


def _check_page(
    request: Request, session: SessionDep, principal: Principal, form: Form, body: ReferralCreate
) -> HTMLResponse:
    standard = load_standard(_region_code(session, principal))
    provider = next(p for p in service.providers(session, principal) if p.id == body.provider_id)
    return render(
        request,
        "pages/referrals/check.html",
        {
            "title": "Проверьте сведения",
            "body": body,
            "provider_name": provider.name,
            "criteria": [standard.criterion_label(code) for code in body.criteria],
            "sex_labels": SEX_LABELS,
            "relation_labels": RELATION_LABELS,
            "channel_labels": CHANNEL_LABELS,
            "hidden": [(k, v) for k, v in form.items if k not in ("csrf", "action", "idempotency_key")],
            # One referral however often «Отправить» is pressed (the API's Idempotency-Key).
            "idempotency_key": form.get("idempotency_key") or secrets.token_urlsafe(24),
        },
    )


@router.post("/referrals/new/confirm", response_class=HTMLResponse)
async def send_referral(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    body, errors = _validate(session, principal, form)
    if body is None:  # changed since the check page (a provider closed, a day passed): the form again
        return _form_page(request, session, principal, _without(form, "idempotency_key"), errors, 422)
    key = form.get("idempotency_key")[:100] or None
    result = service.register(session, principal, body, key)
    audit("create" if result.created else "read", "referral", result.row.id, result.row.child_id)
    return redirect(f"/referrals/{result.row.id}?sent=1")


@router.get("/referrals", response_class=HTMLResponse)
def referrals(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    rows, items, total = service.listed(session, principal, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    audit.many("read", "referral", [(r.id, r.child_id) for r in rows])
    return render(
        request,
        "pages/referrals/list.html",
        {
            "title": "Мои направления" if principal.role == Role.referrer else "Направления",
            "items": items,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "can_refer": principal.role == Role.referrer
            or (principal.is_provider_staff and principal.role in (Role.intake_coordinator, Role.supervisor)),
            "is_referrer": principal.role == Role.referrer,
        },
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def referral_page(
    referral_id: IdParam,
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    sent: Annotated[int, Query(ge=0, le=1)] = 0,
) -> HTMLResponse:
    referral = service.visible(session, principal, referral_id)
    public = service.publish(session, principal, [referral])[0]
    audit("read", "referral", referral.id, referral.child_id)
    # What the feedback document says (the conclusion and the ИПРП only with the family's consent),
    # for whoever the referral is not handled by; the handler has the case itself.
    case = session.get(Case, referral.case_id) if referral.case_id else None
    handler = disclosure.handles(principal, referral, case)
    view = None if handler else disclosure.feedback(session, referral.id or 0)
    standard = load_standard(_region_code(session, principal))
    return render(
        request,
        "pages/referrals/detail.html",
        {
            "title": f"Направление № {public.id}",
            "referral": public,
            "view": view,
            "criteria": [standard.criterion_label(code) for code in public.criteria],
            "service_label": lambda code: s.label if (s := standard.service(code)) else code,
            "form_labels": SERVICE_FORM_LABELS,
            "outcome_labels": OUTCOME_LABELS,
            "state_labels": STATE_LABELS,
            "notice": "Направление отправлено." if sent else None,
            "handler": handler,
        },
    )


@router.get("/referrals/{referral_id}/feedback.pdf")
def feedback_document(
    referral_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    return feedback_pdf(session, principal, audit, referral_id)
