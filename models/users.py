"""Users of organisations, their roles and API tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime, utcnow


class Role(StrEnum):
    referrer = "referrer"
    intake_coordinator = "intake_coordinator"
    curator = "curator"
    specialist = "specialist"
    supervisor = "supervisor"
    analyst = "analyst"
    admin = "admin"


ROLE_LABELS: dict[Role, str] = {
    Role.referrer: "Специалист направляющей организации",
    Role.intake_coordinator: "Координатор приёма",
    Role.curator: "Куратор",
    Role.specialist: "Специалист",
    Role.supervisor: "Руководитель",
    Role.analyst: "Аналитик",
    Role.admin: "Администратор",
}

# Staff of an early-help provider; they work with the provider's own cases.
PROVIDER_ROLES = frozenset({Role.intake_coordinator, Role.curator, Role.specialist, Role.supervisor})


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    login: str = Field(max_length=100, unique=True)
    full_name: str = Field(max_length=300)
    role: Role = Field(sa_column=Column(String(32), nullable=False))
    # Staff notifications (a family that cannot be reached...) go here, else to the organisation.
    email: str | None = Field(default=None, max_length=254)
    # None for system accounts that authenticate by API token only.
    password_hash: str | None = Field(default=None, max_length=255)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    # SHA-256 of the token: tokens are long random strings, so a fast hash is enough and
    # keeps the per-request lookup cheap; the token itself is shown once and never stored.
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class UserPublic(SQLModel):
    id: int
    login: str
    full_name: str
    role: Role
    role_label: str
    organisation_id: int
