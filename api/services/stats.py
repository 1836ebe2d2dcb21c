"""De-personalised counts (DESIGN §6): the one view an analyst has; no names, no ids of children."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from api.deps import Principal
from core.errors import Forbidden
from models.cases import Case
from models.organisations import Organisation
from models.users import Role
from statemachines import STATE_LABELS


def case_counts(session: Session, principal: Principal) -> dict[str, Any]:
    """The number of cases in each state of the journey: the region's for an analyst or the
    regional supervisor, the organisation's for a provider's staff."""
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
