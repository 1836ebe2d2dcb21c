"""Parts of the case page that belong to the workflows beside the journey (transfer, routing,
consilium, team, adaptation): each page module registers its part here, and the case page
(api/pages/cases.py) loads and includes them, so the card grows without one module knowing all.

A part's loader reads through its own service (scoped, audited by the caller's page route like the
rest of the card) and returns the variables its template needs, or None to show nothing. Its
template sees the whole card's context as well (errors, values, failed_form, csrf...) and its own
variables as `part`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session

from api.deps import Principal
from models.cases import Case

Loader = Callable[[Session, Principal, Case], dict[str, Any] | None]
# "top": under the case's state (a pending transfer, the adaptation period); "main": with the other
# sections, after the ИПРП and before the sessions.
Slot = Literal["top", "main"]


@dataclass(frozen=True)
class Part:
    name: str
    template: str
    slot: Slot
    order: int
    load: Loader


PARTS: list[Part] = []


def register(name: str, template: str, load: Loader, *, slot: Slot = "main", order: int = 50) -> None:
    PARTS[:] = [p for p in PARTS if p.name != name] + [Part(name, template, slot, order, load)]
    PARTS.sort(key=lambda p: (p.order, p.name))


def load_parts(session: Session, principal: Principal, case: Case) -> dict[str, list[dict[str, Any]]]:
    """{slot: [{"name", "template", "data"}]} for the parts that have something to show."""
    shown: dict[str, list[dict[str, Any]]] = {"top": [], "main": []}
    for part in PARTS:
        data = part.load(session, principal, case)
        if data is not None:
            shown[part.slot].append({"name": part.name, "template": part.template, "data": data})
    return shown
