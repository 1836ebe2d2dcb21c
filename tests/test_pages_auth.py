"""Signing in to the staff pages: the cookie session, each role's home, CSRF, the 404 page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.browser import assert_accessible, login
from tests.world import World

HOMES = {
    "referrer": "/referrals",
    "coordinator": "/today",
    "curator": "/today",
    "specialist": "/today",
    "head": "/dashboard",
    "rrmc": "/dashboard",
    "analyst": "/stats",
    "admin": "/admin/users",
}


def sign_in(client: TestClient, login: str, password: str = "demo") -> None:
    answer = client.post("/login", data={"login": login, "password": password}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:300]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.mark.parametrize("who", sorted(HOMES))
def test_each_role_is_sent_to_its_home_after_login(world: World, who: str) -> None:
    answer = world.client.post("/login", data={"login": who, "password": "demo"}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == HOMES[who]
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert world.client.get("/", follow_redirects=False).headers["location"] == HOMES[who]


def test_a_wrong_password_shows_the_error_summary_and_keeps_the_login(world: World) -> None:
    answer = world.client.post("/login", data={"login": "curator", "password": "nope"})
    assert answer.status_code == 401
    assert "Неверный логин или пароль" in answer.text and 'value="curator"' in answer.text
    assert "eh_session" not in answer.headers.get("set-cookie", "")


def test_a_page_without_a_session_redirects_to_login_and_back(world: World) -> None:
    answer = world.client.get("/?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Fx%3D1"
    signed = world.client.post(
        "/login", data={"login": "curator", "password": "demo", "next": "/?x=1"}, follow_redirects=False
    )
    assert signed.headers["location"] == "/?x=1"


def test_login_never_redirects_off_the_site(world: World) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        answer = world.client.post(
            "/login", data={"login": "curator", "password": "demo", "next": target}, follow_redirects=False
        )
        assert answer.headers["location"] == "/today", target


def test_an_api_token_in_the_cookie_opens_no_page(world: World) -> None:
    world.client.cookies.set("eh_session", world.tokens["curator"])
    assert world.client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_logout_needs_the_form_token_and_ends_the_session(world: World) -> None:
    sign_in(world.client, "admin")
    page = world.client.get("/admin/users")
    token = csrf_of(page.text) if page.status_code == 200 else None
    cookie = world.client.cookies.get("eh_session")
    refused = world.client.post("/logout", data={"csrf": "0" * 40}, follow_redirects=False)
    assert refused.status_code == 403 and "Форма устарела" in refused.text
    if token is None:  # the admin page is not built yet: take the token from the error page's form
        token = csrf_of(refused.text)
    done = world.client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    world.client.cookies.set("eh_session", cookie or "")
    assert world.client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_an_unknown_page_is_the_404_page_in_russian(world: World) -> None:
    sign_in(world.client, "curator")
    answer = world.client.get("/no-such-page")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Такой страницы нет" in answer.text
    # The API keeps its JSON.
    assert world.client.get("/api/v1/no-such").json()["error"] == "not_found"


def test_login_with_the_keyboard_alone_and_no_serious_accessibility_violation(
    world: World, server_url: str, browser: object
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{server_url}/login")
    assert_accessible(page)
    order = []
    for _ in range(3):  # the skip link, the site's name, then the first field
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent"))
    assert order == ["Перейти к содержанию", "Ранняя помощь", "login"]
    page.keyboard.type("curator")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong-password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # The error summary takes the focus and is checked too.
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert_accessible(page)
    page.get_by_label("Пароль").focus()
    page.keyboard.type("demo")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/today$"))
    context.close()
    assert login(browser, server_url, "admin").url.endswith("/admin/users")
