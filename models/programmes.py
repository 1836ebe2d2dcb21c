"""Need-determination conclusions, the ИПРП with its planned services, and service sessions."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import ConfigDict
from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import DbId, JsonDatetime, JsonInt, JSONType, UTCDateTime, utcnow


class NeedOutcome(StrEnum):
    ipr = "ipr"
    consultation = "consultation"
    no_need = "no_need"


class ServiceForm(StrEnum):
    in_person = "in_person"
    remote = "remote"
    home = "home"
    group = "group"


SERVICE_FORM_LABELS: dict[ServiceForm, str] = {
    ServiceForm.in_person: "очно",
    ServiceForm.remote: "дистанционно",
    ServiceForm.home: "на дому",
    ServiceForm.group: "в группе",
}

NEED_OUTCOME_LABELS: dict[NeedOutcome, str] = {
    NeedOutcome.ipr: "Нуждается в ранней помощи: разработать ИПРП",
    NeedOutcome.consultation: "Нуждается в консультациях без ИПРП",
    NeedOutcome.no_need: "Нуждаемость не выявлена",
}


class SessionStatus(StrEnum):
    planned = "planned"
    held = "held"
    missed = "missed"
    cancelled = "cancelled"


SESSION_STATUS_LABELS: dict[SessionStatus, str] = {
    SessionStatus.planned: "Запланировано",
    SessionStatus.held: "Проведено",
    SessionStatus.missed: "Пропущено",
    SessionStatus.cancelled: "Отменено",
}


# Services that are steps of the journey itself rather than the content of a programme (the 2025
# standard's need determination, ИПРП development and assessment, and the consultations of a
# transition): each may be planned in the states where its step happens. Every other service is
# planned from the case's active ИПРП, or in `consultation` as a consultation without an ИПРП
# (api/services/attendance.py).
STEP_SERVICES: dict[str, frozenset[str]] = {
    "need_determination": frozenset({"need_determination", "functioning_assessment"}),
    "ipr_development": frozenset({"functioning_assessment", "ipr_development"}),
    "ipr_assessment": frozenset({"functioning_assessment", "ipr_review"}),
    "transition": frozenset({"transition_counselling", "social_support_counselling"}),
    # The 2025 letter's two consultations of the adaptation period (and the transition's own).
    "adaptation": frozenset(
        {
            "adaptation_parent_counselling",
            "adaptation_doo_counselling",
            "transition_counselling",
            "social_support_counselling",
        }
    ),
}
# Where any service of the catalogue may be planned without an ИПРП.
WITHOUT_IPR_STATES = frozenset({"consultation"})


class NeedConclusion(SQLModel, table=True):
    __tablename__ = "need_conclusion"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    outcome: NeedOutcome = Field(sa_column=Column(String(16), nullable=False))
    text: str = Field(max_length=10_000)
    concluded_on: date
    duration_minutes: int | None = None
    # What the conclusion sets (344н, as the 2025 letter says: «форма предоставления услуг, виды услуг,
    # количество мероприятий и их продолжительность»): forms as ServiceForm codes, activities as
    # [{"activity_code", "count", "minutes"}]; both empty for no_need and for conclusions written before.
    forms: list[str] = Field(default_factory=list, sa_type=JSONType)
    activities: list[dict[str, object]] = Field(default_factory=list, sa_type=JSONType)
    author_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConclusionActivityPublic(SQLModel):
    activity_code: str
    label: str
    count: int
    minutes: int


class NeedConclusionPublic(SQLModel):
    """The latest conclusion of need determination (GET /api/v1/cases/{id} `conclusion`): what 344н
    has it set — forms, kinds of activities, their number and duration."""

    id: int
    outcome: NeedOutcome
    outcome_label: str
    text: str
    concluded_on: date
    duration_minutes: int | None
    forms: list[str]
    form_labels: list[str]
    activities: list[ConclusionActivityPublic]
    author_id: int
    created_at: datetime


class Ipr(SQLModel, table=True):
    """An individual early-help programme; a revision supersedes the previous one."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    period_start: date
    period_end: date
    goals: list[str] = Field(sa_type=JSONType)
    parent_agreed_on: date
    agreement_document_ref: str | None = Field(default=None, max_length=300)
    # active / superseded
    status: str = Field(default="active", max_length=16)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PlannedService(SQLModel, table=True):
    __tablename__ = "planned_service"

    id: int | None = Field(default=None, primary_key=True)
    ipr_id: int = Field(foreign_key="ipr.id", index=True)
    service_code: str = Field(max_length=64)
    specialist_role: str = Field(max_length=64)
    form: ServiceForm = Field(sa_column=Column(String(16), nullable=False))
    count: int
    minutes: int


class ServiceSession(SQLModel, table=True):
    __tablename__ = "service_session"
    # A specialist's «Сегодня»: her sessions of a day, without reading every session (bench/RESULTS.md).
    __table_args__ = (
        Index("ix_session_specialist_time", "specialist_id", "scheduled_at"),
        # The statistics count a period's sessions from this index alone (migration 0020).
        Index("ix_session_scheduled", "scheduled_at", "case_id", "status", "form", "service_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    planned_service_id: int | None = Field(default=None, foreign_key="planned_service.id")
    service_code: str = Field(max_length=64)
    form: ServiceForm = Field(sa_column=Column(String(16), nullable=False))
    scheduled_at: datetime = Field(sa_type=UTCDateTime)
    duration_minutes: int
    specialist_id: int | None = Field(default=None, foreign_key="user.id")
    status: SessionStatus = Field(sa_column=Column(String(16), nullable=False))
    notes: str | None = Field(default=None, max_length=2000)
    # What the family answered through the link in a reminder: confirmed / reschedule_requested.
    family_response: str | None = Field(default=None, max_length=32)
    family_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SessionReminder(SQLModel, table=True):
    """A reminder handed to the outbox; the unique key makes each one happen once."""

    __tablename__ = "session_reminder"
    __table_args__ = (UniqueConstraint("session_id", "hours_before", name="uq_session_reminder_once"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="service_session.id", index=True)
    hours_before: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PlannedServiceIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    service_code: str = Field(min_length=1, max_length=64)
    specialist_role: str | None = Field(default=None, max_length=64)
    form: ServiceForm
    count: JsonInt = Field(ge=1, le=500)
    minutes: JsonInt = Field(ge=5, le=480)


class SessionIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    service_code: str = Field(min_length=1, max_length=64)
    planned_service_id: DbId | None = None
    form: ServiceForm = ServiceForm.in_person
    scheduled_at: JsonDatetime
    duration_minutes: JsonInt = Field(default=60, ge=5, le=480)
    specialist_id: DbId | None = None


class SessionUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    status: SessionStatus
    notes: str | None = Field(default=None, max_length=2000)


class SessionPublic(SQLModel):
    id: int
    case_id: int
    planned_service_id: int | None
    service_code: str
    form: ServiceForm
    scheduled_at: datetime
    duration_minutes: int
    specialist_id: int | None
    status: SessionStatus
    notes: str | None
    family_response: str | None = None


class PlannedServicePublic(SQLModel):
    """A service of an ИПРП as the API shows it; `id` is what SessionIn.planned_service_id takes."""

    id: int
    service_code: str
    service_label: str
    specialist_role: str
    specialist_role_label: str
    form: ServiceForm
    form_label: str
    count: int
    minutes: int
    # Progress: sessions of this service by status (held + missed + planned may exceed count).
    sessions_held: int
    sessions_missed: int
    sessions_planned: int


class IprPublic(SQLModel):
    """The case's active ИПРП (GET /api/v1/cases/{case_id}/ipr)."""

    id: int
    case_id: int
    status: str
    period_start: date
    period_end: date
    goals: list[str]
    parent_agreed_on: date
    agreement_document_ref: str | None
    created_by_id: int
    created_at: datetime
    services: list[PlannedServicePublic]
