"""The inter-agency pages in a real browser (Debian's Chromium): each one, as the role that uses it,
passes the axe-core check, and a refused form on the case card comes back with its error summary.

The world is built through the API: a case with every part on its card (a pending transfer, a
routing, a planned consilium, an invited team member), and a case in adaptation at the demo ДОО.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from tests.browser import assert_accessible, login
from tests.test_adaptation import in_transition, kindergarten_id
from tests.test_journey import to_ipr_implementation
from tests.world import API, World, region_today


def _ok(response: object) -> dict[str, object]:
    status = response.status_code  # type: ignore[attr-defined]
    assert status in (200, 201), response.text  # type: ignore[attr-defined]
    return dict(response.json())  # type: ignore[attr-defined]


def test_every_inter_agency_page_passes_the_accessibility_check(
    world: World, engine: Engine, server_url: str, browser: object
) -> None:
    client = world.client
    case_id = to_ipr_implementation(world)
    social_org = _ok(client.get(f"{API}/me", headers=world.h("social")))["organisation_id"]
    agreement = {
        "provider_id": world.provider_id,
        "partner_org_id": social_org,
        "number": "17/2026",
        "signed_on": (date.today() - timedelta(days=30)).isoformat(),
    }
    _ok(client.post(f"{API}/agreements", json=agreement, headers=world.h("admin")))
    member = {"user_id": world.user_ids["social"], "specialist_role": "social_worker"}
    _ok(client.post(f"{API}/cases/{case_id}/team", json=member, headers=world.h("curator")))
    routing = {"target_org_id": world.org_ids["health"], "kind": "doctor_consultation", "purpose": "Невролог"}
    _ok(client.post(f"{API}/cases/{case_id}/routings", json=routing, headers=world.h("curator")))
    consilium = {
        "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "place": "ул. Ленина, 1, каб. 12",
        "agenda": "Дополнительное обследование",
        "participant_org_ids": [world.org_ids["health"], world.provider_id],
    }
    _ok(client.post(f"{API}/cases/{case_id}/consilia", json=consilium, headers=world.h("curator")))
    transfer = _ok(
        client.post(
            f"{API}/cases/{case_id}/transfers",
            json={
                "to_provider_id": world.org_ids["provider2"],
                "reason": "Семья переехала в Южный район",
                "consent": {"date": date.today().isoformat(), "document_ref": "Согласие № 3"},
            },
            headers=world.h("coordinator"),
        )
    )
    adapting = in_transition(world, engine)
    enrol = {"enrolled_on": region_today().isoformat(), "destination_org_id": kindergarten_id(engine)}
    world.advance(adapting, "enrol", enrol)

    pages = {
        "curator": [f"/cases/{case_id}", f"/cases/{adapting}", "/routings"],
        "coordinator": ["/transfers", f"/transfers/{transfer['id']}"],
        "coordinator2": ["/transfers", f"/transfers/{transfer['id']}"],
        "referrer": ["/routings"],
        "kindergarten": ["/enrolments"],
        "admin": ["/admin/agreements"],
        "social": ["/teams", f"/cases/{case_id}"],
    }
    for who, urls in pages.items():
        page = login(browser, server_url, who)
        for url in urls:
            response = page.goto(url)
            assert response is not None and response.status == 200, (who, url, response and response.status)
            assert_accessible(page)
        page.context.close()

    # A routing sent with no organisation: the card again, the error summary first, still accessible.
    page = login(browser, server_url, "curator")
    page.goto(f"/cases/{case_id}")
    page.get_by_text("Направить семью в другую организацию").click()
    form = page.locator("form[action$='/routings']")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page)
    page.context.close()
