"""Consents: to personal-data processing, to the ИПРП, to messages. Given or withdrawn."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, field_validator
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from models.common import JsonDate, UTCDateTime, latest_today, utcnow


class ConsentKind(StrEnum):
    personal_data = "personal_data"
    ipr = "ipr"
    messages = "messages"
    share_with_referrer = "share_with_referrer"
    # To pass the case on to another early-help provider (a transfer: statemachines/transfer.py).
    transfer = "transfer"


CONSENT_LABELS: dict[ConsentKind, str] = {
    ConsentKind.personal_data: "Согласие на обработку персональных данных",
    ConsentKind.ipr: "Согласие с ИПРП",
    ConsentKind.messages: "Согласие на получение сообщений",
    ConsentKind.share_with_referrer: "Согласие на передачу сведений направившей организации",
    ConsentKind.transfer: "Согласие на передачу сведений в другую организацию, оказывающую раннюю помощь",
}


class ConsentStatus(StrEnum):
    given = "given"
    withdrawn = "withdrawn"


class Consent(SQLModel, table=True):
    """Rows are never updated: the latest row of a kind is the current status."""

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    kind: ConsentKind = Field(sa_column=Column(String(32), nullable=False))
    status: ConsentStatus = Field(sa_column=Column(String(16), nullable=False))
    date: dt.date
    document_ref: str | None = Field(default=None, max_length=300)
    recorded_by_id: int = Field(foreign_key="user.id")
    recorded_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def consent_date_problem(value: dt.date, *, today: dt.date, birth_date: dt.date) -> str | None:
    """Why a consent cannot bear this date, or None: not after today where the case is (the
    region's today), and not before the child was born (a representative consents for a child)."""
    if value > today:
        return "Дата согласия не может быть в будущем"
    if value < birth_date:
        return "Дата согласия не может быть раньше даты рождения ребёнка"
    return None


class ConsentIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    kind: ConsentKind
    status: ConsentStatus = ConsentStatus.given
    date: JsonDate
    document_ref: str | None = Field(default=None, max_length=300)

    @field_validator("date")
    @classmethod
    def _not_in_future(cls, value: dt.date) -> dt.date:
        if value > latest_today():
            raise ValueError("Дата согласия не может быть в будущем")
        return value


class ConsentPublic(SQLModel):
    id: int
    child_id: int
    kind: ConsentKind
    kind_label: str
    status: ConsentStatus
    date: dt.date
    document_ref: str | None
    recorded_at: dt.datetime
