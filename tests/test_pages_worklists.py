"""Worklists and overviews: «Сегодня» per role, the supervisor's dashboard with its list, chart and
XLSX, the search of children, the analyst's counts; scoped as the API is."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import select

from api.pages import worklists
from core.db import session_scope
from models.audit import AuditLog
from models.cases import ContactAttempt, ContactChannel
from models.common import utcnow
from models.deadlines import Deadline
from models.programmes import ServiceForm, ServiceSession, SessionStatus
from models.users import Role, User
from tests.browser import DESKTOP, assert_accessible, login
from tests.test_pages_auth import sign_in
from tests.world import API, World, snils_for

MOSCOW = ZoneInfo("Europe/Moscow")


def open_case(world: World, first_name: str, *, curator: str = "curator", provider: str = "provider") -> int:
    """A referred child's case, accepted with `curator` (a login or a user id)."""
    body: dict[str, Any] = {"child": {"first_name": first_name}}
    if provider != "provider":
        body["provider_id"] = world.org_ids[provider]
    case_id = int(world.refer(**body)["case_id"])
    coordinator = "coordinator" if provider == "provider" else "coordinator2"
    curator_id = world.user_ids[curator] if curator in world.user_ids else int(curator)
    world.advance(case_id, "accept", {"curator_id": curator_id}, who=coordinator)
    return case_id


def make_overdue(engine: Engine, case_id: int, days: int = 3) -> None:
    """The case's need-determination deadline fell due `days` ago (its warning before that)."""
    with session_scope(engine) as session:
        row = session.exec(
            select(Deadline).where(Deadline.case_id == case_id, Deadline.timer == "need_determination")
        ).one()
        row.due_at = utcnow() - timedelta(days=days)
        row.warn_at = row.due_at - timedelta(days=2)


def second_curator(engine: Engine) -> int:
    """Another curator of the first provider (password "demo", as the others)."""
    with session_scope(engine) as session:
        mine = session.exec(select(User).where(User.login == "curator")).one()
        other = User(
            organisation_id=mine.organisation_id,
            login="curator_b",
            full_name="Орлова Нина Сергеевна",
            role=Role.curator,
            email="curator_b@example.org",
            password_hash=mine.password_hash,
        )
        session.add(other)
        session.flush()
        return other.id or 0


def plan_session_today(
    engine: Engine, case_id: int, specialist: int | None = None, days: int = 0
) -> datetime:
    """A planned session at 12:30 in Moscow today (or `days` later)."""
    day = utcnow().astimezone(MOSCOW).date() + timedelta(days=days)
    at = datetime.combine(day, time(12, 30), MOSCOW)
    with session_scope(engine) as session:
        session.add(
            ServiceSession(
                case_id=case_id,
                service_code="family_support",
                form=ServiceForm.in_person,
                scheduled_at=at,
                duration_minutes=45,
                specialist_id=specialist,
                status=SessionStatus.planned,
            )
        )
    return at


# --- «Сегодня» ----------------------------------------------------------------------------------


def test_curator_today_shows_her_overdue_case_and_todays_session_but_not_another_curators_case(
    world: World, engine: Engine
) -> None:
    mine = open_case(world, "Вероника")
    other = open_case(world, "Глафира", curator=str(second_curator(engine)))
    make_overdue(engine, mine)
    make_overdue(engine, other)
    plan_session_today(engine, mine, world.user_ids["specialist"])
    sign_in(world.client, "curator")
    page = world.client.get("/today")
    assert page.status_code == 200
    html = page.text
    late = html.split('id="late"')[1].split('id="soon"')[0]
    assert "Вероника" in late and f'href="/cases/{mine}"' in late
    sessions = html.split('id="sessions"')[1].split('id="unreachable"')[0]
    today_part = sessions.split("Завтра")[0]
    assert "Вероника" in today_part and "12:30" in today_part
    assert "Глафира" not in html
    assert "Мои случаи (1)" in html
    changed = datetime.fromisoformat(world.case(mine)["updated_at"]).astimezone(MOSCOW)
    assert f"{changed:%d.%m.%Y %H:%M}" in html.split('id="mine"')[1]  # in the region's zone


def test_curator_today_lists_a_family_she_cannot_reach(world: World, engine: Engine) -> None:
    case_id = open_case(world, "Зинаида")
    with session_scope(engine) as session:
        session.add(
            ContactAttempt(
                case_id=case_id,
                at=utcnow() - timedelta(hours=2),
                channel=ContactChannel.phone,
                successful=False,
                recorded_by_id=world.user_ids["curator"],
            )
        )
    sign_in(world.client, "curator")
    html = world.client.get("/today").text
    unreachable = html.split('id="unreachable"')[1].split('id="mine"')[0]
    assert "Зинаида" in unreachable
    with session_scope(engine) as session:  # reached later: off the list
        session.add(
            ContactAttempt(
                case_id=case_id,
                at=utcnow() - timedelta(hours=1),
                channel=ContactChannel.phone,
                successful=True,
                recorded_by_id=world.user_ids["curator"],
            )
        )
    html = world.client.get("/today").text
    assert "Зинаида" not in html.split('id="unreachable"')[1].split('id="mine"')[0]


def test_coordinator_today_shows_a_new_referral_and_writes_audit_rows(world: World, engine: Engine) -> None:
    case_id = int(world.refer(child={"first_name": "Доминика"})["case_id"])
    sign_in(world.client, "coordinator")
    html = world.client.get("/today").text
    referred = html.split('id="referred"')[1].split('id="no-curator"')[0]
    assert "Доминика" in referred and f'href="/cases/{case_id}"' in referred
    with session_scope(engine) as session:
        rows = session.exec(
            select(AuditLog).where(
                AuditLog.action == "read", AuditLog.entity == "case", AuditLog.entity_id == case_id
            )
        ).all()
    assert rows and rows[-1].path == "GET /today"
    # The other provider's coordinator does not see it.
    sign_in(world.client, "coordinator2")
    assert "Доминика" not in world.client.get("/today").text


def test_coordinator_today_lists_a_referral_awaiting_her_match_review(world: World) -> None:
    body = world.referral_body(child={"first_name": "Элина"})
    world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    again = world.referral_body(child={**body["child"], "first_name": "Эльвира"})
    pending = world.client.post(f"{API}/referrals", json=again, headers=world.h("referrer")).json()
    sign_in(world.client, "coordinator")
    reviews = world.client.get("/today").text.split('id="reviews"')[1].split('id="late"')[0]
    assert f'href="/referrals/{pending["id"]}"' in reviews
    sign_in(world.client, "coordinator2")
    assert "Нет направлений на проверку" in world.client.get("/today").text


def test_specialist_today_shows_her_session(world: World, engine: Engine) -> None:
    case_id = open_case(world, "Евгения")
    other = open_case(world, "Лидия")
    plan_session_today(engine, case_id, world.user_ids["specialist"])
    plan_session_today(engine, other, world.user_ids["specialist"], days=1)
    plan_session_today(engine, other, world.user_ids["specialist"], days=2)  # not yet on the list
    sign_in(world.client, "specialist")
    html = world.client.get("/today").text
    today_part, tomorrow_part = html.split('id="sessions"')[1].split('id="tomorrow"')
    assert "Евгения" in today_part and "Лидия" not in today_part
    assert "Лидия" in tomorrow_part.split('id="cases"')[0]
    assert tomorrow_part.split('id="cases"')[0].count("12:30") == 1
    assert f'href="/cases/{case_id}"' in html.split('id="cases"')[1]


@pytest.mark.parametrize(
    ("who", "url"), [("referrer", "/today"), ("analyst", "/dashboard"), ("referrer", "/search")]
)
def test_pages_refuse_roles_they_are_not_for(world: World, who: str, url: str) -> None:
    sign_in(world.client, who)
    page = world.client.get(url)
    assert page.status_code == 403 and "<html" in page.text


# --- the dashboard ------------------------------------------------------------------------------


def test_an_overdue_case_is_on_the_dashboard_its_list_and_its_xlsx(world: World, engine: Engine) -> None:
    case_id = open_case(world, "Жанна")
    make_overdue(engine, case_id)
    sign_in(world.client, "head")
    board = world.client.get("/dashboard")
    assert board.status_code == 200
    assert '<span class="big">1</span> просроченный срок' in board.text
    # The chart's table counts it in the week it fell due.
    weeks = board.text.split("Таблица с данными диаграммы")[1]
    assert sum(int(n) for n in _cells(weeks)) == 1
    assert 'role="img"' in board.text
    # Each count links to the filtered list.
    assert f"curator={world.user_ids['curator']}" in board.text and "step=need_determination" in board.text
    listing = world.client.get(f"/dashboard/cases?status=overdue&curator={world.user_ids['curator']}")
    assert (
        listing.status_code == 200 and "Жанна" in listing.text and f'href="/cases/{case_id}"' in listing.text
    )
    assert "Жанна" not in world.client.get("/dashboard/cases?status=soon").text
    export = world.client.get("/dashboard/cases.xlsx?status=overdue&step=need_determination")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("№ случая", "Ребёнок")
    row = next(r for r in rows[1:] if r[0] == case_id)
    assert str(row[1]).startswith("Ёжикова Жанна")
    assert isinstance(row[6], datetime | date) and row[7] == 3
    with session_scope(engine) as session:
        exported = session.exec(
            select(AuditLog).where(AuditLog.action == "export", AuditLog.entity == "case")
        ).all()
    assert [(a.entity_id, a.path) for a in exported] == [(case_id, "GET /dashboard/cases.xlsx")]


def _cells(html: str) -> list[str]:
    import re

    return re.findall(r'<td class="num">(\d+)</td>', html)


def test_the_regional_supervisor_sees_both_providers_and_the_head_only_hers(
    world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = open_case(world, "Ирина")
    theirs = open_case(world, "Кира", curator="curator2", provider="provider2")
    make_overdue(engine, mine)
    make_overdue(engine, theirs)
    sign_in(world.client, "rrmc")
    board = world.client.get("/dashboard").text
    assert "По организациям" in board and f"org={world.org_ids['provider2']}" in board
    listing = world.client.get("/dashboard/cases?status=overdue").text
    assert "Ирина" in listing and "Кира" in listing
    only = world.client.get(f"/dashboard/cases?status=overdue&org={world.org_ids['provider2']}").text
    assert "Кира" in only and "Ирина" not in only
    # Hundreds of curators in a region: the table shows those most behind, and says so.
    monkeypatch.setattr(worklists, "CURATOR_ROWS", 1)
    capped = world.client.get("/dashboard").text.split('id="by-curator"')[1].split('id="by-step"')[0]
    assert capped.count('<th scope="row">') == 1 and "Показаны 1 с наибольшим числом" in capped
    sign_in(world.client, "head")
    assert "По организациям" not in world.client.get("/dashboard").text
    listing = world.client.get("/dashboard/cases?status=overdue").text
    assert "Ирина" in listing and "Кира" not in listing
    # Naming the other provider in the filter opens nothing.
    other = world.client.get(f"/dashboard/cases?status=overdue&org={world.org_ids['provider2']}").text
    assert "Кира" not in other and "Найдено: 0" in other
    rows = list(
        load_workbook(io.BytesIO(world.client.get("/dashboard/cases.xlsx").content)).active.iter_rows(
            values_only=True
        )
    )  # type: ignore[union-attr]
    assert [r[0] for r in rows[1:]] == [mine]


def test_dashboard_list_pages(world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worklists, "PAGE_SIZE", 2)
    cases = [open_case(world, name) for name in ("Лада", "Майя", "Нелли")]
    for days, case_id in zip((5, 4, 3), cases, strict=True):
        make_overdue(engine, case_id, days)
    sign_in(world.client, "head")
    first = world.client.get("/dashboard/cases?status=overdue").text
    assert "Лада" in first and "Майя" in first and "Нелли" not in first and "Страница 1 из 2" in first
    second = world.client.get("/dashboard/cases?status=overdue&page=2").text
    assert "Нелли" in second and "Лада" not in second


def test_dashboard_list_refuses_a_bad_filter(world: World) -> None:
    sign_in(world.client, "head")
    assert world.client.get("/dashboard/cases?status=later").status_code == 422
    assert world.client.get("/dashboard/cases?org=x").status_code == 422
    assert world.client.get("/dashboard/cases?state=flying").status_code == 422
    assert world.client.get("/dashboard/cases?page=²").status_code == 422  # a digit, but not 0-9
    sign_in(world.client, "curator")
    assert world.client.get("/search?q=ежикова&page=²").status_code == 422


# --- search -------------------------------------------------------------------------------------


def test_search_finds_yozhikova_by_e_and_by_snils_and_links_the_case(world: World) -> None:
    referral = world.refer(child={"first_name": "Ольга"})
    snils = referral_snils(world)
    sign_in(world.client, "curator")
    found = world.client.get("/search", params={"q": "ежикова ольга"})
    assert found.status_code == 200
    assert "Ёжикова Ольга Петровна" in found.text and f'href="/cases/{referral["case_id"]}"' in found.text
    by_snils = world.client.get("/search", params={"snils": snils})
    assert "Ёжикова Ольга" in by_snils.text
    assert "Никого не нашли" in world.client.get("/search", params={"q": "Петров Никто"}).text


def referral_snils(world: World) -> str:
    # world.refer numbers its children: the last one's СНИЛС.
    digits = snils_for(world.counter[0])
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:]}"


def results(html: str) -> str:
    """The search page below its form: what was found."""
    return html.split('id="results"')[1]


def test_search_does_not_find_another_providers_child(world: World) -> None:
    world.refer(child={"first_name": "Полина"}, provider_id=world.org_ids["provider2"])
    snils = referral_snils(world)
    sign_in(world.client, "curator")
    by_name = results(world.client.get("/search", params={"q": "Ежикова Полина"}).text)
    assert "Найдено: 0" in by_name and "Полина" not in by_name
    assert "Найдено: 0" in results(world.client.get("/search", params={"snils": snils}).text)
    sign_in(world.client, "curator2")
    assert "Полина" in results(world.client.get("/search", params={"q": "Ежикова Полина"}).text)


def test_search_pages_through_the_results(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worklists, "PAGE_SIZE", 2)
    for name in ("Роза", "Светлана", "Таисия"):
        world.refer(child={"first_name": name})
    sign_in(world.client, "curator")
    first = world.client.get("/search", params={"q": "ежикова"}).text
    assert "Найдено: 3" in first and "Страница 1 из 2" in first and "Таисия" not in first
    second = world.client.get("/search", params={"q": "ежикова", "page": 2}).text
    assert "Таисия" in second and "Роза" not in second


def test_a_search_with_more_matches_than_the_cap_says_more_than_and_pages_only_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.services import children as children_service

    monkeypatch.setattr(worklists, "PAGE_SIZE", 1)
    monkeypatch.setattr(children_service, "SEARCH_COUNT_CAP", 2)
    for name in ("Роза", "Светлана", "Таисия"):
        world.refer(child={"first_name": name})
    sign_in(world.client, "curator")
    first = world.client.get("/search", params={"q": "ежикова"}).text
    assert "Найдено: более 2" in first and "Страница 1 из 2" in first
    assert world.client.get("/search", params={"q": "ежикова", "page": 2}).text.count("Ёжикова") >= 1


def test_search_with_a_bad_snils_shows_the_error_summary(world: World) -> None:
    sign_in(world.client, "curator")
    page = world.client.get("/search", params={"snils": "123"})
    assert page.status_code == 422
    assert (
        'class="error-summary"' in page.text and 'href="#snils"' in page.text and 'value="123"' in page.text
    )


# --- stats --------------------------------------------------------------------------------------


def test_analyst_stats_shows_counts_and_no_child_names(world: World) -> None:
    open_case(world, "Ульяна")
    world.refer(child={"first_name": "Фаина"})
    sign_in(world.client, "analyst")
    page = world.client.get("/stats")
    assert page.status_code == 200
    assert "Ёжикова" not in page.text and "Ульяна" not in page.text and "Фаина" not in page.text
    api = world.client.get(f"{API}/stats/cases", headers=world.h("analyst")).json()
    # Two cases: the API and the page hide the analyst's counts of 1..4 alike (api/services/stats.py).
    assert api["total"] is None and api["total_shown"] == "<5"
    for row in api["by_state"]:
        assert row["suppressed"] == (row["count"] is None)
        shown = row["shown"].replace("<", "&lt;")
        assert f'<th scope="row">{row["label"]}</th><td class="num">{shown}</td>' in page.text
    assert sum(row["suppressed"] for row in api["by_state"]) >= 1
    assert 'role="img"' in page.text


# --- in a browser -------------------------------------------------------------------------------


def test_worklist_pages_are_accessible_at_1366(
    world: World, engine: Engine, server_url: str, browser: Any
) -> None:
    case_id = open_case(world, "Яна")
    make_overdue(engine, case_id)
    plan_session_today(engine, case_id, world.user_ids["specialist"])
    world.refer(child={"first_name": "Юлия"})
    page = login(browser, server_url, "curator", viewport=DESKTOP)
    assert page.url.endswith("/today")
    assert page.get_by_role("heading", name="Сегодня", level=1).is_visible()
    assert_accessible(page)
    page.goto("/search")
    page.get_by_label("ФИО или его часть").fill("ежикова")
    with page.expect_navigation():
        page.get_by_role("button", name="Найти").click()
    assert page.get_by_role("link", name="Ёжикова Яна Петровна").is_visible()
    assert_accessible(page)
    page.context.close()

    page = login(browser, server_url, "coordinator", viewport=DESKTOP)
    assert page.locator("#referred").is_visible()
    assert_accessible(page)
    page.context.close()

    page = login(browser, server_url, "rrmc", viewport=DESKTOP)
    assert page.url.endswith("/dashboard")
    assert_accessible(page)
    with page.expect_navigation():
        page.locator(".card-late a").click()
    assert page.get_by_role("link", name="Ёжикова Яна Петровна").is_visible()
    assert_accessible(page)
    page.context.close()

    page = login(browser, server_url, "analyst", viewport=DESKTOP)
    assert page.url.endswith("/stats")
    assert_accessible(page)
    page.context.close()
