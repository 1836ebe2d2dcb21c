"""The caller's region's standard as data (GET /api/v1/standard and the read-only /standard page).

Everything here is read from standards/*.yaml (load_standard), the journey table and the payload
enums of models/, so a client system never has to read them itself. No personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from sqlmodel import Session

from api.deps import Principal
from core.text import plural
from models.cases import CONTACT_CHANNEL_LABELS, ContactChannel
from models.consents import CONSENT_LABELS, ConsentKind
from models.events import ASSESSMENT_KIND_LABELS, REJECT_REASON_LABELS, AssessmentKind, RejectReason
from models.organisations import Region
from models.programmes import (
    NEED_OUTCOME_LABELS,
    SERVICE_FORM_LABELS,
    SESSION_STATUS_LABELS,
    STEP_SERVICES,
    WITHOUT_IPR_STATES,
    NeedOutcome,
    ServiceForm,
    SessionStatus,
)
from models.standard import (
    CriterionPublic,
    EnumPublic,
    ExitPublic,
    Option,
    ServicePublic,
    StandardPublic,
    TimerPublic,
)
from standards import Standard, TimerDef, load_standard
from statemachines import guards
from statemachines.journey import EVENTS, FINAL_STATES, STATES, TRANSITIONS

# Units of a timer: one / few / many.
UNIT_FORMS: dict[str, tuple[str, str, str]] = {
    "working_days": ("рабочий день", "рабочих дня", "рабочих дней"),
    "calendar_days": ("календарный день", "календарных дня", "календарных дней"),
    "months": ("месяц", "месяца", "месяцев"),
}
ANCHOR_LABELS: dict[str, str] = {
    "state_entry": "с начала этапа",
    "referral_date": "от даты направления",
    "birth_date": "от даты рождения",
}
ACTION_LABELS: dict[str, str] = {
    "escalate": "Сообщить руководителю; случай попадает в список просроченных",
    "remind_family": "Напомнить семье",
    "fire_event": "Выполнить событие",
}


def timer_term(timer: TimerDef) -> str:
    """The timer's term in Russian, e.g. «36 месяцев от даты рождения минус 90 дней»."""
    text = f"{timer.duration} {plural(timer.duration, *UNIT_FORMS[timer.unit])} {ANCHOR_LABELS[timer.anchor]}"
    if timer.minus_days:
        text += f" минус {timer.minus_days} {plural(timer.minus_days, 'день', 'дня', 'дней')}"
    return text


def timer_action(timer: TimerDef) -> str:
    if timer.on_expiry == "fire_event" and timer.event in EVENTS:
        return f"{ACTION_LABELS['fire_event']} «{EVENTS[timer.event].label}»"
    return ACTION_LABELS[timer.on_expiry]


E = TypeVar("E", bound=StrEnum)


def _options(labels: Mapping[E, str]) -> list[Option]:
    return [Option(code=str(code), label=label) for code, label in labels.items()]


FORMS = _options(SERVICE_FORM_LABELS)
ENUMS: list[EnumPublic] = [
    EnumPublic(field="case.state", values=[Option(code=name, label=label) for name, label in STATES]),
    EnumPublic(field="determine_need.outcome", values=_options(NEED_OUTCOME_LABELS)),
    EnumPublic(field="reject.reason_code", values=_options(REJECT_REASON_LABELS)),
    EnumPublic(field="start_assessment.kind", values=_options(ASSESSMENT_KIND_LABELS)),
    EnumPublic(field="approve_ipr.services.form", values=FORMS),
    EnumPublic(field="session.form", values=FORMS),
    EnumPublic(field="session.status", values=_options(SESSION_STATUS_LABELS)),
    EnumPublic(field="contact_attempt.channel", values=_options(CONTACT_CHANNEL_LABELS)),
    EnumPublic(field="consent.kind", values=_options(CONSENT_LABELS)),
]
# Every StrEnum above has a label for each member (a new member without one fails the import).
for _enum, _labels in (
    (NeedOutcome, NEED_OUTCOME_LABELS),
    (RejectReason, REJECT_REASON_LABELS),
    (AssessmentKind, ASSESSMENT_KIND_LABELS),
    (ServiceForm, SERVICE_FORM_LABELS),
    (SessionStatus, SESSION_STATUS_LABELS),
    (ContactChannel, CONTACT_CHANNEL_LABELS),
    (ConsentKind, CONSENT_LABELS),
):
    assert set(_enum) == set(_labels), f"labels missing for {_enum.__name__}"


def _exits() -> list[ExitPublic]:
    """Each final state, with the first event of the journey table that leads there."""
    exits = []
    for state, label in STATES:
        if state not in FINAL_STATES:
            continue
        row = next(r for r in TRANSITIONS if r.dest == state)
        exits.append(
            ExitPublic(
                state=state,
                label=label,
                event=row.event,
                event_label=EVENTS[row.event].label,
                reason_required=guards.reason_given in row.guards,
                reason_codes=_options(REJECT_REASON_LABELS) if row.event == "reject" else [],
            )
        )
    return exits


EXITS = _exits()


def standard_public(standard: Standard, region: Region) -> StandardPublic:
    """The standard as data, for a region (no database access)."""
    roles = {r.code: r.label for r in standard.specialist_roles}
    return StandardPublic(
        region_code=region.code,
        region_name=region.name,
        timezone=region.timezone,
        name=standard.name,
        max_months_at_referral=standard.age.max_months_at_referral,
        failed_attempts_for_lost_contact=standard.contact.failed_attempts_for_lost_contact,
        need_determination_minutes=standard.need_determination.session_minutes,
        quiet_hours_start=standard.quiet_hours.start.strftime("%H:%M"),
        quiet_hours_end=standard.quiet_hours.end.strftime("%H:%M"),
        reminder_hours_before=list(standard.reminders.before_hours),
        missed_sessions_for_contact_rule=standard.reminders.misses_for_contact_rule,
        criteria=[CriterionPublic(code=c.code, label=c.label) for c in standard.criteria],
        specialist_roles=[Option(code=r.code, label=r.label) for r in standard.specialist_roles],
        services=[
            ServicePublic(
                code=s.code,
                label=s.label,
                specialist_roles=[Option(code=role, label=roles[role]) for role in s.specialist_roles],
                forms=FORMS,
                without_ipr_states=[state for state, codes in STEP_SERVICES.items() if s.code in codes]
                + sorted(WITHOUT_IPR_STATES),
                default_minutes=standard.need_determination.session_minutes
                if s.code == "need_determination"
                else None,
            )
            for s in standard.services
        ],
        timers=[
            TimerPublic(
                name=t.name,
                label=t.label,
                states=list(t.states),
                duration=t.duration,
                unit=t.unit,
                anchor=t.anchor,
                minus_days=t.minus_days,
                warn_before=t.warn_before,
                action=t.on_expiry,
                event=t.event,
                term=timer_term(t),
                action_label=timer_action(t),
            )
            for t in standard.timers
        ],
        exits=EXITS,
        enums=ENUMS,
    )


def region_standard(session: Session, principal: Principal) -> StandardPublic:
    """The standard of the caller's region (any signed-in user may read it: it holds no personal data)."""
    region = session.get(Region, principal.org.region_id)
    assert region is not None  # organisation.region_id is a foreign key
    return standard_public(load_standard(region.code), region)
