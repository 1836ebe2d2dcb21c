"""Deadlines of the regional standard: opened and closed by the journey, enforced by sweeps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class DeadlineStatus(StrEnum):
    open = "open"
    met = "met"  # the case left the timer's states in time
    missed = "missed"  # ...but late
    cancelled = "cancelled"  # the case ended (declined, lost contact, rejected)


class Deadline(SQLModel, table=True):
    __table_args__ = (
        # The overdue page and the sweeps read open deadlines by due time.
        Index("ix_deadline_open_due", "status", "due_at"),
        Index("ix_deadline_provider_status", "provider_id", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    # Copied from the case so that the overdue page needs no join to be scoped.
    provider_id: int = Field(foreign_key="organisation.id")
    timer: str = Field(max_length=64)
    label: str = Field(max_length=300)
    action: str = Field(max_length=16)  # escalate / remind_family / fire_event
    event: str | None = Field(default=None, max_length=32)
    status: DeadlineStatus = Field(sa_column=Column(String(16), nullable=False))
    due_at: datetime = Field(sa_type=UTCDateTime)
    warn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Clock stop: set while the case is suspended; on resume due_at and warn_at move by the pause.
    paused_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Each done once, by whichever sweep gets there first.
    warned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeadlinePublic(SQLModel):
    id: int
    case_id: int
    timer: str
    label: str
    status: DeadlineStatus
    due_at: datetime
    warn_at: datetime | None
    paused: bool
    days_overdue: int
    closed_at: datetime | None


class OverdueItem(SQLModel):
    deadline_id: int
    case_id: int
    provider_id: int
    provider_name: str
    curator_id: int | None
    curator_name: str | None
    child_name: str
    state: str
    state_label: str
    timer: str
    label: str
    due_at: datetime
    days_overdue: int
    escalated: bool
