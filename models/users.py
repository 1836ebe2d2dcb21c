"""Users of organisations, their roles and API tokens."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
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
    # Written into every JWT the user gets; raising it ends all of the user's sessions at once
    # (a password reset, `earlyhelp token revoke --sessions`), while one logout ends one session.
    token_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


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


class RevokedToken(SQLModel, table=True):
    """A session JWT ended before its expiry (logout); kept until it would have expired anyway."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="user.id", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


_LOGIN = re.compile(r"[A-Za-z0-9._@-]{1,100}")


def login_problem(login: str) -> str | None:
    if not _LOGIN.fullmatch(login):
        return "Логин: от 1 до 100 латинских букв, цифр и знаков . _ @ -"
    return None


def normalise_email(value: str) -> str:
    """The address in its normal form (the domain lowercased), or ValueError with a Russian message.
    The syntax only: nobody asks DNS from inside a closed regional network."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError:
        raise ValueError("Некорректный адрес электронной почты") from None


class UserPublic(SQLModel):
    id: int
    login: str
    full_name: str
    role: Role
    role_label: str
    organisation_id: int
    email: str | None = None


class UserAdmin(BaseModel):
    """A user as an administrator sees it."""

    id: int
    login: str
    full_name: str
    email: str | None
    role: Role
    role_label: str
    organisation_id: int
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserAdmin:
        assert user.id is not None
        return cls(
            id=user.id,
            login=user.login,
            full_name=user.full_name,
            email=user.email,
            role=user.role,
            role_label=ROLE_LABELS[user.role],
            organisation_id=user.organisation_id,
            is_active=user.is_active,
            created_at=user.created_at,
        )


class StaffMember(BaseModel):
    """A provider's staff member as a coordinator picks a curator: no contact details."""

    id: int
    full_name: str
    role: Role
    role_label: str
