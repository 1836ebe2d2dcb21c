"""Records: what a transition writes besides the state (conclusion, ИПРП, curator...)."""

from __future__ import annotations

from collections.abc import Callable

from dateutil.relativedelta import relativedelta
from sqlmodel import col, select, update

from models.cases import CaseHistory
from models.consents import Consent, ConsentKind, ConsentStatus
from models.organisations import Organisation
from models.programmes import Ipr, NeedConclusion, PlannedService
from statemachines.context import JourneyContext

Record = Callable[[JourneyContext], None]


def assign_curator(ctx: JourneyContext) -> None:
    if ctx.payload.curator_id is not None:
        ctx.changes["curator_id"] = ctx.payload.curator_id


def write_conclusion(ctx: JourneyContext) -> None:
    assert ctx.case.id is not None and ctx.actor is not None and ctx.actor.id is not None
    ctx.session.add(
        NeedConclusion(
            case_id=ctx.case.id,
            outcome=ctx.payload.outcome,
            text=ctx.payload.conclusion.strip(),
            concluded_on=ctx.payload.concluded_on or ctx.today,
            duration_minutes=ctx.payload.duration_minutes,
            forms=[str(f) for f in ctx.payload.forms],
            activities=[a.model_dump() for a in ctx.payload.activities],
            author_id=ctx.actor.id,
        )
    )


def write_ipr(ctx: JourneyContext) -> None:
    assert ctx.case.id is not None and ctx.actor is not None and ctx.actor.id is not None
    p = ctx.payload
    ctx.session.execute(
        update(Ipr)
        .where(Ipr.case_id == ctx.case.id, Ipr.status == "active")  # type: ignore[arg-type]
        .values(status="superseded")
    )
    ipr = Ipr(
        case_id=ctx.case.id,
        period_start=p.period_start,
        period_end=p.period_end,
        goals=[goal.strip() for goal in p.goals if goal.strip()],
        parent_agreed_on=p.parent_agreement.date,
        agreement_document_ref=p.parent_agreement.document_ref,
        created_by_id=ctx.actor.id,
    )
    ctx.session.add(ipr)
    ctx.session.flush()
    assert ipr.id is not None
    for service in p.services:
        known = ctx.standard.service(service.service_code)
        assert known is not None  # guarded by ipr_services_in_catalogue
        ctx.session.add(
            PlannedService(
                ipr_id=ipr.id,
                service_code=service.service_code,
                specialist_role=service.specialist_role or known.specialist_roles[0],
                form=service.form,
                count=service.count,
                minutes=service.minutes,
            )
        )
    # The parent's agreement with the programme is a consent of its own (DESIGN §6).
    ctx.session.add(
        Consent(
            child_id=ctx.case.child_id,
            kind=ConsentKind.ipr,
            status=ConsentStatus.given,
            date=p.parent_agreement.date,
            document_ref=p.parent_agreement.document_ref,
            recorded_by_id=ctx.actor.id,
        )
    )


def remember_destination(ctx: JourneyContext) -> None:
    """The receiving organisation named at begin_transition: its staff see the child from now on."""
    if ctx.payload.destination_org_id is not None:
        ctx.changes["destination_org_id"] = ctx.payload.destination_org_id


def start_adaptation(ctx: JourneyContext) -> None:
    """The adaptation period: from the enrolment to the date given, else the region's length later.

    The payload is completed with what the case already knew (the organisation named at
    begin_transition, the period's end) so the history row and the effects say it too."""
    p = ctx.payload
    if p.destination_org_id is None:
        p.destination_org_id = ctx.case.destination_org_id
    if not p.destination.strip():
        org = ctx.session.get(Organisation, p.destination_org_id) if p.destination_org_id else None
        said = ctx.session.exec(
            select(CaseHistory.payload)
            .where(CaseHistory.case_id == ctx.case.id, CaseHistory.event == "begin_transition")
            .order_by(col(CaseHistory.id).desc())
            .limit(1)
        ).first()
        p.destination = org.name if org is not None else str((said or {}).get("destination") or "")
    if p.adaptation_ends_on is None:
        p.adaptation_ends_on = p.enrolled_on + relativedelta(months=ctx.standard.adaptation.length_months)
    ctx.changes["destination_org_id"] = p.destination_org_id
    ctx.changes["adaptation_starts_on"] = p.enrolled_on
    ctx.changes["adaptation_ends_on"] = p.adaptation_ends_on


def remember_suspended_from(ctx: JourneyContext) -> None:
    ctx.changes["suspended_from"] = ctx.case.state


def forget_suspended_from(ctx: JourneyContext) -> None:
    ctx.changes["suspended_from"] = None
