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

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlmodel import Session

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


Scope = Literal["region", "provider"]


def compute(
    session: Session,
    region_id: int,
    start: date,
    end: date,
    provider_id: int | None = None,
    *,
    now: datetime | None = None,
) -> Statistics:
    """Exact statistics of the region (or of one of its providers) over [start, end]."""
    raise NotImplementedError


def suppress(stats: Statistics, min_cell: int | None = None) -> Statistics:
    """The analyst's copy: small cells hidden (primary), a second cell where a total would give one
    away (secondary), shares and medians over fewer than min_cell children hidden."""
    raise NotImplementedError


def csv_rows(stats: Statistics) -> list[list[str]]:
    """The same numbers as rows (section, code, label, value as shown) for the CSV download."""
    raise NotImplementedError
