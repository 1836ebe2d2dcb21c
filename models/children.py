"""Children of the target group and their legal representatives."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum

from pydantic import ConfigDict, field_validator, model_validator
from sqlalchemy import Column, Index, String, text
from sqlmodel import Field, SQLModel

from models.common import JsonDate, JSONType, UTCDateTime, latest_today, normalise_name, utcnow

# The normalised name (search key) column's width: three names of 100 characters and two spaces, and a
# margin.
NAME_KEY_LENGTH = 310


class Sex(StrEnum):
    male = "male"
    female = "female"


class Channel(StrEnum):
    sms = "sms"
    email = "email"
    none = "none"


class Relation(StrEnum):
    mother = "mother"
    father = "father"
    guardian = "guardian"
    other = "other"


RELATION_LABELS: dict[Relation, str] = {
    Relation.mother: "Мать",
    Relation.father: "Отец",
    Relation.guardian: "Опекун (попечитель)",
    Relation.other: "Иной законный представитель",
}
CHANNEL_LABELS: dict[Channel, str] = {
    Channel.sms: "SMS",
    Channel.email: "Электронная почта",
    Channel.none: "Не присылать сообщений",
}


_SNILS_SEPARATORS = re.compile(r"[\s-]")


def snils_control(number: str) -> int:
    """The control number of a СНИЛС's first nine digits: Σ digit·weight (9..1) mod 101, 100 → 00."""
    return (sum(int(d) * w for d, w in zip(number, range(9, 0, -1), strict=True)) % 101) % 100


def snils_with_control(number: int) -> str:
    """A valid 11-digit СНИЛС from a nine-digit number (demo data, tests, benchmarks)."""
    digits = f"{number:09d}"
    return digits + f"{snils_control(digits):02d}"


def validate_snils(raw: str) -> str:
    """Return the 11 digits of a valid СНИЛС or raise ValueError with a message in Russian.

    The control number is (Σ digit·weight, weights 9..1) mod 101, with 100 read as 00; it is
    checked only for numbers above 001-001-998, as the Pension Fund's rule says.
    """
    digits = _SNILS_SEPARATORS.sub("", raw)
    if not digits.isdigit() or len(digits) != 11:
        raise ValueError("СНИЛС должен состоять из 11 цифр")
    number, control = digits[:9], int(digits[9:])
    if int(number) > 1001998 and snils_control(number) != control:
        raise ValueError("Неверная контрольная сумма СНИЛС")
    return digits


def format_snils(digits: str) -> str:
    return f"{digits[0:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:11]}"


class Child(SQLModel, table=True):
    __table_args__ = (
        # One record per СНИЛС in a region; children without one are matched by name + birth date.
        Index(
            "uq_child_region_snils",
            "region_id",
            "snils",
            unique=True,
            sqlite_where=text("snils IS NOT NULL"),
            postgresql_where=text("snils IS NOT NULL"),
        ),
        Index("ix_child_region_name_birth", "region_id", "name_key", "birth_date"),
        # The registry's review of likely duplicates (api/services/registry.py): the children without
        # a middle name, joined on the birth date to those with one. The birth date leads: an index
        # led by the region made SQLite (no statistics) group the name index's duplicates through it.
        Index(
            "ix_child_no_middle_name",
            "region_id",
            sqlite_where=text("middle_name IS NULL"),
            postgresql_where=text("middle_name IS NULL"),
        ),
        Index("ix_child_birth_region", "birth_date", "region_id"),
        # The registry's pages in name order walk the live children from this index alone, their
        # municipality filter too (0021).
        Index(
            "ix_child_region_name_live",
            "region_id",
            "name_key",
            "id",
            "municipality",
            sqlite_where=text("merged_into_id IS NULL"),
            postgresql_where=text("merged_into_id IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    region_id: int = Field(foreign_key="region.id")
    last_name: str = Field(max_length=100)
    first_name: str = Field(max_length=100)
    middle_name: str | None = Field(default=None, max_length=100)
    birth_date: date
    sex: Sex = Field(sa_column=Column(String(8), nullable=False))
    snils: str | None = Field(default=None, max_length=11)
    municipality: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    # normalise_name(last, first, middle): case- and ё-insensitive search on both databases.
    name_key: str = Field(max_length=NAME_KEY_LENGTH)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set when this record was merged into another (a duplicate; models/registry.py ChildMerge): the
    # row stays so the merge can be undone, and every door treats the child as gone (api/scoping.py).
    merged_into_id: int | None = Field(default=None, foreign_key="child.id")
    # What the child's journeys say, region-wide, for the РРМЦ's registry filters: derived, kept by
    # statemachines/child_facts.refresh at every door that changes them (never set by hand).
    # in_need: a conclusion of need determination says ИПРП or consultations; served: a session held
    # or an ИПРП the parent agreed to; the referrals' criteria (each code once) and first/last dates.
    in_need: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    served: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    referral_criteria: list[str] = Field(
        default_factory=list, sa_type=JSONType, sa_column_kwargs={"server_default": text("'[]'")}
    )
    first_referred_on: date | None = None
    last_referred_on: date | None = None

    def refresh_name_key(self) -> None:
        self.name_key = normalise_name(self.last_name, self.first_name, self.middle_name)


def full_name(child: Child) -> str:
    return " ".join(p for p in (child.last_name, child.first_name, child.middle_name) if p)


class LegalRepresentative(SQLModel, table=True):
    __tablename__ = "legal_representative"

    id: int | None = Field(default=None, primary_key=True)
    child_id: int = Field(foreign_key="child.id", index=True)
    full_name: str = Field(max_length=300)
    relation: Relation = Field(sa_column=Column(String(16), nullable=False))
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    preferred_channel: Channel = Field(sa_column=Column(String(8), nullable=False))


_PHONE = re.compile(r"^\+?[0-9 ()-]{7,20}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ChildIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    last_name: str = Field(min_length=1, max_length=100)
    first_name: str = Field(min_length=1, max_length=100)
    middle_name: str | None = Field(default=None, max_length=100)
    birth_date: JsonDate
    sex: Sex
    snils: str | None = Field(default=None, max_length=14)
    municipality: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)

    @field_validator("last_name", "first_name", "middle_name")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not value:
            raise ValueError("Поле не может быть пустым")
        return value

    @field_validator("snils")
    @classmethod
    def _snils(cls, value: str | None) -> str | None:
        return validate_snils(value) if value else None

    @model_validator(mode="after")
    def _name_key_fits(self) -> ChildIn:
        # Case folding can lengthen a name (ß → ss), and the search key has a column of its own.
        if len(normalise_name(self.last_name, self.first_name, self.middle_name)) > NAME_KEY_LENGTH:
            raise ValueError("ФИО слишком длинное")
        return self

    @field_validator("birth_date")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > latest_today():
            raise ValueError("Дата рождения не может быть в будущем")
        return value


class RepresentativeIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    full_name: str = Field(min_length=1, max_length=300)
    relation: Relation
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    preferred_channel: Channel = Channel.sms

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value and not _PHONE.match(value):
            raise ValueError("Телефон должен содержать от 7 до 20 цифр, например +7 900 123-45-67")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value and not _EMAIL.match(value):
            raise ValueError("Некорректный адрес электронной почты")
        return value


class RepresentativePublic(SQLModel):
    id: int
    full_name: str
    relation: Relation
    phone: str | None
    email: str | None
    preferred_channel: Channel


class ChildPublic(SQLModel):
    id: int
    last_name: str
    first_name: str
    middle_name: str | None
    birth_date: date
    sex: Sex
    snils: str | None
    municipality: str | None
    address: str | None
    representatives: list[RepresentativePublic] = []
