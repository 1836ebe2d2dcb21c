"""indexes for the staff pages: a specialist's sessions, matches awaiting review

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 18:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITING_REVIEW = sa.text("match_status = 'awaiting_review'")


def upgrade() -> None:
    with op.batch_alter_table('service_session', schema=None) as batch_op:
        batch_op.create_index('ix_session_specialist_time', ['specialist_id', 'scheduled_at'], unique=False)
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(
            'ix_referral_awaiting_review',
            ['match_reviewer_id'],
            unique=False,
            sqlite_where=AWAITING_REVIEW,
            postgresql_where=AWAITING_REVIEW,
        )


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_awaiting_review')
    with op.batch_alter_table('service_session', schema=None) as batch_op:
        batch_op.drop_index('ix_session_specialist_time')
