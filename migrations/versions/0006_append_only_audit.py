"""append only audit

The audit log is append-only against every write path: UPDATE, DELETE, TRUNCATE (PostgreSQL) and
an INSERT that would replace an existing row (SQLite's INSERT OR REPLACE / REPLACE deletes the old
row without firing delete triggers unless recursive_triggers is on). Adds the answered status for
refused attempts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_log is append-only"


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        # Statement-level: also a statement that touches no row, and INSERT ... ON CONFLICT DO
        # UPDATE (which fires the statement's UPDATE triggers whether or not a row conflicts).
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    for name in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_replace"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
    # Fires before the conflict resolution: REPLACE, INSERT OR REPLACE, INSERT OR IGNORE and
    # upserts of an existing id all stop here.
    op.execute(
        "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
        "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.drop_column('audit_log', 'status')
        return
    # Dropping a column rebuilds the table on SQLite, which drops its triggers: rebuild, then
    # put back the two of revision 0001.
    for name in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_replace"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_column('status')
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{action.lower()} BEFORE {action} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
