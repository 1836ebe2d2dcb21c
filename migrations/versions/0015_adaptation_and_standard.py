"""adaptation period

The transition as the 2025 letter has it: a case remembers the organisation receiving the child
(`destination_org_id`, a ДОО or another programme's organisation) and the adaptation period after
the enrolment (`adaptation_starts_on`, `adaptation_ends_on`); the case completes when it ends.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("destination_org_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("adaptation_starts_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("adaptation_ends_on", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_case_destination_org_id"), ["destination_org_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_case_destination_org_id_organisation", "organisation", ["destination_org_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_constraint("fk_case_destination_org_id_organisation", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_case_destination_org_id"))
        batch_op.drop_column("adaptation_ends_on")
        batch_op.drop_column("adaptation_starts_on")
        batch_op.drop_column("destination_org_id")
