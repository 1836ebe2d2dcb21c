"""Column types and helpers shared by the tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictBool
from pydantic_core import PydanticCustomError
from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

# The largest value of an INTEGER column on PostgreSQL (int4); SQLite's are 64-bit, so this bound holds
# on both. Every id and integer the API accepts is bounded by it in the schema (a 422 naming the field),
# never left for the database driver to refuse (a 500).
INT32_MAX = 2_147_483_647


def _json_number(value: Any) -> Any:
    # pydantic's lax mode would also take "5" and true for an integer; a JSON body gives a number.
    if isinstance(value, str | bytes | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _json_date(value: Any) -> Any:
    # ...and a number (a Unix time) for a date; a JSON body gives a date as text. Python callers
    # (the demo, services) pass date objects.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "Input should be a valid date")
    return value


def _json_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Input should be a valid datetime")
    return value


# Dates a request may name: a child's, a consent's, an appointment's. Outside them a date is a typo,
# and at the edges of Python's calendar a time zone's offset overflows it (year 1 at +14:00).
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199


def _in_range(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise PydanticCustomError(
            "date_range", "Date out of range", {"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR}
        )
    return value


# Types of request bodies: what the JSON schema says is what is accepted, no more (lax coercion
# would accept "5" for an integer, 1 for true, 0 for a date).
JsonInt = Annotated[int, BeforeValidator(_json_number)]
JsonDate = Annotated[date, BeforeValidator(_json_date), AfterValidator(_in_range)]
JsonDatetime = Annotated[AwareDatetime, BeforeValidator(_json_datetime), AfterValidator(_in_range)]
JsonBool = StrictBool

# The id of a row in a request body (a payload's curator_id, a referral's provider_id).
DbId = Annotated[JsonInt, Field(ge=1, le=INT32_MAX)]
# A non-negative integer of a request body stored in or compared with an INTEGER column (a version).
Count = Annotated[JsonInt, Field(ge=0, le=INT32_MAX)]
# The id of a row in a path or a query string (text by nature: "5" is 5 there).
IdParam = Annotated[int, Field(ge=1, le=INT32_MAX)]


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


def like_escaped(word: str) -> str:
    """A word for LIKE with its wildcards taken literally (use with ESCAPE '\\')."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def normalise_name(*parts: str | None) -> str:
    """Search key for Cyrillic names: casefolded, ё→е, single spaces.

    SQLite's lower()/LIKE fold ASCII only, so searches go against this stored key instead.
    """
    text = " ".join(p for p in parts if p)
    return _SPACES.sub(" ", text.casefold().replace("ё", "е")).strip()


# C0 control characters and DEL; tab, line feed and carriage return are ordinary text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_character(text: str) -> str | None:
    """The first control character in `text`, as U+XXXX, or None."""
    found = _CONTROL.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def control_characters_in(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, U+XXXX) of each string (or object key) in a parsed JSON value that holds a
    control character. Iterative, so a deeply nested body cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if char := control_character(item):
                yield where, char
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                inner = f"{where}.{key}" if where else str(key)
                if char := control_character(str(key)):
                    yield where, char
                else:
                    stack.append((inner, child))
        elif isinstance(item, list):
            for index in range(len(item) - 1, -1, -1):
                stack.append((f"{where}.{index}" if where else str(index), item[index]))
