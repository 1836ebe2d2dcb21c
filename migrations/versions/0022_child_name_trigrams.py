"""PostgreSQL: a trigram index of the children's names, for the registry's name search

The target-group registry (api/services/registry.py) finds a child by any part of the name,
`name_key LIKE '%word%'`. No B-tree serves a substring: PostgreSQL walked the region's name index and
filtered every child (a surname and a municipality: 87 669 rows read for 50, 58 ms p50 on 100 000
children; bench/RESULTS.md). pg_trgm's GIN index answers such a LIKE for a word of three letters or
more. pg_trgm ships with PostgreSQL (Debian: in the server package) and is a trusted extension since
PostgreSQL 13, so the database's owner may create it. Where it cannot be created, the migration says
so and goes on: the search works without the index, only slower.

SQLite has no such index; its search walks the name index (bench/RESULTS.md: within 50 ms there).
The index is not in the models: it is optional (absent where the extension could not be made), so
tests/test_schema.py leaves it out of the comparison with the migrations.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 01:10:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_child_name_trgm"
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first():
        log.warning("pg_trgm is not installed with this PostgreSQL: the registry's name search runs unindexed")
        return
    try:
        # A savepoint: a refusal (no right to create an extension, or pg_trgm installed where the
        # search path does not find its operator class) must not abort the migration.
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            bind.execute(
                sa.text(
                    f"CREATE INDEX IF NOT EXISTS {INDEX} ON child USING gin (name_key gin_trgm_ops) "
                    "WHERE merged_into_id IS NULL"
                )
            )
    except sa.exc.DBAPIError as refused:
        log.warning(
            "pg_trgm or its index could not be created (%s): the registry's name search runs "
            "unindexed; README, «Operating it», says how a superuser adds the index later",
            type(refused.orig).__name__,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The extension stays: it may have been there before, and dropping it needs its owner.
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
