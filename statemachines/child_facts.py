"""What a child's journeys say, kept on the child's row for the РРМЦ's registry filters.

The target-group registry (api/services/registry.py) filters the region's children by category (in
need, served), criterion and referral period. Asked of the journeys themselves, each is an EXISTS over
referrals, cases, conclusions, ИПРП and sessions, and a list combining them walked tens of thousands
of rows on PostgreSQL (the capped count of «served, a municipality, a criterion, a year»: 28 ms of its
request's 69; bench/RESULTS.md). On the child's row they are columns read with it.

They are derived, never typed in: `refresh` recomputes them from the journeys, and every door that
changes what they are made of calls it in its own transaction — a transition (statemachines.fire: a
conclusion, an ИПРП), a referral given to a child (api/services/referrals.py), a session marked held
(api/services/attendance.py), a merge and its undo (api/services/merges.py). The bulk generators call
`refresh` for their region. tests/test_child_facts.py checks each door and the whole region against
the journeys.

Region-wide facts: they are the РРМЦ's view. A provider's staff see only their own cases' facts, which
the registry still asks of the journeys (a provider's children are few enough).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Integer, exists, func, literal_column, union_all, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from models.cases import Case
from models.children import Child
from models.common import JSONType
from models.programmes import Ipr, NeedConclusion, NeedOutcome, ServiceSession, SessionStatus
from models.referrals import Referral

# The columns kept here (expired on loaded records after an update).
FACTS = ("in_need", "served", "referral_criteria", "first_referred_on", "last_referred_on")
NEEDING = (NeedOutcome.ipr.value, NeedOutcome.consultation.value)
# IN lists in chunks (as the registry sends them).
CHUNK = 500

# The codes named by the child's referrals, each once, as a JSON list (per dialect: the aggregate of a
# JSON array's elements has no portable spelling).
_CRITERIA_SQL = {
    "postgresql": (
        "(SELECT coalesce(jsonb_agg(DISTINCT code.value ORDER BY code.value), '[]'::jsonb) "
        "FROM referral, jsonb_array_elements_text(referral.criteria) AS code(value) "
        "WHERE referral.child_id = child.id)"
    ),
    "sqlite": (
        "(SELECT json_group_array(DISTINCT code.value) "
        "FROM referral, json_each(referral.criteria) AS code "
        "WHERE referral.child_id = child.id)"
    ),
}


def in_need_condition() -> Any:
    """SQL on Case: a conclusion of need determination says the child needs help (ИПРП or
    consultations)."""
    return exists().where(col(NeedConclusion.case_id) == Case.id, col(NeedConclusion.outcome).in_(NEEDING))


def served_condition() -> Any:
    """SQL on Case: the child got help — a session held, or an ИПРП the parent agreed to.

    One EXISTS over a UNION ALL, not two EXISTS joined by OR: PostgreSQL hashed every ИПРП of the
    region for the OR's second branch before it read a row (the capped count of «served» 25 -> 4 ms
    on 100 000 children); the union is probed per case and stops at its first row."""
    held = (
        sa_select(literal_column("1", Integer))
        .where(col(ServiceSession.case_id) == Case.id, col(ServiceSession.status) == SessionStatus.held)
        .correlate(Case)
    )
    agreed = sa_select(literal_column("1", Integer)).where(col(Ipr.case_id) == Case.id).correlate(Case)
    return union_all(held, agreed).exists()


def _values(dialect: str) -> dict[str, object]:
    """The SET of the UPDATE: each fact as SQL correlated to the child being updated (the same
    conditions a provider's registry asks of its own cases)."""
    of_child = col(Referral.child_id) == Child.id
    return {
        "in_need": exists().where(col(Case.child_id) == Child.id, in_need_condition()),
        "served": exists().where(col(Case.child_id) == Child.id, served_condition()),
        "first_referred_on": select(func.min(Referral.referral_date)).where(of_child).scalar_subquery(),
        "last_referred_on": select(func.max(Referral.referral_date)).where(of_child).scalar_subquery(),
        "referral_criteria": literal_column(_CRITERIA_SQL[dialect], JSONType),
    }


def refresh(session: Session, child_ids: Collection[int | None]) -> None:
    """Recompute the facts of these children from their journeys (what this transaction added too)."""
    ids = sorted({i for i in child_ids if i is not None})
    if not ids:
        return
    session.flush()
    values = _values(session.get_bind().dialect.name)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        # The rows locked first, in a statement of their own: on PostgreSQL (read committed) an
        # UPDATE that waited for another transaction's refresh of the child would then write facts
        # counted from the journeys as they were before that one committed. Locked, the UPDATE reads
        # them afresh. SQLite writes one transaction at a time (and has no FOR UPDATE).
        session.execute(
            select(Child.id).where(col(Child.id).in_(chunk)).order_by(col(Child.id)).with_for_update()
        )
        session.execute(
            update(Child)
            .where(col(Child.id).in_(chunk))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for child_id in ids:
        loaded = session.identity_map.get(identity_key(Child, child_id))
        if loaded is not None:
            session.expire(loaded, list(FACTS))


def refresh_region(session: Session, region_id: int) -> None:
    """Recompute the facts of every child of a region (the bulk generators, after their inserts)."""
    session.flush()
    session.execute(
        update(Child)
        .where(col(Child.region_id) == region_id)
        .values(**_values(session.get_bind().dialect.name))
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
