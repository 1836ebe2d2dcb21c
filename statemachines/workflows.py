"""Small workflows beside the journey (DESIGN §3): transfer, routing, consilium, ... each a table.

A workflow object (a transfer, a routing, a consilium) has its own `status`; its steps are rows
like the journey's (event, source status(es), destination, roles). `step` is the one door for such a
change, as `fire` is for the journey: it moves the status with a compare-and-set (two people
accepting one transfer: one wins, the other gets 409), writes a history row on the case (so the
case's history tells the whole story, with both organisations where it matters), writes the
workflow's effects to the outbox, and may bump the case's version (the transfer changes who owns the
case: a card opened before must not act on it). All in the caller's transaction.

Each workflow module (statemachines/transfer.py, routing.py, ...) defines one `Workflow` and
registers it; `describe()` puts every registered workflow into GET /api/v1/journey.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, SQLModel

from core.errors import Conflict, Forbidden
from core.workdays import WorkCalendar, due_dates, end_of_day, start_of_work
from models.cases import Case, CaseHistory
from models.common import utcnow
from models.deadlines import Deadline, DeadlineStatus
from models.users import Role, User
from statemachines.effects import Effect, enqueue, register_effects

if TYPE_CHECKING:
    from models.organisations import Region
    from standards import Standard, WorkflowTimerDef


class WorkflowConflict(Conflict):
    code = "workflow_step_not_allowed"


@dataclass(frozen=True)
class Step:
    event: str
    source: str | Sequence[str]
    dest: str
    label: str
    # Who may take the step; the service checks *which organisation* (the sender, the receiver...).
    roles: frozenset[Role] = frozenset()

    @property
    def sources(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


@dataclass(frozen=True)
class Workflow:
    name: str  # "transfer": history events are "<name>_<event>" (max 32 characters)
    label: str
    states: Sequence[tuple[str, str]]
    initial: str
    final: frozenset[str]
    steps: Sequence[Step]
    # Effects by event ("requested", "accepted", ...): written to the outbox by `step` (and by the
    # service when it creates the object: `start`). Use Effect(..., to="org") with context org_id.
    effects: dict[str, list[Effect]] = field(default_factory=dict)

    @property
    def state_labels(self) -> dict[str, str]:
        return dict(self.states)

    def trigger(self, event: str) -> str:
        return f"{self.name}_{event}"

    def find(self, event: str) -> Step | None:
        return next((s for s in self.steps if s.event == event), None)

    def events_from(self, status: str) -> list[str]:
        return [s.event for s in self.steps if status in s.sources]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "initial": self.initial,
            "states": [{"name": n, "label": lbl, "final": n in self.final} for n, lbl in self.states],
            "events": [
                {"name": s.event, "label": s.label, "roles": sorted(s.roles), "source": s.sources}
                | {"dest": s.dest}
                for s in self.steps
            ],
        }


REGISTRY: dict[str, Workflow] = {}

# What happens when a workflow deadline with on_expiry "expire" falls due, by workflow name: the
# workflow's service registers a function (session, deadline id, now) that takes its expiry step.
# Called by the deadline sweep in its transaction; the deadline is already marked expired.
ExpireHandler = Callable[[Session, int, datetime], None]
EXPIRE_HANDLERS: dict[str, ExpireHandler] = {}


def expire_workflow(session: Session, deadline_id: int, now: datetime) -> None:
    from models.deadlines import Deadline

    deadline = session.get(Deadline, deadline_id)
    if deadline is None:
        return
    handler = EXPIRE_HANDLERS.get(deadline.timer.partition(".")[0])
    if handler is not None:
        handler(session, deadline_id, now)


def register(workflow: Workflow) -> Workflow:
    assert len(workflow.trigger(max((s.event for s in workflow.steps), key=len))) <= 32
    REGISTRY[workflow.name] = workflow
    register_effects({workflow.trigger(event): effects for event, effects in workflow.effects.items()})
    return workflow


def is_workflow_event(event: str) -> bool:
    """A history row of a workflow beside the journey (a transfer, a routing, a consilium): the
    case's state did not change with it."""
    return any(event.startswith(f"{name}_") for name in REGISTRY)


def describe() -> list[dict[str, Any]]:
    return [wf.describe() for wf in REGISTRY.values()]


def history(
    session: Session,
    workflow: Workflow,
    case: Case,
    event: str,
    *,
    actor: User | None,
    payload: dict[str, Any],
    reason: str | None = None,
    now: datetime,
    effects_context: dict[str, Any] | None = None,
) -> CaseHistory:
    """A history row on the case for a workflow event (the case's own state does not change), and
    the event's effects in the outbox."""
    assert case.id is not None
    row = CaseHistory(
        case_id=case.id,
        from_state=case.state,
        to_state=case.state,
        event=workflow.trigger(event),
        actor_id=actor.id if actor else None,
        at=now,
        payload=payload,
        reason=reason,
    )
    session.add(row)
    enqueue(
        session,
        workflow.trigger(event),
        case_id=case.id,
        referral_id=case.referral_id,
        context={
            "payload": payload,
            "reason": reason,
            "actor_id": actor.id if actor else None,
            **(effects_context or {}),
        },
    )
    return row


def step(
    session: Session,
    workflow: Workflow,
    obj: SQLModel,
    event: str,
    *,
    case: Case,
    actor: User | None,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
    bump_case: bool = False,
    now: datetime | None = None,
    effects_context: dict[str, Any] | None = None,
) -> CaseHistory:
    """Take `event` on a workflow object: raise WorkflowConflict (409, nothing written) when its
    status does not allow it, or when someone else moved it first."""
    definition = workflow.find(event)
    if definition is None:
        raise WorkflowConflict(f"Неизвестное действие «{event}»", field="event")
    if actor is not None and definition.roles and actor.role not in definition.roles:
        raise Forbidden(f"Роль пользователя не позволяет действие «{definition.label}»")
    status: str = obj.status  # type: ignore[attr-defined]
    labels = workflow.state_labels
    if status not in definition.sources:
        raise WorkflowConflict(
            f"Действие «{definition.label}» недопустимо в состоянии «{labels[status]}»",
            field="status",
            status=status,
        )
    now = now or utcnow()
    table = type(obj)
    changes = {"status": definition.dest, **(values or {})}
    result = session.execute(
        update(table)
        .where(table.id == obj.id, table.status == status)  # type: ignore[attr-defined]
        .values(**changes)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise WorkflowConflict(
            f"Действие «{definition.label}» уже невозможно: состояние изменено другим пользователем",
            field="status",
        )
    if bump_case:
        bumped = session.execute(
            update(Case)
            .where(Case.id == case.id, Case.version == case.version)  # type: ignore[arg-type]
            .values(version=case.version + 1, updated_at=now)
        )
        if bumped.rowcount != 1:  # type: ignore[attr-defined]
            from statemachines.fire import StaleVersion

            raise StaleVersion()
    row = history(
        session,
        workflow,
        case,
        event,
        actor=actor,
        payload=payload or {},
        reason=reason,
        now=now,
        effects_context=effects_context,
    )
    session.flush()
    session.refresh(obj)
    if bump_case:
        session.refresh(case)
    return row


def open_deadline(
    session: Session,
    workflow: Workflow,
    timer: WorkflowTimerDef,
    case: Case,
    *,
    provider_id: int,
    region: Region,
    standard: Standard,
    now: datetime,
) -> Deadline:
    """The deadline of a workflow's step (the standard's `workflows:`), counted from `now` in the
    region's calendar and kept by `provider_id` (flushed, with an id)."""
    assert case.id is not None
    zone = ZoneInfo(region.timezone)
    # WorkflowTimerDef has every field due_dates reads (unit, duration, minus_days, warn_before).
    due, warn = due_dates(cast(Any, timer), now.astimezone(zone).date(), WorkCalendar(standard.calendar))
    deadline = Deadline(
        case_id=case.id,
        provider_id=provider_id,
        timer=timer.deadline_name(workflow.name),
        label=timer.label,
        action=timer.on_expiry,
        status=DeadlineStatus.open,
        due_at=end_of_day(due, zone),
        warn_at=start_of_work(warn, zone) if warn else None,
        opened_at=now,
    )
    session.add(deadline)
    session.flush()
    return deadline
