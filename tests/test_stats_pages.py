"""The statistics page: the period form, the provider picker, tables and SVG charts with the numbers
of the API, the analyst's «<5», the CSV of the same numbers, bad periods as the form again with its
errors, and in a browser with axe."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.services.statistics import compute, suppress
from models.organisations import Organisation, Region
from tests.browser import DESKTOP, assert_accessible, login
from tests.region_gen import Plan, generate
from tests.test_pages_auth import sign_in
from tests.world import World


def region_with_journeys(world: World, engine: Engine, n: int = 150) -> Plan:
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
    return generate(engine, n=n, seed=5, region_id=region.id)


def test_the_regional_centre_sees_the_regions_numbers_with_charts(world: World, engine: Engine) -> None:
    plan = region_with_journeys(world, engine)
    sign_in(world.client, "rrmc")
    page = world.client.get("/stats", params={"year": "2025"})
    assert page.status_code == 200, page.text
    with Session(engine) as session:
        stats = compute(session, plan.region_id, date(2025, 1, 1), date(2025, 12, 31))
    text = page.text
    for cell in stats.outcomes.cells:
        assert f'<tr><th scope="row">{cell.label}</th><td class="num">{cell.shown}</td></tr>' in text
    assert text.count('role="img"') == 5  # funnel, sources, criteria, timeliness, sessions
    for title in ("Путь детей", "Направления по источнику", "Доля сроков", "Занятия: назначено"):
        assert title in text
    assert "<caption>Сроки стандарта, наступившие в периоде</caption>" in text
    assert "<strong>Демонстрационная область</strong>, 01.01.2025 – 31.12.2025" in text
    # The provider picker lists the region's providers.
    for provider_id in plan.provider_ids:
        assert f'<option value="{provider_id}"' in text
    # A quarter, and one provider.
    quarter = world.client.get(
        "/stats", params={"year": "2025", "quarter": "2", "provider_id": plan.provider_ids[1]}
    )
    assert quarter.status_code == 200
    assert "01.04.2025 – 30.06.2025" in quarter.text
    with Session(engine) as session:
        provider = compute(session, plan.region_id, date(2025, 4, 1), date(2025, 6, 30), plan.provider_ids[1])
    assert provider.provider_name and f"<strong>{provider.provider_name}</strong>" in quarter.text.replace(
        "&#34;", '"'
    )


def test_the_analyst_sees_small_numbers_hidden_and_explained(world: World, engine: Engine) -> None:
    plan = region_with_journeys(world, engine)
    sign_in(world.client, "analyst")
    params = {"start": "2025-03-01", "end": "2025-03-31", "provider_id": str(plan.provider_ids[0])}
    page = world.client.get("/stats", params=params)
    assert page.status_code == 200, page.text
    with Session(engine) as session:
        hidden = suppress(
            compute(session, plan.region_id, date(2025, 3, 1), date(2025, 3, 31), plan.provider_ids[0])
        )
    assert "Малые числа скрыты" in page.text and "&lt;5" in page.text
    for cell in hidden.referrals_by_source.cells:
        shown = cell.shown.replace("<", "&lt;")
        assert f'<tr><th scope="row">{cell.label}</th><td class="num">{shown}</td></tr>' in page.text
    for small in ("1", "2", "3", "4"):
        assert f'<td class="num">{small}</td>' not in page.text
        assert f'class="chart-value">{small}</text>' not in page.text
    # The CSV: the same numbers, hidden the same way.
    download = world.client.get("/stats.csv", params=params)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text.lstrip("\ufeff")), delimiter=";"))
    assert [
        "Направления по источнику",
        "health",
        "Медицинская организация",
        hidden.referrals_by_source.get("health").shown,
    ] in rows
    assert not {row[3] for row in rows[3:]} & {"1", "2", "3", "4"}


def test_the_csv_gives_an_organisation_name_that_starts_like_a_formula_as_text(
    world: World, engine: Engine
) -> None:
    with Session(engine) as session:
        org = session.get(Organisation, world.provider_id)
        assert org is not None
        org.name = '=HYPERLINK("http://example.org/x","Центр")'
        session.add(org)
        session.commit()
    sign_in(world.client, "rrmc")
    download = world.client.get("/stats.csv", params={"provider_id": str(world.provider_id)})
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0][2] == '\'=HYPERLINK("http://example.org/x","Центр")'
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_a_providers_head_sees_its_own_provider_and_a_specialist_is_refused(
    world: World, engine: Engine
) -> None:
    plan = region_with_journeys(world, engine, n=60)
    sign_in(world.client, "head")
    page = world.client.get("/stats", params={"year": "2025"})
    assert page.status_code == 200
    assert 'id="provider_id"' not in page.text  # no picker: its own provider only
    other = world.client.get("/stats", params={"year": "2025", "provider_id": plan.provider_ids[1]})
    assert other.status_code == 404
    sign_in(world.client, "specialist")
    assert world.client.get("/stats").status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-12-31", "end": "2025-01-01"}, "start"),
        ({"start": "2010-01-01", "end": "2025-01-01"}, "end"),
        ({"start": "2025-02-30", "end": "2025-03-01"}, "start"),
        ({"start": "2025-01-01"}, "end"),
        ({"year": "1999"}, "year"),
        ({"year": "２０２５"}, "year"),
        ({"quarter": "7"}, "quarter"),
        ({"provider_id": "x"}, "provider_id"),
        ({"provider_id": "99999999999"}, "provider_id"),
        ({"start": "２０２５-01-01", "end": "2025-02-01"}, "start"),
    ],
)
def test_a_bad_period_shows_the_form_again_with_the_error(
    world: World, params: dict[str, str], field: str
) -> None:
    sign_in(world.client, "rrmc")
    page = world.client.get("/stats", params=params)
    assert page.status_code == 422
    assert 'class="error-summary"' in page.text and f'href="#{field}"' in page.text
    assert world.client.get("/stats.csv", params=params).status_code == 422


def test_the_statistics_page_is_accessible_at_1366(
    world: World, engine: Engine, server_url: str, browser: object
) -> None:
    plan = region_with_journeys(world, engine, n=120)
    for who in ("rrmc", "analyst"):
        page = login(browser, server_url, who, viewport=DESKTOP)
        page.goto("/stats?year=2025")
        assert page.get_by_role("heading", name="Статистика", level=1).is_visible()
        assert page.get_by_role(
            "img", name="Путь детей: выявлены, нуждаются, ИПРП, завершили, перешли"
        ).is_visible()
        assert_accessible(page)
        if who == "rrmc":
            page.get_by_label("Организация").select_option(str(plan.provider_ids[0]))
            page.get_by_label("Квартал").select_option("1")
            with page.expect_navigation():
                page.get_by_role("button", name="Показать").click()
            assert "01.01.2025 – 31.03.2025" in page.content()
            assert_accessible(page)
        page.context.close()
