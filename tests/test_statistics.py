"""The statistics against counts made independently: a generated region (tests/region_gen.py) of a few
thousand journeys, counted in Python over the plan, compared with what api/services/statistics.py
computes from the tables; the analyst's suppression; the API's scoping and its bad periods.
tests/test_region_gen.py keeps the generator writing what the journey writes."""

from __future__ import annotations

import shutil
import statistics as pystats
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel, select

from api.main import create_app
from api.services.statistics import (
    Breakdown,
    Cell,
    Statistics,
    compute,
    csv_rows,
    suppress,
)
from core.config import Settings
from core.db import make_engine
from models.cases import CaseHistory
from models.children import Child
from models.organisations import Region
from tests.region_gen import Journey, Plan, generate
from tests.registry_seed import facts_from_journeys, stored_facts
from tests.world import API, World, build_world

N = 2500
NEED = ("ipr", "consultation")


@dataclass
class Generated:
    engine: Engine
    plan: Plan
    world: World


@pytest.fixture(scope="module")
def generated(backend: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """One generated region per backend for the whole module (it takes seconds to write), inside the
    test world's demo region (whose users have tokens)."""
    name, source = backend
    tmp = tmp_path_factory.mktemp("stats")
    if name == "sqlite":
        path = tmp / "stats.db"
        shutil.copyfile(source, path)
        engine = make_engine(f"sqlite:///{path}")
    else:
        engine = make_engine(source)
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        var_dir=Path(tmp),
        secret_key="test-secret-key-of-sufficient-length-for-hs256",
        relay_in_serve=False,
        freeze_gc_on_start=False,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        world = build_world(engine, client)
        with Session(engine) as session:
            region = session.exec(select(Region).where(Region.code == "demo")).one()
        plan = generate(engine, n=N, seed=2025, region_id=region.id)
        yield Generated(engine, plan, world)
    engine.dispose()


# --- the independent count ---------------------------------------------------------------------------


class Count:
    """What each statistic must be, counted over the plan (docs/readme/statistics.md's definitions)."""

    def __init__(self, plan: Plan, start: date, end: date, provider_id: int | None = None) -> None:
        zone = ZoneInfo(plan.timezone)
        self.plan, self.start, self.end, self.provider = plan, start, end, provider_id
        self.lower = datetime.combine(start, time(0), tzinfo=zone)
        self.upper = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone)
        self.zone = zone

    def ours(self, provider_id: int) -> bool:
        return self.provider is None or provider_id == self.provider

    def within(self, moment: datetime | None) -> bool:
        return moment is not None and self.lower <= moment < self.upper

    def cases(self) -> list[Journey]:
        return [j for j in self.plan.journeys if self.ours(j.provider_id)]

    def referrals(self) -> list[Journey]:
        return [
            j
            for j in self.plan.journeys
            if self.ours(j.referral_provider_id) and self.start <= j.referral_date <= self.end
        ]

    def by_source(self) -> Counter[str]:
        return Counter(j.referring_kind or "self_referral" for j in self.referrals())

    def by_criterion(self) -> Counter[str]:
        return Counter(c for j in self.referrals() for c in j.criteria)

    def conclusions(self, outcomes: tuple[str, ...]) -> set[int]:
        return {
            j.child_id
            for j in self.cases()
            for c in j.conclusions
            if c.outcome in outcomes and self.start <= c.concluded_on <= self.end
        }

    def first_approval(self, j: Journey) -> datetime | None:
        approvals = j.events("approve_ipr")
        return approvals[0].at if approvals else None

    def with_event(self, event: str, from_state: str | None = None) -> set[int]:
        return {
            j.child_id
            for j in self.cases()
            for e in j.history
            if e.event == event and self.within(e.at) and (from_state is None or e.from_state == from_state)
        }

    def outcomes(self) -> dict[str, int]:
        return {
            "identified": len({j.child_id for j in self.referrals()}),
            "in_need": len(self.conclusions(NEED)),
            "with_ipr": len({j.child_id for j in self.cases() if self.within(self.first_approval(j))}),
            "consultation_only": len(self.conclusions(("consultation",))),
            "no_need": len(self.conclusions(("no_need",))),
            "completed": len(self.with_event("complete")),
            "transitioned": len(self.with_event("complete", "adaptation")),
            "declined": len(self.with_event("decline")),
            "lost_contact": len(self.with_event("mark_lost_contact")),
            "rejected": len(self.with_event("reject")),
        }

    def reasons(self, event: str) -> Counter[str]:
        return Counter(
            str(e.payload.get("reason_code") or "unspecified")
            for j in self.cases()
            for e in j.history
            if e.event == event and self.within(e.at)
        )

    def transitioned_to(self) -> Counter[str]:
        kinds = self.plan.org_kinds
        return Counter(
            kinds[j.destination_org_id] if j.destination_org_id else "other"
            for j in self.cases()
            for e in j.history
            if e.event == "complete" and e.from_state == "adaptation" and self.within(e.at)
        )

    def coverage(self) -> tuple[int, int]:
        in_need = [
            j
            for j in self.cases()
            if any(c.outcome in NEED and c.concluded_on <= self.end for c in j.conclusions)
            and (j.closed_at is None or j.closed_at >= self.lower)
        ]
        served = [
            j
            for j in in_need
            if any(
                s.status == "held" and s.service_code != "need_determination" and self.within(s.scheduled_at)
                for s in j.sessions
            )
        ]
        return len({j.child_id for j in served}), len({j.child_id for j in in_need})

    def deadline_outcome(self, d: Any, now: datetime) -> str:
        if d.status == "met":
            return "met"
        if d.status in ("missed",):
            return "late"
        if d.status == "cancelled":
            return "cancelled"
        return "late" if d.paused_at is None and d.due_at < now else "pending"

    def timeliness(self, now: datetime) -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        for j in self.plan.journeys:
            for d in j.deadlines:
                if self.ours(d.provider_id) and self.within(d.due_at):
                    found.setdefault(d.timer, Counter())[self.deadline_outcome(d, now)] += 1
        return found

    def late_cases(self, now: datetime) -> int:
        return len(
            {
                j.case_id
                for j in self.plan.journeys
                for d in j.deadlines
                if self.ours(d.provider_id)
                and self.within(d.due_at)
                and self.deadline_outcome(d, now) == "late"
            }
        )

    def medians(self) -> dict[str, tuple[int, float | None]]:
        to_need = [
            (c.concluded_on - j.referral_date).days
            for j in self.cases()
            for c in j.conclusions
            if self.start <= c.concluded_on <= self.end
        ]
        need_to_ipr, to_ipr = [], []
        for j in self.cases():
            first = self.first_approval(j)
            if not self.within(first):
                continue
            assert first is not None
            day = first.astimezone(self.zone).date()
            concluded = [c.concluded_on for c in j.conclusions if c.outcome == "ipr"]
            if concluded:
                need_to_ipr.append((day - max(concluded)).days)
            to_ipr.append((day - j.referral_date).days)

        def median(values: list[int]) -> tuple[int, float | None]:
            return len(values), float(pystats.median(values)) if values else None

        return {
            "referral_to_need": median(to_need),
            "need_to_ipr": median(need_to_ipr),
            "referral_to_ipr": median(to_ipr),
        }

    def delays(self, now: datetime) -> dict[str, int]:
        return {
            "late_deadlines": self.late_cases(now),
            "suspended": len(
                {j.case_id for j in self.cases() for e in j.events("suspend") if self.within(e.at)}
            ),
            "failed_contacts": len(
                {j.case_id for j in self.cases() for at, ok in j.contacts if not ok and self.within(at)}
            ),
        }

    def sessions(self) -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        for j in self.cases():
            for s in j.sessions:
                if self.within(s.scheduled_at):
                    found.setdefault(s.form, Counter())[s.status] += 1
        return found

    def transfers(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for j in self.plan.journeys:
            for t in j.transfers:
                if not (self.ours(t.from_provider_id) or self.ours(t.to_provider_id)):
                    continue
                found["requested"] += self.within(t.requested_at)
                if t.answered_at is not None and self.within(t.answered_at):
                    found[t.status] += 1
        return found

    def routings(self) -> tuple[Counter[str], Counter[str]]:
        found: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for j in self.plan.journeys:
            for r in j.routings:
                if not self.ours(r.provider_id):
                    continue
                if self.within(r.sent_at):
                    found["sent"] += 1
                    kinds[r.kind] += 1
                found["answered"] += self.within(r.answered_at)
        for j in self.cases():
            for e in j.history:
                if e.event in ("routing_expire", "routing_cancel") and self.within(e.at):
                    found["expired" if e.event == "routing_expire" else "cancelled"] += 1
        return found, kinds


def values(table: Breakdown) -> dict[str, int]:
    """The non-zero cells of a breakdown (zeros are listed too, but a Counter does not hold them)."""
    return {c.code: c.value for c in table.cells if c.value}  # type: ignore[misc]


def assert_matches(stats: Statistics, count: Count, now: datetime) -> None:
    assert values(stats.referrals_by_source) == dict(count.by_source())
    assert stats.referrals_by_source.total is not None
    assert stats.referrals_by_source.total.value == len(count.referrals())
    assert values(stats.referrals_by_criterion) == dict(count.by_criterion())
    assert {c.code: c.value for c in stats.outcomes.cells} == count.outcomes()
    assert values(stats.completed_by_reason) == dict(count.reasons("complete"))
    assert values(stats.declined_by_reason) == dict(count.reasons("decline"))
    assert values(stats.transitioned_to) == dict(count.transitioned_to())
    served, in_need = count.coverage()
    assert (stats.coverage.numerator.value, stats.coverage.denominator.value) == (served, in_need)
    expected = count.timeliness(now)
    for timer in stats.timeliness:
        found = expected.pop(timer.timer, Counter())
        assert values(timer.counts) == dict(found), timer.timer
        assert timer.on_time.numerator.value == found["met"]
        assert timer.on_time.denominator.value == found["met"] + found["late"]
    # Only the adaptation timer's deadlines are not judged (it completes the case by itself).
    assert set(expected) <= {"adaptation"}
    medians = count.medians()
    for median in stats.medians:
        assert (median.n, median.days) == medians[median.code], median.code
    assert {c.code: c.value for c in stats.delays.cells} == count.delays(now)
    sessions = count.sessions()
    for table in stats.sessions_by_form:
        assert values(table) == dict(sessions.get(table.code.partition(":")[2], Counter())), table.code
    assert values(stats.transfers) == {k: v for k, v in count.transfers().items() if v}
    routings, kinds = count.routings()
    assert values(stats.routings) == {k: v for k, v in routings.items() if v}
    assert values(stats.routings_by_kind) == dict(kinds)


# --- every statistic against the plan ---------------------------------------------------------------

PERIODS = [
    (date(2025, 1, 1), date(2025, 12, 31)),  # the yearly report's year
    (date(2024, 4, 1), date(2024, 6, 30)),  # a quarter
    (date(2024, 1, 1), date(2026, 3, 31)),  # everything
    (date(2025, 3, 3), date(2025, 3, 3)),  # one day
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_every_statistic_of_the_region_matches_the_plan(generated: Generated, start: date, end: date) -> None:
    plan = generated.plan
    with Session(generated.engine) as session:
        stats = compute(session, plan.region_id, start, end, now=plan.now)
    assert_matches(stats, Count(plan, start, end), plan.now)
    assert stats.provider_id is None and not stats.suppressed


def test_a_providers_statistics_count_its_own_cases_only(generated: Generated) -> None:
    plan = generated.plan
    start, end = date(2025, 1, 1), date(2025, 12, 31)
    with Session(generated.engine) as session:
        parts = [compute(session, plan.region_id, start, end, pid, now=plan.now) for pid in plan.provider_ids]
        whole = compute(session, plan.region_id, start, end, now=plan.now)
    for provider_id, stats in zip(plan.provider_ids, parts, strict=True):
        assert stats.provider_id == provider_id and stats.provider_name
        assert_matches(stats, Count(plan, start, end, provider_id), plan.now)
    # The providers' referrals add up to the region's (each referral is addressed to one provider).
    total = whole.referrals_by_source.total
    assert total is not None
    assert (
        sum(p.referrals_by_source.total.value or 0 for p in parts if p.referrals_by_source.total)
        == total.value
    )


def test_the_generated_region_has_every_path_and_outcome(generated: Generated) -> None:
    """The plan is worth counting against: each path and each figure occurs, many times."""
    plan = generated.plan
    assert Counter(j.path for j in plan.journeys).keys() >= {
        "rejected",
        "no_need",
        "consultation",
        "ipr",
        "declined_early",
    }
    with Session(generated.engine) as session:
        stats = compute(session, plan.region_id, date(2024, 1, 1), date(2026, 3, 31), now=plan.now)
    assert all((c.value or 0) >= 20 for c in stats.outcomes.cells), stats.outcomes
    assert all(t.counts.total and (t.counts.total.value or 0) > 0 for t in stats.timeliness)
    assert all((t.on_time.share or 0) < 1 for t in stats.timeliness if t.timer != "transfer.answer")
    assert stats.transfers.value("accepted") and stats.routings.value("expired")
    assert stats.delays.value("suspended") and stats.delays.value("failed_contacts")
    assert all(table.total and table.total.value for table in stats.sessions_by_form)
    assert 0 < (stats.coverage.share or 0) < 1


def test_the_generated_childrens_facts_are_what_their_journeys_say(generated: Generated) -> None:
    """child_facts.refresh_region after the bulk write keeps what the doors keep one child at a time."""
    with Session(generated.engine) as session:
        ids = [
            i for i in session.exec(select(Child.id).where(Child.region_id == generated.plan.region_id)) if i
        ]
        stored = stored_facts(session, ids)
        assert len(ids) >= N and stored == facts_from_journeys(session, ids)
    assert {f["in_need"] for f in stored.values()} == {f["served"] for f in stored.values()} == {True, False}


def test_the_period_is_the_regions_days_from_midnight_to_midnight(generated: Generated) -> None:
    """A completion at 00:30 in Moscow (21:30 UTC the day before) counts on its Moscow day."""
    plan = generated.plan
    zone = ZoneInfo(plan.timezone)
    journey = next(j for j in plan.journeys if j.events("complete") and j.provider_id == plan.provider_ids[0])
    event = journey.events("complete")[0]
    day = event.at.astimezone(zone).date()
    early = datetime.combine(day, time(0, 30), tzinfo=zone)
    with Session(generated.engine) as session:

        def completed(on: date) -> int | None:
            return compute(
                session, plan.region_id, on, on, plan.provider_ids[0], now=plan.now
            ).outcomes.value("completed")

        before = completed(day), completed(day - timedelta(days=1))
        row = session.exec(
            select(CaseHistory).where(CaseHistory.case_id == journey.case_id, CaseHistory.event == "complete")
        ).one()
        row.at = early
        session.add(row)
        session.commit()
        try:
            assert early.astimezone(UTC).date() == day - timedelta(days=1)
            assert (completed(day), completed(day - timedelta(days=1))) == before
        finally:
            row.at = event.at
            session.add(row)
            session.commit()


# --- suppression -----------------------------------------------------------------------------------


def cells_of(stats: Statistics) -> Iterator[Cell]:
    for table in stats.breakdowns():
        yield from table.cells
        if table.total is not None:
            yield table.total
    for share in [stats.coverage, *(t.on_time for t in stats.timeliness)]:
        yield share.numerator
        yield share.denominator


def test_the_analysts_copy_never_holds_a_count_of_one_to_four(generated: Generated) -> None:
    plan = generated.plan
    with Session(generated.engine) as session:
        # A short period of one provider: many small cells.
        exact = compute(
            session, plan.region_id, date(2025, 3, 1), date(2025, 3, 14), plan.provider_ids[1], now=plan.now
        )
    hidden = suppress(exact)
    small = [c for c in cells_of(exact) if c.value and c.value < 5]
    assert small, "the period should have small cells to hide"
    for before, after in zip(cells_of(exact), cells_of(hidden), strict=True):
        assert after.value is None or not 0 < after.value < 5
        if before.value == 0:
            assert (after.value, after.shown) == (0, "0")  # zero stays zero
        elif before.value is not None and before.value < 5:
            assert after.suppressed and after.shown == "<5"
        elif not after.suppressed:
            assert after.value == before.value and after.shown == str(before.value)
    for median in hidden.medians:
        assert median.n is None or median.n == 0 or median.n >= 5
    assert hidden.suppressed and not exact.suppressed


def test_secondary_suppression_keeps_a_hidden_cell_from_being_recovered_from_the_total() -> None:
    table = Breakdown(
        code="t",
        title="t",
        unit="children",
        additive=True,
        total=Cell(code="total", label="Всего", value=25),
        cells=[Cell(code=c, label=c, value=v) for c, v in (("a", 3), ("b", 10), ("c", 12), ("d", 0))],
    )
    stats = _stats_with(table)
    shown = {c.code: c.shown for c in suppress(stats).referrals_by_source.cells}
    # 3 is small; 25 − 10 − 12 would give it back, so the next smallest (10) is hidden too.
    assert shown == {"a": "<5", "b": "…", "c": "12", "d": "0"}
    # Two small cells adding up to less than 5 (1 + 1: both recovered as ones) need a third.
    table.cells = [Cell(code=c, label=c, value=v) for c, v in (("a", 1), ("b", 1), ("c", 9), ("d", 14))]
    table.total = Cell(code="total", label="Всего", value=25)
    shown = {c.code: c.shown for c in suppress(_stats_with(table)).referrals_by_source.cells}
    assert shown == {"a": "<5", "b": "<5", "c": "…", "d": "14"}


def test_a_share_over_few_children_or_with_a_small_rest_is_hidden(generated: Generated) -> None:
    plan = generated.plan
    with Session(generated.engine) as session:
        stats = compute(session, plan.region_id, date(2025, 1, 1), date(2025, 12, 31), now=plan.now)
    coverage = stats.coverage
    coverage.numerator.value, coverage.denominator.value = 3, 40
    assert suppress(stats).coverage.share is None
    coverage.numerator.value, coverage.denominator.value = 38, 40  # 2 not served: recoverable
    hidden = suppress(stats).coverage
    assert hidden.share is None and hidden.numerator.shown == "…" and hidden.denominator.value == 40
    coverage.numerator.value, coverage.denominator.value, coverage.share = 30, 40, 0.75
    assert suppress(stats).coverage.share == pytest.approx(0.75)


def test_rounded_counts_keep_a_hidden_count_from_being_recovered_as_a_difference() -> None:
    """The reviewer's case: the region 9 referrals, provider 1 seven, provider 2 two. Suppression
    alone shows 9 and 7, and 9 − 7 gives provider 2's hidden 2; rounded to fives, 10 − 5 could be
    anything from 0 to 10."""

    def referrals(value: int) -> Statistics:
        table = Breakdown(
            code="t",
            title="t",
            unit="referrals",
            additive=True,
            total=Cell(code="total", label="Всего", value=value),
            cells=[
                Cell(code="health", label="health", value=value),
                Cell(code="self", label="self", value=0),
            ],
        )
        return _stats_with(table)

    region, first, second = (suppress(referrals(n), 5, 5).referrals_by_source for n in (9, 7, 2))
    assert region.total is not None and first.total is not None and second.total is not None
    assert (region.total.value, first.total.value, second.total.shown) == (10, 5, "<5")
    assert region.total.rounded and first.get("health").shown == "5"
    assert first.get("self").shown == "0"  # zero stays zero
    # Without rounding (round_to 1), the same copies give 9 and 7: the difference the rounding hides.
    exact_region, exact_first = (suppress(referrals(n), 5, 1).referrals_by_source for n in (9, 7))
    assert exact_region.total is not None and exact_first.total is not None
    assert (exact_region.total.value, exact_first.total.value) == (9, 7)


def test_the_analysts_shares_are_computed_from_the_rounded_counts() -> None:
    table = Breakdown(code="t", title="t", unit="children")
    stats = _stats_with(table)
    stats.coverage.numerator.value, stats.coverage.denominator.value = 23, 36
    coverage = suppress(stats, 5, 5).coverage
    # 23 of 36 is 64 %, which with a rounded 35 would give the exact counts back; 25 of 35 is 71 %.
    assert (coverage.numerator.value, coverage.denominator.value) == (25, 35)
    assert coverage.share == pytest.approx(25 / 35) and coverage.shown == "71 %"


def _stats_with(table: Breakdown) -> Statistics:
    empty = Breakdown(code="e", title="e", unit="children")
    share_cell = Cell(code="n", label="n", value=0)
    from api.services.statistics import Share

    return Statistics(
        region_id=1,
        region_name="r",
        provider_id=None,
        provider_name=None,
        start=date(2025, 1, 1),
        end=date(2025, 12, 31),
        computed_at=datetime.now(UTC),
        min_cell=5,
        referrals_by_source=table,
        referrals_by_criterion=empty,
        outcomes=empty.model_copy(),
        completed_by_reason=empty.model_copy(),
        transitioned_to=empty.model_copy(),
        declined_by_reason=empty.model_copy(),
        coverage=Share(
            code="c", label="c", numerator=share_cell, denominator=share_cell.model_copy(), share=None
        ),
        timeliness=[],
        medians=[],
        delays=empty.model_copy(),
        sessions_by_form=[],
        transfers=empty.model_copy(),
        routings=empty.model_copy(),
        routings_by_kind=empty.model_copy(),
    )


def test_csv_rows_carry_what_is_shown(generated: Generated) -> None:
    plan = generated.plan
    with Session(generated.engine) as session:
        stats = suppress(compute(session, plan.region_id, date(2025, 3, 1), date(2025, 3, 14), now=plan.now))
    rows = csv_rows(stats)
    assert rows[0] == ["Раздел", "Код", "Показатель", "Значение"]
    assert all(len(row) == 4 for row in rows)
    shown = {row[3] for row in rows[1:]}
    assert shown - {"0", "<5", "…", "—"} and not ({"1", "2", "3", "4"} & shown)


# --- the API ---------------------------------------------------------------------------------------


def get(g: Generated, who: str, **params: Any) -> Any:
    return g.world.client.get(f"{API}/stats", params=params, headers=g.world.h(who))


def test_the_regional_centre_gets_the_exact_numbers_and_the_analyst_the_suppressed(
    generated: Generated,
) -> None:
    plan = generated.plan
    period = {"start": "2025-03-01", "end": "2025-03-31"}
    with Session(generated.engine) as session:
        exact = compute(session, plan.region_id, date(2025, 3, 1), date(2025, 3, 31))
    rrmc = get(generated, "rrmc", **period)
    assert rrmc.status_code == 200, rrmc.text
    body = rrmc.json()
    assert body["outcomes"] == exact.model_dump(mode="json")["outcomes"] and not body["suppressed"]
    analyst = get(generated, "analyst", **period, provider_id=plan.provider_ids[2])
    assert analyst.status_code == 200
    data = analyst.json()
    assert data["suppressed"] and "<5" in analyst.text

    def walk(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            if "value" in node and "shown" in node:
                yield node["value"]
            for child in node.values():
                yield from walk(child)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child)

    assert not [v for v in walk(data) if isinstance(v, int) and 0 < v < 5]
    # Labels for people, in Russian.
    assert data["outcomes"]["cells"][0]["label"] == "Выявлено детей (направлены в периоде)"


def test_a_providers_staff_see_their_own_provider_only(generated: Generated) -> None:
    w = generated.world
    own = get(generated, "head", start="2025-01-01", end="2025-12-31")
    assert own.status_code == 200 and own.json()["provider_id"] == w.org_ids["provider"]
    assert not own.json()["suppressed"]
    assert get(generated, "curator", provider_id=w.org_ids["provider"]).status_code == 200
    assert get(generated, "coordinator", provider_id=w.org_ids["provider2"]).status_code == 404
    assert get(generated, "specialist").status_code == 403
    assert get(generated, "referrer").status_code == 403
    assert get(generated, "admin").status_code == 403
    # Another region's provider: not found, for its РРМЦ too.
    assert get(generated, "b_rrmc", provider_id=w.org_ids["provider"]).status_code == 404
    assert get(generated, "rrmc", provider_id=w.org_ids["health"]).status_code == 404  # not a provider
    # Without dates: the year so far.
    body = get(generated, "rrmc").json()
    assert body["end"][:4] == body["start"][:4] and body["start"].endswith("-01-01")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-12-31", "end": "2025-01-01"}, "start"),
        ({"start": "2010-01-01", "end": "2025-01-01"}, "end"),
        ({"start": "2025-13-01"}, "start"),
        ({"start": "1800-01-01"}, "start"),
        ({"end": "вчера"}, "end"),
        ({"provider_id": "0"}, "provider_id"),
    ],
)
def test_bad_periods_are_422_with_the_field_in_russian(
    generated: Generated, params: dict[str, str], field: str
) -> None:
    response = get(generated, "rrmc", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field
    assert any("а" <= ch <= "я" for ch in body["message"].lower()), body["message"]
