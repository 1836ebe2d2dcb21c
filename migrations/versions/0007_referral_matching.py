"""referral matching

A referral remembers what it was sent with (`submitted`), how its child was matched
(`match_status`, `matched_child_id`, `match_mismatch`), and which provider confirms or refuses a
match whose fields disagree (`match_reviewer_id`, `match_decided_by_id`, `match_decided_at`).
`child_id` may be empty while a match waits for that decision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.common

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.alter_column("child_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("submitted", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("match_status", sa.String(length=24), server_default="none", nullable=False)
        )
        batch_op.add_column(sa.Column("matched_child_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("match_mismatch", JSON, nullable=True))
        batch_op.add_column(sa.Column("match_reviewer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("match_decided_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("match_decided_at", models.common.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_referral_match_reviewer_id"), ["match_reviewer_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_referral_matched_child_id_child", "child", ["matched_child_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_referral_match_reviewer_id_organisation", "organisation", ["match_reviewer_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_referral_match_decided_by_id_user", "user", ["match_decided_by_id"], ["id"]
        )
    # Referrals linked before this revision were linked by identifier alone: mark them so.
    op.execute("UPDATE referral SET match_status = 'exact' WHERE linked_to_existing")


def downgrade() -> None:
    op.execute("DELETE FROM referral WHERE child_id IS NULL")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_constraint("fk_referral_match_decided_by_id_user", type_="foreignkey")
        batch_op.drop_constraint("fk_referral_match_reviewer_id_organisation", type_="foreignkey")
        batch_op.drop_constraint("fk_referral_matched_child_id_child", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_referral_match_reviewer_id"))
        batch_op.drop_column("match_decided_at")
        batch_op.drop_column("match_decided_by_id")
        batch_op.drop_column("match_reviewer_id")
        batch_op.drop_column("match_mismatch")
        batch_op.drop_column("matched_child_id")
        batch_op.drop_column("match_status")
        batch_op.drop_column("submitted")
        batch_op.alter_column("child_id", existing_type=sa.Integer(), nullable=False)
