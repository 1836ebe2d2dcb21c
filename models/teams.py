"""The multidisciplinary team of a case and the agreements that let another organisation's staff join it.

A team is the case's curator (its lead, «ведущий специалист — куратор по работе с семьей», derived from
the case, never stored here) and its members by specialist role. A member of another organisation may
join only while that organisation has an agreement in force with the case's provider (the 2025 letter:
cooperation with other organisations rests on agreements on inter-agency interaction).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.common import DbId, JsonDate, UTCDateTime, utcnow

ACTIVE_MEMBER = text("removed_at IS NULL")


class Agreement(SQLModel, table=True):
    """«Соглашение о межведомственном взаимодействии» between an early-help provider and a partner."""

    __table_args__ = (
        # Is there an agreement in force between these two? (every team addition and scope check)
        Index("ix_agreement_pair", "provider_id", "partner_org_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id")
    partner_org_id: int = Field(foreign_key="organisation.id", index=True)
    number: str = Field(max_length=100)
    signed_on: date
    # None: without a term (until ended).
    valid_until: date | None = None
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TeamMember(SQLModel, table=True):
    __tablename__ = "team_member"
    __table_args__ = (
        # The scope's question "is this user in this case's team now?" (api/scoping.py), and a
        # specialist's list of her teams: one partial index, active memberships only.
        Index(
            "ix_team_member_active_user",
            "user_id",
            "case_id",
            sqlite_where=ACTIVE_MEMBER,
            postgresql_where=ACTIVE_MEMBER,
        ),
        # A person is in a team once at a time (the service answers 409 before this is reached).
        Index(
            "uq_team_member_active",
            "case_id",
            "user_id",
            unique=True,
            sqlite_where=ACTIVE_MEMBER,
            postgresql_where=ACTIVE_MEMBER,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    # The member's organisation when added (a user may later move; the team shows where she came from).
    organisation_id: int = Field(foreign_key="organisation.id")
    # A code of the standard's specialist_roles (standards/default.yaml).
    specialist_role: str = Field(max_length=64)
    added_by_id: int = Field(foreign_key="user.id")
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_by_id: int | None = Field(default=None, foreign_key="user.id")


class AgreementIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    partner_org_id: DbId
    # The early-help provider (of the caller's region).
    provider_id: DbId
    number: str = Field(min_length=1, max_length=100)
    signed_on: JsonDate
    valid_until: JsonDate | None = None


class AgreementPublic(BaseModel):
    id: int
    region_id: int
    provider_id: int
    provider_name: str
    partner_org_id: int
    partner_name: str
    number: str
    signed_on: date
    valid_until: date | None
    ended_at: datetime | None
    in_force: bool
    created_at: datetime


class TeamMemberIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    user_id: DbId
    specialist_role: str = Field(min_length=1, max_length=64)


class TeamMemberPublic(BaseModel):
    # None for the lead (the curator, derived from the case, not a stored membership).
    id: int | None
    user_id: int
    full_name: str
    organisation_id: int
    organisation_name: str
    specialist_role: str
    specialist_role_label: str
    lead: bool
    # From an organisation other than the case's provider («приглашённый специалист»).
    invited: bool
    added_at: datetime | None


class TeamPublic(BaseModel):
    case_id: int
    # The lead first (when the case has a curator), then the members by role.
    members: list[TeamMemberPublic]
