"""the journeys' facts on the child's row, for the registry's filters of the РРМЦ; cases by opening

The target-group registry's filters by category (in need, served), criterion and referral period were
EXISTS over referrals, cases, conclusions, ИПРП and sessions; on PostgreSQL a list combining them
walked tens of thousands of rows (bench/RESULTS.md). statemachines/child_facts.py keeps them on the
child's row from now on; this migration adds the columns and computes them for the children there are.
The SQL below is that module's at this revision (a migration does not import the application).
The index of the cases' opening time serves the registry's «opened from ... to»; a provider's cases by
state now hold the child too (its provider filter reads the provider's children from the index).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CRITERIA = {
    "postgresql": (
        "(SELECT coalesce(jsonb_agg(DISTINCT code.value ORDER BY code.value), '[]'::jsonb) "
        "FROM referral, jsonb_array_elements_text(referral.criteria) AS code(value) "
        "WHERE referral.child_id = child.id)"
    ),
    "sqlite": (
        "(SELECT json_group_array(DISTINCT code.value) "
        "FROM referral, json_each(referral.criteria) AS code "
        "WHERE referral.child_id = child.id)"
    ),
}
_FACTS = """
UPDATE child SET
  in_need = EXISTS (
    SELECT 1 FROM "case" JOIN need_conclusion ON need_conclusion.case_id = "case".id
    WHERE "case".child_id = child.id AND need_conclusion.outcome IN ('ipr', 'consultation')),
  served = EXISTS (
    SELECT 1 FROM "case" JOIN service_session ON service_session.case_id = "case".id
    WHERE "case".child_id = child.id AND service_session.status = 'held')
    OR EXISTS (SELECT 1 FROM "case" JOIN ipr ON ipr.case_id = "case".id WHERE "case".child_id = child.id),
  first_referred_on = (SELECT min(referral_date) FROM referral WHERE referral.child_id = child.id),
  last_referred_on = (SELECT max(referral_date) FROM referral WHERE referral.child_id = child.id),
  referral_criteria = {criteria}
"""


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    # Added in place: SQLite's batch mode otherwise copies the child table and cannot drop the old one
    # while referrals and cases point at it (a database with children failed to upgrade).
    with op.batch_alter_table("child", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("in_need", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("served", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(
            sa.Column("referral_criteria", json_type, server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(sa.Column("first_referred_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("last_referred_on", sa.Date(), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text(_FACTS.format(criteria=_CRITERIA[bind.dialect.name])))
    op.create_index("ix_case_opened_at", "case", ["opened_at"], unique=False)
    op.drop_index("ix_case_provider_state", table_name="case")
    op.create_index("ix_case_provider_state", "case", ["provider_id", "state", "child_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_provider_state", table_name="case")
    op.create_index("ix_case_provider_state", "case", ["provider_id", "state"], unique=False)
    op.drop_index("ix_case_opened_at", table_name="case")
    # Dropped in place (SQLite 3.35+), for the same reason.
    with op.batch_alter_table("child", schema=None, recreate="never") as batch_op:
        for name in ("last_referred_on", "first_referred_on", "referral_criteria", "served", "in_need"):
            batch_op.drop_column(name)
