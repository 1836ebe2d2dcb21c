from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from api.openapi import responses
from api.services import stats
from api.services.statistics import Statistics
from api.services.stats import case_counts as count_cases
from models.common import IdParam, JsonDate

router = APIRouter(tags=["Статистика"], responses=responses(403))


@router.get("/stats/cases", summary="Число случаев по состояниям (обезличенно)")
def case_counts(principal: CurrentUser, session: SessionDep) -> dict[str, object]:
    """Counts only, no personal data: the one view an analyst has (DESIGN §6)."""
    return count_cases(session, principal)


@router.get(
    "/stats",
    summary="Статистика региона или организации за период",
    responses=responses(404, 422),
)
def statistics(
    principal: CurrentUser,
    session: SessionDep,
    start: Annotated[
        JsonDate | None, Query(description="Начало периода (дата региона), по умолчанию 1 января")
    ] = None,
    end: Annotated[
        JsonDate | None, Query(description="Конец периода включительно, по умолчанию сегодня")
    ] = None,
    provider_id: Annotated[
        IdParam | None, Query(description="Организация ранней помощи региона; без неё — весь регион")
    ] = None,
) -> Statistics:
    """Counted from the journeys' history (docs/readme/statistics.md defines each number). The analyst
    gets the region's numbers with small cells suppressed («<5»); the РРМЦ the region's and any of its
    providers'; a provider's head, coordinators and curators their own provider's."""
    first, today = stats.default_period(principal)
    return stats.statistics_for(session, principal, start or first, end or today, provider_id)
