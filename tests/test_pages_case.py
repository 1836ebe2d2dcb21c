"""The case page: the card as the API shows it, the journey picture, a form for exactly the allowed
events (a blocked one disabled with its reason), the API's 409/422 rules, a stale version answered
with the fresh card, the 404 page for a case the caller may not see; and the whole journey clicked
through in a browser."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.pages.journey_svg import journey_svg
from models.audit import AuditLog
from statemachines import STATES
from tests.browser import TABLET, assert_accessible, case_id_from, login
from tests.test_journey import ipr_payload, need_payload, to_need_determination
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World, snils_for


def audit_rows(engine: Engine, **where: Any) -> list[AuditLog]:
    with Session(engine) as session:
        query = select(AuditLog).order_by(col(AuditLog.id))
        for name, value in where.items():
            query = query.where(getattr(AuditLog, name) == value)
        return list(session.exec(query))


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no version on the page"
    return match.group(1)


def post_event(
    world: World, case_id: int, event: str, data: dict[str, str], version: str | None = None
) -> Any:
    page = world.client.get(f"/cases/{case_id}")
    assert page.status_code == 200, page.text[:500]
    form = {"csrf": csrf_of(page.text), "version": version or version_of(page.text), **data}
    return world.client.post(f"/cases/{case_id}/events/{event}", data=form, follow_redirects=False)


def current_box(html: str) -> str:
    match = re.search(r'<g class="js[^"]*js-current[^"]*" data-state="(\w+)" aria-current="step">', html)
    assert match, "no highlighted state in the journey picture"
    return match.group(1)


# --- the journey picture -----------------------------------------------------------------------


def test_the_journey_picture_highlights_only_the_current_state_and_names_it() -> None:
    svg = journey_svg("ipr_implementation")
    assert svg.count('aria-current="step"') == 1 and current_box(svg) == "ipr_implementation"
    assert 'role="img"' in svg and "текущее состояние — «Реализация ИПРП»" in svg
    assert "<title" in svg and svg.count("<rect") == len(STATES)  # one box per state, adaptation too
    assert 'class="js js-final" data-state="completed"' in svg  # final states drawn apart
    other = journey_svg("referred")
    assert (
        current_box(other) == "referred"
        and "js-current" not in other.split('data-state="completed"')[0][-80:]
    )


# --- the card ------------------------------------------------------------------------------------


def test_the_curator_sees_the_card_with_the_family_the_picture_and_forms_of_the_allowed_events(
    world: World, engine: Engine
) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    html = page.text
    assert "Ёжикова Алёна" in html and "Петровна" in html  # Фамилия Имя Отчество
    assert "Ёжикова Ирина Ивановна" in html and "+7 900 123-45-67" in html
    assert "Согласие на обработку персональных данных" in html
    assert current_box(html) == "need_determination"
    assert "Куратор" in html and "Определение нуждаемости" in html
    # Forms for exactly what the API says is allowed; nothing else.
    allowed = world.case(case_id)["allowed_events"]
    forms = set(re.findall(rf'action="/cases/{case_id}/events/(\w+)"', html))
    assert forms == set(allowed)
    rows = audit_rows(engine, action="read", entity="case", path=f"GET /cases/{case_id}")
    assert [(r.user_id, r.entity_id) for r in rows] == [(world.user_ids["curator"], case_id)]


def test_a_blocked_event_is_a_disabled_button_with_its_reason(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    html = world.client.get(f"/cases/{case_id}").text
    blocked = world.case(case_id)["blocked"]
    assert "mark_lost_contact" in blocked
    match = re.search(
        r'<button type="button" class="button button-secondary" disabled'
        r' aria-describedby="blocked-mark_lost_contact">'
        r"Связь утрачена</button>\s*<p class=\"blocked-reason\" id=\"blocked-mark_lost_contact\">(.*?)</p>",
        html,
        re.S,
    )
    assert match and "неудачных попыток" in match.group(1)
    assert f'action="/cases/{case_id}/events/mark_lost_contact"' not in html


# --- events ------------------------------------------------------------------------------------


def test_a_guard_failure_shows_the_error_summary_and_keeps_what_was_typed(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    answer = post_event(
        world,
        case_id,
        "determine_need",
        {
            "determine_need-outcome": "ipr",
            "determine_need-conclusion": "   ",
            "determine_need-duration_minutes": "45",
        },
    )
    assert answer.status_code == 422
    assert 'class="error-summary"' in answer.text
    # The first refusal names the field (the missing activities are named in the same message).
    assert '<a href="#determine_need-conclusion">Не написано заключение о нуждаемости' in answer.text
    assert 'value="45"' in answer.text and 'value="ipr" checked' in answer.text
    assert world.case(case_id)["state"] == "need_determination"


def test_the_ipr_editor_reports_a_service_not_in_the_catalogue_on_its_row(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    sign_in(world.client, "curator")
    today = date.today()
    answer = post_event(
        world,
        case_id,
        "approve_ipr",
        {
            "approve_ipr-period_start": today.isoformat(),
            "approve_ipr-period_end": (today + timedelta(days=90)).isoformat(),
            "approve_ipr-goals": "Ходит с опорой",
            "approve_ipr-service-2": "motor_development",
            "approve_ipr-role-2": "speech_therapist",
            "approve_ipr-count-2": "x",
            "approve_ipr-minutes-2": "45",
            "approve_ipr-agreed": "yes",
            "approve_ipr-agreement_date": today.isoformat(),
        },
    )
    assert answer.status_code == 422
    assert '<a href="#approve_ipr-count-2">Введите целое число</a>' in answer.text


def test_a_not_allowed_event_answers_409_with_the_card(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    answer = post_event(world, case_id, "complete", {})
    assert answer.status_code == 409
    assert "недопустимо в состоянии" in answer.text and current_box(answer.text) == "need_determination"


def test_a_stale_version_shows_the_fresh_card_and_changes_nothing(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}")
    seen = version_of(page.text)
    world.advance(case_id, "suspend", reason="Госпитализация")  # a colleague, meanwhile
    answer = world.client.post(
        f"/cases/{case_id}/events/determine_need",
        data={
            "csrf": csrf_of(page.text),
            "version": seen,
            "determine_need-outcome": "ipr",
            "determine_need-conclusion": "Нужна ИПРП",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 409
    assert "Карточка изменена другим пользователем" in answer.text
    assert current_box(answer.text) == "suspended" and version_of(answer.text) == str(int(seen) + 1)
    assert world.case(case_id)["state"] == "suspended"


def test_success_redirects_to_the_card_with_a_fixed_notice(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "curator")
    answer = post_event(world, case_id, "suspend", {"suspend-reason": "Госпитализация"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/cases/{case_id}?done=suspend"
    page = world.client.get(answer.headers["location"])
    assert "Выполнено: «Приостановить»." in page.text and current_box(page.text) == "suspended"
    assert world.case(case_id)["history"][-1]["reason"] == "Госпитализация"
    # Only known codes become a notice: nothing typed in the address is shown.
    assert "<script>" not in world.client.get(f"/cases/{case_id}?done=%3Cscript%3E").text


def test_contact_attempts_and_the_curator_are_recorded_from_the_card(world: World) -> None:
    case_id = world.refer()["case_id"]
    sign_in(world.client, "coordinator")
    page = world.client.get(f"/cases/{case_id}")
    answer = world.client.post(
        f"/cases/{case_id}/contact-attempts",
        data={
            "csrf": csrf_of(page.text),
            "contact-date": date.today().isoformat(),
            "contact-time": "00:01",
            "contact-channel": "phone",
            "contact-result": "no",
            "contact-note": "не взяли трубку",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:2000]
    attempts = world.client.get(
        f"{API}/cases/{case_id}/contact-attempts", headers=world.h("coordinator")
    ).json()
    assert len(attempts) == 1 and attempts[0]["successful"] is False
    page = world.client.get(f"/cases/{case_id}")
    answer = world.client.post(
        f"/cases/{case_id}/curator",
        data={
            "csrf": csrf_of(page.text),
            "version": version_of(page.text),
            "curator-curator_id": str(world.user_ids["curator"]),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert world.case(case_id)["curator_id"] == world.user_ids["curator"]


def test_sessions_are_planned_in_the_regions_zone_and_marked(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    sign_in(world.client, "curator")
    page = world.client.get(f"/cases/{case_id}")
    planned = world.client.get(f"{API}/cases/{case_id}/ipr", headers=world.h("curator")).json()["services"][0]
    assert f'<option value="planned:{planned["id"]}"' in page.text
    tomorrow = date.today() + timedelta(days=2)
    answer = world.client.post(
        f"/cases/{case_id}/sessions",
        data={
            "csrf": csrf_of(page.text),
            "session-service": f"planned:{planned['id']}",
            "session-date": tomorrow.isoformat(),
            "session-time": "10:30",
            "session-form": "in_person",
            "session-minutes": "45",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:3000]
    sessions = world.client.get(f"{API}/cases/{case_id}/sessions", headers=world.h("curator")).json()
    assert len(sessions) == 1 and sessions[0]["planned_service_id"] == planned["id"]
    assert sessions[0]["service_code"] == planned["service_code"]
    assert sessions[0]["scheduled_at"].startswith(f"{tomorrow.isoformat()}T07:30")  # 10:30 in Moscow
    page = world.client.get(f"/cases/{case_id}")
    assert f"{tomorrow:%d.%m.%Y} 10:30" in page.text
    # Before its time a session is offered only to be cancelled.
    offered = re.search(rf'id="attendance-{sessions[0]["id"]}-status".*?</select>', page.text, re.DOTALL)
    assert offered and re.findall(r'<option value="(\w+)"', offered.group(0)) == ["cancelled"]
    answer = world.client.post(
        f"/cases/{case_id}/sessions/{sessions[0]['id']}",
        data={"csrf": csrf_of(page.text), f"attendance-{sessions[0]['id']}-status": "cancelled"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert (
        world.client.get(f"{API}/cases/{case_id}/sessions", headers=world.h("curator")).json()[0]["status"]
        == "cancelled"
    )


def test_a_case_the_caller_may_not_see_is_the_404_page_and_audited_as_refused(
    world: World, engine: Engine
) -> None:
    case_id = world.refer()["case_id"]
    for who in ("referrer", "curator2"):
        world.client.cookies.clear()
        sign_in(world.client, who)
        answer = world.client.get(f"/cases/{case_id}")
        assert answer.status_code == 404, who
        assert "Такой страницы нет, или у вас нет к ней доступа." in answer.text
        assert "Ёжикова" not in answer.text
        refused = audit_rows(engine, action="refused", user_id=world.user_ids[who])
        assert refused and refused[-1].path == f"GET /cases/{case_id}"


# --- in a browser --------------------------------------------------------------------------------


def press(page: Any, button: str) -> None:
    """Click a button that submits its form and wait for the card that answers."""
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()


def refer_through_the_form(world: World, server_url: str, browser: Any) -> int:
    """The referrer's form, its check page and «Отправить»; the referral's number."""
    page = login(browser, server_url, "referrer")
    page.goto("/referrals/new")
    page.get_by_label("Организация ранней помощи").select_option(str(world.provider_id))
    page.get_by_label("Фамилия", exact=True).fill("Щукина")
    page.get_by_label("Имя", exact=True).fill("Дарья")
    page.get_by_label("Отчество (если есть)").fill("Игоревна")
    page.get_by_label("Дата рождения").fill((date.today() - timedelta(days=500)).isoformat())
    page.get_by_label("Женский").check()
    page.get_by_label("СНИЛС (если известен)").fill(snils_for(4242))
    page.get_by_label("Фамилия Имя Отчество").first.fill("Щукина Мария Олеговна")
    page.get_by_label("Кем приходится ребёнку").first.select_option("mother")
    page.get_by_label("Телефон").first.fill("+7 900 765-43-21")
    page.get_by_label(re.compile("опасений, связанных с особенностями в развитии")).check()
    page.get_by_label("Дата согласия").fill(date.today().isoformat())
    page.get_by_label("Документ о согласии").fill("Согласие № 17")
    press(page, "Продолжить")
    assert page.get_by_role("heading", level=1).inner_text() == "Проверьте сведения"
    press(page, "Отправить направление")
    match = re.search(r"/referrals/(\d+)", page.url)
    assert match, page.url
    page.context.close()
    return int(match.group(1))


def test_a_child_walks_from_the_referrers_form_to_adaptation_by_clicking_through_the_pages(
    world: World, server_url: str, browser: Any
) -> None:
    referral_id = refer_through_the_form(world, server_url, browser)
    today = date.today()

    # The coordinator finds the new referral on «Сегодня» and opens its card from the referral.
    coordinator = login(browser, server_url, "coordinator")
    assert "Щукина Дарья Игоревна" in coordinator.inner_text("main")
    coordinator.goto(f"/referrals/{referral_id}")
    with coordinator.expect_navigation():
        coordinator.get_by_role("link", name=re.compile("Открыть карточку случая")).click()
    case_id = case_id_from(coordinator.url)
    assert_accessible(coordinator)
    press(coordinator, "Принять направление")
    assert "Выполнено: «Принять направление»." in coordinator.inner_text("main")
    coordinator.locator("#curator-curator_id").select_option(label=world_curator_name(coordinator))
    press(coordinator, "Назначить куратора")
    assert "Куратор назначен." in coordinator.inner_text("main")
    coordinator.context.close()

    curator = login(browser, server_url, "curator")
    curator.goto(f"/cases/{case_id}")
    assert curator.locator('[aria-current="step"]').get_attribute("data-state") == "need_determination"
    curator.locator("#determine_need-outcome-ipr").check()
    curator.locator("#determine_need-conclusion").fill("Трудности в развитии движений")
    # What the conclusion sets (344н): forms and activities; first without them, then with them.
    press(curator, "Зафиксировать заключение о нуждаемости")
    assert "не указаны мероприятия" in curator.locator(".error-summary").inner_text()
    curator.locator("#determine_need-form-in_person").check()
    curator.locator("#determine_need-activity-0").select_option("functioning_assessment")
    curator.locator("#determine_need-count-0").fill("2")
    curator.locator("#determine_need-minutes-0").fill("60")
    press(curator, "Зафиксировать заключение о нуждаемости")
    conclusion = curator.locator("section[aria-labelledby=h-conclusion]").inner_text()
    assert "Оценка функционирования ребёнка и его окружения" in conclusion and "очно" in conclusion

    # The ИПРП editor: a guard failure first (no parent's agreement), then the programme.
    curator.locator("#approve_ipr-period_end").fill((today + timedelta(days=180)).isoformat())
    curator.locator("#approve_ipr-goals").fill("Ребёнок ходит с опорой\nРебёнок играет рядом со сверстниками")
    curator.locator("#approve_ipr-service-0").select_option("motor_development")
    curator.locator("#approve_ipr-role-0").select_option("physical_therapist")
    curator.locator("#approve_ipr-count-0").fill("20")
    curator.locator("#approve_ipr-minutes-0").fill("45")
    curator.locator("#approve_ipr-service-1").select_option("family_support")
    curator.locator("#approve_ipr-form-1").select_option("remote")
    curator.locator("#approve_ipr-count-1").fill("4")
    curator.locator("#approve_ipr-minutes-1").fill("60")
    press(curator, "Утвердить ИПРП")
    summary = curator.locator(".error-summary")
    assert "Нет согласия родителя (законного представителя) с ИПРП" in summary.inner_text()
    assert curator.locator("#approve_ipr-goals").input_value().startswith("Ребёнок ходит с опорой")
    assert curator.locator("#approve_ipr-count-0").input_value() == "20"
    assert_accessible(curator)  # the editor with its error summary
    curator.locator("#approve_ipr-agreed").check()
    curator.locator("#approve_ipr-agreement_doc").fill("ИПРП № 5")
    press(curator, "Утвердить ИПРП")
    assert curator.locator('[aria-current="step"]').get_attribute("data-state") == "ipr_implementation"
    assert "Ребёнок играет рядом со сверстниками" in curator.inner_text("main")

    curator.locator("#start_assessment-kind-final").check()
    press(curator, "Начать оценку реализации ИПРП")
    curator.locator("#begin_transition-destination").fill("МБДОУ № 12")
    press(curator, "Начать переход")
    # The child came to the kindergarten today (the form's default): the adaptation period begins,
    # and the case completes when it ends (tests/test_adaptation.py), not now.
    press(curator, "Зафиксировать поступление ребёнка")
    assert curator.locator('[aria-current="step"]').get_attribute("data-state") == "adaptation"
    assert "Период адаптации" in curator.inner_text("main")
    assert_accessible(curator)
    curator.context.close()

    events = [h["event"] for h in world.case(case_id)["history"]]
    assert events == [
        "refer",
        "accept",
        "determine_need",
        "approve_ipr",
        "start_assessment",
        "begin_transition",
        "enrol",
    ]


def world_curator_name(page: Any) -> str:
    options = page.locator("#curator-curator_id option").all_inner_texts()
    named = [o for o in options if o != "Выберите"]
    assert named, options
    return str(named[0])


def test_an_event_form_is_done_with_the_keyboard_alone(world: World, server_url: str, browser: Any) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload())
    page = login(browser, server_url, "curator")
    page.goto(f"/cases/{case_id}")
    for _ in range(120):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "begin_transition-destination":
            break
    else:
        raise AssertionError("Tab never reached the transition's destination field")
    page.keyboard.type("МБДОУ № 7")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/cases/{case_id}?done=begin_transition")
    assert page.locator('[aria-current="step"]').get_attribute("data-state") == "transition"
    assert world.case(case_id)["history"][-1]["payload"]["destination"] == "МБДОУ № 7"
    page.set_viewport_size(TABLET)  # the picture scrolls sideways there, and can be reached to scroll
    assert_accessible(page)
    page.context.close()


def test_the_ipr_editor_starts_from_the_programme_in_force_when_it_is_revised(world: World) -> None:
    case_id = to_need_determination(world)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
    world.advance(case_id, "approve_ipr", ipr_payload(goals=["Ходит с опорой", "Играет рядом"]))
    world.advance(case_id, "start_assessment", {"kind": "intermediate"})
    sign_in(world.client, "curator")
    html = world.client.get(f"/cases/{case_id}").text
    editor = html.split('id="event-approve_ipr"')[1].split("</form>")[0]
    assert "Ходит с опорой\nИграет рядом</textarea>" in editor
    assert '<option value="motor_development" selected>' in editor
    assert '<option value="physical_therapist" selected>' in editor and 'value="20"' in editor
    assert "проведено 0, пропущено 0, запланировано 0" in html  # the ИПРП in force, with its progress


def test_a_regional_supervisor_reads_the_card_but_gets_no_forms(world: World) -> None:
    case_id = to_need_determination(world)
    sign_in(world.client, "rrmc")
    html = world.client.get(f"/cases/{case_id}").text
    assert "Ёжикова Ирина Ивановна" in html and current_box(html) == "need_determination"
    # No event, session, contact or curator form; only the transfer's request, which the РРМЦ may make.
    assert re.findall(rf'action="/cases/{case_id}/([\w-]+)', html) == ["transfers"]
    assert "Для вашей роли в этом состоянии действий нет." in html


def test_the_card_shows_the_child_as_the_api_shows_it_to_the_same_role(world: World) -> None:
    from api.services.disclosure import display_snils

    case_id = to_need_determination(world)
    child_id = world.case(case_id)["child_id"]
    team = {"user_id": world.user_ids["specialist"], "specialist_role": "psychologist"}  # so she sees it
    added = world.client.post(f"{API}/cases/{case_id}/team", json=team, headers=world.h("coordinator"))
    assert added.status_code == 201, added.text
    for who in ("specialist", "coordinator"):
        world.client.cookies.clear()
        sign_in(world.client, who)
        html = world.client.get(f"/cases/{case_id}").text
        shown = world.client.get(f"{API}/children/{child_id}", headers=world.h(who)).json()
        snils = shown.get("snils")
        assert (snils is not None and display_snils(snils) in html) or (snils is None and "СНИЛС" not in html)
        assert ("***-***-***" in (snils or "")) == (who == "specialist")
        for rep in shown["representatives"]:
            assert rep["full_name"] in html and (rep["phone"] or "") in html


def test_the_card_is_audited_as_each_thing_it_shows(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    child_id = world.case(case_id)["child_id"]
    sign_in(world.client, "curator")
    assert world.client.get(f"/cases/{case_id}").status_code == 200
    rows = [r for r in audit_rows(engine, action="read") if r.path == f"GET /cases/{case_id}"]
    assert {r.entity for r in rows} == {"case", "child", "consent", "session", "contact_attempt", "ipr"}
    assert all(r.child_id == child_id for r in rows)
