"""The transfer's pages without a browser: the request form on the case card (a bad form shown again
with the error summary), the banner of a pending transfer, the receiver's list and request page with
the accept form, and the case then on the new provider's side."""

from __future__ import annotations

import re
from datetime import date

from tests.test_pages_auth import csrf_of, sign_in
from tests.test_transfers import to_ipr
from tests.world import World


def test_a_transfer_is_requested_on_the_card_and_accepted_on_the_transfer_page(world: World) -> None:
    case_id = to_ipr(world)
    provider2 = world.org_ids["provider2"]
    sign_in(world.client, "coordinator")
    card = world.client.get(f"/cases/{case_id}")
    assert card.status_code == 200 and 'id="form-transfer"' in card.text
    assert "Передачи" in card.text  # the menu's link

    # A bad form: no consent, a blank reason: the card again, 422, the error summary, what was typed.
    bad = world.client.post(
        f"/cases/{case_id}/transfers",
        data={"csrf": csrf_of(card.text), "transfer-to_provider_id": str(provider2), "transfer-reason": " "},
        follow_redirects=False,
    )
    assert bad.status_code == 422
    assert "error-summary" in bad.text and 'href="#transfer-reason"' in bad.text
    no_consent = world.client.post(
        f"/cases/{case_id}/transfers",
        data={
            "csrf": csrf_of(card.text),
            "transfer-to_provider_id": str(provider2),
            "transfer-reason": "Семья переехала",
        },
        follow_redirects=False,
    )
    assert no_consent.status_code == 422 and 'href="#transfer-consent_date"' in no_consent.text
    assert "Семья переехала" in no_consent.text
    # Without the CSRF token nothing happens.
    forged = world.client.post(
        f"/cases/{case_id}/transfers",
        data={"transfer-to_provider_id": str(provider2), "transfer-reason": "x"},
        follow_redirects=False,
    )
    assert forged.status_code in (400, 403)

    done = world.client.post(
        f"/cases/{case_id}/transfers",
        data={
            "csrf": csrf_of(card.text),
            "transfer-to_provider_id": str(provider2),
            "transfer-reason": "Семья переехала",
            "transfer-consent_date": date.today().isoformat(),
            "transfer-consent_document": "Заявление № 12",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{case_id}?done=transfer_request"
    banner = world.client.get(done.headers["location"])
    assert 'id="transfer-banner"' in banner.text and "Случай передаётся в" in banner.text
    assert "Отозвать запрос о передаче" in banner.text and 'id="form-transfer"' not in banner.text

    # The receiver: its list, the request page with the accept and refuse forms, no case card yet.
    sign_in(world.client, "coordinator2")
    today = world.client.get("/today")
    assert today.status_code == 200 and "Просьбы принять случай" in today.text
    listed = world.client.get("/transfers")
    assert listed.status_code == 200
    match = re.search(r'href="/transfers/(\d+)"', listed.text)
    assert match
    transfer_id = match.group(1)
    assert world.client.get(f"/cases/{case_id}").status_code == 404
    page = world.client.get(f"/transfers/{transfer_id}")
    assert page.status_code == 200 and "Принять случай" in page.text and "Ёжикова" in page.text
    assert f'href="/cases/{case_id}"' not in page.text
    # A curator of another organisation: the page again with the error.
    wrong = world.client.post(
        f"/transfers/{transfer_id}/accept",
        data={"csrf": csrf_of(page.text), "accept-curator_id": str(world.user_ids["curator"])},
        follow_redirects=False,
    )
    assert wrong.status_code == 422 and 'href="#accept-curator_id"' in wrong.text
    accepted = world.client.post(
        f"/transfers/{transfer_id}/accept",
        data={"csrf": csrf_of(page.text), "accept-curator_id": str(world.user_ids["curator2"])},
        follow_redirects=False,
    )
    assert accepted.status_code == 303 and accepted.headers["location"].startswith(f"/cases/{case_id}")
    now_mine = world.client.get(accepted.headers["location"])
    assert now_mine.status_code == 200 and "Случай принят другой организацией" in now_mine.text
    assert "Из «" in now_mine.text  # both organisations in the history
    again = world.client.post(
        f"/transfers/{transfer_id}/accept", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert again.status_code == 409

    # The old provider: no card any more; its list keeps the request with initials only.
    sign_in(world.client, "coordinator")
    assert world.client.get(f"/cases/{case_id}").status_code == 404
    old = world.client.get(f"/transfers/{transfer_id}")
    assert old.status_code == 200 and "Ёжикова А. П." in old.text


def test_the_transfer_pages_are_404_for_roles_without_transfers(world: World) -> None:
    sign_in(world.client, "specialist")
    assert world.client.get("/transfers").status_code == 404
    sign_in(world.client, "referrer")
    assert world.client.get("/transfers/1").status_code == 404
