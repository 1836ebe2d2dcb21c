"""The journey of DESIGN §3, readable as one table.

Each row: event, source state(s), destination, an optional routing condition (`when`, e.g. the
outcome of need determination) and guards (statemachines/guards.py) that must all pass. The
machine is built once and shared; events are fired on a small context object, never on a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from models.events import (
    AcceptPayload,
    ApproveIprPayload,
    CompletePayload,
    DeclinePayload,
    DetermineNeedPayload,
    EmptyPayload,
    EnrolPayload,
    RejectPayload,
    StartAssessmentPayload,
    TransitionPayload,
)
from models.users import Role
from statemachines import guards as g
from statemachines import records as r

STATES: list[tuple[str, str]] = [
    ("referred", "Направлен"),
    ("need_determination", "Определение нуждаемости"),
    ("consultation", "Консультации без ИПРП"),
    ("ipr_development", "Разработка ИПРП"),
    ("ipr_implementation", "Реализация ИПРП"),
    ("ipr_assessment", "Оценка реализации ИПРП"),
    ("transition", "Переход"),
    ("adaptation", "Адаптация"),
    ("suspended", "Приостановлено"),
    ("completed", "Завершено"),
    ("no_need", "Нуждаемость не выявлена"),
    ("declined", "Отказ семьи"),
    ("lost_contact", "Связь утрачена"),
    ("rejected", "Направление отклонено"),
]
STATE_LABELS = dict(STATES)
INITIAL_STATE = "referred"
FINAL_STATES = frozenset({"completed", "no_need", "declined", "lost_contact", "rejected"})
# States a case can be suspended in (the clock stops) and resumed back to.
SUSPENDABLE = [
    "need_determination",
    "consultation",
    "ipr_development",
    "ipr_implementation",
    "ipr_assessment",
    "transition",
    "adaptation",
]
OPEN_STATES = ["referred", *SUSPENDABLE, "suspended"]

COORDINATION = {Role.intake_coordinator, Role.curator, Role.supervisor}
PROGRAMME = {Role.curator, Role.supervisor}
INTAKE = {Role.intake_coordinator, Role.supervisor}


@dataclass(frozen=True)
class EventDef:
    label: str
    payload: type[BaseModel]
    roles: frozenset[Role]
    # The case's receiving organisation (case.destination_org_id: the ДОО) may fire it too, any of its
    # users: the pre-school confirms that the child came (statemachines.fire checks it).
    by_destination: bool = False


EVENTS: dict[str, EventDef] = {
    "accept": EventDef("Принять направление", AcceptPayload, frozenset(INTAKE)),
    "reject": EventDef("Отклонить направление", RejectPayload, frozenset(INTAKE)),
    "determine_need": EventDef(
        "Зафиксировать заключение о нуждаемости", DetermineNeedPayload, frozenset(COORDINATION)
    ),
    "approve_ipr": EventDef("Утвердить ИПРП", ApproveIprPayload, frozenset(PROGRAMME)),
    "start_assessment": EventDef(
        "Начать оценку реализации ИПРП", StartAssessmentPayload, frozenset(PROGRAMME)
    ),
    "revise_ipr": EventDef("Пересмотреть ИПРП", EmptyPayload, frozenset(PROGRAMME)),
    "begin_transition": EventDef("Начать переход", TransitionPayload, frozenset(PROGRAMME)),
    "enrol": EventDef(
        "Зафиксировать поступление ребёнка", EnrolPayload, frozenset(PROGRAMME), by_destination=True
    ),
    "complete": EventDef("Завершить сопровождение", CompletePayload, frozenset(PROGRAMME)),
    "suspend": EventDef("Приостановить", EmptyPayload, frozenset(COORDINATION)),
    "resume": EventDef("Возобновить", EmptyPayload, frozenset(COORDINATION)),
    "decline": EventDef("Зафиксировать отказ семьи", DeclinePayload, frozenset(COORDINATION)),
    "mark_lost_contact": EventDef("Связь утрачена", EmptyPayload, frozenset(COORDINATION)),
}


Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Row:
    event: str
    source: str | Sequence[str]
    dest: str
    when: Check | None = None
    guards: Sequence[g.Guard] = field(default_factory=tuple)
    records: Sequence[r.Record] = field(default_factory=tuple)


def _outcome(value: str) -> Check:
    def check(ctx: Any) -> bool:
        return str(ctx.payload.outcome) == value

    check.__name__ = f"outcome_is_{value}"
    return check


def _suspended_from(state: str) -> Check:
    def check(ctx: Any) -> bool:
        return bool(ctx.case.suspended_from == state)

    check.__name__ = f"suspended_from_{state}"
    return check


TRANSITIONS: list[Row] = [
    Row(
        "accept",
        "referred",
        "need_determination",
        guards=[g.personal_data_consent_given, g.child_under_age_limit, g.curator_of_provider],
        records=[r.assign_curator],
    ),
    Row("reject", "referred", "rejected"),
    Row(
        "determine_need",
        "need_determination",
        "ipr_development",
        when=_outcome("ipr"),
        guards=[g.conclusion_written, g.conclusion_activities_valid, g.conclusion_forms_given],
        records=[r.write_conclusion],
    ),
    Row(
        "determine_need",
        "need_determination",
        "consultation",
        when=_outcome("consultation"),
        guards=[g.conclusion_written, g.conclusion_activities_valid, g.conclusion_forms_given],
        records=[r.write_conclusion],
    ),
    Row(
        "determine_need",
        "need_determination",
        "no_need",
        when=_outcome("no_need"),
        guards=[g.conclusion_written, g.conclusion_activities_valid, g.conclusion_forms_given],
        records=[r.write_conclusion],
    ),
    Row(
        "approve_ipr",
        ["ipr_development", "ipr_assessment"],
        "ipr_implementation",
        guards=[
            g.ipr_has_goals,
            g.ipr_has_services,
            g.ipr_services_in_catalogue,
            g.ipr_period_valid,
            g.ipr_within_age_limit,
            g.parent_agreed_to_ipr,
            g.parent_agreement_dated,
        ],
        records=[r.write_ipr],
    ),
    Row("start_assessment", "ipr_implementation", "ipr_assessment"),
    Row("revise_ipr", "ipr_assessment", "ipr_development"),
    Row(
        "begin_transition",
        ["consultation", "ipr_implementation", "ipr_assessment"],
        "transition",
        guards=[g.destination_can_receive],
        records=[r.remember_destination],
    ),
    # The letter's transition: the child enters a ДОО or another programme and an adaptation period
    # of the region's length follows; the case completes when it ends (the `adaptation` timer), not
    # on the third birthday.
    Row(
        "enrol",
        "transition",
        "adaptation",
        guards=[
            g.enrolment_destination_given,
            g.destination_can_receive,
            g.enrolment_date_plausible,
            g.adaptation_ends_after_start,
        ],
        records=[r.start_adaptation],
    ),
    Row("complete", "adaptation", "completed", guards=[g.adaptation_over, g.completion_reason_known]),
    Row("complete", "consultation", "completed", guards=[g.completion_reason_known]),
    Row(
        "complete",
        "ipr_assessment",
        "completed",
        guards=[g.final_assessment_started, g.completion_reason_known],
    ),
    Row("suspend", SUSPENDABLE, "suspended", guards=[g.reason_given], records=[r.remember_suspended_from]),
    *[
        Row("resume", "suspended", state, when=_suspended_from(state), records=[r.forget_suspended_from])
        for state in SUSPENDABLE
    ],
    Row("decline", OPEN_STATES, "declined", guards=[g.reason_given, g.decline_reason_known]),
    Row("mark_lost_contact", OPEN_STATES, "lost_contact", guards=[g.enough_failed_contacts]),
]


def describe() -> dict[str, Any]:
    """The journey as JSON for GET /api/v1/journey, with the workflows beside it."""
    from statemachines import workflows

    return {
        "workflows": workflows.describe(),
        "initial": INITIAL_STATE,
        "states": [{"name": name, "label": label, "final": name in FINAL_STATES} for name, label in STATES],
        "events": [{"name": name, "label": e.label, "roles": sorted(e.roles)} for name, e in EVENTS.items()],
        "transitions": [
            {
                "event": row.event,
                "source": [row.source] if isinstance(row.source, str) else list(row.source),
                "dest": row.dest,
                "when": row.when.__name__ if row.when else None,
                "guards": [guard.__name__ for guard in row.guards],
            }
            for row in TRANSITIONS
        ],
    }
