"""The caller's region's standard as data (GET /api/v1/standard and the read-only /standard page).

Everything here is read from standards/*.yaml (load_standard), the journey table and the payload
enums of models/, so a client system never has to read them itself. No personal data.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from sqlmodel import Session, col, select

from api.deps import Principal
from core.text import plural
from models.cases import CONTACT_CHANNEL_LABELS, Case, ContactChannel
from models.consents import CONSENT_LABELS, ConsentKind
from models.events import ASSESSMENT_KIND_LABELS, REJECT_REASON_LABELS, AssessmentKind, RejectReason
from models.organisations import Organisation, Region
from models.programmes import (
    NEED_OUTCOME_LABELS,
    SERVICE_FORM_LABELS,
    SESSION_STATUS_LABELS,
    STEP_SERVICES,
    WITHOUT_IPR_STATES,
    ConclusionActivityPublic,
    NeedConclusion,
    NeedConclusionPublic,
    NeedOutcome,
    ServiceForm,
    SessionStatus,
)
from models.standard import (
    CatalogueServicePublic,
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
    "adaptation_end": "от окончания периода адаптации",
}
SECTION_LABELS: dict[str, str] = {
    "with_ipr": "В рамках ИПРП",
    "without_ipr": "Консультативные услуги по ранней помощи без разработки ИПРП",
}
# Events whose payload takes `reason_code` of the standard's exits.
REASON_CODE_EVENTS = frozenset({"reject", "complete", "decline"})
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
    EnumPublic(field="determine_need.forms", values=FORMS),
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


def _exits(standard: Standard) -> list[ExitPublic]:
    """Each final state, the first event of the journey table that leads there, and the standard's
    coded reasons for it."""
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
                reason_codes=[Option(code=r.code, label=r.label) for r in standard.exit_reasons(state)],
                reason_code_accepted=row.event in REASON_CODE_EVENTS,
            )
        )
    return exits


def _activity(standard: Standard, code: str, roles: Mapping[str, str]) -> ServicePublic:
    activity = standard.service(code)
    service = standard.service_of(code)
    assert activity is not None and service is not None
    return ServicePublic(
        code=activity.code,
        label=activity.label,
        service_code=service.code,
        section=service.section,
        max_count=activity.max_count,
        minutes=activity.minutes,
        source=activity.source,
        specialist_roles=[Option(code=role, label=roles[role]) for role in activity.specialist_roles],
        forms=[f for f in FORMS if f.code in activity.forms],
        without_ipr_states=[state for state, codes in STEP_SERVICES.items() if activity.code in codes]
        + sorted(WITHOUT_IPR_STATES),
        default_minutes=standard.need_determination.session_minutes
        if activity.code == "need_determination"
        else None,
    )


def standard_public(standard: Standard, region: Region) -> StandardPublic:
    """The standard as data, for a region (no database access)."""
    roles = {r.code: r.label for r in standard.specialist_roles}
    exits = _exits(standard)
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
        criteria=[
            CriterionPublic(code=c.code, label=c.label, documents=list(c.documents))
            for c in standard.criteria
        ],
        specialist_roles=[Option(code=r.code, label=r.label) for r in standard.specialist_roles],
        services=[_activity(standard, a.code, roles) for a in standard.services],
        catalogue=[
            CatalogueServicePublic(
                code=service.code,
                label=service.label,
                section=service.section,
                section_label=SECTION_LABELS[service.section],
                activities=[_activity(standard, a.code, roles) for a in service.activities],
            )
            for service in standard.catalogue
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
        exits=exits,
        enums=[
            *ENUMS,
            *(
                EnumPublic(field=f"{e.event}.reason_code", values=e.reason_codes)
                for e in exits
                if e.event in ("complete", "decline")
            ),
        ],
    )


def conclusion_public(row: NeedConclusion, standard: Standard) -> NeedConclusionPublic:
    """A conclusion with the Russian labels of its outcome, forms and activities (the case card, the API)."""
    assert row.id is not None
    activities = []
    for item in row.activities:
        code = str(item.get("activity_code", ""))
        known = standard.service(code)
        activities.append(
            ConclusionActivityPublic(
                activity_code=code,
                label=known.label if known else code,
                count=int(str(item.get("count", 0))),
                minutes=int(str(item.get("minutes", 0))),
            )
        )
    return NeedConclusionPublic(
        id=row.id,
        outcome=row.outcome,
        outcome_label=NEED_OUTCOME_LABELS[NeedOutcome(row.outcome)],
        text=row.text,
        concluded_on=row.concluded_on,
        duration_minutes=row.duration_minutes,
        forms=list(row.forms),
        form_labels=[SERVICE_FORM_LABELS[ServiceForm(f)] for f in row.forms],
        activities=activities,
        author_id=row.author_id,
        created_at=row.created_at,
    )


def latest_conclusion(session: Session, case: Case) -> NeedConclusionPublic | None:
    """The case's latest conclusion of need determination, labelled by its region's standard."""
    row = session.exec(
        select(NeedConclusion)
        .where(NeedConclusion.case_id == case.id)
        .order_by(col(NeedConclusion.id).desc())
    ).first()
    if row is None:
        return None
    provider = session.get(Organisation, case.provider_id)
    region = session.get(Region, provider.region_id) if provider else None
    return conclusion_public(row, load_standard(region.code if region else None))


def region_standard(session: Session, principal: Principal) -> StandardPublic:
    """The standard of the caller's region (any signed-in user may read it: it holds no personal data)."""
    region = session.get(Region, principal.org.region_id)
    assert region is not None  # organisation.region_id is a foreign key
    return standard_public(load_standard(region.code), region)
