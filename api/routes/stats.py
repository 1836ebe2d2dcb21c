from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.openapi import responses
from api.services.stats import case_counts as count_cases

router = APIRouter(tags=["Статистика"], responses=responses(403))


@router.get("/stats/cases", summary="Число случаев по состояниям (обезличенно)")
def case_counts(principal: CurrentUser, session: SessionDep) -> dict[str, object]:
    """Counts only, no personal data: the one view an analyst has (DESIGN §6)."""
    return count_cases(session, principal)
