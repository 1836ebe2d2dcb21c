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


class ServicePublic(BaseModel):
    """A service of the region's catalogue (PlannedServiceIn / SessionIn `service_code`)."""

    code: str
    label: str
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
    # The coded reasons of the event payload (`reason_code`), when it has them.
    reason_codes: list[Option]


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
    services: list[ServicePublic]
    timers: list[TimerPublic]
    exits: list[ExitPublic]
    enums: list[EnumPublic]
