"""The target-group registry (issue 12): one row per child of the region — identified (referred), in
need, served — with filters, and the review list of likely duplicates.

Who reads it: the РРМЦ (the region's children), a provider's head and intake coordinator (the
children with a case at their provider, and of those children only what their own cases and
referrals say). Everyone else is refused (403): an analyst reads counts only (api/services/stats.py),
a referrer its own referrals. Merged children are gone from it (api/scoping.child_scope).

A page costs a handful of queries whatever its size: the page's child ids first (walking the
(region, name) index in name order with the filters as columns or EXISTS), then the details in a few
IN queries; the total is counted up to COUNT_CAP + 1, as the search does. The РРМЦ's category,
criterion and referral period are the child's own columns, kept by statemachines/child_facts.py; a
provider's are asked of its own cases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, cast, text, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlmodel import Session, and_, col, exists, func, or_, select, true

from api.deps import Principal, caller_region
from api.scoping import child_scope
from api.services.disclosure import shown_snils
from core.cache import Kept
from core.errors import Forbidden, Unprocessable
from models.cases import Case
from models.children import Child, full_name
from models.common import like_escaped, normalise_name
from models.organisations import Organisation
from models.programmes import (
    NEED_OUTCOME_LABELS,
    Ipr,
    NeedConclusion,
    NeedOutcome,
)
from models.referrals import Referral
from models.registry import (
    Category,
    DistinctChildren,
    DuplicatePair,
    DuplicateSide,
    RegistryPage,
    RegistryRow,
    RegistrySort,
)
from models.users import Role
from standards import load_standard
from statemachines import FINAL_STATES, STATE_LABELS, child_facts

# Beyond this many rows a list says «более 1000» (an exact count walks every match: bench/RESULTS.md).
COUNT_CAP = 1000
# Provider staff who keep their organisation's part of the registry.
PROVIDER_READERS = frozenset({Role.supervisor, Role.intake_coordinator})
SELF_REFERRAL = "Обращение родителей"
# How many pairs the review list shows at once (the rest after these are settled), and how many rows
# of candidates it reads for them at most (some are marked «разные дети» or outside a head's scope).
DUPLICATES_LIMIT = 200
CANDIDATE_ROWS = 5000
# IN lists are sent in chunks: SQLite's and psycopg's limits on parameters are far above, but a
# query with thousands of parameters plans slowly.
CHUNK = 500

DIFF_LABELS: dict[str, str] = {
    "last_name": "фамилия",
    "first_name": "имя",
    "middle_name": "отчество",
    "sex": "пол",
    "snils": "СНИЛС",
    "municipality": "район",
    "address": "адрес",
}


def require_reader(principal: Principal) -> None:
    """The named registry: the РРМЦ, a provider's head and intake coordinator."""
    if principal.is_regional_supervisor:
        return
    if principal.is_provider_staff and principal.role in PROVIDER_READERS:
        return
    raise Forbidden(
        "Реестр детей целевой группы доступен РРМЦ, руководителю и координатору приёма "
        "организации ранней помощи"
    )


def require_reviewer(principal: Principal) -> None:
    """The review list of duplicates and the merge: the РРМЦ and a provider's head."""
    if principal.is_regional_supervisor:
        return
    if principal.is_provider_staff and principal.role == Role.supervisor:
        return
    raise Forbidden("Дубликаты записей о детях рассматривают РРМЦ и руководитель организации ранней помощи")


@dataclass
class RegistryFilter:
    """What a registry list asks for; every part optional (None: not filtered)."""

    category: Category = Category.identified
    criterion: str | None = None
    municipality: str | None = None
    state: str | None = None
    provider_id: int | None = None
    referred_from: date | None = None
    referred_to: date | None = None
    opened_from: date | None = None
    opened_to: date | None = None
    q: str | None = None
    sort: RegistrySort = RegistrySort.name


def check_filter(session: Session, principal: Principal, wanted: RegistryFilter) -> None:
    """422 with the field for what cannot be asked (the API's types already refused garbage)."""
    if wanted.criterion is not None:
        codes = load_standard(caller_region(session, principal).code).criterion_codes()
        if wanted.criterion not in codes:
            raise Unprocessable("Неизвестный критерий нуждаемости", field="criterion")
    if wanted.state is not None and wanted.state not in STATE_LABELS:
        raise Unprocessable("Неизвестное состояние случая", field="state")
    for name in ("referred", "opened"):
        start, end = getattr(wanted, f"{name}_from"), getattr(wanted, f"{name}_to")
        if start and end and start > end:
            raise Unprocessable("Начало периода позже его конца", field=f"{name}_from")
    if wanted.q is not None and not normalise_name(wanted.q):
        raise Unprocessable("Введите часть ФИО", field="q")


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, zone).astimezone(UTC)


def _own_cases(principal: Principal, case: Any = Case) -> Any:
    """SQL on `case`: the cases whose facts the reader sees. A provider's staff: their provider's.
    The РРМЦ: every case of the region's children — the children are already the region's (the child
    scope), and a child's cases are all at its region's providers (referrals and transfers stay in a
    region), so no condition here: a per-row IN over the region's organisations cost a third of a page."""
    if principal.is_regional_supervisor:
        return true()
    return case.provider_id == principal.org.id


def _has_case(principal: Principal, *conditions: Any) -> Any:
    """SQL: the child has a case the reader sees with `conditions` (correlated: walked with the
    children's name order, it stops at a page's worth; right for filters most children pass)."""
    return exists().where(col(Case.child_id) == Child.id, _own_cases(principal), *conditions)


def _in_cases(principal: Principal, *conditions: Any, walk: bool = False) -> Any:
    """SQL: the child is among those of the cases with `conditions` (one set computed once, through
    the conditions' index: right for filters few children pass, a provider, an opening period)."""
    return _child_in(select(Case.child_id).where(_own_cases(principal), *conditions), walk=walk)


def _in_referrals(principal: Principal, *conditions: Any, walk: bool = False) -> Any:
    """SQL: the child is among those of the referrals with `conditions`, of cases the reader sees."""
    query = select(Referral.child_id).where(col(Referral.child_id).is_not(None), *conditions)
    if not principal.is_regional_supervisor:
        query = query.where(col(Referral.case_id).in_(select(Case.id).where(_own_cases(principal))))
    return _child_in(query, walk=walk)


def _child_in(ids: Any, *, walk: bool) -> Any:
    """SQL: the child's id is in the set `ids`. For a walk in name order (`walk`) as `id + 0`: SQLite
    then probes the set for each child of the name index instead of driving the query from the set
    and sorting all of it (a provider's 5 000 children, each checked for the category: 23-40 ms)."""
    return (col(Child.id) + 0).in_(ids) if walk else col(Child.id).in_(ids)


def _has_referral(principal: Principal, *conditions: Any) -> Any:
    """SQL: the child has a referral of a case the reader sees, with `conditions` (correlated)."""
    if principal.is_regional_supervisor:
        return exists().where(col(Referral.child_id) == Child.id, *conditions)
    seen = aliased(Case)
    return exists().where(
        col(Referral.child_id) == Child.id,
        col(seen.id) == Referral.case_id,
        _own_cases(principal, seen),
        *conditions,
    )


def has_criterion(session: Session, code: str, codes: Any = Referral.criteria) -> Any:
    """SQL: the JSON list of criterion codes `codes` (a referral's, or a child's facts) names `code`.
    On PostgreSQL a JSONB containment, whose selectivity the planner reads from the column's
    statistics (a LIKE over the text it guessed at 10 rows of 38 000 and chose nested loops: 200-400
    ms); on SQLite a LIKE over the JSON text (a code is letters, digits and "_": nothing to escape)."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(col(codes), JSONB).contains([code])
    return cast(codes, String).like(f'%"{code}"%')


def _referred_between(principal: Principal, start: date | None, end: date | None) -> Any:
    """SQL: the child has a referral dated within [start, end], from the child's facts (the РРМЦ).
    Only a child referred both before and after the period needs its referrals looked at."""
    first, last = col(Child.first_referred_on), col(Child.last_referred_on)
    if start is None:
        return first <= end
    if end is None:
        return last >= start
    dated = col(Referral.referral_date)
    return or_(
        first.between(start, end),
        last.between(start, end),
        and_(first < start, last > end, _has_referral(principal, dated >= start, dated <= end)),
    )


# A filter whose rows number fewer than this is applied as a set the query is driven from (built
# through its index); a broader one as a correlated EXISTS checked while the children are walked,
# which stops at a page's worth (and the count at COUNT_CAP + 1). Where the two cost the same on
# 100 000 children: a set of a few thousand costs what walking past some 30 000 children does.
SET_LIMIT = 8000
# How far into a list (offset + page) a narrow filter's set is probed while walking in name order.
WALK_LIMIT = 250


def _few(session: Session, ids: Any) -> bool:
    """Whether the query of ids has fewer than SET_LIMIT rows (counted through its index, stopped there)."""
    counted = session.exec(select(func.count()).select_from(ids.limit(SET_LIMIT).subquery())).one()
    return counted < SET_LIMIT


# A filter's SQL twice: to read the matches in any order (a set as what the query is driven from),
# and to walk the children in name order (a set as a probe). The same rows either way.
_Term = tuple[Any, Any]


def _case_filter(session: Session, principal: Principal, *conditions: Any) -> _Term:
    if _few(session, select(Case.id).where(_own_cases(principal), *conditions)):
        return _in_cases(principal, *conditions), _in_cases(principal, *conditions, walk=True)
    found = _has_case(principal, *conditions)
    return found, found


def _referral_filter(session: Session, principal: Principal, *conditions: Any) -> _Term:
    if _few(session, select(Referral.id).where(*conditions)):
        return _in_referrals(principal, *conditions), _in_referrals(principal, *conditions, walk=True)
    found = _has_referral(principal, *conditions)
    return found, found


def conditions(session: Session, principal: Principal, wanted: RegistryFilter) -> list[Any]:
    """The WHERE of a registry list: the caller's children of the region, not merged, as filtered."""
    return [term for term, _ in _terms(session, principal, wanted)]


def _terms(session: Session, principal: Principal, wanted: RegistryFilter) -> list[_Term]:
    """conditions() with each term's form for the walk in name order (_Term). The child's own
    columns first, the EXISTS after them: SQLite checks the terms in this order."""
    require_reader(principal)
    check_filter(session, principal, wanted)
    where: list[Any] = [child_scope(principal), Child.region_id == principal.org.region_id]
    sets: list[_Term] = []
    if wanted.municipality:
        where.append(Child.municipality == wanted.municipality)
    if wanted.q:
        for word in normalise_name(wanted.q).split(" "):
            where.append(col(Child.name_key).like(f"%{like_escaped(word)}%", escape="\\"))
    # The РРМЦ's category, criterion and referral period are the child's facts (its columns, kept by
    # statemachines/child_facts.py); a provider's are asked of its own cases below.
    region_wide = principal.is_regional_supervisor
    if region_wide:
        if wanted.category == Category.in_need:
            where.append(col(Child.in_need))
        elif wanted.category == Category.served:
            where.append(col(Child.served))
        if wanted.criterion:
            where.append(has_criterion(session, wanted.criterion, Child.referral_criteria))
        if wanted.referred_from or wanted.referred_to:
            where.append(_referred_between(principal, wanted.referred_from, wanted.referred_to))
    if wanted.provider_id:
        sets.append(_case_filter(session, principal, Case.provider_id == wanted.provider_id))
    if not region_wide and (wanted.referred_from or wanted.referred_to):
        dates = []
        if wanted.referred_from:
            dates.append(col(Referral.referral_date) >= wanted.referred_from)
        if wanted.referred_to:
            dates.append(col(Referral.referral_date) <= wanted.referred_to)
        sets.append(_referral_filter(session, principal, *dates))
    if wanted.opened_from or wanted.opened_to:
        zone = ZoneInfo(caller_region(session, principal).timezone)
        opened = []
        if wanted.opened_from:
            opened.append(col(Case.opened_at) >= _start_of(wanted.opened_from, zone))
        if wanted.opened_to:
            opened.append(
                col(Case.opened_at) < _start_of(date.fromordinal(wanted.opened_to.toordinal() + 1), zone)
            )
        sets.append(_case_filter(session, principal, *opened))
    terms = [(term, term) for term in where] + sets
    where = []
    if wanted.state:
        where.append(_has_case(principal, Case.state == wanted.state))
    if not region_wide:
        if wanted.criterion:
            where.append(_has_referral(principal, has_criterion(session, wanted.criterion)))
        if wanted.category == Category.in_need:
            where.append(_has_case(principal, child_facts.in_need_condition()))
        elif wanted.category == Category.served:
            where.append(_has_case(principal, child_facts.served_condition()))
    return terms + [(term, term) for term in where]


def _order(sort: RegistrySort) -> list[Any]:
    if sort == RegistrySort.birth_date:
        return [col(Child.birth_date), col(Child.id)]
    if sort == RegistrySort.birth_date_desc:
        return [col(Child.birth_date).desc(), col(Child.id).desc()]
    if sort == RegistrySort.newest:
        return [col(Child.id).desc()]
    return [col(Child.name_key), col(Child.id)]


def _sort_key(sort: RegistrySort) -> Any:
    if sort == RegistrySort.birth_date:
        return lambda row: (row[2], row[0])
    if sort == RegistrySort.birth_date_desc:
        return lambda row: (-row[2].toordinal(), -row[0])
    if sort == RegistrySort.newest:
        return lambda row: -row[0]
    return lambda row: (row[1], row[0])


@contextmanager
def _planned_for_its_values(session: Session) -> Iterator[None]:
    """PostgreSQL: plan the statements inside for their values. psycopg prepares a statement run five
    times on a connection, and PostgreSQL may then keep one generic plan for it whatever its values:
    for the count of the matches, which cluster (a municipality, a criterion, a surname), that plan
    read three times the rows (the five-filter count 24 -> 64-78 ms from its tenth run). Only the
    count: planning every statement of a page anew cost 2-4 ms a page (bench/RESULTS.md)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    # No finally: a statement that failed aborted the transaction, which then takes nothing more
    # and forgets the setting with it.
    yield
    session.execute(text("SET LOCAL plan_cache_mode = DEFAULT"))


def page_ids(
    session: Session, principal: Principal, wanted: RegistryFilter, *, limit: int, offset: int = 0
) -> tuple[list[int], int]:
    """The ids of a page, in order, and the total counted up to COUNT_CAP + 1.

    The matches are read first, COUNT_CAP + 1 at most (any order: SQLite drives this from the
    smallest set it has). When that is all of them, the page is sorted from them here; otherwise
    matches are dense, and the page walks the (region, name) index until it has its rows."""
    terms = _terms(session, principal, wanted)
    counted = [term for term, _ in terms]
    if not principal.is_regional_supervisor:
        # The provider's children as a set the count can be driven from (a filter most of them fail
        # walked the whole region otherwise); not in the walk below, where it would sort them all.
        counted.append(_in_cases(principal))
    with _planned_for_its_values(session):
        # Through the connection: plain rows, without the ORM's result machinery (1 001 rows of it
        # cost 2 ms a page).
        matches = (
            session.connection()
            .execute(
                sa_select(col(Child.id), col(Child.name_key), col(Child.birth_date))
                .where(*counted)
                .limit(COUNT_CAP + 1)
            )
            .all()
        )
    total = len(matches)
    first = _first_word(wanted)
    if total <= COUNT_CAP:
        key = _sort_key(wanted.sort)
        if first is not None:
            plain = key
            key = lambda row: (not row[1].startswith(first), plain(row))  # noqa: E731
        ordered = sorted(matches, key=key)
        return [int(row[0] or 0) for row in ordered[offset : offset + limit]], total
    # More than COUNT_CAP match: the walk in name order passes about (offset + limit) / COUNT_CAP of
    # the region at most before it has its rows, with a narrow filter's set probed for each child.
    # Deeper, it could pass the whole region: a set is then what the query is driven from.
    walk = offset + limit <= WALK_LIMIT
    where = [walked if walk else term for term, walked in terms]
    if first is not None:
        # Planned for its values too: a generic plan of the range read every match through the
        # trigram index and sorted them (0.1 -> 13 ms on PostgreSQL).
        with _planned_for_its_values(session):
            return _beginning_first(session, where, first, limit=limit, offset=offset), total
    return _walked(session, where, _order(wanted.sort), limit=limit, offset=offset), total


def _walked(session: Session, where: list[Any], order: list[Any], *, limit: int, offset: int) -> list[int]:
    ids = session.exec(select(Child.id).where(*where).order_by(*order).offset(offset).limit(limit))
    return [i for i in ids if i is not None]


def _first_word(wanted: RegistryFilter) -> str | None:
    """A name search in name order lists the names that begin with its first word first (a surname
    typed is the surname's children, then the names that hold it elsewhere), each part by name."""
    if not wanted.q or wanted.sort != RegistrySort.name:
        return None
    return normalise_name(wanted.q).split(" ")[0]


def _beginning_first(session: Session, where: list[Any], word: str, *, limit: int, offset: int) -> list[int]:
    """The page of a dense name search: the names that begin with `word` are a range of the
    (region, name) index, read from its start, where a walk in plain name order passed every name
    before it (a common surname late in the alphabet: 30 ms on 100 000); then the other matches."""
    name = col(Child.name_key)
    # The range finds them through the index; LIKE keeps exactly those that begin with the word.
    begins = and_(name >= word, name.like(f"{like_escaped(word)}%", escape="\\"))
    if ord(word[-1]) < 0x10FFFF:
        begins = and_(begins, name < word[:-1] + chr(ord(word[-1]) + 1))
    order = _order(RegistrySort.name)
    head = _walked(session, [*where, begins], order, limit=limit, offset=offset)
    if len(head) == limit:
        return head
    skipped = 0
    if not head and offset:
        # The page starts past them: how many there are (fewer than `offset`) says where the rest start.
        counted = select(Child.id).where(*where, begins).limit(offset).subquery()
        skipped = offset - session.exec(select(func.count()).select_from(counted)).one()
    return head + _walked(session, [*where, ~begins], order, limit=limit - len(head), offset=skipped)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + CHUNK]) for i in range(0, len(ids), CHUNK)]


class _Stated(Protocol):
    state: str


_S = TypeVar("_S", bound=_Stated)


def _current(cases: Sequence[_S]) -> _S | None:
    """The open case, else the latest closed (cases oldest first)."""
    found: _S | None = None
    for case in cases:
        if found is None or found.state in FINAL_STATES or case.state not in FINAL_STATES:
            found = case
    return found


def _local_date(moment: datetime | None, zone: ZoneInfo) -> date | None:
    return moment.astimezone(zone).date() if moment else None


def visible_cases(session: Session, principal: Principal, child_ids: Sequence[int]) -> dict[int, list[Case]]:
    """The children's cases the reader sees, oldest first. Read by child id and filtered here: with
    the reader's provider in the WHERE, SQLite walked the provider's cases instead of the children's."""
    cases: dict[int, list[Case]] = {}
    for case in session.exec(
        select(Case).where(col(Case.child_id).in_(list(child_ids))).order_by(col(Case.id))
    ):
        if principal.is_regional_supervisor or case.provider_id == principal.org.id:
            cases.setdefault(case.child_id, []).append(case)
    return cases


@dataclass
class _ReferralFacts:
    case_id: int | None
    criteria: list[str]
    referral_date: date
    referring_org_id: int | None
    referring_org: str | None = None


# The statements of a page's rows, built once: building them anew took more of a page than running them.
_IDS: Any = bindparam("ids", expanding=True)
_REFERRAL_ROWS = (
    sa_select(
        col(Referral.child_id),
        col(Referral.case_id),
        col(Referral.criteria),
        col(Referral.referral_date),
        col(Referral.referring_org_id),
        col(Organisation.name),
    )
    .outerjoin(Organisation, col(Organisation.id) == col(Referral.referring_org_id))
    .where(col(Referral.child_id).in_(_IDS))
    .order_by(col(Referral.referral_date), col(Referral.id))
)
_CHILD_ROWS = sa_select(
    col(Child.id),
    col(Child.last_name),
    col(Child.first_name),
    col(Child.middle_name),
    col(Child.birth_date),
    col(Child.municipality),
).where(col(Child.id).in_(_IDS))


def _visible_referrals(
    session: Session, cases: dict[int, list[Any]], child_ids: Sequence[int]
) -> dict[int, list[_ReferralFacts]]:
    """The children's referrals of the cases the reader sees, by date (only the columns shown, with
    the referring organisation's name)."""
    seen = {c.id for found in cases.values() for c in found}
    out: dict[int, list[_ReferralFacts]] = {}
    for child_id, case_id, criteria, day, referring, referring_name in session.connection().execute(
        _REFERRAL_ROWS, {"ids": list(child_ids)}
    ):
        if case_id in seen:
            out.setdefault(child_id or 0, []).append(
                _ReferralFacts(case_id, list(criteria or []), day, referring, referring_name)
            )
    return out


@dataclass
class _CaseFacts:
    """What a registry row shows of a case: its provider's name, its latest need conclusion and the
    parent's first agreement to an ИПРП read with it (one query for all the page's cases)."""

    id: int
    child_id: int
    provider_id: int
    provider: str
    state: str
    opened_at: datetime
    closed_at: datetime | None
    need_outcome: str | None  # a NeedOutcome's value
    need_concluded_on: date | None
    ipr_agreed_on: date | None


def _case_rows() -> Any:
    revisions = aliased(NeedConclusion)
    latest_conclusion = (
        sa_select(func.max(revisions.id))
        .where(col(revisions.case_id) == Case.id)
        .correlate(Case)
        .scalar_subquery()
    )
    first_agreement = (
        sa_select(func.min(Ipr.parent_agreed_on)).where(col(Ipr.case_id) == Case.id).scalar_subquery()
    )
    return (
        sa_select(
            col(Case.id),
            col(Case.child_id),
            col(Case.provider_id),
            col(Organisation.name),
            col(Case.state),
            col(Case.opened_at),
            col(Case.closed_at),
            col(NeedConclusion.outcome),
            col(NeedConclusion.concluded_on),
            first_agreement,
        )
        .join(Organisation, col(Organisation.id) == col(Case.provider_id))
        .outerjoin(NeedConclusion, col(NeedConclusion.id) == latest_conclusion)
        .where(col(Case.child_id).in_(_IDS))
        .order_by(col(Case.id))
    )


_CASE_ROWS = _case_rows()


def _case_facts(
    session: Session, principal: Principal, child_ids: Sequence[int]
) -> dict[int, list[_CaseFacts]]:
    """The children's cases the reader sees, oldest first, as visible_cases() filters them."""
    out: dict[int, list[_CaseFacts]] = {}
    for row in session.connection().execute(_CASE_ROWS, {"ids": list(child_ids)}):
        case = _CaseFacts(*row)
        if principal.is_regional_supervisor or case.provider_id == principal.org.id:
            out.setdefault(case.child_id, []).append(case)
    return out


def rows(session: Session, principal: Principal, ids: Sequence[int]) -> list[RegistryRow]:
    """The registry's rows for these children, in this order: three queries per CHUNK ids (columns
    only: loading whole records cost more than the queries did)."""
    region = caller_region(session, principal)
    zone = ZoneInfo(region.timezone)
    standard = load_standard(region.code)
    out: list[RegistryRow] = []
    for chunk in _chunks(ids):
        children = {row[0]: row for row in session.connection().execute(_CHILD_ROWS, {"ids": chunk})}
        cases = _case_facts(session, principal, chunk)
        referrals = _visible_referrals(session, cases, chunk)
        for child_id in chunk:
            child = children.get(child_id)
            if child is None:
                continue
            own = referrals.get(child_id, [])
            found = cases.get(child_id, [])
            case = _current(found)
            criteria = list(dict.fromkeys(code for r in own for code in r.criteria))
            sources = list(
                dict.fromkeys((r.referring_org or "—") if r.referring_org_id else SELF_REFERRAL for r in own)
            )
            providers = list(dict.fromkeys(c.provider for c in found))
            final = case is not None and case.state in FINAL_STATES
            outcome = case.need_outcome if case else None
            out.append(
                RegistryRow(
                    id=child_id,
                    last_name=child.last_name,
                    first_name=child.first_name,
                    middle_name=child.middle_name,
                    birth_date=child.birth_date,
                    municipality=child.municipality,
                    criteria=criteria,
                    criteria_labels=[standard.criterion_label(code) for code in criteria],
                    first_referral_date=own[0].referral_date if own else None,
                    sources=sources,
                    providers=providers,
                    case_id=case.id if case else None,
                    state=case.state if case else None,
                    state_label=STATE_LABELS.get(case.state) if case else None,
                    opened_on=_local_date(case.opened_at, zone) if case else None,
                    need_outcome=outcome,
                    need_outcome_label=NEED_OUTCOME_LABELS[NeedOutcome(outcome)] if outcome else None,
                    need_concluded_on=case.need_concluded_on if case else None,
                    ipr_agreed_on=case.ipr_agreed_on if case else None,
                    closed_on=_local_date(case.closed_at, zone) if case and final else None,
                    final_state=case.state if final and case else None,
                    final_state_label=STATE_LABELS.get(case.state) if final and case else None,
                )
            )
    return out


def registry_page(
    session: Session, principal: Principal, wanted: RegistryFilter, *, page: int, per_page: int
) -> RegistryPage:
    ids, total = page_ids(session, principal, wanted, limit=per_page, offset=(page - 1) * per_page)
    return RegistryPage(
        items=rows(session, principal, ids),
        total=min(total, COUNT_CAP),
        total_capped=total > COUNT_CAP,
        count_cap=COUNT_CAP,
        page=page,
        per_page=per_page,
    )


# The region's municipalities as the children's records name them, for the filter's list: reading
# them walks every child of the region (0.2-0.4 s at 100 000), so each process keeps them a while.
LISTS_SECONDS = 600.0
_municipalities_kept: Kept[int, list[str]] = Kept(LISTS_SECONDS)


def _municipalities(session: Session, region_id: int) -> list[str]:
    def read() -> list[str]:
        return [
            m
            for m in session.exec(
                select(Child.municipality)
                .where(Child.region_id == region_id, col(Child.municipality).is_not(None))
                .distinct()
                .order_by(col(Child.municipality))
                .limit(500)
            ).all()
            if m
        ]

    return _municipalities_kept.get(region_id, read)


# The region's providers that have cases, for the provider filter's list: a region's registry of
# providers holds every one that is public (600 in the bench's region), and a page rendered them all
# as options for a filter that finds nothing at one without cases. Kept per process as above.
_providers_kept: Kept[int, list[tuple[int, str]]] = Kept(LISTS_SECONDS)


def _providers_with_cases(session: Session, region_id: int) -> list[tuple[int, str]]:
    def read() -> list[tuple[int, str]]:
        return [
            (int(org_id or 0), name)
            for org_id, name in session.exec(
                select(Organisation.id, Organisation.name)
                .where(
                    Organisation.region_id == region_id,
                    Organisation.kind == "provider",
                    exists().where(col(Case.provider_id) == Organisation.id),
                )
                .order_by(col(Organisation.name))
            ).all()
        ]

    return _providers_kept.get(region_id, read)


def options(session: Session, principal: Principal) -> dict[str, list[tuple[str, str]]]:
    """What the filters offer: the standard's criteria, the region's municipalities and the providers
    that have cases (a provider's staff: their own), the journey's states (no personal data)."""
    require_reader(principal)
    region = caller_region(session, principal)
    standard = load_standard(region.code)
    municipalities = _municipalities(session, region.id or 0)
    if principal.is_regional_supervisor:
        providers = _providers_with_cases(session, region.id or 0)
    else:
        providers = [(principal.org.id or 0, principal.org.name)]
    return {
        "criteria": [(c.code, c.label) for c in standard.criteria],
        "municipalities": [(m, m) for m in municipalities],
        "providers": [(str(i), n) for i, n in providers],
        "states": list(STATE_LABELS.items()),
    }


# --- likely duplicates ----------------------------------------------------------------------------


@dataclass
class _Pair:
    low: int
    high: int
    strength: str


@dataclass
class Sides:
    """What the review list shows of each child of its pairs."""

    children: dict[int, Child] = field(default_factory=dict)
    cases: dict[int, list[Case]] = field(default_factory=dict)
    referral_dates: dict[int, list[date]] = field(default_factory=dict)
    org_names: dict[int, str] = field(default_factory=dict)


def _reviewable(session: Session, principal: Principal, ids: set[int]) -> set[int]:
    """Of these children, those the reviewer may see in a pair: the РРМЦ every one (they are its
    region's); a provider's head those with a case at his provider."""
    if principal.is_regional_supervisor or not ids:
        return ids
    found: set[int] = set()
    listed = sorted(ids)
    for start in range(0, len(listed), CHUNK):
        found.update(
            session.exec(
                select(Case.child_id).where(
                    col(Case.child_id).in_(listed[start : start + CHUNK]),
                    Case.provider_id == principal.org.id,
                )
            ).all()
        )
    return found


def _marked(session: Session, pairs: Sequence[_Pair]) -> set[tuple[int, int]]:
    """The pairs among these someone marked «разные дети»."""
    marked: set[tuple[int, int]] = set()
    highs = sorted({p.high for p in pairs})
    for start in range(0, len(highs), CHUNK):
        marked.update(
            (low, high)
            for low, high in session.exec(
                select(DistinctChildren.child_low_id, DistinctChildren.child_high_id).where(
                    col(DistinctChildren.child_high_id).in_(highs[start : start + CHUNK])
                )
            ).all()
        )
    return marked


def pair_candidates(session: Session, principal: Principal, *, limit: int = DUPLICATES_LIMIT) -> list[_Pair]:
    """Pairs of non-merged children of the caller's region that are likely one child, not marked
    «разные дети»: strong (the same normalised name and birth date), then weak (the same birth date,
    surname and first name, the middle name on one side only). Both present and different СНИЛС
    mean two children; both equal cannot be (uq_child_region_snils). A provider's head gets the pairs
    whose both children have a case at his provider.

    Strong pairs come from the groups of the (region, name, birth date) index with more than one
    row (read from the index alone), weak ones from the children without a middle name
    (ix_child_no_middle_name) joined on the birth date (ix_child_birth_region)."""
    require_reviewer(principal)
    region_id = principal.org.region_id
    groups = (
        sa_select(col(Child.name_key), col(Child.birth_date))
        .where(col(Child.region_id) == region_id)
        .group_by(col(Child.name_key), col(Child.birth_date))
        .having(func.count() > 1)
        .subquery()
    )
    members = session.execute(
        sa_select(col(Child.id), col(Child.name_key), col(Child.birth_date), col(Child.snils))
        .join(
            groups,
            and_(col(Child.name_key) == groups.c.name_key, col(Child.birth_date) == groups.c.birth_date),
        )
        .where(col(Child.region_id) == region_id, col(Child.merged_into_id).is_(None))
        .order_by(col(Child.name_key), col(Child.birth_date), col(Child.id))
        .limit(CANDIDATE_ROWS)
    ).all()
    candidates: list[tuple[str, _Pair, str | None, str | None]] = []
    for i, (low, key, born, low_snils) in enumerate(members):
        for high, other_key, other_born, high_snils in members[i + 1 :]:
            if (other_key, other_born) != (key, born):
                break
            candidates.append((key, _Pair(low, high, "strong"), low_snils, high_snils))
    a, b = aliased(Child), aliased(Child)
    weak = session.execute(
        sa_select(col(a.id), col(b.id), col(a.name_key), col(a.snils), col(b.snils))
        .join(
            b,
            and_(
                col(b.region_id) == a.region_id,
                col(b.birth_date) == a.birth_date,
                col(b.middle_name).is_not(None),
                func.substr(b.name_key, 1, func.length(a.name_key) + 1) == a.name_key + " ",
            ),
        )
        .where(col(a.region_id) == region_id, col(a.middle_name).is_(None))
        .where(col(a.merged_into_id).is_(None), col(b.merged_into_id).is_(None))
        .limit(CANDIDATE_ROWS)
    ).all()
    for x, y, key, x_snils, y_snils in weak:
        candidates.append((key, _Pair(min(x, y), max(x, y), "weak"), x_snils, y_snils))
    candidates = [c for c in candidates if not (c[2] and c[3] and c[2] != c[3])]
    candidates.sort(key=lambda c: (c[1].strength != "strong", c[0], c[1].low, c[1].high))
    seen = _reviewable(session, principal, {i for c in candidates for i in (c[1].low, c[1].high)})
    marked = _marked(session, [c[1] for c in candidates])
    pairs: list[_Pair] = []
    for _, found, _, _ in candidates:
        if found.low in seen and found.high in seen and (found.low, found.high) not in marked:
            pairs.append(found)
        if len(pairs) >= limit:
            break
    return pairs


def sides(session: Session, principal: Principal, ids: Sequence[int]) -> Sides:
    """The children, their cases the caller sees and their referrals' dates, in a few IN queries."""
    out = Sides()
    for chunk in _chunks(list(dict.fromkeys(ids))):
        out.children.update(
            {c.id or 0: c for c in session.exec(select(Child).where(col(Child.id).in_(chunk)))}
        )
        cases = visible_cases(session, principal, chunk)
        out.cases.update(cases)
        for child_id, found in _visible_referrals(session, cases, chunk).items():
            out.referral_dates[child_id] = [r.referral_date for r in found]
    org_ids = {c.provider_id for found in out.cases.values() for c in found}
    if org_ids:
        out.org_names = dict(
            session.exec(
                select(col(Organisation.id).label("id"), Organisation.name).where(
                    col(Organisation.id).in_(org_ids)
                )
            ).all()
        )
    return out


def differing(first: Child, second: Child) -> list[str]:
    """The fields in which two records of a child differ (names compared as normalised)."""
    out = []
    for name in DIFF_LABELS:
        x, y = getattr(first, name), getattr(second, name)
        if name.endswith("_name") or name in ("municipality", "address"):
            x, y = normalise_name(x), normalise_name(y)
        if x != y:
            out.append(name)
    return out


def side(principal: Principal, found: Sides, child_id: int) -> DuplicateSide:
    child = found.children[child_id]
    cases = found.cases.get(child_id, [])
    current = _current(cases)
    return DuplicateSide(
        id=child_id,
        name=full_name(child),
        birth_date=child.birth_date,
        snils=shown_snils(principal, child.snils),
        has_snils=child.snils is not None,
        municipality=child.municipality,
        providers=list(dict.fromkeys(found.org_names.get(c.provider_id, "—") for c in cases)),
        state=current.state if current else None,
        state_label=STATE_LABELS.get(current.state) if current else None,
        referral_dates=found.referral_dates.get(child_id, []),
    )


STRENGTH_LABELS = {
    "strong": "Совпадают ФИО и дата рождения",
    "weak": "Совпадают фамилия, имя и дата рождения; отчество указано только в одной записи",
}


def duplicate_pairs(session: Session, principal: Principal) -> list[DuplicatePair]:
    pairs = pair_candidates(session, principal)
    found = sides(session, principal, [i for p in pairs for i in (p.low, p.high)])
    out = []
    for p in pairs:
        diff = differing(found.children[p.low], found.children[p.high])
        out.append(
            DuplicatePair(
                first=side(principal, found, p.low),
                second=side(principal, found, p.high),
                strength=p.strength,
                strength_label=STRENGTH_LABELS[p.strength],
                differing=diff,
                differing_labels=[DIFF_LABELS[d] for d in diff],
            )
        )
    return out
