"""Records: what a transition writes besides the state (conclusion, ИПРП, curator...)."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import update

from models.consents import Consent, ConsentKind, ConsentStatus
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


def remember_suspended_from(ctx: JourneyContext) -> None:
    ctx.changes["suspended_from"] = ctx.case.state


def forget_suspended_from(ctx: JourneyContext) -> None:
    ctx.changes["suspended_from"] = None
