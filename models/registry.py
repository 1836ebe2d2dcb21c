"""The target-group registry: merges of duplicate children, kept so that each can be undone, and the
pairs someone said are different children; the registry's and the review list's API schemas."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.common import DbId, JSONType, UTCDateTime, utcnow

# The rows that hang on a child directly, by the name a merge records them under. Everything else
# (history, deadlines, conclusions, ИПРП, sessions, transfers, routings, teams) hangs on a case and
# moves with it.
MOVED_KINDS = ("referral", "referral_match", "case", "consent", "legal_representative")
# The fields a merge fills on the kept child from the merged one, where the kept child has none.
FILLED_FIELDS = ("snils", "middle_name", "municipality", "address")
# The case history's rows a merge and its undoing write (from_state = to_state: nothing moves).
MERGE_EVENT = "child_merged"
UNDO_EVENT = "child_merge_undone"
MERGE_EVENTS = frozenset({MERGE_EVENT, UNDO_EVENT})


class ChildMerge(SQLModel, table=True):
    """One merge of a duplicate child into another: who, when, why, and exactly what moved.

    `moved` names the ids of every row moved from the merged child to the kept one (by MOVED_KINDS),
    `kept_before` the ids the kept child had before, and `filled` the fields filled on the kept child
    (name → the value): the undo moves those rows back and empties those fields, and refuses when the
    kept child's rows are no longer exactly kept_before + moved (api/services/merges.py).
    """

    __tablename__ = "child_merge"

    id: int | None = Field(default=None, primary_key=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    keep_child_id: int = Field(foreign_key="child.id", index=True)
    merge_child_id: int = Field(foreign_key="child.id", index=True)
    reason: str = Field(max_length=2000)
    merged_by_id: int = Field(foreign_key="user.id")
    # The merger's organisation: a provider's head undoes (and lists) his own organisation's merges.
    organisation_id: int = Field(foreign_key="organisation.id")
    merged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    moved: dict[str, list[int]] = Field(default_factory=dict, sa_type=JSONType)
    kept_before: dict[str, list[int]] = Field(default_factory=dict, sa_type=JSONType)
    filled: dict[str, str] = Field(default_factory=dict, sa_type=JSONType)
    # The ids of the cases whose history got a `child_merged` row.
    case_ids: list[int] = Field(default_factory=list, sa_type=JSONType)
    undone_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    undone_by_id: int | None = Field(default=None, foreign_key="user.id")
    undo_reason: str | None = Field(default=None, max_length=2000)


class DistinctChildren(SQLModel, table=True):
    """A pair of likely duplicates someone checked and found to be two different children: it
    leaves the review list (deleting the row brings it back)."""

    __tablename__ = "distinct_children"
    __table_args__ = (UniqueConstraint("child_low_id", "child_high_id", name="uq_distinct_children_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    # The pair in id order, so that each pair is one row.
    child_low_id: int = Field(foreign_key="child.id")
    child_high_id: int = Field(foreign_key="child.id", index=True)
    reason: str | None = Field(default=None, max_length=2000)
    marked_by_id: int = Field(foreign_key="user.id")
    organisation_id: int = Field(foreign_key="organisation.id")
    marked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- the registry's API ---------------------------------------------------------------------------


class Category(StrEnum):
    """The registry's three lists (docs/readme/registry.md says exactly what each counts)."""

    identified = "identified"
    in_need = "in_need"
    served = "served"


CATEGORY_LABELS: dict[Category, str] = {
    Category.identified: "Выявлены (направлены)",
    Category.in_need: "Нуждаются в ранней помощи",
    Category.served: "Получают или получили помощь",
}


class RegistrySort(StrEnum):
    name = "name"
    birth_date = "birth_date"
    birth_date_desc = "-birth_date"
    newest = "newest"


class RegistryRow(SQLModel):
    """One child of the registry: what its referrals and its cases the caller may see say."""

    id: int
    last_name: str
    first_name: str
    middle_name: str | None
    birth_date: date
    municipality: str | None
    # The union of its referrals' criteria (codes and the standard's labels).
    criteria: list[str]
    criteria_labels: list[str]
    first_referral_date: date | None
    # Who referred it: organisation names, «Обращение родителей» for a parent's own request.
    sources: list[str]
    providers: list[str]
    # The current case: the open one, else the latest closed.
    case_id: int | None
    state: str | None
    state_label: str | None
    opened_on: date | None
    need_outcome: str | None
    need_outcome_label: str | None
    need_concluded_on: date | None
    ipr_agreed_on: date | None
    closed_on: date | None
    final_state: str | None
    final_state_label: str | None


class RegistryPage(SQLModel):
    items: list[RegistryRow]
    # Counted up to count_cap + 1: beyond it `total_capped` says «more than count_cap».
    total: int
    total_capped: bool
    count_cap: int
    page: int
    per_page: int


class DuplicateSide(SQLModel):
    id: int
    name: str
    birth_date: date
    snils: str | None  # as the disclosure rule shows it (api/services/disclosure.py)
    has_snils: bool
    municipality: str | None
    providers: list[str]
    state: str | None
    state_label: str | None
    referral_dates: list[date]


class DuplicatePair(SQLModel):
    """Two children of the region that are likely one: same name and birth date (strong), or the same
    surname, first name and birth date with the middle name on one side only (weak)."""

    first: DuplicateSide
    second: DuplicateSide
    strength: str  # strong / weak
    strength_label: str
    # The fields in which the two records differ, and their Russian names.
    differing: list[str]
    differing_labels: list[str]


class MergeIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    keep_child_id: DbId
    merge_child_id: DbId
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("Укажите причину объединения")
        return value.strip()


class UndoIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    reason: str | None = Field(default=None, max_length=2000)


class MergePublic(SQLModel):
    id: int
    keep_child_id: int
    merge_child_id: int
    keep_child_name: str
    merge_child_name: str
    reason: str
    merged_by_id: int
    merged_by_name: str
    merged_at: datetime
    # How many rows of each kind moved, and the fields filled on the kept child (names only).
    moved: dict[str, int]
    filled_fields: list[str]
    filled_labels: list[str]
    undone_at: datetime | None
    undone_by_id: int | None
    undo_reason: str | None


class DistinctIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    first_child_id: DbId
    second_child_id: DbId
    reason: str | None = Field(default=None, max_length=2000)


class DistinctPublic(SQLModel):
    id: int
    first_child_id: int
    second_child_id: int
    reason: str | None
    marked_by_id: int
    marked_at: datetime


def moved_counts(moved: dict[str, Any]) -> dict[str, int]:
    return {kind: len(moved.get(kind, [])) for kind in MOVED_KINDS}
