"""transfers between providers

`transfer`: a request to move a case to another provider (statemachines/transfer.py), its answer,
and a partial unique index that keeps at most one pending request per case.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.common

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'requested'")


def upgrade() -> None:
    op.create_table(
        "transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("from_provider_id", sa.Integer(), nullable=False),
        sa.Column("to_provider_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", models.common.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", models.common.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer_reason", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["from_provider_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["to_provider_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["requested_by_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["answered_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.create_index("ix_transfer_to_status", ["to_provider_id", "status"], unique=False)
        batch_op.create_index("ix_transfer_case", ["case_id"], unique=False)
        batch_op.create_index(
            "uq_transfer_case_pending",
            ["case_id"],
            unique=True,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.drop_index("uq_transfer_case_pending", sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.drop_index("ix_transfer_case")
        batch_op.drop_index("ix_transfer_to_status")
    op.drop_table("transfer")
