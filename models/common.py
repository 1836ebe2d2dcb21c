"""Column types and helpers shared by the tables."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


def utcnow() -> datetime:
    return datetime.now(UTC)


def latest_today() -> date:
    """The latest calendar date that is 'today' anywhere (UTC+14).

    Schemas reject dates after it; services then check against the region's own today, so a
    coordinator in Kamchatka (UTC+12) is never told that today is in the future.
    """
    return (utcnow() + timedelta(hours=14)).date()


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both databases.

    SQLite keeps no offset, so values are normalised to UTC on the way in and get UTC attached on
    the way out; PostgreSQL stores timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONType: Any = JSON().with_variant(JSONB(), "postgresql")

_SPACES = re.compile(r"\s+")


def normalise_name(*parts: str | None) -> str:
    """Search key for Cyrillic names: casefolded, ё→е, single spaces.

    SQLite's lower()/LIKE fold ASCII only, so searches go against this stored key instead.
    """
    text = " ".join(p for p in parts if p)
    return _SPACES.sub(" ", text.casefold().replace("ё", "е")).strip()
