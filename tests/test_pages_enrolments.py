"""The transition's pages without a browser: the ДОО's /enrolments page (list and confirmation), the
enrol form and the adaptation part on the case card."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from models.common import today_in
from tests.test_adaptation import in_transition, kindergarten_id, row
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World

# The demo region's today, which the guards use: the server's date is a day behind from 21:00 UTC.
TODAY = today_in("Europe/Moscow")


def version_of(html: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', html)
    assert found, "no version on the card"
    return found.group(1)


def test_the_kindergarten_confirms_an_enrolment_on_its_page(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    c = world.client
    sign_in(c, "kindergarten")
    page = c.get("/enrolments")
    assert page.status_code == 200, page.text[:500]
    assert 'href="/enrolments"' in page.text  # the menu has «Поступающие дети»
    assert "Ёжикова Алёна" in page.text and "Петрова Анна Викторовна" in page.text
    assert f'action="/enrolments/{case_id}/confirm"' in page.text
    token = csrf_of(page.text)

    bad = c.post(
        f"/enrolments/{case_id}/confirm",
        data={"csrf": token, f"confirm-{case_id}-enrolled_on": "31.02.2026"},
        follow_redirects=False,
    )
    assert bad.status_code == 422 and "Укажите дату поступления" in bad.text
    early = c.post(
        f"/enrolments/{case_id}/confirm",
        data={"csrf": token, f"confirm-{case_id}-enrolled_on": (TODAY - timedelta(days=5)).isoformat()},
        follow_redirects=False,
    )
    assert early.status_code == 422 and "раньше начала перехода" in early.text
    assert row(engine, case_id).state == "transition"

    done = c.post(
        f"/enrolments/{case_id}/confirm",
        data={"csrf": token, f"confirm-{case_id}-enrolled_on": TODAY.isoformat()},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/enrolments?done=confirm"
    assert row(engine, case_id).state == "adaptation"
    after = c.get("/enrolments?done=confirm")
    assert "Поступление ребёнка подтверждено" in after.text and "Адаптация" in after.text
    assert f'action="/enrolments/{case_id}/confirm"' not in after.text

    # Without the form's token nothing happens.
    assert c.post(f"/enrolments/{case_id}/confirm", data={}).status_code == 403


def test_others_are_refused_the_enrolments_page(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine)
    c = world.client
    sign_in(c, "referrer")  # a clinic's referrer: no such menu item, and the page refuses
    home = c.get("/referrals")
    assert 'href="/enrolments"' not in home.text
    assert c.get("/enrolments").status_code == 403
    sign_in(c, "social")  # a social-service centre receives children, but not this one
    page = c.get("/enrolments")
    assert page.status_code == 200 and "ни один ребёнок" in page.text
    answer = c.post(
        f"/enrolments/{case_id}/confirm",
        data={"csrf": csrf_of(page.text), f"confirm-{case_id}-enrolled_on": TODAY.isoformat()},
    )
    assert answer.status_code == 404
    assert row(engine, case_id).state == "transition"


def test_the_curator_records_the_enrolment_on_the_case_card(world: World, engine: Engine) -> None:
    case_id = in_transition(world, engine, destination_org_id=None, destination="")
    c = world.client
    sign_in(c, "curator")
    card = c.get(f"/cases/{case_id}")
    assert f'action="/cases/{case_id}/events/enrol"' in card.text
    assert 'id="enrol-adaptation_ends_on"' in card.text and "через 3 мес." in card.text
    token, version = csrf_of(card.text), version_of(card.text)

    wrong = c.post(
        f"/cases/{case_id}/events/enrol",
        data={
            "csrf": token,
            "version": version,
            "enrol-enrolled_on": TODAY.isoformat(),
            "enrol-destination_org_id": str(kindergarten_id(engine)),
            "enrol-adaptation_ends_on": (TODAY - timedelta(days=1)).isoformat(),
        },
        follow_redirects=False,
    )
    assert wrong.status_code == 422
    assert 'id="enrol-adaptation_ends_on-error"' in wrong.text and "позже даты поступления" in wrong.text

    ends = TODAY + timedelta(days=60)
    done = c.post(
        f"/cases/{case_id}/events/enrol",
        data={
            "csrf": token,
            "version": version,
            "enrol-enrolled_on": TODAY.isoformat(),
            "enrol-destination_org_id": str(kindergarten_id(engine)),
            "enrol-adaptation_ends_on": ends.isoformat(),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text[:500]
    stored = row(engine, case_id)
    assert stored.state == "adaptation" and stored.adaptation_ends_on == ends
    assert stored.destination_org_id == kindergarten_id(engine)

    # The card shows the period, the days left and the two consultations of the standard.
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    planned = c.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "adaptation_parent_counselling", "scheduled_at": soon},
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    card = c.get(f"/cases/{case_id}").text
    assert "Период адаптации" in card and f"{ends:%d.%m.%Y}" in card
    assert "60 дней" in card and "МБДОУ «Детский сад № 12" in card
    parents = re.search(r'data-consultation="adaptation_parent_counselling">(.*?)</dd>', card)
    teachers = re.search(r'data-consultation="adaptation_doo_counselling">(.*?)</dd>', card)
    assert parents and "запланировано: 1" in parents.group(1)
    assert teachers and "ещё не проводилось" in teachers.group(1)
    # «Завершить сопровождение» waits for the end of the period, with the reason beside it.
    assert "ещё не закончился" in card


def test_begin_transition_form_names_the_receiving_kindergarten(world: World, engine: Engine) -> None:
    from tests.test_journey import to_ipr_implementation

    case_id = to_ipr_implementation(world)
    c = world.client
    sign_in(c, "curator")
    card = c.get(f"/cases/{case_id}").text
    done = c.post(
        f"/cases/{case_id}/events/begin_transition",
        data={
            "csrf": csrf_of(card),
            "version": version_of(card),
            "begin_transition-destination": "",
            "begin_transition-destination_org_id": str(kindergarten_id(engine)),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text[:500]
    assert row(engine, case_id).destination_org_id == kindergarten_id(engine)
