"""Deadlines of the regional standard: opened and closed by the journey, enforced by sweeps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, literal_column, text
from sqlmodel import Field, SQLModel, col

from models.common import UTCDateTime, utcnow


class DeadlineStatus(StrEnum):
    open = "open"
    met = "met"  # the case left the timer's states in time
    missed = "missed"  # ...but late
    cancelled = "cancelled"  # the case ended (declined, lost contact, rejected)


RUNNING = text("status = 'open' AND paused_at IS NULL")
TO_EXPIRE = text("status = 'open' AND paused_at IS NULL AND expired_at IS NULL")
TO_WARN = text("status = 'open' AND paused_at IS NULL AND warned_at IS NULL")


class Deadline(SQLModel, table=True):
    __table_args__ = (
        # Partial indexes hold only the rows each reader wants, so the overdue page (and its count)
        # and the sweeps cost what they return, not what the table holds (bench/RESULTS.md).
        Index("ix_deadline_running_due", "due_at", sqlite_where=RUNNING, postgresql_where=RUNNING),
        Index(
            "ix_deadline_running_provider_due",
            "provider_id",
            "due_at",
            sqlite_where=RUNNING,
            postgresql_where=RUNNING,
        ),
        Index("ix_deadline_to_expire", "due_at", sqlite_where=TO_EXPIRE, postgresql_where=TO_EXPIRE),
        Index("ix_deadline_to_warn", "warn_at", sqlite_where=TO_WARN, postgresql_where=TO_WARN),
        # The statistics: every deadline due in a period, whatever its status, counted from the index
        # alone (migration 0020).
        Index("ix_deadline_due", "due_at", "provider_id", "timer", "status", "paused_at", "case_id"),
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
    # Clock stop: set while the case is suspended; on resume due_at and warn_at move by the working
    # days of the pause (not a deadline anchored on the date of birth; statemachines/deadlines.py).
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


# 'open' inline, not as a bound parameter: only then can SQLite (always) and PostgreSQL (with
# generic plans) prove that a query matches the partial indexes above.
OPEN: Any = literal_column("'open'")


def running() -> list[Any]:
    """Open deadlines whose clock runs (the case is not suspended)."""
    return [col(Deadline.status) == OPEN, col(Deadline.paused_at).is_(None)]
