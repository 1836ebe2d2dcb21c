"""De-personalised counts (DESIGN §6): the one view an analyst has; no names, no ids of children."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.services import statistics
from api.services.statistics import Breakdown, Cell, Statistics, suppress_table
from core.errors import Forbidden, NotFound, Unprocessable
from models.cases import Case
from models.organisations import Organisation, OrgKind, Region
from models.users import Role
from standards import StatisticsRules, load_standard
from statemachines import STATE_LABELS


def case_counts(session: Session, principal: Principal) -> dict[str, Any]:
    """The number of cases in each state of the journey: the region's for an analyst or the
    regional supervisor, the organisation's for a provider's staff. The analyst's small cells are
    suppressed like the rest of the statistics (`count` null, `shown` «<5»)."""
    table = state_counts(session, principal)
    assert table.total is not None
    return {
        "by_state": [
            {
                "state": c.code,
                "label": c.label,
                "count": c.value,
                "suppressed": c.suppressed,
                "shown": c.shown,
            }
            for c in table.cells
        ],
        "total": table.total.value,
        "total_shown": table.total.shown,
    }


def state_counts(session: Session, principal: Principal) -> Breakdown:
    """case_counts as a table of the statistics (the page draws it like the others)."""
    query = select(Case.state, func.count()).group_by(Case.state)
    if principal.role == Role.analyst or principal.is_regional_supervisor:
        region_orgs = select(Organisation.id).where(Organisation.region_id == principal.org.region_id)
        query = query.where(col(Case.provider_id).in_(region_orgs))
    elif principal.is_provider_staff:
        query = query.where(Case.provider_id == principal.org.id)
    else:
        raise Forbidden("Статистика недоступна для вашей роли")
    counts: dict[str, int] = {state: n for state, n in session.exec(query).all()}
    table = Breakdown(
        code="states",
        title="Случаи по состояниям сейчас",
        unit="cases",
        additive=True,
        total=Cell(code="total", label="Всего", value=sum(counts.values())),
        cells=[
            Cell(code=state, label=label, value=counts.get(state, 0)) for state, label in STATE_LABELS.items()
        ],
    )
    if principal.role == Role.analyst:
        rules = _rules(session, principal)
        suppress_table(table, rules.min_cell, rules.round_to)
    return table


def _rules(session: Session, principal: Principal) -> StatisticsRules:
    region = session.get(Region, principal.org.region_id)
    return load_standard(region.code if region else None).statistics


# --- statistics over a period (api/services/statistics.py computes them) -----------------------------

# Roles of a provider's staff that see their own provider's statistics: who plans and answers for its
# work (a specialist's day needs none of it).
PROVIDER_VIEWERS = frozenset({Role.supervisor, Role.intake_coordinator, Role.curator})
MAX_PERIOD_DAYS = 3660  # ten years and the leap days in them


def is_regional_viewer(principal: Principal) -> bool:
    """The analyst and the РРМЦ's supervisor: the whole region, and any of its providers."""
    return principal.role == Role.analyst or principal.is_regional_supervisor


def may_see_statistics(principal: Principal) -> bool:
    return is_regional_viewer(principal) or (
        principal.is_provider_staff and principal.role in PROVIDER_VIEWERS
    )


def default_period(principal: Principal) -> tuple[date, date]:
    """The year so far, in the caller's region."""
    today = principal.today
    return date(today.year, 1, 1), today


def check_period(start: date, end: date) -> None:
    if start > end:
        raise Unprocessable("Начало периода не может быть позже его окончания", field="start")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise Unprocessable("Период не может быть длиннее 10 лет", field="end")


def providers(session: Session, principal: Principal) -> list[Organisation]:
    """The providers whose statistics the caller may open (the picker of the page)."""
    if is_regional_viewer(principal):
        return list(
            session.exec(
                select(Organisation)
                .where(
                    Organisation.region_id == principal.org.region_id, Organisation.kind == OrgKind.provider
                )
                .order_by(col(Organisation.name))
            )
        )
    return [principal.org]


def statistics_for(
    session: Session, principal: Principal, start: date, end: date, provider_id: int | None = None
) -> Statistics:
    """The statistics the caller may see: the region's (or one of its providers') for the analyst —
    suppressed (DESIGN §6) — and the РРМЦ; the own provider's for its head, coordinators and curators.
    Another region's provider, or another provider for a provider's staff: 404."""
    if not may_see_statistics(principal):
        raise Forbidden("Статистика недоступна для вашей роли")
    check_period(start, end)
    if not is_regional_viewer(principal):
        if provider_id is not None and provider_id != principal.org.id:
            raise NotFound("Организация не найдена", field="provider_id")
        provider_id = principal.org.id
    elif provider_id is not None:
        org = session.get(Organisation, provider_id)
        if org is None or org.region_id != principal.org.region_id or org.kind != OrgKind.provider:
            raise NotFound("Организация не найдена", field="provider_id")
    result = statistics.compute(session, principal.org.region_id, start, end, provider_id)
    if principal.role == Role.analyst:
        rules = _rules(session, principal)
        return statistics.suppress(result, rules.min_cell, rules.round_to)
    return result
