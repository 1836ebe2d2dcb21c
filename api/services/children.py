"""Children as the API and the pages read them: the search (name with ё = е, or СНИЛС), one child
with its legal representatives, and the child's consents. Scoping is api/scoping.py's child_scope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, func, select

from api.deps import Principal
from api.scoping import case_scope, child_scope, get_child, require_provider_staff
from api.services.disclosure import shown_snils
from core.errors import Conflict, Unprocessable
from models.cases import Case
from models.children import Child, ChildPublic, LegalRepresentative, RepresentativePublic, validate_snils
from models.common import like_escaped, normalise_name, today_in
from models.consents import (
    CONSENT_LABELS,
    Consent,
    ConsentIn,
    ConsentPublic,
    ConsentStatus,
    consent_date_problem,
)
from models.organisations import Region
from models.users import Role
from statemachines import FINAL_STATES


def public(principal: Principal, child: Child, representatives: Sequence[LegalRepresentative]) -> ChildPublic:
    data = {name: getattr(child, name) for name in ChildPublic.model_fields if name != "representatives"}
    data["snils"] = shown_snils(principal, child.snils)
    data["representatives"] = [
        RepresentativePublic.model_validate(r, from_attributes=True) for r in representatives
    ]
    return ChildPublic.model_validate(data)


def _search_conditions(principal: Principal, q: str | None, snils: str | None) -> list[Any]:
    """What a search asks for, refused (422) when it asks for nothing; always within the scope."""
    # The region too (the scope implies it): the search then walks the (region, name) index in
    # name order and stops at a page's worth, instead of sorting every match.
    conditions: list[Any] = [child_scope(principal), Child.region_id == principal.org.region_id]
    if snils:
        try:
            conditions.append(Child.snils == validate_snils(snils))
        except ValueError as error:
            raise Unprocessable(str(error), field="snils") from error
    if q:
        words = normalise_name(q).split(" ")
        if not any(words):
            raise Unprocessable("Введите часть ФИО", field="q")
        for word in words:
            conditions.append(col(Child.name_key).like(f"%{like_escaped(word)}%", escape="\\"))
    if not q and not snils:
        raise Unprocessable("Укажите ФИО (q) или СНИЛС (snils)", field="q")
    return conditions


# Beyond this many matches a search says «более 1000» and asks for more of the name.
SEARCH_COUNT_CAP = 1000


def search(
    session: Session,
    principal: Principal,
    *,
    q: str | None,
    snils: str | None,
    limit: int,
    offset: int = 0,
    with_total: bool = False,
) -> tuple[list[Child], int | None]:
    """Children matching a part of the name (case- and ё-insensitive, every word) or a СНИЛС, by
    name; the total only when asked (a page's pager needs it, the API does not), at most
    SEARCH_COUNT_CAP + 1."""
    conditions = _search_conditions(principal, q, snils)
    total = None
    if with_total:
        # Counted up to one past the cap: a common surname matches thousands, and an exact count of
        # them costs a scan of every match for a number nobody pages through (bench/RESULTS.md).
        matching = select(Child.id).where(*conditions).limit(SEARCH_COUNT_CAP + 1).subquery()
        total = session.exec(select(func.count()).select_from(matching)).one()
    children = list(
        session.exec(
            select(Child)
            .where(*conditions)
            .order_by(col(Child.name_key), col(Child.id))
            .offset(offset)
            .limit(limit)
        )
    )
    return children, total


def representatives(session: Session, children: Sequence[Child]) -> dict[int, list[LegalRepresentative]]:
    reps: dict[int, list[LegalRepresentative]] = {}
    if children:
        for rep in session.exec(
            select(LegalRepresentative).where(col(LegalRepresentative.child_id).in_([c.id for c in children]))
        ):
            reps.setdefault(rep.child_id, []).append(rep)
    return reps


def current_cases(session: Session, principal: Principal, child_ids: Sequence[int]) -> dict[int, Case]:
    """Each child's current case the caller may see: the open one, else the latest closed."""
    found: dict[int, Case] = {}
    if not child_ids:
        return found
    rows = session.exec(
        select(Case)
        .where(col(Case.child_id).in_(list(child_ids)), case_scope(principal))
        .order_by(col(Case.id))
    )
    for case in rows:  # oldest first: a later case replaces an earlier one, but not an open one
        known = found.get(case.child_id)
        if known is None or known.state in FINAL_STATES or case.state not in FINAL_STATES:
            found[case.child_id] = case
    return found


def detail(session: Session, principal: Principal, child_id: int) -> ChildPublic:
    child = get_child(session, principal, child_id)
    reps = list(session.exec(select(LegalRepresentative).where(LegalRepresentative.child_id == child.id)))
    return public(principal, child, reps)


def consent_public(row: Consent) -> ConsentPublic:
    assert row.id is not None
    return ConsentPublic(
        id=row.id,
        child_id=row.child_id,
        kind=row.kind,
        kind_label=CONSENT_LABELS[row.kind],
        status=row.status,
        date=row.date,
        document_ref=row.document_ref,
        recorded_at=row.recorded_at,
    )


def add_consent(session: Session, principal: Principal, child_id: int, body: ConsentIn) -> Consent:
    """Record a consent given or withdrawn; the caller writes the audit row."""
    require_provider_staff(principal, {Role.intake_coordinator, Role.curator, Role.supervisor})
    child = get_child(session, principal, child_id, invited=False)  # an invited member only reads
    assert child.id is not None
    # Consents belong to the child, so they steer every provider's messages and what referrers see:
    # only the provider serving the child now records a consent given (not one with an old, closed
    # case); a withdrawal, which only narrows what is shared, any provider the child is known to.
    serving = (
        body.status == ConsentStatus.withdrawn
        or session.exec(
            select(Case.id).where(
                Case.child_id == child.id,
                Case.provider_id == principal.org.id,
                col(Case.state).not_in(FINAL_STATES),
            )
        ).first()
    )
    if not serving:
        raise Conflict(
            "Согласие регистрирует организация, которая сейчас сопровождает ребёнка", field="child_id"
        )
    region = session.get(Region, child.region_id)
    assert region is not None
    today = today_in(region.timezone)  # the region's today, not the server's
    if problem := consent_date_problem(body.date, today=today, birth_date=child.birth_date):
        raise Unprocessable(problem, field="date")
    row = Consent(child_id=child.id, recorded_by_id=principal.id, **body.model_dump())
    session.add(row)
    session.flush()
    return row


def consents(session: Session, principal: Principal, child_id: int) -> tuple[Child, list[ConsentPublic]]:
    """The child's consents, the whole history, oldest first."""
    child = get_child(session, principal, child_id)
    rows = session.exec(
        select(Consent).where(Consent.child_id == child.id).order_by(col(Consent.date), col(Consent.id))
    )
    return child, [consent_public(r) for r in rows]
