"""the public registry of providers: what a family needs to choose one

A provider's municipality, form of ownership, site, forms of service (ServiceForm codes, JSON), ages
served (months), free places with the date they were stated, working hours, a note, and whether it is
shown in the public registry (every provider is, until the administrator hides it: the server default
true). Existing organisations get empty values: nothing is guessed.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("municipality", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ownership", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("site", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("forms", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("age_from_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("age_to_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("free_places", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("free_places_updated_at", models.common.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("working_hours", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("public_note", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("is_public", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        for name in (
            "is_public",
            "public_note",
            "working_hours",
            "free_places_updated_at",
            "free_places",
            "age_to_months",
            "age_from_months",
            "forms",
            "site",
            "ownership",
            "municipality",
        ):
            batch_op.drop_column(name)
