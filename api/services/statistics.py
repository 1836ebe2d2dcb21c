"""The region's (or one provider's) statistics over a period, computed from what the journeys wrote.

Everything here is counted from the tables the journeys write — referrals, the case history, need
conclusions, service sessions, deadlines, transfers — never typed in (issue 12). Each figure is one
aggregate query (GROUP BY) or one streaming pass over a narrow projection, so the yearly report over
100 000 journeys stays within seconds on SQLite and PostgreSQL.

The shape (read by the reports, api/services/reports*): `Statistics` holds `Breakdown`s of `Cell`s,
`Share`s, `Median`s and `TimerStat`s. `compute(...)` gives exact numbers; `suppress(stats, min_cell)`
gives the analyst's copy (DESIGN §6): counts 1..min_cell-1 hidden, a second cell hidden where a total
would give the first away, shares and medians over too few children hidden. docs/readme/statistics.md
defines every number.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, distinct, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func

from core.errors import NotFound
from models.cases import Case, CaseHistory, ContactAttempt
from models.common import utcnow
from models.deadlines import Deadline, DeadlineStatus
from models.organisations import ORG_KIND_LABELS, Organisation, OrgKind, Region
from models.programmes import SERVICE_FORM_LABELS, NeedConclusion, NeedOutcome, ServiceSession, SessionStatus
from models.referrals import Referral
from models.routings import ROUTING_KIND_LABELS, Routing
from models.transfers import Transfer
from standards import Standard, WorkflowTimerDef, load_standard

# Codes of `Statistics.outcomes` (the funnel and the ends), in the order pages show them.
OUTCOME_LABELS: dict[str, str] = {
    "identified": "Выявлено детей (направлены в периоде)",
    "in_need": "Признаны нуждающимися в ранней помощи",
    "with_ipr": "Утверждена ИПРП",
    "consultation_only": "Консультации без ИПРП",
    "no_need": "Нуждаемость не выявлена",
    "completed": "Завершили сопровождение",
    "transitioned": "Завершили после перехода и адаптации",
    "declined": "Отказ семьи",
    "lost_contact": "Связь утрачена",
    "rejected": "Направление отклонено",
}
# The funnel a chart draws (a subset of OUTCOME_LABELS, each step a subset of the one before in spirit).
FUNNEL = ["identified", "in_need", "with_ipr", "completed", "transitioned"]

SELF_REFERRAL = "self_referral"
SELF_REFERRAL_LABEL = "Обращение родителей"


class Cell(BaseModel):
    """One count.

    code: a stable identifier within its breakdown (a criterion code, an organisation kind, a
      session status...); label: Russian, for people.
    value: the number of children / cases / events (see the breakdown); None when suppressed.
    suppressed: hidden from the analyst (1..min_cell-1, or a secondary suppression).
    shown: what a page, CSV or report prints: the number, or «<5» when suppressed.
    """

    code: str
    label: str
    value: int | None
    suppressed: bool = False
    shown: str = ""
    # The analyst's copy: the value rounded to a multiple of `Statistics.round_to` (suppress()).
    rounded: bool = False

    def model_post_init(self, _context: object) -> None:
        if not self.shown:
            self.shown = str(self.value) if self.value is not None else ""


class Breakdown(BaseModel):
    """A table of counts: referrals by source, sessions of one form by status, ...

    code, title: identifier and Russian caption.
    unit: what is counted ("children", "cases", "referrals", "sessions", "deadlines", "transfers",
      "routings", "events").
    total: the whole the cells add up to when `additive`, else a separate total (or None).
    additive: the cells partition the total (sum of cells == total) — what secondary suppression
      protects; False where a thing may be counted in several cells (a referral with two criteria).
    cells: the counts, in display order (zeros included).
    """

    code: str
    title: str
    unit: str
    total: Cell | None = None
    additive: bool = False
    cells: list[Cell] = Field(default_factory=list)

    def get(self, code: str) -> Cell:
        for cell in self.cells:
            if cell.code == code:
                return cell
        raise KeyError(code)

    def value(self, code: str) -> int | None:
        return self.get(code).value


class Share(BaseModel):
    """A ratio numerator / denominator (coverage, deadlines met on time).

    share: 0..1, None when the denominator is 0 or the share is suppressed.
    shown: «87 %», «—» (nothing to divide), or «<5» style text when suppressed.
    """

    code: str
    label: str
    numerator: Cell
    denominator: Cell
    share: float | None
    suppressed: bool = False
    shown: str = ""


class Median(BaseModel):
    """The median number of calendar days between two steps of the journey.

    n: how many cases were measured (None when suppressed); days: the median (None when n is 0 or
    suppressed); shown: «12», «12,5», «—» or «<5 случаев».
    """

    code: str
    label: str
    n: int | None
    days: float | None
    suppressed: bool = False
    shown: str = ""


class TimerStat(BaseModel):
    """One deadline of the standard (a timer, or a workflow's timer "transfer.answer").

    counts: the deadlines due in the period (total) by outcome: met (closed on time), late (closed
      after due_at, or still open and overdue now), cancelled (the case ended first: not judged),
      pending (still open and not yet due, or paused while the case is suspended).
    on_time: met / (met + late).
    """

    timer: str
    label: str
    counts: Breakdown
    on_time: Share


class Statistics(BaseModel):
    """The statistics of a region or one provider over [start, end] (the region's dates, inclusive).

    region_id/region_name, provider_id/provider_name (None for the whole region): the scope.
    start, end: the period; computed_at: when (UTC).
    min_cell: the standard's statistics.min_cell; suppressed: True in the analyst's copy (suppress()).
    referrals_by_source: referrals dated in the period by the referring organisation's kind (or
      «Обращение родителей»); additive, total = referrals.
    referrals_by_criterion: the same referrals by criterion of the standard (code + label); not
      additive (a referral may name several criteria).
    outcomes: children by OUTCOME_LABELS (the funnel and the ends); not additive.
    completed_by_reason: completions in the period by the standard's exits.completed reason.
    transitioned_to: completions after adaptation by the receiving organisation's kind («Иная
      программа» when none in the system).
    declined_by_reason: family refusals in the period by the standard's exits.declined reason.
    coverage: children served / children in need during the period (docs/readme/statistics.md).
    timeliness: one TimerStat per timer of the standard and of its workflows.
    medians: referral → need determination, need determination → ИПРП, referral → ИПРП.
    delays: what held cases up: late deadlines, suspended cases, cases with failed contact attempts.
    sessions_by_form: one Breakdown per service form (in person, remote, at home, group): the
      sessions scheduled in the period (total) by status (held, missed, cancelled, still planned).
    transfers: requested / accepted / refused / withdrawn in the period.
    routings: sent / answered / expired / cancelled in the period.
    routings_by_kind: routings sent in the period by kind; additive, total = sent.
    """

    region_id: int
    region_name: str
    provider_id: int | None
    provider_name: str | None
    start: date
    end: date
    computed_at: datetime
    min_cell: int
    suppressed: bool = False
    # The analyst's copy: shown counts rounded to a multiple of this (None: exact).
    round_to: int | None = None
    referrals_by_source: Breakdown
    referrals_by_criterion: Breakdown
    outcomes: Breakdown
    completed_by_reason: Breakdown
    transitioned_to: Breakdown
    declined_by_reason: Breakdown
    coverage: Share
    timeliness: list[TimerStat]
    medians: list[Median]
    delays: Breakdown
    sessions_by_form: list[Breakdown]
    transfers: Breakdown
    routings: Breakdown
    routings_by_kind: Breakdown

    def breakdowns(self) -> list[Breakdown]:
        """Every table of counts, in display order (what suppression and the CSV walk)."""
        return [
            self.referrals_by_source,
            self.referrals_by_criterion,
            self.outcomes,
            self.completed_by_reason,
            self.transitioned_to,
            self.declined_by_reason,
            *(timer.counts for timer in self.timeliness),
            self.delays,
            *self.sessions_by_form,
            self.transfers,
            self.routings,
            self.routings_by_kind,
        ]


# --- computation ------------------------------------------------------------------------------------

# Deadlines whose "due" is not a task anyone can be late with: the adaptation timer completes the case
# on the last day of the adaptation period by itself.
NOT_JUDGED_ANCHORS = frozenset({"adaptation_end"})
NEED = (NeedOutcome.ipr.value, NeedOutcome.consultation.value)
NEED_DETERMINATION = "need_determination"  # the catalogue's activity of the determination itself
ENDING_EVENTS = {"decline": "declined", "mark_lost_contact": "lost_contact", "reject": "rejected"}
OTHER_DESTINATION = "other"
OTHER_DESTINATION_LABEL = "Иная программа или организация вне системы"
NO_REASON = "unspecified"
NO_REASON_LABEL = "Причина не указана"
TIMER_OUTCOMES = {
    "met": "В срок",
    "late": "С нарушением срока",
    "cancelled": "Не оценивается: случай закрыт раньше",
    "pending": "Ещё не наступил или приостановлен",
}
DELAY_LABELS = {
    "late_deadlines": "Случаи с нарушенным сроком стандарта",
    "suspended": "Случаи, приостановленные в периоде",
    "failed_contacts": "Случаи с безуспешными попытками связи с семьёй",
}
TRANSFER_LABELS = {
    "requested": "Запрошено передач",
    "accepted": "Принято",
    "refused": "Отказано",
    "withdrawn": "Отозвано",
}
PLACE_LABELS = {
    OrgKind.education.value: "Дошкольная образовательная организация",
    OrgKind.social.value: ORG_KIND_LABELS[OrgKind.social],
    OrgKind.health.value: ORG_KIND_LABELS[OrgKind.health],
    OTHER_DESTINATION: OTHER_DESTINATION_LABEL,
}
ROUTING_LABELS = {
    "sent": "Направлено",
    "answered": "Получен ответ",
    "expired": "Срок ответа истёк",
    "cancelled": "Отменено",
}


def select(*columns: Any) -> Any:
    """A projection of columns and aggregates for session.execute (sqlmodel's typed select takes
    whole models or at most four plain columns)."""
    return sa_select(*columns)


@dataclass(frozen=True)
class _Scope:
    """Which rows belong to the statistics: the region's providers, or one provider."""

    region_id: int
    provider_id: int | None

    def of(self, column: Any) -> Any:
        if self.provider_id is not None:
            return column == self.provider_id
        return col(column).in_(select(Organisation.id).where(Organisation.region_id == self.region_id))


def _bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end] in the region's dates as UTC instants [from, to)."""
    lower = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    upper = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return lower, upper


def _cell(code: str, label: str, value: int) -> Cell:
    return Cell(code=code, label=label, value=value)


def _breakdown(
    code: str, title: str, unit: str, counts: dict[str, int], labels: dict[str, str], *, additive: bool
) -> Breakdown:
    """Cells in the order of `labels`, then any code the data holds that the labels do not know."""
    order = list(labels) + sorted(set(counts) - set(labels))
    cells = [_cell(c, labels.get(c, c), counts.get(c, 0)) for c in order]
    total = _cell("total", "Всего", sum(counts.values())) if additive else None
    return Breakdown(code=code, title=title, unit=unit, total=total, additive=additive, cells=cells)


def _share(code: str, label: str, numerator: Cell, denominator: Cell) -> Share:
    assert numerator.value is not None and denominator.value is not None
    value = numerator.value / denominator.value if denominator.value else None
    return Share(
        code=code,
        label=label,
        numerator=numerator,
        denominator=denominator,
        share=value,
        shown=_percent(value),
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)} %"


def _median(code: str, label: str, days: list[int]) -> Median:
    value = float(statistics.median(days)) if days else None
    return Median(code=code, label=label, n=len(days), days=value, shown=_days(value))


def _days(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}".replace(".", ",")


def _referrals(
    session: Session, scope: _Scope, start: date, end: date, standard: Standard
) -> tuple[Breakdown, Breakdown, int]:
    """The period's referrals by source kind and by criterion, and the children identified.

    Grouped in SQL by the criteria list itself (a handful of distinct lists), so that only the groups'
    lists are decoded here, not every referral's."""
    in_period = [
        Referral.referral_date >= start,
        Referral.referral_date <= end,
        scope.of(Referral.provider_id),
    ]
    query = (
        select(Referral.criteria, Organisation.kind, func.count())
        .select_from(Referral)
        .join(Organisation, col(Organisation.id) == Referral.referring_org_id, isouter=True)
        .where(*in_period)
        .group_by(Referral.criteria, col(Organisation.kind))
    )
    by_source: Counter[str] = Counter()
    by_criterion: Counter[str] = Counter()
    for criteria, kind, n in session.execute(query):
        by_source[str(kind) if kind is not None else SELF_REFERRAL] += n
        for code in set(criteria or []):
            by_criterion[code] += n
    # A referral waiting for a match review has no child yet: a child of its own until decided.
    known, waiting = session.execute(
        select(
            func.count(distinct(col(Referral.child_id))), func.count() - func.count(col(Referral.child_id))
        )
        .select_from(Referral)
        .where(*in_period)
    ).one()
    identified = known + waiting
    source_labels = {str(k): v for k, v in ORG_KIND_LABELS.items()} | {SELF_REFERRAL: SELF_REFERRAL_LABEL}
    sources = _breakdown(
        "referrals_by_source",
        "Направления по источнику",
        "referrals",
        dict(by_source),
        source_labels,
        additive=True,
    )
    criteria_labels = {c.code: c.label for c in standard.criteria}
    criterion = _breakdown(
        "referrals_by_criterion",
        "Направления по критериям отнесения к целевой группе",
        "referrals",
        dict(by_criterion),
        criteria_labels,
        additive=False,
    )
    criterion.total = _cell("total", "Всего направлений", sum(by_source.values()))
    return sources, criterion, identified


@dataclass
class _Approvals:
    """The cases whose first ИПРП was approved in the period."""

    children: set[int] = field(default_factory=set)
    need_to_ipr: list[int] = field(default_factory=list)  # days: the latest ipr conclusion → approval
    to_ipr: list[int] = field(default_factory=list)  # days: referral → approval


def _approvals(
    session: Session, scope: _Scope, lower: datetime, upper: datetime, zone: ZoneInfo
) -> _Approvals:
    """Each case's first approval (index ix_case_history_event_at), those of the period with the case's
    child, referral date and latest conclusion of need (ipr)."""
    first = (
        select(CaseHistory.case_id, func.min(CaseHistory.at).label("first_at"))
        .where(CaseHistory.event == "approve_ipr", CaseHistory.at < upper)
        .group_by(col(CaseHistory.case_id))
        .having(func.min(CaseHistory.at) >= lower)
        .subquery()
    )
    latest = (
        select(func.max(NeedConclusion.concluded_on))
        .where(NeedConclusion.case_id == Case.id, NeedConclusion.outcome == NeedOutcome.ipr.value)
        .correlate(Case)
        .scalar_subquery()
    )
    query = (
        select(first.c.first_at, Case.child_id, Referral.referral_date, latest)
        .select_from(first)
        .join(Case, col(Case.id) == first.c.case_id)
        .join(Referral, col(Referral.id) == Case.referral_id, isouter=True)
        .where(scope.of(Case.provider_id))
    )
    found = _Approvals()
    for first_at, child_id, referred, concluded in session.execute(query):
        found.children.add(child_id)
        approved = _as_utc(first_at).astimezone(zone).date()
        if concluded is not None:
            found.need_to_ipr.append((approved - _as_date(concluded)).days)
        if referred is not None:
            found.to_ipr.append((approved - referred).days)
    return found


@dataclass
class _Conclusions:
    by_outcome: dict[str, set[int]] = field(default_factory=dict)  # children, by the period's outcome
    in_need: set[int] = field(default_factory=set)  # children found in need (ipr or consultation)
    to_need: list[int] = field(default_factory=list)  # days referral → conclusion


def _conclusions(session: Session, scope: _Scope, start: date, end: date) -> _Conclusions:
    query = (
        select(NeedConclusion.outcome, NeedConclusion.concluded_on, Case.child_id, Referral.referral_date)
        .select_from(NeedConclusion)
        .join(Case, col(Case.id) == NeedConclusion.case_id)
        .join(Referral, col(Referral.id) == Case.referral_id, isouter=True)
        .where(
            NeedConclusion.concluded_on >= start,
            NeedConclusion.concluded_on <= end,
            scope.of(Case.provider_id),
        )
    )
    found = _Conclusions()
    for outcome, concluded_on, child_id, referred in session.execute(query).yield_per(20_000):
        found.by_outcome.setdefault(str(outcome), set()).add(child_id)
        if str(outcome) in NEED:
            found.in_need.add(child_id)
        if referred is not None:
            found.to_need.append((concluded_on - referred).days)
    return found


# The history rows the statistics read, by event (index ix_case_history_event_at).
HISTORY_EVENTS = [
    "complete",
    "decline",
    "mark_lost_contact",
    "reject",
    "suspend",
    "routing_expire",
    "routing_cancel",
]


@dataclass
class _History:
    # Children by ending (ENDING_EVENTS' values), "completed" and "transitioned".
    children: dict[str, set[int]] = field(default_factory=dict)
    completed_by_reason: Counter[str] = field(default_factory=Counter)
    declined_by_reason: Counter[str] = field(default_factory=Counter)
    transitioned_to: Counter[str] = field(default_factory=Counter)
    suspended: set[int] = field(default_factory=set)  # cases
    routings: Counter[str] = field(default_factory=Counter)  # expired / cancelled


def _history(session: Session, scope: _Scope, lower: datetime, upper: datetime) -> _History:
    """One pass over the period's endings, suspensions and routing steps."""
    destination = aliased(Organisation)
    query = (
        select(
            CaseHistory.case_id,
            CaseHistory.event,
            CaseHistory.from_state,
            CaseHistory.payload,
            Case.child_id,
            destination.kind,
        )
        .select_from(CaseHistory)
        .join(Case, col(Case.id) == CaseHistory.case_id)
        .join(destination, col(destination.id) == Case.destination_org_id, isouter=True)
        .where(
            col(CaseHistory.event).in_(HISTORY_EVENTS),
            CaseHistory.at >= lower,
            CaseHistory.at < upper,
            scope.of(Case.provider_id),
        )
    )
    found = _History()
    for case_id, event, from_state, payload, child_id, kind in session.execute(query).yield_per(20_000):
        if event in ENDING_EVENTS:
            found.children.setdefault(ENDING_EVENTS[event], set()).add(child_id)
        if event == "suspend":
            found.suspended.add(case_id)
        elif event == "routing_expire":
            found.routings["expired"] += 1
        elif event == "routing_cancel":
            found.routings["cancelled"] += 1
        elif event in ("complete", "decline"):
            reason = str((payload or {}).get("reason_code") or NO_REASON)
            if event == "decline":
                found.declined_by_reason[reason] += 1
                continue
            found.completed_by_reason[reason] += 1
            found.children.setdefault("completed", set()).add(child_id)
            if from_state == "adaptation":
                found.children.setdefault("transitioned", set()).add(child_id)
                found.transitioned_to[str(kind) if kind is not None else OTHER_DESTINATION] += 1
    return found


def _in_scope(scope: _Scope, case_id: Any) -> Any:
    """The case is the scope's (a semi-join: SQLite and PostgreSQL build its set once)."""
    return col(case_id).in_(select(Case.id).where(scope.of(Case.provider_id)))


def _sessions(session: Session, scope: _Scope, lower: datetime, upper: datetime) -> list[Breakdown]:
    """The period's sessions by form and status, counted from index ix_session_scheduled."""
    query = (
        select(ServiceSession.form, ServiceSession.status, func.count())
        .where(
            ServiceSession.scheduled_at >= lower,
            ServiceSession.scheduled_at < upper,
            _in_scope(scope, ServiceSession.case_id),
        )
        .group_by(col(ServiceSession.form), col(ServiceSession.status))
    )
    counts: dict[str, Counter[str]] = {}
    for form, status, n in session.execute(query):
        counts.setdefault(str(form), Counter())[str(status)] += n
    status_labels = {
        SessionStatus.held.value: "Проведено",
        SessionStatus.missed.value: "Пропущено",
        SessionStatus.cancelled.value: "Отменено",
        SessionStatus.planned.value: "Запланировано (ещё не отмечено)",
    }
    tables = []
    for form, form_label in SERVICE_FORM_LABELS.items():
        table = _breakdown(
            f"sessions:{form.value}",
            f"Занятия: {form_label}",
            "sessions",
            dict(counts.get(form.value, Counter())),
            status_labels,
            additive=True,
        )
        assert table.total is not None
        table.total.label = "Назначено на период"
        tables.append(table)
    return tables


def _coverage(session: Session, scope: _Scope, end: date, lower: datetime, upper: datetime) -> Share:
    """Served / in need during the period (docs/readme/statistics.md), in children."""
    in_need = (
        select(func.count(distinct(col(Case.child_id))))
        .select_from(NeedConclusion)
        .join(Case, col(Case.id) == NeedConclusion.case_id)
        .where(
            col(NeedConclusion.outcome).in_(NEED),
            NeedConclusion.concluded_on <= end,
            or_(col(Case.closed_at).is_(None), col(Case.closed_at) >= lower),
            scope.of(Case.provider_id),
        )
    )
    # The cases helped in the period: a session held, other than the determination itself (which is
    # not yet help), read from index ix_session_scheduled.
    helped = select(ServiceSession.case_id).where(
        ServiceSession.scheduled_at >= lower,
        ServiceSession.scheduled_at < upper,
        ServiceSession.status == SessionStatus.held.value,
        ServiceSession.service_code != NEED_DETERMINATION,
    )
    denominator = session.execute(in_need).scalar_one()
    numerator = session.execute(in_need.where(col(Case.id).in_(helped))).scalar_one()
    return _share(
        "coverage",
        "Охват: получили помощь из нуждающихся",
        _cell("served", "Получили хотя бы одно занятие в периоде", numerator),
        _cell("in_need_during", "Нуждались в ранней помощи в периоде", denominator),
    )


def _outcome_counts(
    identified: int, conclusions: _Conclusions, approvals: _Approvals, history: _History
) -> dict[str, int]:
    counts = {code: len(history.children.get(code, ())) for code in OUTCOME_LABELS}
    counts["identified"] = identified
    counts["in_need"] = len(conclusions.in_need)
    counts["consultation_only"] = len(conclusions.by_outcome.get(NeedOutcome.consultation.value, ()))
    counts["no_need"] = len(conclusions.by_outcome.get(NeedOutcome.no_need.value, ()))
    counts["with_ipr"] = len(approvals.children)
    return counts


def _medians(conclusions: _Conclusions, approvals: _Approvals) -> list[Median]:
    return [
        _median(
            "referral_to_need", "Направление → заключение о нуждаемости, дней (медиана)", conclusions.to_need
        ),
        _median(
            "need_to_ipr",
            "Заключение о нуждаемости → утверждение ИПРП, дней (медиана)",
            approvals.need_to_ipr,
        ),
        _median("referral_to_ipr", "Направление → утверждение ИПРП, дней (медиана)", approvals.to_ipr),
    ]


def _as_utc(value: Any) -> datetime:
    """A min() over a UTC column: SQLite may hand back the stored text, without the column's type."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value  # type: ignore[no-any-return]


def _delays(
    session: Session, scope: _Scope, lower: datetime, upper: datetime, late_cases: int, suspended: int
) -> Breakdown:
    failed = session.execute(
        select(func.count(distinct(col(ContactAttempt.case_id))))
        .join(Case, col(Case.id) == ContactAttempt.case_id)
        .where(
            col(ContactAttempt.successful).is_(False),
            ContactAttempt.at >= lower,
            ContactAttempt.at < upper,
            scope.of(Case.provider_id),
        )
    ).scalar_one()
    counts = {"late_deadlines": late_cases, "suspended": suspended, "failed_contacts": failed}
    return _breakdown("delays", "Причины задержек", "cases", counts, DELAY_LABELS, additive=False)


def _timers(standard: Standard) -> list[tuple[str, str]]:
    timers = [(t.name, t.label) for t in standard.timers if t.anchor not in NOT_JUDGED_ANCHORS]
    for workflow in ("transfer", "routing"):
        rules = getattr(standard.workflows, workflow)
        timer: WorkflowTimerDef = rules.answer
        timers.append((timer.deadline_name(workflow), timer.label))
    return timers


def _timeliness(
    session: Session, scope: _Scope, lower: datetime, upper: datetime, now: datetime, standard: Standard
) -> tuple[list[TimerStat], int]:
    """Deadlines due in the period by timer and outcome; and the cases with a late one."""
    overdue = and_(
        col(Deadline.status) == DeadlineStatus.open.value,
        col(Deadline.paused_at).is_(None),
        col(Deadline.due_at) < now,
    )
    outcome = case(
        (col(Deadline.status) == DeadlineStatus.met.value, literal("met")),
        (col(Deadline.status) == DeadlineStatus.missed.value, literal("late")),
        (col(Deadline.status) == DeadlineStatus.cancelled.value, literal("cancelled")),
        (overdue, literal("late")),
        else_=literal("pending"),
    )
    in_period = [Deadline.due_at >= lower, Deadline.due_at < upper, scope.of(Deadline.provider_id)]
    query = (
        select(Deadline.timer, outcome, func.count()).where(*in_period).group_by(col(Deadline.timer), outcome)
    )
    counts: dict[str, Counter[str]] = {}
    for timer, result, n in session.execute(query):
        counts.setdefault(timer, Counter())[result] += n
    late_cases = session.execute(
        select(func.count(distinct(col(Deadline.case_id)))).where(
            *in_period, or_(col(Deadline.status) == DeadlineStatus.missed.value, overdue)
        )
    ).scalar_one()
    stats: list[TimerStat] = []
    for name, label in _timers(standard):
        found = counts.get(name, Counter())
        table = _breakdown(f"timer:{name}", label, "deadlines", dict(found), TIMER_OUTCOMES, additive=True)
        table.total = _cell("total", "Сроков наступило в периоде", sum(found.values()))
        judged = _cell("judged", "Сроков оценено (в срок или с нарушением)", found["met"] + found["late"])
        on_time = _share(f"on_time:{name}", "Доля соблюдённых сроков", table.get("met").model_copy(), judged)
        stats.append(TimerStat(timer=name, label=label, counts=table, on_time=on_time))
    return stats, late_cases


def _transfers(session: Session, scope: _Scope, lower: datetime, upper: datetime) -> Breakdown:
    ours = or_(scope.of(Transfer.from_provider_id), scope.of(Transfer.to_provider_id))
    counts = {
        "requested": session.execute(
            select(func.count()).where(Transfer.requested_at >= lower, Transfer.requested_at < upper, ours)
        ).scalar_one()
    }
    answered = (
        select(Transfer.status, func.count())
        .where(Transfer.answered_at >= lower, Transfer.answered_at < upper, ours)  # type: ignore[operator]
        .group_by(col(Transfer.status))
    )
    counts |= {status: n for status, n in session.execute(answered)}
    return _breakdown(
        "transfers",
        "Передачи случаев между организациями",
        "transfers",
        counts,
        TRANSFER_LABELS,
        additive=False,
    )


def _routings(
    session: Session, scope: _Scope, lower: datetime, upper: datetime, from_history: Counter[str]
) -> tuple[Breakdown, Breakdown]:
    """Sent and answered from the routings themselves; expired and cancelled from the history."""
    ours = scope.of(Routing.provider_id)
    by_kind = {
        str(kind): n
        for kind, n in session.execute(
            select(Routing.kind, func.count())
            .where(Routing.sent_at >= lower, Routing.sent_at < upper, ours)
            .group_by(col(Routing.kind))
        )
    }
    counts = {"sent": sum(by_kind.values())}
    counts["answered"] = session.execute(
        select(func.count()).where(Routing.answered_at >= lower, Routing.answered_at < upper, ours)  # type: ignore[operator]
    ).scalar_one()
    counts |= from_history
    return (
        _breakdown(
            "routings",
            "Маршрутизация семей в другие организации",
            "routings",
            counts,
            ROUTING_LABELS,
            additive=False,
        ),
        _breakdown(
            "routings_by_kind",
            "Направления маршрутизации по видам помощи",
            "routings",
            by_kind,
            {str(k): v for k, v in ROUTING_KIND_LABELS.items()},
            additive=True,
        ),
    )


def compute(
    session: Session,
    region_id: int,
    start: date,
    end: date,
    provider_id: int | None = None,
    *,
    now: datetime | None = None,
) -> Statistics:
    """Exact statistics of the region (or of one of its providers) over [start, end].

    Raises NotFound when the region does not exist or the provider is not one of its organisations."""
    region = session.get(Region, region_id)
    if region is None:
        raise NotFound("Регион не найден", field="region_id")
    provider = session.get(Organisation, provider_id) if provider_id is not None else None
    if provider_id is not None and (provider is None or provider.region_id != region_id):
        raise NotFound("Организация не найдена", field="provider_id")
    standard = load_standard(region.code)
    zone = ZoneInfo(region.timezone)
    now = now or utcnow()
    scope = _Scope(region_id, provider_id)
    lower, upper = _bounds(start, end, zone)

    sources, criteria, identified = _referrals(session, scope, start, end, standard)
    approvals = _approvals(session, scope, lower, upper, zone)
    conclusions = _conclusions(session, scope, start, end)
    history = _history(session, scope, lower, upper)
    timeliness, late_cases = _timeliness(session, scope, lower, upper, now, standard)
    routings, routings_by_kind = _routings(session, scope, lower, upper, history.routings)
    counts = _outcome_counts(identified, conclusions, approvals, history)
    completed_labels = {r.code: r.label for r in standard.exit_reasons("completed")} | {
        NO_REASON: NO_REASON_LABEL
    }
    declined_labels = {r.code: r.label for r in standard.exit_reasons("declined")} | {
        NO_REASON: NO_REASON_LABEL
    }
    return Statistics(
        region_id=region_id,
        region_name=region.name,
        provider_id=provider_id,
        provider_name=provider.name if provider is not None else None,
        start=start,
        end=end,
        computed_at=now,
        min_cell=standard.statistics.min_cell,
        referrals_by_source=sources,
        referrals_by_criterion=criteria,
        outcomes=_breakdown(
            "outcomes", "Дети по этапам и итогам", "children", counts, OUTCOME_LABELS, additive=False
        ),
        completed_by_reason=_breakdown(
            "completed_by_reason",
            "Завершение сопровождения по причинам",
            "cases",
            dict(history.completed_by_reason),
            completed_labels,
            additive=True,
        ),
        transitioned_to=_breakdown(
            "transitioned_to",
            "Куда перешли дети после адаптации",
            "cases",
            dict(history.transitioned_to),
            PLACE_LABELS,
            additive=True,
        ),
        declined_by_reason=_breakdown(
            "declined_by_reason",
            "Отказы семей по причинам",
            "cases",
            dict(history.declined_by_reason),
            declined_labels,
            additive=True,
        ),
        coverage=_coverage(session, scope, end, lower, upper),
        timeliness=timeliness,
        medians=_medians(conclusions, approvals),
        delays=_delays(session, scope, lower, upper, late_cases, len(history.suspended)),
        sessions_by_form=_sessions(session, scope, lower, upper),
        transfers=_transfers(session, scope, lower, upper),
        routings=routings,
        routings_by_kind=routings_by_kind,
    )


# --- suppression ------------------------------------------------------------------------------------

SECONDARY = "…"


def _hide(cell: Cell, shown: str) -> None:
    cell.value = None
    cell.suppressed = True
    cell.shown = shown


def _small(cell: Cell, min_cell: int) -> bool:
    return cell.value is not None and 0 < cell.value < min_cell


def _primary(cell: Cell, min_cell: int) -> None:
    if _small(cell, min_cell):
        _hide(cell, f"<{min_cell}")


def suppress_breakdown(table: Breakdown, min_cell: int) -> None:
    """Primary: each count 1..min_cell-1 hidden. Secondary, where the cells add up to a shown total:
    while the hidden cells together come to 1..min_cell-1 (one hidden cell is recovered as total
    minus the others; two hidden ones summing to 2 are both 1), hide the smallest shown non-zero
    cell too."""
    for cell in table.cells:
        _primary(cell, min_cell)
    if table.total is not None:
        _primary(table.total, min_cell)
    if not table.additive or table.total is None or table.total.value is None:
        return
    while True:
        shown = [c for c in table.cells if c.value is not None]
        hidden_sum = table.total.value - sum(c.value or 0 for c in shown)
        candidates = sorted((c for c in shown if c.value), key=lambda c: c.value or 0)
        if not 0 < hidden_sum < min_cell or not candidates:
            return
        _hide(candidates[0], SECONDARY)


def _suppress_share(share: Share, min_cell: int) -> None:
    """A share over fewer than min_cell, or whose part (or the rest of the whole) is a small count,
    would let the small count be recovered: hidden, and the numerator too when only the rest is small."""
    numerator, denominator = share.numerator, share.denominator
    rest = (denominator.value or 0) - (numerator.value or 0) if not denominator.suppressed else 0
    _primary(numerator, min_cell)
    _primary(denominator, min_cell)
    if 0 < rest < min_cell and not numerator.suppressed and denominator.value is not None:
        _hide(numerator, SECONDARY)
    if numerator.suppressed or denominator.suppressed:
        share.share = None
        share.suppressed = True
        share.shown = SECONDARY  # «<5» would read as a percentage


def _suppress_median(median: Median, min_cell: int) -> None:
    if median.n is not None and 0 < median.n < min_cell:
        median.n = None
        median.days = None
        median.suppressed = True
        median.shown = f"<{min_cell} случаев"


def suppress(stats: Statistics, min_cell: int | None = None, round_to: int | None = None) -> Statistics:
    """The analyst's copy: small cells hidden (primary), a second cell where a total would give one
    away (secondary), shares and medians over fewer than min_cell children hidden; then every count
    still shown rounded to a multiple of `round_to` (never to 0) and the shares recomputed from the
    rounded counts. Suppression alone holds within one answer only: the region's 9 less a provider's 7
    gives the other provider's hidden 2; rounded, 10 less 5 gives anything from 0 to 10."""
    limit = min_cell or stats.min_cell
    copy = stats.model_copy(deep=True)
    for table in copy.breakdowns():
        suppress_breakdown(table, limit)
    # A timer's on-time share: met over met + late; its cells were suppressed with the table above.
    for timer in copy.timeliness:
        met, late = timer.counts.get("met"), timer.counts.get("late")
        timer.on_time.numerator = met.model_copy()
        _suppress_share(timer.on_time, limit)
        # met + late less met gives late back: with either hidden, the share and the sum are too.
        if met.suppressed or late.suppressed:
            timer.on_time.share = None
            timer.on_time.suppressed = True
            timer.on_time.shown = SECONDARY
            if not timer.on_time.denominator.suppressed:
                _hide(timer.on_time.denominator, SECONDARY)
    _suppress_share(copy.coverage, limit)
    for median in copy.medians:
        _suppress_median(median, limit)
    base = round_to or 1
    if base > 1:
        for table in copy.breakdowns():
            for cell in [*table.cells, *([table.total] if table.total is not None else [])]:
                round_cell(cell, base)
        for share in [copy.coverage, *(t.on_time for t in copy.timeliness)]:
            _round_share(share, base)
        copy.round_to = base
    copy.min_cell = limit
    copy.suppressed = True
    return copy


def suppress_table(table: Breakdown, min_cell: int, round_to: int) -> None:
    """suppress_breakdown, then the shown counts rounded: the analyst's copy of one table made
    outside compute() (the cases by state now, the report's age groups)."""
    suppress_breakdown(table, min_cell)
    for cell in [*table.cells, *([table.total] if table.total is not None else [])]:
        round_cell(cell, round_to)


def round_cell(cell: Cell, base: int) -> None:
    """A shown count to the nearest multiple of `base`, never to 0 (a count of 1..base/2 is hidden by
    the primary rule first). Zero stays zero."""
    if cell.value and not cell.suppressed and base > 1:
        cell.value = max(base, base * round(cell.value / base))
        cell.shown = str(cell.value)
        cell.rounded = True


def _round_share(share: Share, base: int) -> None:
    """A share from exact counts would give them back (7 of 9 is 78 %, and only 9 fits a rounded 10):
    recomputed from the rounded ones."""
    round_cell(share.numerator, base)
    round_cell(share.denominator, base)
    if share.suppressed:
        return
    numerator, denominator = share.numerator.value, share.denominator.value
    share.share = numerator / denominator if numerator is not None and denominator else None
    if share.share is not None:
        share.share = min(share.share, 1.0)
    share.shown = _percent(share.share)


def csv_rows(stats: Statistics) -> list[list[str]]:
    """The same numbers as rows (section, code, label, value as shown) for the CSV download."""
    rows: list[list[str]] = [["Раздел", "Код", "Показатель", "Значение"]]
    for table in stats.breakdowns():
        for cell in table.cells:
            rows.append([table.title, cell.code, cell.label, cell.shown])
        if table.total is not None:
            rows.append([table.title, table.total.code, table.total.label, table.total.shown])
    for share in [stats.coverage, *(t.on_time for t in stats.timeliness)]:
        title = (
            share.label if share.code == "coverage" else f"{share.label}: {_timer_label(stats, share.code)}"
        )
        rows.append([title, share.numerator.code, share.numerator.label, share.numerator.shown])
        rows.append([title, share.denominator.code, share.denominator.label, share.denominator.shown])
        rows.append([title, share.code, share.label, share.shown])
    for median in stats.medians:
        rows.append(["Сроки прохождения этапов", median.code, median.label, median.shown])
    return rows


def _timer_label(stats: Statistics, code: str) -> str:
    name = code.partition(":")[2]
    return next((t.label for t in stats.timeliness if t.timer == name), name)
