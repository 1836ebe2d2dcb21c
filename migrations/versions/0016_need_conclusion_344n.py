"""the conclusion of need determination as the 344n standard has it

The 2025 letter: by the result of need determination «определяется форма предоставления услуг, виды
услуг, количество мероприятий и их продолжительность». A conclusion keeps the forms and the activities it
sets (`forms`, `activities`, JSON). Conclusions written before get empty lists (the server default), which
is what they recorded.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("need_conclusion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forms", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("activities", JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("need_conclusion", schema=None) as batch_op:
        batch_op.drop_column("activities")
        batch_op.drop_column("forms")
