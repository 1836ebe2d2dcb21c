"""What a held or missed session means for contact with the family (the standard's contact rule)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.errors import Unprocessable
from models.cases import Case, ContactAttempt, ContactChannel
from models.programmes import (
    STEP_SERVICES,
    WITHOUT_IPR_STATES,
    Ipr,
    PlannedService,
    ServiceSession,
    SessionIn,
    SessionStatus,
)
from models.users import User
from standards import Standard, load_standard
from statemachines.effects import enqueue
from statemachines.fire import region_of


def check_service(session: Session, case: Case, body: SessionIn, standard: Standard) -> None:
    """A session is planned for a service the case may have now (raises Unprocessable naming the
    field): a step of the journey in its state (STEP_SERVICES), a service of the active ИПРП, or
    any service of the catalogue as a consultation without an ИПРП."""
    known = standard.service(body.service_code)
    if known is None:
        raise Unprocessable(f"Услуги «{body.service_code}» нет в перечне стандарта", field="service_code")
    programme = list(
        session.exec(
            select(PlannedService)
            .join(Ipr)
            .where(Ipr.case_id == case.id, Ipr.status == "active")
            .order_by(col(PlannedService.id))
        )
    )
    if body.planned_service_id is not None:
        planned = next((p for p in programme if p.id == body.planned_service_id), None)
        if planned is None:
            raise Unprocessable(
                "Услуга не входит в действующую ИПРП этого случая", field="planned_service_id"
            )
        if planned.service_code != body.service_code:
            in_programme = _label(standard, planned.service_code)
            raise Unprocessable(
                f"Занятие по услуге «{known.label}» не соответствует услуге ИПРП «{in_programme}»",
                field="service_code",
            )
        return
    if case.state in WITHOUT_IPR_STATES or body.service_code in STEP_SERVICES.get(case.state, ()):
        return
    if any(p.service_code == body.service_code for p in programme):
        return
    if programme:
        codes = dict.fromkeys(p.service_code for p in programme)
        listed = ", ".join(f"«{_label(standard, code)}»" for code in codes)
        raise Unprocessable(
            f"Услуги «{known.label}» нет в действующей ИПРП этого случая; в ИПРП: {listed}",
            field="service_code",
        )
    steps = ", ".join(f"«{_label(standard, code)}»" for code in sorted(STEP_SERVICES.get(case.state, ())))
    raise Unprocessable(
        f"У случая нет утверждённой ИПРП: услугу «{known.label}» можно запланировать только по ней"
        + (f"; сейчас можно запланировать: {steps}" if steps else ""),
        field="service_code",
    )


def _label(standard: Standard, code: str) -> str:
    known = standard.service(code)
    return known.label if known else code


def record(session: Session, case: Case, row: ServiceSession, actor: User) -> None:
    """A held session is a successful contact; a missed one a failed contact, and the curator is told.

    When the standard's number of sessions in a row are missed, the curator hears that the contact
    rule is reached (mark_lost_contact counts these failed contacts).
    """
    assert case.id is not None and actor.id is not None
    held = row.status == SessionStatus.held
    session.add(
        ContactAttempt(
            case_id=case.id,
            at=row.scheduled_at,
            channel=ContactChannel.visit,
            successful=held,
            note="занятие проведено" if held else "пропуск занятия",
            recorded_by_id=actor.id,
        )
    )
    if held:
        return
    enqueue(session, "session_missed", case_id=case.id, context={"session_id": row.id})
    needed = load_standard(region_of(session, case).code).reminders.misses_for_contact_rule
    recent = session.exec(
        select(ServiceSession.status)
        .where(
            ServiceSession.case_id == case.id,
            col(ServiceSession.status).in_([SessionStatus.held, SessionStatus.missed]),
        )
        .order_by(col(ServiceSession.scheduled_at).desc())
        .limit(needed)
    ).all()
    if len(recent) == needed and all(s == SessionStatus.missed for s in recent):
        enqueue(
            session,
            "contact_rule_reached",
            case_id=case.id,
            context={"reason": f"пропусков подряд: {needed}"},
        )
