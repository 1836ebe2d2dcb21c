"""The database engine: SQLite (WAL, immediate transactions) or PostgreSQL.

SQL parameters never reach a log or an exception's text (hide_parameters): they hold children's
names and СНИЛС. The SQLite file is readable by its owner only (0600; SQLite gives its -wal and -shm
files the mode of the database file), in a directory created 0700.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from core.config import make_private_dir


def make_engine(url: str, *, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20
    )


def reads_engine(engine: Engine) -> Engine:
    """An engine for work that only reads, beside `engine`.

    On SQLite, every transaction of `engine` takes the write lock (see _on_begin), so a read
    waits for every writer and makes them wait; in WAL mode a plain (deferred) read transaction
    needs no lock at all. The engine refuses writes (query_only). On PostgreSQL, `engine` itself.
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine  # an in-memory database exists only on its own connection
    return _sqlite_engine(
        engine.url.render_as_string(hide_password=False), echo=bool(engine.echo), read_only=True
    )


def _sqlite_engine(url: str, *, echo: bool, read_only: bool = False) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        _private_database_file(Path(database))
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        # Writers wait for each other instead of failing with "database is locked".
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if read_only:
            # Deferred: one snapshot for the transaction's reads, no lock (WAL).
            conn.exec_driver_sql("BEGIN")
            return
        # Almost every request writes (the audit log records reads too), so take the write lock
        # up front: a deferred transaction that later upgrades to a writer fails at once with
        # SQLITE_BUSY in WAL mode when another writer committed meanwhile.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _private_database_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask: 0644), and take
    group and other access away from a file (and its -wal, -shm) created earlier."""
    if not path.parent.exists():
        make_private_dir(path.parent)
    if not path.exists():
        # An empty file is an empty SQLite database.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work for the CLI, flows and tests: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
