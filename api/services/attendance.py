"""What a held or missed session means for contact with the family (the standard's contact rule)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.cases import Case, ContactAttempt, ContactChannel
from models.programmes import ServiceSession, SessionStatus
from models.users import User
from standards import load_standard
from statemachines.effects import enqueue
from statemachines.fire import region_of


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
