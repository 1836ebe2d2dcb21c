"""multidisciplinary teams and agreements to share

`agreement`: a provider's agreement on inter-agency interaction with another organisation of its
region; `team_member`: the specialists of a case's team (the curator leads it and is not stored here).
The partial indexes serve api/scoping.py's "is this user in this case's team now?" (models/teams.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.common

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_MEMBER = sa.text("removed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "agreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("partner_org_id", sa.Integer(), nullable=False),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("ended_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["partner_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.create_index("ix_agreement_pair", ["provider_id", "partner_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agreement_region_id"), ["region_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agreement_partner_org_id"), ["partner_org_id"], unique=False)

    op.create_table(
        "team_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("specialist_role", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=False),
        sa.Column("added_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["added_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["removed_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("team_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_member_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_team_member_active_user",
            ["user_id", "case_id"],
            unique=False,
            sqlite_where=ACTIVE_MEMBER,
            postgresql_where=ACTIVE_MEMBER,
        )
        batch_op.create_index(
            "uq_team_member_active",
            ["case_id", "user_id"],
            unique=True,
            sqlite_where=ACTIVE_MEMBER,
            postgresql_where=ACTIVE_MEMBER,
        )


def downgrade() -> None:
    with op.batch_alter_table("team_member", schema=None) as batch_op:
        batch_op.drop_index("uq_team_member_active")
        batch_op.drop_index("ix_team_member_active_user")
        batch_op.drop_index(batch_op.f("ix_team_member_case_id"))
    op.drop_table("team_member")
    with op.batch_alter_table("agreement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_partner_org_id"))
        batch_op.drop_index(batch_op.f("ix_agreement_region_id"))
        batch_op.drop_index("ix_agreement_pair")
    op.drop_table("agreement")
