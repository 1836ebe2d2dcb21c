"""Service sessions of a case: planning, listing, marking held/missed/cancelled, and what a held or
missed session means for contact with the family (the standard's contact rule).

The API routes (api/routes/sessions.py) and the case page call the same functions; each does its own
role check. The caller writes the audit row.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from api.deps import Principal
from api.scoping import require_own_case, require_provider_staff
from core.errors import NotFound, Unprocessable
from models.cases import Case, ContactAttempt, ContactChannel
from models.common import utcnow
from models.programmes import (
    SERVICE_FORM_LABELS,
    STEP_SERVICES,
    WITHOUT_IPR_STATES,
    Ipr,
    PlannedService,
    ServiceForm,
    ServiceSession,
    SessionIn,
    SessionPublic,
    SessionStatus,
    SessionUpdate,
)
from models.users import User
from standards import Standard, load_standard
from statemachines import FINAL_STATES, child_facts
from statemachines.effects import enqueue
from statemachines.fire import region_of

# States where no session may be planned (besides the final ones).
NO_SESSIONS_STATES = frozenset({"referred", "suspended"})


def public(row: ServiceSession) -> SessionPublic:
    return SessionPublic.model_validate(row, from_attributes=True)


def require_planner(principal: Principal) -> None:
    """Raises Forbidden unless the caller is staff of a provider (who plans and marks sessions)."""
    require_provider_staff(principal)


def plan_session(session: Session, principal: Principal, case: Case, body: SessionIn) -> ServiceSession:
    """Plans a session of a service the case may have now (flushed, with an id); the family hears of it
    through the outbox. Raises Forbidden (role) or Unprocessable naming the field."""
    require_planner(principal)
    require_own_case(principal, case)
    if case.state in FINAL_STATES or case.state in NO_SESSIONS_STATES:
        raise Unprocessable("В текущем состоянии случая занятия не планируются", field="case_id")
    region = region_of(session, case)
    check_service(session, case, body, load_standard(region.code))
    if body.scheduled_at < utcnow():
        raise Unprocessable("Нельзя запланировать занятие в прошлом", field="scheduled_at")
    if body.specialist_id is not None:
        specialist = session.get(User, body.specialist_id)
        if specialist is None or specialist.organisation_id != case.provider_id:
            raise Unprocessable("Специалист не найден в этой организации", field="specialist_id")
    assert case.id is not None
    row = ServiceSession(case_id=case.id, status=SessionStatus.planned, **body.model_dump())
    session.add(row)
    session.flush()
    enqueue(
        session,
        "session_planned",
        case_id=case.id,
        referral_id=case.referral_id,
        context={"session_id": row.id},
    )
    return row


def list_sessions(session: Session, principal: Principal, case: Case) -> list[ServiceSession]:
    """The case's sessions in the order they are scheduled."""
    return list(
        session.exec(
            select(ServiceSession)
            .where(ServiceSession.case_id == case.id)
            .order_by(col(ServiceSession.scheduled_at))
        )
    )


def update_session(
    session: Session, principal: Principal, case: Case, session_id: int, body: SessionUpdate
) -> ServiceSession:
    """Marks a planned session held, missed or cancelled (once). A held or missed one counts as a
    contact with the family (`record`). Raises Forbidden, NotFound (not this case's) or Unprocessable."""
    require_planner(principal)
    require_own_case(principal, case)
    row = session.get(ServiceSession, session_id)
    if row is None or row.case_id != case.id:
        raise NotFound("Занятие не найдено", field="session_id")
    if row.status != SessionStatus.planned:
        raise Unprocessable("Отметка о занятии уже сделана", field="status")
    if body.status == SessionStatus.planned:
        raise Unprocessable("Укажите итог занятия: held, missed или cancelled", field="status")
    if body.status in (SessionStatus.held, SessionStatus.missed) and row.scheduled_at > utcnow():
        raise Unprocessable("Занятие ещё не наступило", field="status")
    row.status = body.status
    row.notes = body.notes
    row.updated_at = utcnow()
    session.add(row)
    if body.status in (SessionStatus.held, SessionStatus.missed):
        record(session, case, row, principal.user)
    if body.status == SessionStatus.held:
        child_facts.refresh(session, [case.child_id])  # served
    return row


def check_service(session: Session, case: Case, body: SessionIn, standard: Standard) -> None:
    """A session is planned for a service the case may have now (raises Unprocessable naming the
    field): a step of the journey in its state (STEP_SERVICES), a service of the active ИПРП, or
    any service of the catalogue as a consultation without an ИПРП."""
    known = standard.service(body.service_code)
    if known is None:
        raise Unprocessable(f"Услуги «{body.service_code}» нет в перечне стандарта", field="service_code")
    if body.form not in known.forms:  # the activity's forms of 344н
        allowed = ", ".join(SERVICE_FORM_LABELS[ServiceForm(f)] for f in known.forms)
        raise Unprocessable(f"«{known.label}» проводится только в формах: {allowed}", field="form")
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
