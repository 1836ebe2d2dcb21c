from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import CurrentUser, SessionDep
from api.openapi import responses
from api.services import standard as standard_service
from models.standard import StandardPublic
from statemachines.journey import FINAL_STATES, STATE_LABELS, TRANSITIONS, describe
from statemachines.workflows import REGISTRY

router = APIRouter(tags=["Маршрут"])


@router.get(
    "/standard",
    response_model=StandardPublic,
    summary="Стандарт региона: критерии, перечень услуг, сроки, причины завершения, допустимые значения",
    responses=responses(401),
)
def region_standard(principal: CurrentUser, session: SessionDep) -> StandardPublic:
    """The standard of the caller's region as data (no personal data: any signed-in user may read it)."""
    return standard_service.region_standard(session, principal)


@router.get("/journey", summary="Описание маршрута ребёнка: состояния, события, переходы")
def journey() -> dict[str, Any]:
    return describe()


@lru_cache(maxsize=1)
def _mermaid() -> str:
    lines = ["stateDiagram-v2"]
    for name, label in STATE_LABELS.items():
        lines.append(f'    state "{label}" as {name}')
    lines.append("    [*] --> referred")
    seen: set[tuple[str, str, str]] = set()
    for row in TRANSITIONS:
        sources = [row.source] if isinstance(row.source, str) else list(row.source)
        for source in sources:
            key = (source, row.dest, row.event)
            if key not in seen:
                seen.add(key)
                lines.append(f"    {source} --> {row.dest}: {row.event}")
    for final in (name for name in STATE_LABELS if name in FINAL_STATES):
        lines.append(f"    {final} --> [*]")
    # The workflows beside the journey, each a composite state of its own (names prefixed: a
    # transfer's "accepted" is not a routing's).
    for workflow in REGISTRY.values():
        lines.append(f'    state "{workflow.label}" as {workflow.name} {{')
        for name, label in workflow.states:
            lines.append(f'        state "{label}" as {workflow.name}_{name}')
        lines.append(f"        [*] --> {workflow.name}_{workflow.initial}")
        for step in workflow.steps:
            for source in step.sources:
                lines.append(
                    f"        {workflow.name}_{source} --> {workflow.name}_{step.dest}: {step.event}"
                )
        for name, _ in workflow.states:
            if name in workflow.final:
                lines.append(f"        {workflow.name}_{name} --> [*]")
        lines.append("    }")
    return "\n".join(lines) + "\n"


@router.get(
    "/journey.mermaid",
    response_class=PlainTextResponse,
    summary="Схема маршрута в формате Mermaid (stateDiagram-v2)",
)
def journey_mermaid() -> str:
    return _mermaid()
