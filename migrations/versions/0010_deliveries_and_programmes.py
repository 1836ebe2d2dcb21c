"""deliveries and programmes: no schema change in the end

Reserved for skipped deliveries' text and the ИПРП API, which needed no new column (Delivery had
`subject` and `text` already). Kept so that databases already at 0010 or 0011 upgrade as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 17:45:00
"""

from collections.abc import Sequence

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
