"""The region's standard as the API shows it (GET /api/v1/standard): what a client system needs to fill
in an event or a referral without reading standards/*.yaml or models/.

Read by api/services/standard.py; the administration page /standard renders the same model.
"""

from __future__ import annotations

from pydantic import BaseModel


class Option(BaseModel):
    """An allowed value of a field and its Russian label."""

    code: str
    label: str


class CriterionPublic(Option):
    """A criterion of Пост. № 1099 for referring a child (Referral `criteria`)."""

    # The documents that usually confirm it.
    documents: list[str] = []


class ServicePublic(BaseModel):
    """An activity (мероприятие) of the region's catalogue: what PlannedServiceIn / SessionIn
    `service_code` and a conclusion's `activities[].activity_code` name."""

    code: str
    label: str
    # The 344н service it belongs to, and that service's section: with_ipr / without_ipr.
    service_code: str = ""
    section: str = ""
    # The most of it a need-determination conclusion may set, the longest one session (minutes), and
    # where these numbers come from ("DEFAULT ..." when they are the project's own).
    max_count: int = 0
    minutes: int = 0
    source: str = ""
    # Specialist roles that may deliver it, in the standard's order; the first is the default one
    # written into an ИПРП when a planned service names none.
    specialist_roles: list[Option]
    # Forms it may be delivered in (PlannedServiceIn / SessionIn `form`).
    forms: list[Option]
    # States where a session of it may be planned without an ИПРП: where it is a step of the journey
    # itself (need determination, assessment, ...) and `consultation` (any service of the catalogue).
    without_ipr_states: list[str]
    # Default duration of a session in minutes, where the standard names one.
    default_minutes: int | None = None


class CatalogueServicePublic(BaseModel):
    """One of the five services of 344н with its activities."""

    code: str
    label: str
    # with_ipr / without_ipr (the standard's section «Консультативные услуги … без разработки ИПРП»)
    section: str
    section_label: str
    activities: list[ServicePublic]


class TimerPublic(BaseModel):
    """A deadline the standard sets: open while a case is in one of `states`."""

    name: str
    label: str
    states: list[str]
    duration: int
    # working_days / calendar_days / months
    unit: str
    # state_entry / referral_date / birth_date
    anchor: str
    # Days subtracted after the duration ("90 days before the third birthday").
    minus_days: int
    # How long before the deadline it is "due soon" (in its unit for working days, else calendar days).
    warn_before: int
    # escalate / remind_family / fire_event
    action: str
    # The event fired on expiry when action is fire_event.
    event: str | None
    # The same in Russian, e.g. «45 календарных дней от даты направления; сообщить руководителю».
    term: str
    action_label: str


class ExitPublic(BaseModel):
    """A way a case ends (a final state), the event that leads there and the reason it asks for."""

    state: str
    label: str
    event: str
    event_label: str
    # The free-text `reason` of the event request is required.
    reason_required: bool
    # The coded reasons of the standard (`exits`) for this end.
    reason_codes: list[Option]
    # The event's payload takes `reason_code` (one of reason_codes): reject (required), complete and
    # decline (optional).
    reason_code_accepted: bool = False


class EnumPublic(BaseModel):
    """The allowed values of a field: `field` is "<event or object>.<field>", e.g. determine_need.outcome."""

    field: str
    values: list[Option]


class StandardPublic(BaseModel):
    region_code: str
    region_name: str
    timezone: str
    name: str
    max_months_at_referral: int
    failed_attempts_for_lost_contact: int
    need_determination_minutes: int
    # Quiet hours for families, HH:MM in the region's zone.
    quiet_hours_start: str
    quiet_hours_end: str
    reminder_hours_before: list[int]
    missed_sessions_for_contact_rule: int
    criteria: list[CriterionPublic]
    specialist_roles: list[Option]
    # Every activity of the catalogue, flat (as before the 344н catalogue had services).
    services: list[ServicePublic]
    # The five services of 344н, each with its activities.
    catalogue: list[CatalogueServicePublic] = []
    timers: list[TimerPublic]
    exits: list[ExitPublic]
    enums: list[EnumPublic]
