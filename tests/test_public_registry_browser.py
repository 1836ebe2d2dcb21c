"""The public registry in a real browser (Debian's Chromium): a parent without login finds a provider
by municipality, form and age, opens its page with the QR code, and every page passes axe; a
provider's head updates the free places, which the parent's page then shows; the administrator's
organisation form with the public fields passes axe too."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser import DESKTOP, assert_accessible, login
from tests.world import API, World


def _publish(world: World) -> None:
    fields = {
        "provider": {
            "address": "г. Демо, ул. Садовая, д. 7",
            "forms": ["in_person", "home"],
            "age_from_months": 0,
            "age_to_months": 36,
            "free_places": 4,
            "site": "https://first.example.org",
        },
        "provider2": {"forms": ["remote"], "age_from_months": 12, "age_to_months": 48, "free_places": 0},
    }
    for key, body in fields.items():
        answer = world.client.patch(
            f"{API}/organisations/{world.org_ids[key]}", json=body, headers=world.h("admin")
        )
        assert answer.status_code == 200, answer.text


def test_a_parent_finds_a_provider_without_login_and_a_head_updates_its_free_places(
    world: World, server_url: str, browser: Any
) -> None:
    _publish(world)
    context = browser.new_context(viewport=DESKTOP, locale="ru-RU", base_url=server_url)
    page = context.new_page()
    page.goto("/login")
    page.get_by_role("link", name="Организации ранней помощи — без входа").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ранняя помощь детям")
    assert_accessible(page)
    page.get_by_role("link", name="Демонстрационная область").click()
    expect(page.get_by_role("heading", name="Кому она положена")).to_be_visible()
    expect(page.get_by_role("navigation", name="Основное меню")).to_have_count(0)
    assert_accessible(page)

    page.get_by_label("Муниципалитет").select_option("Центральный район")
    page.get_by_label("Как проходят занятия").select_option("home")
    page.get_by_label("Возраст ребёнка, полных месяцев").fill("18")
    page.get_by_role("button", name="Найти организации").click()
    expect(page.get_by_role("heading", name="Найдено: 1 из 2")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Возраст ребёнка, полных месяцев").fill("полтора")
    page.get_by_role("button", name="Найти организации").click()
    expect(page.locator(".error-summary")).to_contain_text("Возраст — целое число месяцев")
    assert_accessible(page)

    page.get_by_label("Возраст ребёнка, полных месяцев").fill("18")
    page.get_by_role("button", name="Найти организации").click()
    page.get_by_role("link", name="Первые шаги").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Первые шаги")
    expect(page.locator("dl")).to_contain_text("очно, на дому")
    expect(page.locator("dl")).to_contain_text("4 (на ")
    qr = page.get_by_role("img", name="QR-код страницы организации")
    expect(qr).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", qr.element_handle()) > 0  # the SVG loaded
    assert_accessible(page)
    provider_url = page.url
    context.close()

    head = login(browser, server_url, "head")
    head.goto("/my-organisation")
    assert_accessible(head)
    head.get_by_label("Свободные места сейчас").fill("-1")
    head.get_by_role("button", name="Сохранить сведения для родителей").click()
    expect(head.locator(".error-summary")).to_contain_text("не меньше 0")
    assert_accessible(head)
    head.get_by_label("Свободные места сейчас").fill("2")
    head.get_by_label("дистанционно").check()
    head.get_by_role("button", name="Сохранить сведения для родителей").click()
    expect(head.get_by_role("status")).to_contain_text("Сохранено")
    head.goto(provider_url)
    expect(head.locator("dl")).to_contain_text("2 (на ")
    expect(head.locator("dl")).to_contain_text("очно, дистанционно, на дому")
    head.context.close()

    admin = login(browser, server_url, "admin")
    admin.goto(f"/admin/organisations/{world.provider_id}")
    expect(admin.get_by_label("Показывать в публичном реестре")).to_be_checked()
    assert_accessible(admin)
    admin.goto("/admin/organisations")
    assert_accessible(admin)
    admin.context.close()
