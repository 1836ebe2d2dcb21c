"""The SQLite engines: writers take the lock up front; the delivery path's reads take none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core.db import make_engine, reads_engine


def test_reads_engine_reads_while_a_writer_holds_the_lock_and_refuses_to_write(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    reads = reads_engine(engine)
    with engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock, held until the end
        writer.execute(text("INSERT INTO t VALUES (2)"))
        # A reader that wanted the lock would wait here for the busy timeout (30 s) and fail.
        with reads.connect() as reader:
            assert reader.execute(text("SELECT x FROM t")).scalars().all() == [1]
    with reads.connect() as reader:
        assert reader.execute(text("SELECT x FROM t ORDER BY x")).scalars().all() == [1, 2]
        with pytest.raises(OperationalError, match="readonly"):
            reader.execute(text("INSERT INTO t VALUES (3)"))


def test_reads_engine_on_postgresql_is_the_engine_itself() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert reads_engine(engine) is engine
