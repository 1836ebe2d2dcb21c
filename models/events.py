"""Payloads of the journey's events, as the API accepts them.

Shape errors (types, lengths) are caught here and answered 422 with the field; domain rules
(a conclusion written, goals present, the parent's agreement) are guards in statemachines/.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from models.common import DbId, JsonBool, JsonDate, JsonInt
from models.programmes import NeedOutcome, PlannedServiceIn, ServiceForm


class _Payload(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class EmptyPayload(_Payload):
    pass


class AcceptPayload(_Payload):
    curator_id: DbId | None = None


class RejectReason(StrEnum):
    not_target_group = "not_target_group"
    duplicate = "duplicate"
    outside_service_area = "outside_service_area"
    other = "other"


REJECT_REASON_LABELS: dict[RejectReason, str] = {
    RejectReason.not_target_group: "Ребёнок не относится к целевой группе",
    RejectReason.duplicate: "Повторное направление",
    RejectReason.outside_service_area: "Вне зоны обслуживания организации",
    RejectReason.other: "Иная причина",
}


class RejectPayload(_Payload):
    reason_code: RejectReason
    explanation: str = Field(default="", max_length=2000)


class ConclusionActivityIn(_Payload):
    """An activity a conclusion sets (344н: «виды услуг, количество мероприятий и их продолжительность»)."""

    activity_code: str = Field(min_length=1, max_length=64)
    count: JsonInt = Field(ge=1, le=500)
    minutes: JsonInt = Field(ge=5, le=480)


class DetermineNeedPayload(_Payload):
    outcome: NeedOutcome
    conclusion: str = Field(default="", max_length=10_000)
    concluded_on: JsonDate | None = None
    duration_minutes: JsonInt | None = Field(default=None, ge=1, le=600)
    # The form(s) and the activities the conclusion sets, checked against the region's catalogue
    # (statemachines/guards.py conclusion_activities_valid): required for ipr and consultation, empty
    # for no_need.
    forms: list[ServiceForm] = Field(default_factory=list, max_length=4)
    activities: list[ConclusionActivityIn] = Field(default_factory=list, max_length=30)


class ParentAgreement(_Payload):
    agreed: JsonBool
    date: JsonDate
    document_ref: str | None = Field(default=None, max_length=300)


class ApproveIprPayload(_Payload):
    period_start: JsonDate
    period_end: JsonDate
    goals: list[str] = Field(default_factory=list, max_length=30)
    services: list[PlannedServiceIn] = Field(default_factory=list, max_length=50)
    parent_agreement: ParentAgreement | None = None


class AssessmentKind(StrEnum):
    intermediate = "intermediate"
    final = "final"


ASSESSMENT_KIND_LABELS: dict[AssessmentKind, str] = {
    AssessmentKind.intermediate: "Промежуточная оценка",
    AssessmentKind.final: "Итоговая оценка",
}


class StartAssessmentPayload(_Payload):
    kind: AssessmentKind = AssessmentKind.intermediate


class TransitionPayload(_Payload):
    destination: str = Field(default="", max_length=300)
    # The receiving pre-school (an education organisation of the region), told of the child.
    destination_org_id: DbId | None = None


class EnrolPayload(_Payload):
    """The child entered a ДОО or another programme: the adaptation period begins."""

    # The receiving organisation (a ДОО of the region), or `destination` in words (another programme);
    # either may have been given at begin_transition already.
    destination_org_id: DbId | None = None
    destination: str = Field(default="", max_length=300)
    enrolled_on: JsonDate
    # Defaults to enrolled_on + the region's adaptation length (standards: adaptation.length_months).
    adaptation_ends_on: JsonDate | None = None


class CompletePayload(_Payload):
    # Where the child went, when the case ends otherwise than after adaptation (optional).
    destination: str = Field(default="", max_length=300)
    summary: str = Field(default="", max_length=5000)
    # One of the standard's `exits.completed` reasons (checked against the region's standard).
    reason_code: str | None = Field(default=None, max_length=64)
    # The curator's recommendations to the family and to the ДОО or next programme: the content of
    # the «Рекомендации по итогам сопровождения» document (api/services/case_documents.py).
    recommendations: str = Field(default="", max_length=5000)


class DeclinePayload(_Payload):
    # One of the standard's `exits.declined` reasons (checked against the region's standard); the
    # free-text `reason` of the request stays required.
    reason_code: str | None = Field(default=None, max_length=64)
