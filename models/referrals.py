"""Referrals (направления) from identifying organisations or from parents themselves."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime

from pydantic import ConfigDict, field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.children import ChildIn, RepresentativeIn
from models.common import JSONType, UTCDateTime, latest_today, utcnow


class Referral(SQLModel, table=True):
    __table_args__ = (
        # A retried submission with the same Idempotency-Key never makes a second referral.
        UniqueConstraint("created_by_org_id", "idempotency_key", name="uq_referral_idempotency"),
    )

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
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
    linked_to_existing: bool = False
    idempotency_key: str | None = Field(default=None, max_length=100)
    request_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsentGiven(SQLModel):
    """A consent collected together with the referral (e.g. to personal-data processing)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    date: dt.date
    document_ref: str = Field(min_length=1, max_length=300)


class ReferralCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    provider_id: int
    child: ChildIn
    representatives: list[RepresentativeIn] = Field(default_factory=list, max_length=4)
    criteria: list[str] = Field(min_length=1, max_length=20)
    criteria_document_ref: str | None = Field(default=None, max_length=300)
    comment: str | None = Field(default=None, max_length=2000)
    referral_date: date | None = None
    # The parent came on their own; only a provider's staff registers these.
    self_referral: bool = False
    consent_personal_data: ConsentGiven | None = None

    @field_validator("referral_date")
    @classmethod
    def _not_in_future(cls, value: date | None) -> date | None:
        if value is not None and value > latest_today():
            raise ValueError("Дата направления не может быть в будущем")
        return value


class ReferralPublic(SQLModel):
    id: int
    child_id: int
    child_name: str
    provider_id: int
    provider_name: str
    referring_org_id: int | None
    self_referral: bool
    criteria: list[str]
    criteria_document_ref: str | None
    comment: str | None
    referral_date: date
    case_id: int | None
    case_state: str | None
    case_state_label: str | None
    linked_to_existing: bool
    # A sentence for the referrer, e.g. that the child already has an open case.
    message: str
    created_at: datetime
