"""The reports page in a real browser: the РРМЦ starts a form 1-РП, watches its progress bar move
(the page's few lines of script) until the files appear; the page passes the axe-core check."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from flows.reports import run_queued
from tests.browser import assert_accessible, login
from tests.reports_support import journeys, year
from tests.world import World


def test_the_rrmc_starts_a_report_and_sees_it_ready_without_reloading(
    world: World, engine: Engine, server_url: str, browser: object, prefect_server: None
) -> None:
    journeys(world)
    page = login(browser, server_url, "rrmc")
    page.goto("/reports")
    assert_accessible(page)
    page.get_by_label("Отчётный год").select_option(str(year()))
    with page.expect_navigation():
        page.get_by_role("button", name="Сформировать отчёт по форме 1-РП").click()
    assert "Отчёт поставлен в очередь" in page.inner_text("main")
    assert page.locator("progress").count() == 1
    assert_accessible(page)

    # The worker's job, in a thread as in `earlyhelp worker`; the page polls and reloads by itself.
    worker = threading.Thread(target=run_queued, args=(engine,), kwargs={"worker": "browser-test"})
    worker.start()
    page.get_by_role("link", name="XLSX").wait_for(timeout=120_000)
    worker.join(timeout=120)
    assert "Готов" in page.inner_text("main")
    assert page.locator("progress").count() == 0
    page.context.close()

    analyst = login(browser, server_url, "analyst")
    analyst.goto("/reports")
    text = analyst.inner_text("main")
    assert "обезличенный" in text and "Сформировать" not in text
    assert_accessible(analyst)
    analyst.context.close()
