"""Transfers of a case between providers (statemachines/transfer.py is the workflow)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import ConfigDict
from sqlalchemy import Column, Index, String, text
from sqlmodel import Field, SQLModel

from models.common import DbId, JsonDate, UTCDateTime, utcnow

PENDING = text("status = 'requested'")


class Transfer(SQLModel, table=True):
    __table_args__ = (
        # The receiving provider's inbox: its requests waiting for an answer.
        Index("ix_transfer_to_status", "to_provider_id", "status"),
        Index("ix_transfer_case", "case_id"),
        # At most one pending transfer per case: two requests racing, one wins (the other 409).
        Index(
            "uq_transfer_case_pending",
            "case_id",
            unique=True,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    from_provider_id: int = Field(foreign_key="organisation.id")
    to_provider_id: int = Field(foreign_key="organisation.id")
    status: str = Field(sa_column=Column(String(16), nullable=False))
    reason: str = Field(max_length=2000)
    requested_by_id: int = Field(foreign_key="user.id")
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    answered_by_id: int | None = Field(default=None, foreign_key="user.id")
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answer_reason: str | None = Field(default=None, max_length=2000)


class TransferConsentIn(SQLModel):
    """The family's consent to pass the case on, recorded with the request when not yet on file."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    date: JsonDate
    document_ref: str | None = Field(default=None, max_length=300)


class TransferCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    to_provider_id: DbId
    reason: str = Field(max_length=2000)
    consent: TransferConsentIn | None = None


class TransferAccept(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    curator_id: DbId | None = None


class TransferRefuse(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    reason: str = Field(max_length=2000)


class TransferWithdraw(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    reason: str | None = Field(default=None, max_length=2000)


class TransferPublic(SQLModel):
    """A transfer as its reader may see it (api/services/transfers.py decides the child's part)."""

    id: int
    case_id: int
    from_provider_id: int
    from_provider_name: str
    to_provider_id: int
    to_provider_name: str
    status: str
    status_label: str
    reason: str
    requested_at: datetime
    answered_at: datetime | None
    answer_reason: str | None
    # The answer's deadline (the standard's workflows.transfer.answer) while it is pending.
    answer_due_at: datetime | None
    # "incoming" / "outgoing" for a provider's staff; None for the regional centre.
    direction: str | None
    # The child: in full while the reader may decide on it or owns the case; else surname and initials.
    child_name: str
    child_birth_date: date | None
    municipality: str | None
    case_state: str | None
    case_state_label: str | None
    # What the reader may do now: accept / refuse / withdraw.
    allowed_actions: list[str]
