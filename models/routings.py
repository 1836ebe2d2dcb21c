"""Routing («маршрутизация») and the inter-agency consilium («межведомственный консилиум»): the
2025 letter's inter-agency duties of stage 2, each a small workflow beside the journey
(statemachines/routing.py, statemachines/consilium.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import DbId, JsonBool, JsonDatetime, UTCDateTime, utcnow


class RoutingKind(StrEnum):
    medical_examination = "medical_examination"
    doctor_consultation = "doctor_consultation"
    social_services = "social_services"
    rehabilitation = "rehabilitation"
    pmpk = "pmpk"
    education = "education"
    other = "other"


ROUTING_KIND_LABELS: dict[str, str] = {
    RoutingKind.medical_examination: "Медицинское обследование",
    RoutingKind.doctor_consultation: "Консультация врача",
    RoutingKind.social_services: "Социальное обслуживание / социальная поддержка",
    RoutingKind.rehabilitation: "Реабилитация",
    RoutingKind.pmpk: "ПМПК",
    RoutingKind.education: "Образовательная организация",
    RoutingKind.other: "Другое",
}


class RoutingOutcome(StrEnum):
    done = "done"
    refused = "refused"
    family_did_not_come = "family_did_not_come"
    other = "other"


ROUTING_OUTCOME_LABELS: dict[str, str] = {
    RoutingOutcome.done: "Услуга оказана / обследование проведено",
    RoutingOutcome.refused: "Отказ организации",
    RoutingOutcome.family_did_not_come: "Семья не обратилась",
    RoutingOutcome.other: "Другое",
}

# The standard's activity a routing records (standards/: «Консультирование родителей (законных или
# уполномоченных представителей), близкого взрослого по вопросам социальной поддержки»).
ROUTING_ACTIVITY = "social_support_counselling"
ROUTING_ACTIVITY_LABEL = (
    "Консультирование родителей (законных или уполномоченных представителей), близкого взрослого "
    "по вопросам социальной поддержки"
)


class Routing(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    # Copied from the case so that lists are scoped without a join (like Deadline.provider_id).
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    target_org_id: int = Field(foreign_key="organisation.id", index=True)
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    activity_code: str = Field(default=ROUTING_ACTIVITY, max_length=64)
    purpose: str = Field(max_length=1000)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    sent_by_id: int = Field(foreign_key="user.id")
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The routing.answer deadline: the expiry handler finds the routing by it.
    deadline_id: int | None = Field(default=None, foreign_key="deadline.id", index=True)
    # A routing a consilium decided on.
    consilium_id: int | None = Field(default=None, foreign_key="consilium.id")
    outcome_code: str | None = Field(default=None, max_length=32)
    outcome: str | None = Field(default=None, max_length=2000)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_by_id: int | None = Field(default=None, foreign_key="user.id")
    answered_by_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    cancelled_reason: str | None = Field(default=None, max_length=1000)


class Consilium(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    scheduled_at: datetime = Field(sa_type=UTCDateTime)
    place: str = Field(max_length=500)
    agenda: str = Field(max_length=2000)
    status: str = Field(sa_column=Column(String(16), nullable=False))
    decisions: str | None = Field(default=None, max_length=4000)
    recommendations: str | None = Field(default=None, max_length=4000)
    revise_ipr: bool = False
    held_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recorded_by_id: int | None = Field(default=None, foreign_key="user.id")
    cancelled_reason: str | None = Field(default=None, max_length=1000)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsiliumParticipant(SQLModel, table=True):
    __tablename__ = "consilium_participant"
    __table_args__ = (UniqueConstraint("consilium_id", "organisation_id", name="uq_consilium_org_once"),)

    id: int | None = Field(default=None, primary_key=True)
    consilium_id: int = Field(foreign_key="consilium.id", index=True)
    organisation_id: int = Field(foreign_key="organisation.id")
    person_name: str | None = Field(default=None, max_length=300)
    position: str | None = Field(default=None, max_length=300)
    # The outbox row of its invitation (None for the provider itself: nobody to invite).
    invitation_outbox_id: int | None = Field(default=None, foreign_key="outbox.id")


# --- the API's schemas ------------------------------------------------------------------------


class RoutingIn(BaseModel):
    target_org_id: DbId
    kind: RoutingKind
    purpose: str = PydanticField(min_length=1, max_length=1000)
    activity_code: str = PydanticField(default=ROUTING_ACTIVITY, min_length=1, max_length=64)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Укажите цель направления")
        return value.strip()


class RoutingAnswer(BaseModel):
    outcome_code: RoutingOutcome
    outcome: str = PydanticField(default="", max_length=2000)

    @field_validator("outcome")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class Reason(BaseModel):
    reason: str = PydanticField(default="", max_length=1000)


class RoutingPublic(BaseModel):
    """A routing as the provider's staff see it."""

    id: int
    case_id: int
    provider_id: int
    target_org_id: int
    target_org_name: str
    kind: str
    kind_label: str
    activity_code: str
    purpose: str
    status: str
    status_label: str
    sent_by_id: int
    sent_at: datetime
    due_at: datetime | None
    consilium_id: int | None
    outcome_code: str | None
    outcome_label: str | None
    outcome: str | None
    answered_at: datetime | None
    answered_by_id: int | None
    answered_by_org_id: int | None
    allowed_events: list[str]


class RoutingIncoming(BaseModel):
    """A routing as the organisation it is addressed to sees it: the minimum (DESIGN §6): who the
    child is, what kind of help, from whom and whom to call; no purpose text, no diagnosis."""

    id: int
    case_id: int  # the provider's number for the case, to quote when calling: it opens nothing
    kind: str
    kind_label: str
    status: str
    status_label: str
    child_name: str
    child_birth_date: str
    provider_name: str
    curator_name: str
    curator_contact: str
    sent_at: datetime
    due_at: datetime | None
    outcome_code: str | None
    outcome_label: str | None
    outcome: str | None
    answered_at: datetime | None


class ParticipantIn(BaseModel):
    organisation_id: DbId
    person_name: str | None = PydanticField(default=None, max_length=300)
    position: str | None = PydanticField(default=None, max_length=300)


class ConsiliumIn(BaseModel):
    # With its offset (2026-12-01T10:00:00+03:00): a time without one means nothing in Russia's 11 zones.
    scheduled_at: JsonDatetime
    place: str = PydanticField(min_length=1, max_length=500)
    agenda: str = PydanticField(min_length=1, max_length=2000)
    participant_org_ids: list[DbId] = PydanticField(default_factory=list, max_length=50)
    participants: list[ParticipantIn] = PydanticField(default_factory=list, max_length=50)

    @field_validator("place", "agenda")
    @classmethod
    def _filled(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Поле не может быть пустым")
        return value.strip()


class ConsiliumHold(BaseModel):
    decisions: str = PydanticField(min_length=1, max_length=4000)
    recommendations: str = PydanticField(default="", max_length=4000)
    revise_ipr: JsonBool = False
    routings: list[RoutingIn] = PydanticField(default_factory=list, max_length=20)

    @field_validator("decisions")
    @classmethod
    def _filled(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Запишите решения консилиума")
        return value.strip()


class ParticipantPublic(BaseModel):
    organisation_id: int
    organisation_name: str
    person_name: str | None
    position: str | None
    invited: bool


class ConsiliumPublic(BaseModel):
    id: int
    case_id: int
    provider_id: int
    scheduled_at: datetime
    place: str
    agenda: str
    status: str
    status_label: str
    decisions: str | None
    recommendations: str | None
    revise_ipr: bool
    held_at: datetime | None
    recorded_by_id: int | None
    created_by_id: int
    created_at: datetime
    participants: list[ParticipantPublic]
    routing_ids: list[int]
    allowed_events: list[str]
