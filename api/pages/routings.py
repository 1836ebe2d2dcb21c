"""Pages of routing («маршрутизация») and the inter-agency consilium: two parts of the case card
(api/pages/case_sections.py) with their forms, and /routings, where the organisation a family was
routed to sees the routings addressed to it (the minimum: no case card) and records the outcome.

Everything goes through api/services/routings.py and consilia.py, as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.deps import Principal, SessionDep
from api.errors import validation_errors
from api.pages import case_sections
from api.pages.cases import DONE, EVENT_NAMES, CardForm, Problems, _again, _local_moment, _visible_case
from api.pages.web import Form, PageAudit, PageAuditDep, PageUser, form_id, read_form, redirect, render
from api.services import consilia, routings
from core.errors import DomainError, NotFound
from models.cases import Case, CaseHistory
from models.common import IdParam, utcnow
from models.organisations import ORG_KIND_LABELS, Organisation
from models.routings import (
    ROUTING_ACTIVITY_LABEL,
    ROUTING_KIND_LABELS,
    ROUTING_OUTCOME_LABELS,
    ConsiliumHold,
    ConsiliumIn,
    RoutingAnswer,
    RoutingIn,
)
from statemachines.fire import region_of
from statemachines.journey import FINAL_STATES
from statemachines.routing import ROUTING

router = APIRouter(include_in_schema=False)

DONE.update(
    {
        "routing": "Семья направлена; организация получит сообщение.",
        "routing_answer": "Результат направления записан.",
        "routing_cancel": "Направление отменено; организация получит сообщение.",
        "consilium": "Консилиум назначен; приглашения отправляются организациям.",
        "consilium_hold": "Решения консилиума записаны.",
        "consilium_cancel": "Консилиум отменён; приглашённые организации получат сообщение.",
    }
)
# The case's history names the workflows' events as their steps do.
EVENT_NAMES.update(
    {
        "routing_send": "Семья направлена в другую организацию",
        **{ROUTING.trigger(s.event): f"Маршрутизация: {s.label.lower()}" for s in ROUTING.steps},
        "consilium_plan": "Назначен межведомственный консилиум",
        "consilium_hold": "Межведомственный консилиум проведён",
        "consilium_cancel": "Межведомственный консилиум отменён",
    }
)


# --- the case card's parts --------------------------------------------------------------------


def _region_orgs(session: Session, case: Case) -> list[Organisation]:
    provider = session.get(Organisation, case.provider_id)
    assert provider is not None
    return list(
        session.exec(
            select(Organisation)
            .where(Organisation.region_id == provider.region_id, col(Organisation.is_active).is_(True))
            .order_by(col(Organisation.name))
        )
    )


def _targets(orgs: list[Organisation]) -> list[tuple[int, str]]:
    return [
        (o.id or 0, f"{o.name} ({ORG_KIND_LABELS[o.kind]})")
        for o in orgs
        if o.kind not in routings.NOT_TARGETS
    ]


def _staff_side(principal: Principal, case: Case) -> bool:
    return (
        principal.is_provider_staff
        and principal.org.id == case.provider_id
        and principal.role in routings.CURATORS
        and case.state not in FINAL_STATES
    )


def _load_routings(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    if not (principal.is_provider_staff or principal.is_regional_supervisor):
        return None
    rows = routings.for_case(session, principal, case)
    can_route = _staff_side(principal, case)
    return {
        "routings": rows,
        "can_route": can_route,
        "targets": _targets(_region_orgs(session, case)) if can_route else [],
        "kinds": list(ROUTING_KIND_LABELS.items()),
        "outcomes": list(ROUTING_OUTCOME_LABELS.items()),
        "activity": ROUTING_ACTIVITY_LABEL,
    }


def _load_consilia(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    if not (principal.is_provider_staff or principal.is_regional_supervisor):
        return None
    rows = consilia.for_case(session, principal, case)
    can_plan = _staff_side(principal, case)
    orgs = _region_orgs(session, case) if can_plan or any(r.allowed_events for r in rows) else []
    return {
        "consilia": rows,
        "can_plan": can_plan,
        "orgs": [(o.id or 0, o.name, o.id == case.provider_id) for o in orgs],
        "targets": _targets(orgs),
        "kinds": list(ROUTING_KIND_LABELS.items()),
        "revise_note": consilia.REVISE_IPR_NOTE,
    }


def _load_revise_note(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    """«Консилиум рекомендовал пересмотреть ИПРП», above the card, until the ИПРП is revised."""
    if not (principal.is_provider_staff or principal.is_regional_supervisor) or case.state in FINAL_STATES:
        return None
    from models.routings import Consilium

    held = session.exec(
        select(Consilium.held_at)
        .where(Consilium.case_id == case.id, Consilium.status == "held", col(Consilium.revise_ipr).is_(True))
        .order_by(col(Consilium.held_at).desc())
    ).first()
    if held is None:
        return None
    revised = session.exec(
        select(CaseHistory.at)
        .where(CaseHistory.case_id == case.id, CaseHistory.event == "revise_ipr")
        .order_by(col(CaseHistory.at).desc())
    ).first()
    if revised is not None and revised >= held:
        return None
    return {"note": consilia.REVISE_IPR_NOTE, "held_at": held}


case_sections.register("routings", "pages/cases/_routings.html", _load_routings, slot="main", order=40)
case_sections.register("consilia", "pages/cases/_consilium.html", _load_consilia, slot="main", order=41)
case_sections.register(
    "consilium_revise", "pages/cases/_consilium_revise.html", _load_revise_note, slot="top", order=60
)


# --- helpers ----------------------------------------------------------------------------------


def _public_url(request: Request) -> str:
    return str(request.app.state.settings.public_url)


def _invalid(
    problems: Problems, invalid: ValidationError, fields: dict[str | None, str], default: str
) -> None:
    for error in validation_errors(invalid.errors()):
        problems.errors.setdefault(fields.get(error["field"], default), error["message"])


def _read_routing(form: Form, prefix: str, problems: Problems, *, required: bool = True) -> RoutingIn | None:
    target = form_id(form.get(f"{prefix}-target_org_id"))
    kind, purpose = form.get(f"{prefix}-kind"), form.get(f"{prefix}-purpose")
    if not required and target is None and not kind and not purpose:
        return None
    if target is None:
        problems.errors[f"{prefix}-target_org_id"] = "Выберите организацию"
    if kind not in ROUTING_KIND_LABELS:
        problems.errors[f"{prefix}-kind"] = "Выберите, зачем направляется семья"
    if not purpose:
        problems.errors[f"{prefix}-purpose"] = "Укажите цель направления"
    if problems.errors:
        return None
    fields: dict[str | None, str] = {
        "target_org_id": f"{prefix}-target_org_id",
        "kind": f"{prefix}-kind",
        "purpose": f"{prefix}-purpose",
    }
    try:
        return RoutingIn.model_validate({"target_org_id": target, "kind": kind, "purpose": purpose})
    except ValidationError as invalid:
        _invalid(problems, invalid, fields, f"{prefix}-purpose")
        return None


# --- routing forms on the case card -----------------------------------------------------------


@router.post("/cases/{case_id}/routings", response_class=HTMLResponse)
async def create_routing(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = Problems(form="routing")
    problems.keep(form)
    body = _read_routing(form, "routing", problems)
    if body is None:
        return _again(request, session, principal, case, problems, audit)
    fields: dict[str | None, str] = {
        "target_org_id": "routing-target_org_id",
        "case_id": "routing-target_org_id",
        None: "routing-purpose",
    }
    public_url = _public_url(request)
    return CardForm(request, session, principal, case, problems, audit).act(
        fields,
        lambda: routings.create(session, principal, case, body, public_url=public_url),
        audited=("create", "routing"),
        done="routing",
        refusals=(DomainError,),
    )


@router.post("/routings/{routing_id}/answer", response_class=HTMLResponse)
async def answer_routing(
    request: Request, routing_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    routing = routings.get_routing(session, principal, routing_id)
    prefix = f"answer-{routing.id}"
    problems = Problems(form=prefix)
    problems.keep(form)
    provider_side = principal.is_provider_staff or principal.is_regional_supervisor
    code = form.get(f"{prefix}-outcome_code")
    if code not in ROUTING_OUTCOME_LABELS:
        problems.errors[f"{prefix}-outcome_code"] = "Выберите результат"
    body = None
    if not problems.errors:
        try:
            body = RoutingAnswer.model_validate(
                {"outcome_code": code, "outcome": form.get(f"{prefix}-outcome")}
            )
        except ValidationError as invalid:
            _invalid(problems, invalid, {}, f"{prefix}-outcome")
    if body is None:
        return _answer_again(request, session, principal, routing.case_id, problems, audit, provider_side)
    savepoint = session.begin_nested()
    try:
        routings.answer(session, principal, routing, body)
    except DomainError as refused:
        savepoint.rollback()
        if refused.status_code not in (409, 422):
            raise
        problems.errors[f"{prefix}-outcome_code"] = refused.message
        problems.status = refused.status_code
        return _answer_again(request, session, principal, routing.case_id, problems, audit, provider_side)
    savepoint.commit()
    audit("update", "routing", routing.id, routings.child_of(session, routing))
    if provider_side:
        return redirect(f"/cases/{routing.case_id}?done=routing_answer")
    return redirect("/routings?done=answer")


def _answer_again(
    request: Request,
    session: Session,
    principal: Principal,
    case_id: int,
    problems: Problems,
    audit: PageAudit,
    provider_side: bool,
) -> HTMLResponse:
    if provider_side:
        return _again(
            request, session, principal, _visible_case(session, principal, case_id), problems, audit
        )
    return _incoming_page(request, session, principal, audit, problems)


@router.post("/routings/{routing_id}/cancel", response_class=HTMLResponse)
async def cancel_routing(
    request: Request, routing_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    routing = routings.get_routing(session, principal, routing_id)
    case = _visible_case(session, principal, routing.case_id)
    return _cancel_on_card(
        CardForm(request, session, principal, case, Problems(form=f"cancel-{routing.id}"), audit),
        form,
        lambda reason: routings.cancel(session, principal, routing, reason),
        audited=("update", "routing"),
        key=routing.id,
        done="routing_cancel",
    )


def _cancel_on_card(
    card: CardForm,
    form: Form,
    cancel: Callable[[str], object],
    *,
    audited: tuple[str, str],
    key: int | None,
    done: str,
) -> Response:
    """A routing's or a consilium's cancel form: an optional reason of at most 1000 characters."""
    prefix = card.problems.form or ""
    card.problems.keep(form)
    reason = form.get(f"{prefix}-reason")
    if len(reason) > 1000:
        card.problems.errors[f"{prefix}-reason"] = "Не более 1000 символов"
        return _again(card.request, card.session, card.principal, card.case, card.problems, card.audit)
    return card.act(
        {None: f"{prefix}-reason"},
        lambda: cancel(reason),
        audited=audited,
        key=key,
        done=done,
        refusals=(DomainError,),
    )


# --- consilium forms on the case card ---------------------------------------------------------


@router.post("/cases/{case_id}/consilia", response_class=HTMLResponse)
async def plan_consilium(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    case = _visible_case(session, principal, case_id)
    problems = Problems(form="consilium")
    problems.keep(form)
    region = region_of(session, case)
    at = _local_moment(
        form.get("consilium-date"), form.get("consilium-time"), region.timezone, problems, "consilium"
    )
    orgs = [i for raw in form.getlist("consilium-orgs") if (i := form_id(raw)) is not None]
    if not form.get("consilium-place"):
        problems.errors["consilium-place"] = "Укажите место: адрес или «дистанционно»"
    if not form.get("consilium-agenda"):
        problems.errors["consilium-agenda"] = "Укажите повестку"
    if not [o for o in orgs if o != case.provider_id]:
        problems.errors["consilium-orgs"] = "Отметьте хотя бы одну другую организацию"
    if problems.errors or at is None:
        return _again(request, session, principal, case, problems, audit)
    fields: dict[str | None, str] = {
        "scheduled_at": "consilium-date",
        "place": "consilium-place",
        "agenda": "consilium-agenda",
        "participant_org_ids": "consilium-orgs",
        None: "consilium-agenda",
    }
    try:
        body = ConsiliumIn.model_validate(
            {
                "scheduled_at": at,
                "place": form.get("consilium-place"),
                "agenda": form.get("consilium-agenda"),
                "participant_org_ids": orgs,
            }
        )
    except ValidationError as invalid:
        _invalid(problems, invalid, fields, "consilium-agenda")
        return _again(request, session, principal, case, problems, audit)
    return CardForm(request, session, principal, case, problems, audit).act(
        fields,
        lambda: consilia.plan(session, principal, case, body),
        audited=("create", "consilium"),
        done="consilium",
        refusals=(DomainError,),
    )


def _visible_consilium(session: Session, principal: Principal, consilium_id: int) -> tuple[Any, Case]:
    try:
        return consilia.get_consilium(session, principal, consilium_id)
    except DomainError as refused:
        raise NotFound("Консилиум не найден", field="consilium_id") from refused


@router.post("/consilia/{consilium_id}/hold", response_class=HTMLResponse)
async def hold_consilium(
    request: Request, consilium_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    consilium, case = _visible_consilium(session, principal, consilium_id)
    prefix = f"hold-{consilium.id}"
    problems = Problems(form=prefix)
    problems.keep(form)
    decisions = form.get(f"{prefix}-decisions")
    if not decisions:
        problems.errors[f"{prefix}-decisions"] = "Запишите решения консилиума"
    routing = _read_routing(form, f"{prefix}-routing", problems, required=False)
    if problems.errors:
        return _again(request, session, principal, case, problems, audit)
    fields: dict[str | None, str] = {
        "decisions": f"{prefix}-decisions",
        "recommendations": f"{prefix}-recommendations",
        "routings.0.target_org_id": f"{prefix}-routing-target_org_id",
        "routings.0.case_id": f"{prefix}-routing-target_org_id",
        None: f"{prefix}-decisions",
    }
    try:
        body = ConsiliumHold.model_validate(
            {
                "decisions": decisions,
                "recommendations": form.get(f"{prefix}-recommendations"),
                "revise_ipr": form.get(f"{prefix}-revise_ipr") == "yes",
                "routings": [routing.model_dump()] if routing else [],
            }
        )
    except ValidationError as invalid:
        _invalid(problems, invalid, fields, f"{prefix}-decisions")
        return _again(request, session, principal, case, problems, audit)
    public_url = _public_url(request)
    return CardForm(request, session, principal, case, problems, audit).act(
        fields,
        lambda: consilia.hold(session, principal, consilium, case, body, public_url=public_url),
        audited=("update", "consilium"),
        key=consilium.id,
        done="consilium_hold",
        refusals=(DomainError,),
    )


@router.post("/consilia/{consilium_id}/cancel", response_class=HTMLResponse)
async def cancel_consilium(
    request: Request, consilium_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    consilium, case = _visible_consilium(session, principal, consilium_id)
    return _cancel_on_card(
        CardForm(request, session, principal, case, Problems(form=f"consilium-cancel-{consilium.id}"), audit),
        form,
        lambda reason: consilia.cancel(session, principal, consilium, case, reason),
        audited=("update", "consilium"),
        key=consilium.id,
        done="consilium_cancel",
    )


# --- /routings: the routings addressed to an organisation ---------------------------------------

PAGE_DONE = {"answer": "Результат записан; куратор семьи получит сообщение."}


def _incoming_page(
    request: Request,
    session: Session,
    principal: Principal,
    audit: PageAudit,
    problems: Problems | None = None,
    notice: str | None = None,
    status: str | None = None,
) -> HTMLResponse:
    items, total = routings.listing(session, principal, status=status, limit=200)
    audit.many("read", "routing", routings.audit_rows(session, items))
    problems = problems or Problems()
    provider_side = principal.is_provider_staff or principal.is_regional_supervisor
    return render(
        request,
        "pages/routings/list.html",
        {
            "title": "Направления семей" if provider_side else "Семьи, направленные в нашу организацию",
            "items": items,
            "total": total,
            "provider_side": provider_side,
            "outcomes": list(ROUTING_OUTCOME_LABELS.items()),
            "status": status or "",
            "statuses": list(ROUTING.state_labels.items()),
            "notice": notice,
            "errors": problems.errors,
            "values": problems.values,
            "failed_form": problems.form,
            "now": utcnow(),
        },
        problems.status if problems.errors else 200,
    )


@router.get("/routings", response_class=HTMLResponse)
def routings_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
    status: str | None = Query(default=None, max_length=16),
) -> HTMLResponse:
    if status is not None and status not in ROUTING.state_labels:
        status = None
    return _incoming_page(request, session, principal, audit, notice=PAGE_DONE.get(done or ""), status=status)
