"""The append-only audit log of every read and write of a child's data, and of every refused
attempt (152-ФЗ). Triggers refuse UPDATE, DELETE, TRUNCATE and an INSERT that would replace a row
(migrations/versions/0006_append_only_audit.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    organisation_id: int | None = Field(default=None)
    # read / create / update / transition / search / refused (a 403 or 404 answered: see api/audit.py)
    action: str = Field(max_length=16)
    entity: str = Field(max_length=32)
    entity_id: int | None = None
    child_id: int | None = Field(default=None, index=True)
    client_ip: str | None = Field(default=None, max_length=64)
    path: str | None = Field(default=None, max_length=300)
    # The HTTP status answered, on refused attempts.
    status: int | None = None
