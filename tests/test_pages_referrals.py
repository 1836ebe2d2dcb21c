"""The referrer's pages: the referral form with its check-answers page, the list, one referral with
the feedback its organisation may see; the same rules as the API (api/services/referrals.py,
api/services/disclosure.py)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from models.audit import AuditLog
from models.referrals import Referral
from tests.browser import assert_accessible, login
from tests.test_journey import ipr_payload, need_payload
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World, snils_for

CONCLUSION = "Задержка речевого развития, признаки расстройства аутистического спектра"
GOAL = "Ребёнок ходит с опорой на одну руку"  # ipr_payload()'s goal


def form_data(world: World, csrf: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf": csrf,
        "provider_id": str(world.provider_id),
        "child.last_name": "Ёжикова",
        "child.first_name": "Алёна",
        "child.middle_name": "Петровна",
        "child.birth_date": (date.today() - timedelta(days=400)).isoformat(),
        "child.sex": "female",
        "child.snils": snils_for(901),
        "child.municipality": "Центральный район",
        "representatives.0.full_name": "Ёжикова Ирина Ивановна",
        "representatives.0.relation": "mother",
        "representatives.0.phone": "+7 900 123-45-67",
        "representatives.0.email": "",
        "representatives.0.preferred_channel": "sms",
        "representatives.1.full_name": "",
        "representatives.1.relation": "",
        "representatives.1.phone": "",
        "representatives.1.email": "",
        "representatives.1.preferred_channel": "sms",
        "criteria": ["parental_concern", "health_group_4_5"],
        "criteria_document_ref": "Справка ВК № 12 от 01.11.2026",
        "consent_personal_data.date": date.today().isoformat(),
        "consent_personal_data.document_ref": "Согласие № 45",
        "referral_date": "",
        "comment": "Звонить после 15:00",
    }
    data.update(overrides)
    return data


def referrals_in(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Referral)).one()


def hidden_fields(html: str) -> dict[str, list[str]]:
    """The check page's form, as the browser sends it back."""
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html):
        fields.setdefault(unescape(name), []).append(unescape(value))
    return fields


def test_form_then_check_page_then_one_referral_however_often_confirmed(world: World, engine: Engine) -> None:
    sign_in(world.client, "referrer")
    form = world.client.get("/referrals/new")
    assert form.status_code == 200
    # The standard's wording (Пост. № 1099).
    assert "опасений, связанных с особенностями в развитии и поведении детей" in form.text
    before = referrals_in(engine)
    check = world.client.post("/referrals/new", data=form_data(world, csrf_of(form.text)))
    assert check.status_code == 200, check.text[:2000]
    assert "Проверьте сведения" in check.text and "Отнесение детей к IV либо V группе здоровья" in check.text
    assert referrals_in(engine) == before  # nothing is written before «Отправить»
    fields = hidden_fields(check.text)
    assert fields["child.last_name"] == ["Ёжикова"] and "health_group_4_5" in fields["criteria"]
    sent = world.client.post("/referrals/new/confirm", data=fields, follow_redirects=False)
    assert sent.status_code == 303, sent.text[:2000]
    location = sent.headers["location"]
    again = world.client.post("/referrals/new/confirm", data=fields, follow_redirects=False)
    assert again.headers["location"] == location  # a second press: the same referral
    assert referrals_in(engine) == before + 1
    page = world.client.get(location)
    assert "Направление отправлено" in page.text and "Ёжикова Алёна Петровна" in page.text
    listed = world.client.get("/referrals")
    assert listed.status_code == 200
    assert "Ёжикова Алёна Петровна" in listed.text and "Направлен" in listed.text
    referral_id = int(location.split("/")[2].split("?")[0])
    api = world.client.get(f"{API}/referrals/{referral_id}", headers=world.h("referrer")).json()
    assert api["criteria"] == ["parental_concern", "health_group_4_5"] and api["status"] == "referred"
    assert api["criteria_document_ref"] == "Справка ВК № 12 от 01.11.2026"


def test_the_check_page_goes_back_to_the_form_with_what_was_typed(world: World) -> None:
    sign_in(world.client, "referrer")
    csrf = csrf_of(world.client.get("/referrals/new").text)
    check = world.client.post("/referrals/new", data=form_data(world, csrf))
    edit = world.client.post("/referrals/new", data={**hidden_fields(check.text), "action": "edit"})
    assert edit.status_code == 200 and 'value="Звонить' not in edit.text  # textarea, not input
    assert 'value="Ёжикова"' in edit.text and "Звонить после 15:00</textarea>" in edit.text
    assert re.search(r'value="health_group_4_5"[^>]*checked', edit.text)


def test_form_errors_link_to_their_fields_and_keep_the_input(world: World, engine: Engine) -> None:
    sign_in(world.client, "referrer")
    csrf = csrf_of(world.client.get("/referrals/new").text)
    before = referrals_in(engine)
    future = (date.today() + timedelta(days=3)).isoformat()
    bad = world.client.post(
        "/referrals/new", data=form_data(world, csrf, **{"child.birth_date": future, "child.last_name": "Ёж"})
    )
    assert bad.status_code == 422
    assert 'href="#child.birth_date"' in bad.text and "Дата рождения не может быть в будущем" in bad.text
    assert 'value="Ёж"' in bad.text and f'value="{future}"' in bad.text
    snils = world.client.post("/referrals/new", data=form_data(world, csrf, **{"child.snils": "11223344500"}))
    assert snils.status_code == 422 and 'href="#child.snils"' in snils.text
    assert 'aria-invalid="true"' in snils.text and 'value="11223344500"' in snils.text
    none = world.client.post("/referrals/new", data=form_data(world, csrf, criteria=[]))
    assert none.status_code == 422 and 'href="#criteria"' in none.text
    assert "Отметьте хотя бы один критерий" in none.text
    assert referrals_in(engine) == before


def test_another_organisations_referral_is_the_404_page(world: World) -> None:
    theirs = world.refer("social")
    sign_in(world.client, "referrer")
    page = world.client.get(f"/referrals/{theirs['id']}")
    assert page.status_code == 404 and "Такой страницы нет" in page.text
    assert "Ёжикова" not in page.text
    assert world.client.get(f"/referrals/{theirs['id']}/feedback.pdf").status_code == 404
    assert "Ёжикова" not in world.client.get("/referrals").text


def test_only_referrers_and_provider_coordinators_get_the_form(world: World) -> None:
    sign_in(world.client, "curator")
    assert world.client.get("/referrals/new").status_code == 403
    sign_in(world.client, "coordinator")
    page = world.client.get("/referrals/new")
    assert page.status_code == 200 and "Обращение родителя" in page.text
    assert 'name="provider_id"' not in page.text  # a parent's own request: to the coordinator's provider


def test_feedback_shows_the_conclusion_and_ipr_only_with_the_familys_consent(world: World) -> None:
    first = world.refer()
    case_id = first["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("ipr", CONCLUSION), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    sign_in(world.client, "referrer")
    url = f"/referrals/{first['id']}"

    def consent(status: str) -> None:
        response = world.client.post(
            f"{API}/children/{first['child_id']}/consents",
            json={"kind": "share_with_referrer", "status": status, "date": date.today().isoformat()},
            headers=world.h("coordinator"),
        )
        assert response.status_code == 201, response.text

    page = world.client.get(url).text
    assert "Реализация ИПРП" in page and "Петрова" in page
    assert CONCLUSION not in page and GOAL not in page and "нет согласия родителя" in page
    consent("given")
    page = world.client.get(url).text
    assert CONCLUSION in page and GOAL in page
    consent("withdrawn")
    page = world.client.get(url).text
    assert CONCLUSION not in page and GOAL not in page


def test_provider_staff_see_incoming_referrals_with_a_link_to_the_case(world: World, engine: Engine) -> None:
    referral = world.refer()
    sign_in(world.client, "coordinator")
    listed = world.client.get("/referrals")
    assert listed.status_code == 200 and f'href="/referrals/{referral["id"]}"' in listed.text
    page = world.client.get(f"/referrals/{referral['id']}")
    assert f'href="/cases/{referral["case_id"]}"' in page.text
    with Session(engine) as session:
        reads = session.exec(
            select(AuditLog).where(
                AuditLog.entity == "referral", AuditLog.action == "read", AuditLog.entity_id == referral["id"]
            )
        ).all()
    assert reads and all(r.child_id == referral["child_id"] for r in reads)
    assert {r.user_id for r in reads} == {world.user_ids["coordinator"]}


def test_a_referrer_fills_the_form_in_a_browser(world: World, server_url: str, browser: object) -> None:
    page = login(browser, server_url, "referrer")
    assert page.url.endswith("/referrals")
    assert_accessible(page)
    page.get_by_role("link", name="Направить ребёнка").first.click()
    page.wait_for_url("**/referrals/new")
    assert_accessible(page)
    page.get_by_label("Организация ранней помощи").select_option(str(world.provider_id))
    page.get_by_label("Фамилия", exact=True).fill("Ёжикова")
    page.get_by_label("Имя", exact=True).fill("Алёна")
    page.get_by_label("Отчество (если есть)").fill("Петровна")
    page.get_by_label("Дата рождения").fill((date.today() - timedelta(days=400)).isoformat())
    page.get_by_label("Женский").check()
    page.get_by_label("СНИЛС (если известен)").fill("11223344500")  # a wrong control number
    page.get_by_label("Фамилия Имя Отчество").first.fill("Ёжикова Ирина Ивановна")
    page.get_by_label("Кем приходится ребёнку").first.select_option("mother")
    page.get_by_label("Телефон").first.fill("+7 900 123-45-67")
    page.get_by_label(re.compile("опасений, связанных с особенностями в развитии")).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Продолжить").click()
    summary = page.locator(".error-summary")
    assert "СНИЛС" in summary.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert_accessible(page)
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.id") == "child.snils"
    assert page.get_by_label("Фамилия", exact=True).input_value() == "Ёжикова"  # kept
    page.get_by_label("СНИЛС (если известен)").fill(snils_for(902))
    with page.expect_navigation():
        page.get_by_role("button", name="Продолжить").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Проверьте сведения"
    assert_accessible(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Отправить направление").click()
    assert "Направление отправлено" in page.get_by_role("status").inner_text()
    assert_accessible(page)
    page.get_by_role("link", name="Направления").first.click()
    page.wait_for_url("**/referrals")
    row = page.get_by_role("row").filter(has_text="Ёжикова Алёна Петровна")
    assert "Направлен" in row.inner_text()
    assert_accessible(page)
    page.context.close()
