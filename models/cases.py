"""Cases (one child's journey), their history and contact attempts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from models.common import Count, DbId, JsonBool, JsonDatetime, JSONType, UTCDateTime, utcnow
from models.deadlines import DeadlinePublic
from models.outbox import EffectPublic
from models.programmes import NeedConclusionPublic
from models.transfers import TransferPublic


class Case(SQLModel, table=True):
    __table_args__ = (
        # A provider's cases by state, and its children from the index alone (the registry's
        # provider filter: the children of 5 000 cases, 13 -> 6 ms on 100 000).
        Index("ix_case_provider_state", "provider_id", "state", "child_id"),
        Index("ix_case_curator", "curator_id"),
        # The registry's «opened from ... to» (api/services/registry.py): without it, whether the
        # period's cases are few was a scan of every case (7 ms of a page on 100 000).
        Index("ix_case_opened_at", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id")
    curator_id: int | None = Field(default=None, foreign_key="user.id")
    referral_id: int | None = Field(default=None)
    state: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    # The state a suspended case returns to on `resume`.
    suspended_from: str | None = Field(default=None, max_length=32)
    # The transition (statemachines/records.py): the receiving organisation (a ДОО...), named at
    # begin_transition or enrol; its staff see the child and confirm the enrolment.
    destination_org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    # The adaptation period after enrolment; the case completes when it ends.
    adaptation_starts_on: date | None = None
    adaptation_ends_on: date | None = None
    # Optimistic concurrency: every transition bumps it; a stale one gets 409.
    version: int = 1
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CaseHistory(SQLModel, table=True):
    __tablename__ = "case_history"
    # The statistics read the history by event and time (api/services/statistics.py, migration 0020).
    __table_args__ = (Index("ix_case_history_event_at", "event", "at", "case_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str = Field(max_length=32)
    event: str = Field(max_length=32)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    reason: str | None = Field(default=None, max_length=2000)


class ContactChannel(StrEnum):
    phone = "phone"
    sms = "sms"
    email = "email"
    visit = "visit"


CONTACT_CHANNEL_LABELS: dict[ContactChannel, str] = {
    ContactChannel.phone: "Телефон",
    ContactChannel.sms: "SMS",
    ContactChannel.email: "Электронная почта",
    ContactChannel.visit: "Встреча",
}


class ContactAttempt(SQLModel, table=True):
    __tablename__ = "contact_attempt"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    channel: ContactChannel = Field(sa_column=Column(String(16), nullable=False))
    successful: bool
    note: str | None = Field(default=None, max_length=1000)
    recorded_by_id: int = Field(foreign_key="user.id")


class ContactAttemptIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    at: JsonDatetime
    channel: ContactChannel = ContactChannel.phone
    successful: JsonBool
    note: str | None = Field(default=None, max_length=1000)


class HistoryPublic(SQLModel):
    id: int
    from_state: str | None
    to_state: str
    event: str
    actor_id: int | None
    at: datetime
    payload: dict[str, Any]
    reason: str | None


class CaseSummary(SQLModel):
    id: int
    child_id: int
    child_name: str
    child_birth_date: date
    provider_id: int
    curator_id: int | None
    state: str
    state_label: str
    version: int
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class CaseDetail(CaseSummary):
    suspended_from: str | None
    referral_id: int | None
    # What the caller may fire now: the role allows it and nothing known about the case refuses it
    # (guards about the payload or the reason are checked when it is fired).
    allowed_events: list[str]
    # What the role allows but the case refuses now, with the reason (Russian): a disabled button.
    blocked: dict[str, str] = Field(default_factory=dict)
    history: list[HistoryPublic]
    # What the transitions set in motion: messages and feedback, and where each stands.
    effects: list[EffectPublic]
    # The standard's deadlines for this case, open and closed.
    deadlines: list[DeadlinePublic]
    # A request to pass the case to another provider, while it waits for an answer.
    pending_transfer: TransferPublic | None = None
    # The latest conclusion of need determination, with the forms and activities it sets (344н).
    conclusion: NeedConclusionPublic | None = None
    # The transition: the receiving organisation, and the adaptation period once the child is enrolled.
    destination_org_id: int | None = None
    adaptation_starts_on: date | None = None
    adaptation_ends_on: date | None = None


class CaseUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    version: Count
    curator_id: DbId | None


class EventRequest(SQLModel):
    """Body of POST /cases/{id}/events/{event}; `payload` is checked against the event's schema."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    version: Count | None = None
    reason: str | None = Field(default=None, max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict)
