"""The team's part of the case page, «Мои команды», and the agreements' admin pages (no browser)."""

from __future__ import annotations

from datetime import date, timedelta

from tests.test_journey import to_ipr_implementation
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World


def _agreement_with_social(world: World) -> None:
    me = world.client.get(f"{API}/me", headers=world.h("social")).json()
    response = world.client.post(
        f"{API}/agreements",
        json={
            "provider_id": world.provider_id,
            "partner_org_id": me["organisation_id"],
            "number": "12-С",
            "signed_on": (date.today() - timedelta(days=1)).isoformat(),
        },
        headers=world.h("admin"),
    )
    assert response.status_code == 201, response.text


def test_curator_adds_and_removes_a_member_on_the_case_page(world: World) -> None:
    case_id = to_ipr_implementation(world)
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}").text
    assert "Междисциплинарная команда" in page and "(ведущий специалист)" in page
    specialist = str(world.user_ids["specialist"])
    assert f'<option value="{specialist}"' in page.split('id="form-team"')[1].split("</form>")[0]
    # Nothing chosen: the error summary names both fields, nothing is written.
    empty = world.client.post(f"/cases/{case_id}/team", data={"csrf": csrf_of(page)})
    assert empty.status_code == 422 and "Выберите специалиста" in empty.text and "Выберите роль" in empty.text
    added = world.client.post(
        f"/cases/{case_id}/team",
        data={"csrf": csrf_of(page), "team-user_id": specialist, "team-specialist_role": "psychologist"},
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text.split('class="error-summary')[-1][:800]
    page = world.client.get(added.headers["location"]).text
    assert "Специалист включён в команду случая" in page and "Педагог-психолог" in page
    twice = world.client.post(
        f"/cases/{case_id}/team",
        data={"csrf": csrf_of(page), "team-user_id": specialist, "team-specialist_role": "psychologist"},
    )
    assert twice.status_code == 409 and "уже в команде" in twice.text
    member_id = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("curator")).json()["members"][
        1
    ]["id"]
    removed = world.client.post(
        f"/cases/{case_id}/team/{member_id}/remove", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert "Специалист исключён из команды случая" in world.client.get(removed.headers["location"]).text


def test_member_without_an_agreement_is_refused_on_the_page(world: World) -> None:
    case_id = to_ipr_implementation(world)
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}").text
    social = str(world.user_ids["social"])
    team_form = page.split('id="form-team"')[1].split("</form>")[0]
    assert f'<option value="{social}"' not in team_form  # not offered without an agreement
    refused = world.client.post(
        f"/cases/{case_id}/team",
        data={"csrf": csrf_of(page), "team-user_id": social, "team-specialist_role": "social_worker"},
    )
    assert refused.status_code == 422
    assert "нет действующего соглашения о межведомственном взаимодействии" in refused.text
    assert 'href="#team-user_id"' in refused.text  # the error summary links to the field


def test_invited_specialist_finds_the_case_in_her_teams_and_sees_no_forms(world: World) -> None:
    case_id = to_ipr_implementation(world)
    _agreement_with_social(world)
    added = world.client.post(
        f"{API}/cases/{case_id}/team",
        json={"user_id": world.user_ids["social"], "specialist_role": "social_worker"},
        headers=world.h("curator"),
    )
    assert added.status_code == 201, added.text
    sign_in(world.client, "social")
    mine = world.client.get("/teams")
    assert mine.status_code == 200 and f'href="/cases/{case_id}"' in mine.text
    card = world.client.get(f"/cases/{case_id}")
    assert card.status_code == 200
    assert "приглашённый специалист" in card.text and "***-***-***" in card.text
    assert 'action="/cases/' not in card.text  # no event, session, contact or team form
    posted = world.client.post(
        f"/cases/{case_id}/contact-attempts", data={"csrf": csrf_of(card.text), "contact-successful": "yes"}
    )
    assert posted.status_code in (403, 422) and "Попытка связаться с семьёй записана" not in posted.text


def test_agreements_pages_create_refuse_bad_input_and_end(world: World) -> None:
    sign_in(world.client, "admin")
    page = world.client.get("/admin/agreements")
    assert page.status_code == 200 and 'href="/admin/agreements"' in page.text
    csrf = csrf_of(page.text)
    same = world.client.post(
        "/admin/agreements",
        data={
            "csrf": csrf,
            "provider_id": str(world.provider_id),
            "partner_org_id": str(world.provider_id),
            "number": "1",
            "signed_on": date.today().isoformat(),
        },
    )
    assert same.status_code == 422 and "сама с собой" in same.text and 'href="#partner_org_id"' in same.text
    backwards = world.client.post(
        "/admin/agreements",
        data={
            "csrf": csrf,
            "provider_id": str(world.provider_id),
            "partner_org_id": str(world.org_ids["health"]),
            "number": "2",
            "signed_on": date.today().isoformat(),
            "valid_until": (date.today() - timedelta(days=1)).isoformat(),
        },
    )
    assert backwards.status_code == 422 and "раньше даты подписания" in backwards.text
    created = world.client.post(
        "/admin/agreements",
        data={
            "csrf": csrf,
            "provider_id": str(world.provider_id),
            "partner_org_id": str(world.org_ids["health"]),
            "number": "3-П",
            "signed_on": date.today().isoformat(),
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    listed = world.client.get(created.headers["location"]).text
    assert "Соглашение зарегистрировано" in listed and "3-П" in listed and "Действует" in listed
    agreement_id = world.client.get(f"{API}/agreements", headers=world.h("admin")).json()[0]["id"]
    ended = world.client.post(
        f"/admin/agreements/{agreement_id}/end", data={"csrf": csrf}, follow_redirects=False
    )
    assert ended.status_code == 303
    assert "Прекращено" in world.client.get(ended.headers["location"]).text


def test_agreements_page_is_read_only_for_a_providers_head_and_closed_to_others(world: World) -> None:
    sign_in(world.client, "head")
    page = world.client.get("/admin/agreements")
    assert page.status_code == 200 and "Зарегистрировать соглашение" not in page.text
    refused = world.client.post(
        "/admin/agreements", data={"csrf": csrf_of(page.text), "number": "1"}, follow_redirects=False
    )
    assert refused.status_code == 403
    sign_in(world.client, "coordinator")
    assert world.client.get("/admin/agreements").status_code == 403


def test_specialist_today_lists_her_teams_cases_and_not_the_providers_others(world: World) -> None:
    mine, other = to_ipr_implementation(world), to_ipr_implementation(world)
    added = world.client.post(
        f"{API}/cases/{mine}/team",
        json={"user_id": world.user_ids["specialist"], "specialist_role": "defectologist"},
        headers=world.h("curator"),
    )
    assert added.status_code == 201, added.text
    sign_in(world.client, "specialist")
    cases = world.client.get("/today").text.split('id="cases"')[1]
    assert f'href="/cases/{mine}"' in cases and f'href="/cases/{other}"' not in cases
    assert world.client.get(f"/cases/{other}").status_code == 404
