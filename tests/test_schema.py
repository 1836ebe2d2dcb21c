"""Migrations and models agree, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import models  # noqa: F401

# Indexes the migrations make on one database only, which SQLAlchemy's models cannot say.
DIALECT_ONLY_INDEXES = frozenset({"ix_child_name_trgm"})  # PostgreSQL's pg_trgm (migration 0022)


def _compared(name: str | None, type_: str, _parent: object) -> bool:
    return not (type_ == "index" and name in DIALECT_ONLY_INDEXES)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _compared})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
