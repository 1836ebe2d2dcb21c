from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, func, select

from api.deps import CurrentUser, SessionDep
from api.openapi import responses
from core.errors import Forbidden
from models.cases import Case
from models.organisations import Organisation
from models.users import Role
from statemachines import STATE_LABELS

router = APIRouter(tags=["Статистика"], responses=responses(403))


@router.get("/stats/cases", summary="Число случаев по состояниям (обезличенно)")
def case_counts(principal: CurrentUser, session: SessionDep) -> dict[str, object]:
    """Counts only, no personal data: the one view an analyst has (DESIGN §6)."""
    query = select(Case.state, func.count()).group_by(Case.state)
    if principal.role == Role.analyst or principal.is_regional_supervisor:
        region_orgs = select(Organisation.id).where(Organisation.region_id == principal.org.region_id)
        query = query.where(col(Case.provider_id).in_(region_orgs))
    elif principal.is_provider_staff:
        query = query.where(Case.provider_id == principal.org.id)
    else:
        raise Forbidden("Статистика недоступна для вашей роли")
    counts = dict(session.exec(query).all())
    return {
        "by_state": [
            {"state": state, "label": label, "count": counts.get(state, 0)}
            for state, label in STATE_LABELS.items()
        ],
        "total": sum(counts.values()),
    }
