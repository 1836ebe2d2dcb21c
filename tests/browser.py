"""Browser helpers for the page tests: Debian's Chromium driven by Playwright (no browser
download), logging in through the login form, and the axe-core accessibility check served from
a file in tests/assets/ (axe-core 4.14.1, MPL-2.0; nothing is fetched from a CDN)."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent / "assets" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}


def login(
    browser: Any, base_url: str, login: str, password: str = "demo", viewport: dict[str, int] | None = None
) -> Any:
    """A new browser context signed in as `login` through the form; returns its page on the home."""
    context = browser.new_context(viewport=viewport or DESKTOP, locale="ru-RU", base_url=base_url)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Войти").click()
    assert "/login" not in page.url, f"{login} could not sign in: {page.inner_text('main')[:200]}"
    return page


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8") + "\n;true"


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the given impacts on the page as it is now (WCAG 2.x A and AA)."""
    # Evaluated through the DevTools protocol, which the page's CSP (script-src 'self') allows;
    # a <script> tag would be refused, as it should be.
    page.evaluate(_axe_source())
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe on {page.url}: {violations}"


def case_id_from(url: str) -> int:
    match = re.search(r"/cases/(\d+)", url)
    assert match, url
    return int(match.group(1))
