"""The journey: states, transitions and guards as a table, and the one door that fires events."""

from statemachines.fire import (
    GuardFailed,
    JourneyError,
    NotAllowed,
    StaleVersion,
    allowed_events,
    available_events,
    fire,
    open_case,
)
from statemachines.journey import EVENTS, FINAL_STATES, STATE_LABELS, STATES

# The workflows beside the journey register themselves (statemachines/workflows.py).
from statemachines import transfer, routing, consilium  # noqa: F401  isort: skip

__all__ = [
    "EVENTS",
    "FINAL_STATES",
    "STATES",
    "STATE_LABELS",
    "GuardFailed",
    "JourneyError",
    "NotAllowed",
    "StaleVersion",
    "allowed_events",
    "available_events",
    "fire",
    "open_case",
]
