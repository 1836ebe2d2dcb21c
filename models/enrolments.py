"""What the receiving organisation (a ДОО) sees of the children coming to it, and how it confirms one.

The minimum (DESIGN §6): who the child is, who serves the family and how to reach the curator, and
the dates of the transition; no conclusion, no ИПРП, no history.
"""

from __future__ import annotations

from datetime import date

from pydantic import ConfigDict
from sqlmodel import SQLModel

from models.common import JsonDate


class EnrolmentPublic(SQLModel):
    case_id: int
    child_name: str
    child_birth_date: date
    provider_name: str
    provider_phone: str | None
    curator_name: str | None
    curator_email: str | None
    state: str
    state_label: str
    # When the child is expected: the third birthday (the standard's age limit), unless enrolled.
    expected_on: date
    enrolled_on: date | None
    adaptation_ends_on: date | None


class EnrolmentConfirm(SQLModel):
    """POST /enrolments/{case_id}/confirm: the day the child came to the pre-school."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    enrolled_on: JsonDate
