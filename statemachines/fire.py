"""The one door for state change: `fire` (and `open_case` for a journey's first step).

Guard → state → history → case row, all in the caller's transaction; the API commits once.
Each transition also writes its outbox rows (statemachines/effects.py) in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlmodel import Session, select, update
from transitions.core import Machine

from core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from models.cases import Case, CaseHistory
from models.common import utcnow
from models.organisations import Organisation, Region
from models.users import User
from standards import Standard, load_standard
from statemachines import child_facts, deadlines
from statemachines.context import JourneyContext, Refusal
from statemachines.effects import enqueue
from statemachines.journey import (
    EVENTS,
    FINAL_STATES,
    INITIAL_STATE,
    STATE_LABELS,
    STATES,
    TRANSITIONS,
    Row,
)


class JourneyError(DomainError):
    pass


class NotAllowed(Conflict, JourneyError):
    code = "event_not_allowed"


class StaleVersion(Conflict, JourneyError):
    code = "stale_version"

    def __init__(self, current_version: int | None = None) -> None:
        extra = {"current_version": current_version} if current_version is not None else {}
        super().__init__(
            "Карточка случая изменена другим пользователем. Обновите её и повторите действие.",
            field="version",
            **extra,
        )


class GuardFailed(Unprocessable, JourneyError):
    code = "guard_failed"


class PayloadInvalid(Unprocessable, JourneyError):
    code = "invalid_payload"

    def __init__(self, error: ValidationError) -> None:
        super().__init__("Некорректные данные события")
        self.error = error


def _conditions(row: Row) -> list[Any]:
    conditions: list[Any] = []
    if row.when is not None:
        when = row.when
        conditions.append(lambda ev: when(ev.model))
    if row.guards:
        guards = row.guards

        def guards_pass(ev: Any) -> bool:
            ctx: JourneyContext = ev.model
            refusals = [Refusal(guard.field, reason) for guard in guards if (reason := guard(ctx))]
            ctx.failures.extend(refusals)
            return not refusals

        conditions.append(guards_pass)
    return conditions


def _records(row: Row) -> list[Any]:
    return [lambda ev, record=record: record(ev.model) for record in row.records]


@lru_cache(maxsize=1)
def machine() -> Machine:
    """One machine for all cases (DESIGN §7: a trigger on a shared machine costs ~8 µs)."""
    return Machine(
        model=None,
        states=[name for name, _ in STATES],
        initial=INITIAL_STATE,
        transitions=[
            {
                "trigger": row.event,
                "source": row.source,
                "dest": row.dest,
                "conditions": _conditions(row),
                "after": _records(row),
            }
            for row in TRANSITIONS
        ],
        send_event=True,
        auto_transitions=False,
    )


def events_from(state: str) -> list[str]:
    return sorted(machine().get_triggers(state))


def _role_events(case: Case, user: User) -> list[str]:
    """Events of the case's state that the user's role may fire on it."""
    if user.organisation_id != case.provider_id:
        return []
    return [e for e in events_from(case.state) if user.role in EVENTS[e].roles]


@lru_cache(maxsize=64)
def _preconditions(state: str, event: str) -> tuple[tuple[Any, ...], ...]:
    """For each row of `event` from `state`: the guards that need nothing from the request."""
    return tuple(
        tuple(guard for guard in row.guards if not guard.needs_request)
        for row in TRANSITIONS
        if row.event == event and state in ([row.source] if isinstance(row.source, str) else row.source)
    )


def available_events(
    session: Session,
    case: Case,
    user: User,
    *,
    standard: Standard | None = None,
    now: datetime | None = None,
) -> tuple[list[str], dict[str, str]]:
    """What the user may fire on the case now, and what the role allows but a guard refuses now.

    Returns (allowed, blocked): `allowed` the events whose role fits and whose guards that need
    nothing from the request (consent recorded, enough failed contacts, a final assessment...)
    pass; `blocked` the others the role allows, each with the reason (Russian) a page shows beside
    the disabled button. Guards about the payload or the reason are checked when the event is fired.
    """
    events = _role_events(case, user)
    checks = {event: _preconditions(case.state, event) for event in events}
    if not any(any(rows) for rows in checks.values()):
        return events, {}
    region = region_of(session, case)
    ctx = JourneyContext(
        state=case.state,
        session=session,
        case=case,
        event="",
        payload=None,
        actor=user,
        reason=None,
        standard=standard or load_standard(region.code),
        timezone=ZoneInfo(region.timezone),
        now=now or utcnow(),
    )
    allowed: list[str] = []
    blocked: dict[str, str] = {}
    for event in events:
        rows = checks[event]
        reasons: list[str] = []
        for guards in rows or ((),):
            failing = [reason for guard in guards if (reason := guard(ctx))]
            if not failing:
                break
            reasons = reasons or failing
        else:
            blocked[event] = "; ".join(reasons)
            continue
        allowed.append(event)
    return allowed, blocked


def allowed_events(session: Session, case: Case, user: User) -> list[str]:
    """Events the user may fire on the case now (see available_events)."""
    return available_events(session, case, user)[0]


def region_of(session: Session, case: Case) -> Region:
    region = session.exec(select(Region).join(Organisation).where(Organisation.id == case.provider_id)).one()
    return region


def open_case(
    session: Session,
    *,
    child_id: int,
    provider_id: int,
    referral_id: int | None,
    actor: User,
    now: datetime | None = None,
) -> Case:
    """Start a journey in `referred`, with its first history row."""
    now = now or utcnow()
    case = Case(
        child_id=child_id,
        provider_id=provider_id,
        referral_id=referral_id,
        state=INITIAL_STATE,
        opened_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    assert case.id is not None
    session.add(
        CaseHistory(
            case_id=case.id,
            from_state=None,
            to_state=INITIAL_STATE,
            event="refer",
            actor_id=actor.id,
            at=now,
        )
    )
    region = region_of(session, case)
    deadlines.on_transition(
        session, case, None, INITIAL_STATE, load_standard(region.code), ZoneInfo(region.timezone), now
    )
    enqueue(session, "refer", case_id=case.id, referral_id=referral_id, context={"actor_id": actor.id})
    return case


def fire(
    session: Session,
    case: Case,
    event: str,
    *,
    actor: User | None,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
    standard: Standard | None = None,
    now: datetime | None = None,
) -> CaseHistory:
    """Fire `event` on `case`; raise a JourneyError (nothing written) if it may not happen."""
    definition = EVENTS.get(event)
    if definition is None:
        raise NotFound(f"Неизвестное событие «{event}»", field="event", events=sorted(EVENTS))
    # actor None is the system itself: a timer of the standard firing its event. An event marked
    # `by_destination` may also be fired by the case's receiving organisation (the ДОО confirms).
    receiving = (
        definition.by_destination
        and actor is not None
        and case.destination_org_id is not None
        and actor.organisation_id == case.destination_org_id
    )
    if (
        actor is not None
        and not receiving
        and (actor.organisation_id != case.provider_id or actor.role not in definition.roles)
    ):
        raise Forbidden(f"Роль пользователя не позволяет действие «{definition.label}»")
    if expected_version is not None and expected_version != case.version:
        raise StaleVersion(case.version)
    available = events_from(case.state)
    if event not in available:
        allowed, blocked = available_events(session, case, actor) if actor else (available, {})
        raise NotAllowed(
            f"Действие «{definition.label}» недопустимо в состоянии «{STATE_LABELS[case.state]}»",
            field="event",
            state=case.state,
            allowed_events=allowed,
            blocked=blocked,
        )
    try:
        parsed = definition.payload.model_validate(payload or {})
    except ValidationError as error:
        raise PayloadInvalid(error) from error

    now = now or utcnow()
    region = region_of(session, case)
    ctx = JourneyContext(
        state=case.state,
        session=session,
        case=case,
        event=event,
        payload=parsed,
        actor=actor,
        reason=reason.strip() if reason else None,
        standard=standard or load_standard(region.code),
        timezone=ZoneInfo(region.timezone),
        now=now,
    )
    if not machine().events[event].trigger(ctx):
        reasons = [refusal.reason for refusal in ctx.failures]
        # The field is the first refusal's: `payload.<name>`, `reason`, or None when the case
        # itself is not ready (no consent recorded, too few failed contacts...).
        raise GuardFailed(
            "; ".join(reasons) or "Переход невозможен",
            field=ctx.failures[0].field if ctx.failures else None,
            reasons=reasons,
        )

    source, dest = case.state, ctx.state
    values: dict[str, Any] = {"state": dest, "version": case.version + 1, "updated_at": now}
    values.update(ctx.changes)
    if dest in FINAL_STATES:
        values["closed_at"] = now
    # The version predicate makes concurrent transitions safe on both databases: the loser
    # updates no row and gets 409; its transaction (with everything records added) rolls back.
    result = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version)  # type: ignore[arg-type]
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleVersion()
    assert case.id is not None
    history = CaseHistory(
        case_id=case.id,
        from_state=source,
        to_state=dest,
        event=event,
        actor_id=actor.id if actor else None,
        at=now,
        payload=parsed.model_dump(mode="json"),
        reason=ctx.reason,
    )
    session.add(history)
    # A conclusion or an ИПРП (records) changes what the registry says of the child.
    child_facts.refresh(session, [case.child_id])
    deadlines.on_transition(session, case, source, dest, ctx.standard, ctx.timezone, now)
    enqueue(
        session,
        event,
        case_id=case.id,
        referral_id=case.referral_id,
        context={
            "from": source,
            "to_state": dest,
            "payload": history.payload,
            "reason": ctx.reason,
            "actor_id": actor.id if actor else None,
        },
    )
    session.flush()
    session.refresh(case)
    return history
