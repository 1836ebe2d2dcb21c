"""Form 1-РП without Prefect: starting runs (API, rules), the form's files against the statistics,
the analyst's suppressed copy, the lease, and the schedule."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import openpyxl
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from api.services.statistics import suppress
from flows.report_files import build_form, form_pdf, form_xlsx
from flows.reports import (
    MAX_ATTEMPTS,
    both_forms,
    claim,
    claim_next,
    expire_leases,
    extras,
    queue_scheduled,
)
from flows.sweeps import sweep_reports
from models.organisations import Organisation, Region
from models.reports import ReportRun, ReportStatus
from models.users import User
from tests.reports_support import REFERRED, WITH_IPR, demo_statistics, journeys, pdf_text, xlsx_rows, year
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World


def start(world: World, who: str = "rrmc", **body: object) -> tuple[int, dict[str, object]]:
    response = world.client.post(
        f"{API}/reports", json={"kind": "form_1rp", "year": year(), **body}, headers=world.h(who)
    )
    return response.status_code, response.json()


def test_the_rrmc_starts_a_run_that_waits_for_a_worker(world: World) -> None:
    status, run = start(world)
    assert status == 202
    assert run["status"] == "queued" and run["progress"] == 0 and run["xlsx_url"] is None
    listed = world.client.get(f"{API}/reports", headers=world.h("rrmc")).json()
    assert [r["id"] for r in listed] == [run["id"]]
    again = world.client.get(f"{API}/reports/{run['id']}", headers=world.h("analyst")).json()
    assert again["stage"] == "В очереди"


def test_a_second_start_while_one_waits_or_runs_is_refused(world: World, engine: Engine) -> None:
    _, run = start(world)
    status, body = start(world)
    assert status == 409 and "уже формируется" in str(body)
    assert claim(engine, int(str(run["id"])), "w1")
    assert start(world, who="admin")[0] == 409
    assert start(world, year=year() - 1)[0] == 202  # another year is another report


def test_a_year_before_2020_or_in_the_future_is_refused_in_russian(world: World) -> None:
    for bad in (2019, year() + 1):
        status, body = start(world, year=bad)
        assert status == 422, body
        assert "Отчётный год должен быть от 2020" in str(body)
    assert (
        world.client.post(f"{API}/reports", json={"year": "двадцать"}, headers=world.h("rrmc")).status_code
        == 422
    )


def test_another_regions_run_is_not_found_and_provider_staff_are_refused(world: World) -> None:
    _, run = start(world)
    assert world.client.get(f"{API}/reports/{run['id']}", headers=world.h("b_rrmc")).status_code == 404
    assert (
        world.client.get(f"{API}/reports/{run['id']}/file.pdf", headers=world.h("b_rrmc")).status_code == 404
    )
    assert world.client.get(f"{API}/reports", headers=world.h("b_rrmc")).json() == []
    for who in ("coordinator", "curator", "head", "referrer"):
        assert world.client.get(f"{API}/reports", headers=world.h(who)).status_code == 403
        assert start(world, who=who)[0] == 403
    assert start(world, who="analyst")[0] == 403  # the analyst reads; the РРМЦ sends the report


def test_the_form_holds_the_statistics_numbers_in_xlsx_and_pdf(world: World, engine: Engine) -> None:
    journeys(world)
    stats = demo_statistics(engine)
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        more = extras(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31), 5, False)
    form = build_form(stats, more, year(), date(year(), 12, 31), date(year() + 1, 4, 15))
    rows = xlsx_rows(form_xlsx(form))
    assert rows["1.01"] == stats.referrals_by_source.total.value == REFERRED  # type: ignore[union-attr]
    assert rows["2.01"] == stats.outcomes.value("identified") == REFERRED
    assert rows["2.03"] == stats.outcomes.value("with_ipr") == WITH_IPR
    assert rows["2.02"] == stats.outcomes.value("in_need")
    assert rows["3.01"] == REFERRED  # each child is of one age group, counted once
    assert sum(rows[f"3.0{n}"] for n in range(2, 6)) == REFERRED
    with Session(engine) as session:
        providers = session.exec(
            select(Organisation).where(Organisation.region_id == region.id, Organisation.kind == "provider")
        ).all()
    assert rows["8.01"] == rows["8.02"] + rows["8.03"] + rows["8.04"] == len(providers)
    assert rows["8.02"] == sum(1 for p in providers if p.ownership == "state")
    assert rows["8.05"] == sum(1 for p in providers if "in_person" in p.forms)  # «очно»
    with Session(engine) as session:
        # The people who give the services: active curators and specialists of the region's providers.
        staff = session.exec(
            select(User).join(Organisation, col(Organisation.id) == col(User.organisation_id))
        ).all()
        own = {p.id for p in providers if p.is_active}
    assert rows["8.09"] == sum(
        1 for u in staff if u.organisation_id in own and u.is_active and u.role in ("curator", "specialist")
    )
    assert rows["8.09"] > 0
    text = pdf_text(form_pdf(form))
    assert "Форма 1-РП" in text and "Демонстрационная область" in text
    assert f"01.01.{year()} – 31.12.{year()}" in text
    assert f"до 15.04.{year() + 1}" in text
    assert "Утверждена ИПРП" in text


def test_the_analysts_copy_has_no_count_between_1_and_4(world: World, engine: Engine) -> None:
    journeys(world)
    stats = demo_statistics(engine, suppressed=True)
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        more = extras(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31), 5, True)
    form = build_form(stats, more, year(), date(year(), 12, 31), date(year() + 1, 4, 15))
    rows = xlsx_rows(form_xlsx(form))
    # Section 8 counts organisations (public in the provider registry), not children.
    small = {c: v for c, v in rows.items() if isinstance(v, int) and 0 < v < 5 and not c.startswith("8.")}
    assert small == {}
    assert "<5" in rows.values()  # with_ipr (2) at least was there to hide
    assert "<5" in pdf_text(form_pdf(form))


def test_the_analysts_copy_from_the_flow_counts_the_providers_like_the_full_form(
    world: World, engine: Engine
) -> None:
    journeys(world)
    exact = demo_statistics(engine)
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        more = extras(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31), 5, False)
    made = both_forms(
        exact, suppress(exact, 5), more, 5, year(), date(year(), 12, 31), date(year() + 1, 4, 15)
    )
    full, hidden = xlsx_rows(form_xlsx(made.full)), xlsx_rows(form_xlsx(made.suppressed))
    section_8 = {code: value for code, value in full.items() if code.startswith("8.")}
    assert section_8["8.01"] == section_8["8.02"] + section_8["8.03"] + section_8["8.04"] > 0
    assert {code: hidden[code] for code in section_8} == section_8
    assert hidden["2.03"] == "<5" and full["2.03"] == WITH_IPR


def test_section_7_heads_transfers_and_routings_without_saying_there_is_no_data(
    world: World, engine: Engine
) -> None:
    journeys(world)
    stats = demo_statistics(engine)
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        more = extras(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31), 5, False)
    form = build_form(stats, more, year(), date(year(), 12, 31), date(year() + 1, 4, 15))
    (agencies,) = [section for section in form.sections if section.code == "7"]
    heads = [row for row in agencies.rows if row.level == 0]
    assert [row.label for row in heads] == [stats.transfers.title, stats.routings.title]
    # The counts are the rows under each heading (a transfer or a routing may be counted in several).
    assert all(row.shown == "" and row.value is None for row in heads)
    assert [row.value for row in agencies.rows if row.level == 1] == [
        cell.value for table in (stats.transfers, stats.routings) for cell in table.cells
    ]
    assert "нет данных в системе" not in {row.shown for row in agencies.rows}


def test_a_run_whose_worker_died_is_queued_again_then_failed(world: World, engine: Engine) -> None:
    _, body = start(world)
    run_id = int(str(body["id"]))
    later = datetime.now(UTC) + timedelta(hours=1)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert claim_next(engine, f"worker-{attempt}") == run_id
        assert claim_next(engine, "another") is None  # taken: nobody else gets it
        expire_leases(engine, later)
    with Session(engine) as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        assert run.status == ReportStatus.failed and run.attempts == MAX_ATTEMPTS
        assert run.error and "не завершилось" in run.error
    assert start(world)[0] == 202  # a failed run holds nothing


def _moscow(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=3)


def test_the_schedule_queues_last_years_report_once_from_15_january(world: World, engine: Engine) -> None:
    assert queue_scheduled(engine, _moscow(date(2026, 1, 14), 10)) == []  # 19:00 in Kamchatka
    # 15 January 00:30 in Moscow is still the 14th in UTC: the region's date counts.
    first = queue_scheduled(engine, _moscow(date(2026, 1, 15), 0) + timedelta(minutes=30))
    with Session(engine) as session:
        runs = session.exec(select(ReportRun)).all()
        regions = {r.id: r.code for r in session.exec(select(Region))}
    demo = [r for r in runs if regions[r.region_id] == "demo"]
    assert len(demo) == 1 and demo[0].year == 2025 and demo[0].requested_by is None
    assert demo[0].id in first
    # Kamchatka's 15 January began earlier still: both regions have theirs, once.
    assert sorted(regions[r.region_id] for r in runs) == ["demo", "other"]
    assert sweep_reports(engine, _moscow(date(2026, 1, 16))) == []  # the worker's job: the same, once
    assert queue_scheduled(engine, _moscow(date(2026, 3, 1))) == []


def test_the_schedule_tries_a_failed_report_again_the_next_day(world: World, engine: Engine) -> None:
    now = _moscow(date(2026, 2, 1))
    queued = queue_scheduled(engine, now)
    with Session(engine) as session:
        session.execute(
            update(ReportRun)
            .where(col(ReportRun.id).in_(queued))
            .values(status=ReportStatus.failed, finished_at=now + timedelta(minutes=1))
        )
        session.commit()
    assert queue_scheduled(engine, now + timedelta(hours=2)) == []
    assert len(queue_scheduled(engine, now + timedelta(days=1, hours=1))) == len(queued)


def test_the_reports_page_refuses_provider_staff_and_lets_the_analyst_only_read(world: World) -> None:
    sign_in(world.client, "coordinator")
    assert world.client.get("/reports").status_code == 403
    sign_in(world.client, "analyst")
    page = world.client.get("/reports")
    assert page.status_code == 200 and "Сформировать" not in page.text
    refused = world.client.post("/reports", data={"csrf": csrf_of(page.text), "year": str(year())})
    assert refused.status_code == 403
    assert world.client.get("/reports/2000000/progress").status_code == 404


def test_a_region_named_like_a_formula_stays_text_in_the_xlsx(world: World, engine: Engine) -> None:
    journeys(world)
    stats = demo_statistics(engine)
    stats.region_name = '=HYPERLINK("http://example.org")'
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        more = extras(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31), 5, False)
    form = build_form(stats, more, year(), date(year(), 12, 31), date(year() + 1, 4, 15))
    sheet = openpyxl.load_workbook(io.BytesIO(form_xlsx(form))).active
    assert sheet is not None
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
    assert any(cell.value == stats.region_name for cell in cells)
    assert all(cell.data_type != "f" for cell in cells)
