"""routings and consilia

The routing («маршрутизация») and the inter-agency consilium with its participants (issue 11).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.common

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DateTime = models.common.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "consilium",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", DateTime(timezone=True), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("agenda", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decisions", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("recommendations", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("revise_ipr", sa.Boolean(), nullable=False),
        sa.Column("held_at", DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("cancelled_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consilium", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consilium_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consilium_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "consilium_participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consilium_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("person_name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("position", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("invitation_outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["consilium_id"], ["consilium.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["invitation_outbox_id"], ["outbox.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consilium_id", "organisation_id", name="uq_consilium_org_once"),
    )
    with op.batch_alter_table("consilium_participant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consilium_participant_consilium_id"), ["consilium_id"], unique=False
        )

    op.create_table(
        "routing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("target_org_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("activity_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_by_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", DateTime(timezone=True), nullable=False),
        sa.Column("due_at", DateTime(timezone=True), nullable=True),
        sa.Column("deadline_id", sa.Integer(), nullable=True),
        sa.Column("consilium_id", sa.Integer(), nullable=True),
        sa.Column("outcome_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("answered_at", DateTime(timezone=True), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_by_org_id", sa.Integer(), nullable=True),
        sa.Column("cancelled_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["provider_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["target_org_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["sent_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["deadline_id"], ["deadline.id"]),
        sa.ForeignKeyConstraint(["consilium_id"], ["consilium.id"]),
        sa.ForeignKeyConstraint(["answered_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["answered_by_org_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("routing", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_target_org_id"), ["target_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_deadline_id"), ["deadline_id"], unique=False)


def downgrade() -> None:
    op.drop_table("routing")
    op.drop_table("consilium_participant")
    op.drop_table("consilium")
