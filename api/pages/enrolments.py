"""Pages of the transition as the 2025 letter has it.

- /enrolments: the ДОО's staff (any user of a receiving organisation) see the children coming to
  them, with the minimum, and confirm a child's enrolment (api/services/enrolments.py: `enrol`
  through the one door, the ДОО's user its actor).
- The case card's «Период адаптации» part: the period's dates and days left, the organisation, and
  whether the standard's two consultations of the adaptation period were held.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, func, select

from api.deps import Principal, SessionDep
from api.pages import case_sections
from api.pages.cases import Problems
from api.pages.web import PageAudit, PageAuditDep, PageUser, read_form, redirect, region_zone, render
from api.services import enrolments as service
from core.errors import Conflict, Unprocessable
from models.cases import Case
from models.common import IdParam, today_in
from models.organisations import Organisation
from models.programmes import ServiceSession, SessionStatus
from standards import load_standard
from statemachines.fire import region_of

router = APIRouter(include_in_schema=False)

# The letter's two consultations of the adaptation period (344н activities, standards/default.yaml).
ADAPTATION_CONSULTATIONS = ("adaptation_parent_counselling", "adaptation_doo_counselling")
DONE = {"confirm": "Поступление ребёнка подтверждено: начался период адаптации."}


# --- the case card's part -------------------------------------------------------------------------


def _load_adaptation(session: Session, principal: Principal, case: Case) -> dict[str, Any] | None:
    if case.adaptation_starts_on is None or case.adaptation_ends_on is None:
        return None
    region = region_of(session, case)
    standard = load_standard(region.code)
    today = today_in(region.timezone)
    counts: dict[tuple[str, str], int] = {
        (code, str(status)): n
        for code, status, n in session.exec(
            select(ServiceSession.service_code, ServiceSession.status, func.count())
            .where(
                ServiceSession.case_id == case.id,
                col(ServiceSession.service_code).in_(ADAPTATION_CONSULTATIONS),
            )
            .group_by(col(ServiceSession.service_code), col(ServiceSession.status))
        )
    }
    consultations = []
    for code in ADAPTATION_CONSULTATIONS:
        known = standard.service(code)
        consultations.append(
            {
                "code": code,
                "label": known.label if known else code,
                "held": counts.get((code, SessionStatus.held.value), 0),
                "planned": counts.get((code, SessionStatus.planned.value), 0),
            }
        )
    org = session.get(Organisation, case.destination_org_id) if case.destination_org_id else None
    return {
        "starts_on": case.adaptation_starts_on,
        "ends_on": case.adaptation_ends_on,
        "days_left": (case.adaptation_ends_on - today).days,
        "ongoing": case.state in ("adaptation", "suspended"),
        "organisation": org.name if org else None,
        "consultations": consultations,
    }


case_sections.register(
    "adaptation", "pages/enrolments/_case_adaptation.html", _load_adaptation, slot="top", order=20
)


# --- /enrolments: the ДОО's page ------------------------------------------------------------------


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    audit: PageAudit,
    problems: Problems | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    items = service.list_enrolments(session, principal)
    audit.many("read", "case", [(case.id, case.child_id) for case, _ in items])
    problems = problems or Problems()
    today = datetime.now(region_zone(session, principal)).date()
    return render(
        request,
        "pages/enrolments/list.html",
        {
            "title": "Дети, поступающие из службы ранней помощи",
            "items": [item for _, item in items],
            "today": today.isoformat(),
            "notice": notice,
            "errors": problems.errors,
            "values": problems.values,
            "failed_form": problems.form,
            "problem_message": problems.message,
        },
        problems.status if problems.errors or problems.message else 200,
    )


@router.get("/enrolments", response_class=HTMLResponse)
def enrolments_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    audit: PageAuditDep,
    done: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    return _page(request, session, principal, audit, notice=DONE.get(done or ""))


@router.post("/enrolments/{case_id}/confirm", response_class=HTMLResponse)
async def confirm_enrolment(
    request: Request, case_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    service.require_receiver(principal)
    name = f"confirm-{case_id}-enrolled_on"
    problems = Problems(form=f"confirm-{case_id}")
    problems.keep(form)
    raw = form.get(name)
    try:
        enrolled_on = date.fromisoformat(raw)
    except ValueError:
        problems.errors[name] = "Укажите дату поступления ребёнка (ДД.ММ.ГГГГ)"
        return _page(request, session, principal, audit, problems)
    savepoint = session.begin_nested()
    try:
        case = service.confirm(session, principal, case_id, enrolled_on)
    except (Conflict, Unprocessable) as refused:
        savepoint.rollback()
        problems.status = refused.status_code
        problems.errors[name] = refused.message
        return _page(request, session, principal, audit, problems)
    savepoint.commit()
    audit("transition", "case", case.id, case.child_id)
    return redirect("/enrolments?done=confirm")
