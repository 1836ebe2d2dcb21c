"""What a guard or a record sees while an event is being fired."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models.cases import Case
from models.users import User
from standards import Standard


class Refusal(NamedTuple):
    field: str | None  # what the refusal is about (a dotted path), None for the case itself
    reason: str  # Russian


@dataclass
class JourneyContext:
    # pytransitions reads and writes `state` here; the case row itself is never its model.
    state: str
    session: Session
    case: Case
    event: str
    payload: Any  # the event's validated payload model (None while only preconditions are checked)
    actor: User | None  # None: the system (a timer of the standard)
    reason: str | None
    standard: Standard
    timezone: ZoneInfo
    now: datetime
    # Guards append their refusals; records put column changes for the case here.
    failures: list[Refusal] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def today(self) -> date:
        """Today in the region's time zone: what a coordinator there calls today."""
        return self.now.astimezone(self.timezone).date()
