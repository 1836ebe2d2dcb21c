"""Referrals (направления) from identifying organisations or from parents themselves."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_validator
from sqlalchemy import Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.children import ChildIn, RepresentativeIn
from models.common import DbId, JsonBool, JsonDate, JSONType, UTCDateTime, latest_today, utcnow

AWAITING_REVIEW = text("match_status = 'awaiting_review'")


class MatchStatus(StrEnum):
    """How a referral's child was matched to a child already known (api/services/referrals.py)."""

    none = "none"  # no child matched: a new child
    exact = "exact"  # СНИЛС, name, birth date and sex agree (or, without СНИЛС on both sides, the rest)
    awaiting_review = "awaiting_review"  # fields disagree: the provider serving the child decides
    confirmed = "confirmed"  # ... and confirmed it is the same child
    refused = "refused"  # ... and said it is another child: registered as a child of its own


MATCH_FIELD_LABELS: dict[str, str] = {
    "last_name": "фамилия",
    "first_name": "имя",
    "middle_name": "отчество",
    "birth_date": "дата рождения",
    "sex": "пол",
    "snils": "СНИЛС указан только с одной стороны",
}


class Referral(SQLModel, table=True):
    __table_args__ = (
        # A retried submission with the same Idempotency-Key never makes a second referral.
        UniqueConstraint("created_by_org_id", "idempotency_key", name="uq_referral_idempotency"),
        # The coordinator's «Сегодня»: the few matches waiting for her organisation's review. SQLite's
        # statistics see only NULLs in match_reviewer_id and would skip its plain index.
        Index(
            "ix_referral_awaiting_review",
            "match_reviewer_id",
            sqlite_where=AWAITING_REVIEW,
            postgresql_where=AWAITING_REVIEW,
        ),
        # The statistics: the referrals of a period (migration 0020).
        Index("ix_referral_date", "referral_date", "provider_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None while a match waits for review: no child is linked until the serving provider decides.
    child_id: int | None = Field(default=None, foreign_key="child.id", index=True)
    # The early-help provider the child is referred to.
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    # None for a self-referral (the parent came on their own).
    referring_org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    created_by_id: int = Field(foreign_key="user.id")
    created_by_org_id: int = Field(foreign_key="organisation.id")
    criteria: list[str] = Field(sa_type=JSONType)
    criteria_document_ref: str | None = Field(default=None, max_length=300)
    comment: str | None = Field(default=None, max_length=2000)
    referral_date: date
    # The case this referral opened or was linked to.
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    # Linked to a case this referral did not open: handed to the provider already serving the child.
    linked_to_existing: bool = False
    # What the referring organisation sent about the child ({"child", "representatives",
    # "consent_personal_data"}): echoed back to it instead of what is stored about a matched child,
    # and what a refused match registers as a child of its own. None on referrals before 0007.
    submitted: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    match_status: MatchStatus = Field(
        default=MatchStatus.none,
        sa_column=Column(String(24), nullable=False, server_default=MatchStatus.none.value),
    )
    # The known child the referral matched, the fields that disagree, and the provider that
    # confirms or refuses the match (the one serving the child, else the one that served it last).
    matched_child_id: int | None = Field(default=None, foreign_key="child.id")
    match_mismatch: list[str] | None = Field(default=None, sa_type=JSONType)
    match_reviewer_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    match_decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    match_decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    idempotency_key: str | None = Field(default=None, max_length=100)
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsentGiven(SQLModel):
    """A consent collected together with the referral (e.g. to personal-data processing)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    date: JsonDate
    document_ref: str = Field(min_length=1, max_length=300)


class ReferralCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    provider_id: DbId
    child: ChildIn
    representatives: list[RepresentativeIn] = Field(default_factory=list, max_length=4)
    criteria: list[str] = Field(min_length=1, max_length=20)
    criteria_document_ref: str | None = Field(default=None, max_length=300)
    comment: str | None = Field(default=None, max_length=2000)
    referral_date: JsonDate | None = None
    # The parent came on their own; only a provider's staff registers these.
    self_referral: JsonBool = False
    consent_personal_data: ConsentGiven | None = None

    @field_validator("referral_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > latest_today():
            raise ValueError("Дата направления не может быть в будущем")
        return value


class SubmittedPublic(SQLModel):
    """The child, representatives and consent as the referring organisation sent them."""

    child: ChildIn
    representatives: list[RepresentativeIn]
    consent_personal_data: ConsentGiven | None = None


class MatchPublic(SQLModel):
    """A match to a known child, shown to the provider handling the referral only."""

    status: MatchStatus
    matched_child_id: int | None
    # The fields that disagree with the known child, and their Russian names.
    mismatched_fields: list[str]
    mismatched_labels: list[str]
    reviewer_org_id: int | None
    decided_by_id: int | None
    decided_at: datetime | None


class ReferralPublic(SQLModel):
    """A referral as its reader may see it (api/services/disclosure.py decides what is filled)."""

    id: int
    # The child's id and the name as stored: for the organisation handling the referral. Others
    # get the child's id only for a child their own referral registered, and the name as they sent it.
    child_id: int | None
    child_name: str
    child_birth_date: date | None
    provider_id: int  # the provider the referral was addressed to
    provider_name: str
    referring_org_id: int | None
    self_referral: bool
    criteria: list[str]
    criteria_document_ref: str | None
    comment: str | None
    referral_date: date
    # The referral's own status: the state of the case it opened, `handed_over` when it was
    # handed to the provider already serving the child, `registered` while that is being checked
    # (`awaiting_match_review` for the provider handling it).
    status: str
    status_label: str
    status_since: datetime
    # Filled for the case this referral opened, and for the provider handling it; never for a case
    # of another organisation's referral.
    case_id: int | None
    case_state: str | None
    case_state_label: str | None
    linked_to_existing: bool
    match: MatchPublic | None = None
    submitted: SubmittedPublic | None = None
    # A sentence for the reader about where the referral stands.
    message: str
    created_at: datetime


class MatchDecision(StrEnum):
    confirm = "confirm"
    refuse = "refuse"


class MatchDecisionIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    decision: MatchDecision


class MatchDecisionPublic(SQLModel):
    referral_id: int
    decision: MatchDecision
    # After a refusal the referral belongs to the provider it was addressed to: the reviewer no
    # longer sees it, so the answer says only what happened.
    message: str
