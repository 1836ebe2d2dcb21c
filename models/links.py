"""Short links for families: an SMS has room for `/f/<code>`, not for a signed token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class ShortLink(SQLModel, table=True):
    """A random code standing for a family link (core/tokens.py: `short_code`): one per session and
    purpose, made when the first message with the link is rendered and valid until `expires_at`,
    as the signed link it replaces would be."""

    __tablename__ = "short_link"
    __table_args__ = (UniqueConstraint("purpose", "session_id", name="uq_short_link_purpose_session"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)
    purpose: str = Field(max_length=32)
    session_id: int = Field(foreign_key="service_session.id")
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
