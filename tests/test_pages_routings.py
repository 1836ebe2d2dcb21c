"""The routing and consilium pages without a browser: the curator routes a family from the case card,
the clinic answers on /routings, the curator sees the outcome; a consilium planned, held with a
routing and «пересмотреть ИПРП»; bad forms come back with the error summary."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.common import utcnow
from models.organisations import Organisation, OrgKind
from tests.test_journey import to_ipr_implementation
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World


def _social(engine: Engine) -> int:
    with Session(engine) as session:
        found = session.exec(
            select(Organisation.id).where(Organisation.kind == OrgKind.social, Organisation.region_id == 1)
        ).first()
        assert found is not None
        return found


def test_routing_from_the_card_answered_on_the_routings_page(world: World) -> None:
    case_id = to_ipr_implementation(world)
    c = world.client
    sign_in(c, "curator")
    card = c.get(f"/cases/{case_id}")
    assert card.status_code == 200
    assert "Маршрутизация" in card.text and "по вопросам социальной поддержки" in card.text
    token = csrf_of(card.text)

    # A bad form: no organisation, no purpose → the card again with the error summary.
    bad = c.post(
        f"/cases/{case_id}/routings",
        data={"csrf": token, "routing-kind": "doctor_consultation", "routing-purpose": ""},
    )
    assert bad.status_code == 422
    assert 'class="error-summary"' in bad.text and 'href="#routing-target_org_id"' in bad.text
    assert "Укажите цель направления" in bad.text
    # A provider as the target: refused in the form, not a 500.
    provider = c.post(
        f"/cases/{case_id}/routings",
        data={
            "csrf": token,
            "routing-target_org_id": str(world.org_ids["provider2"]),
            "routing-kind": "rehabilitation",
            "routing-purpose": "Курс реабилитации",
        },
    )
    assert provider.status_code == 422 and "передачей случая" in provider.text

    sent = c.post(
        f"/cases/{case_id}/routings",
        data={
            "csrf": token,
            "routing-target_org_id": str(world.org_ids["health"]),
            "routing-kind": "doctor_consultation",
            "routing-purpose": "Консультация невролога",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/cases/{case_id}?done=routing"
    card = c.get(sent.headers["location"])
    assert "Семья направлена" in card.text and "Консультация врача" in card.text
    routing_id = int(re.findall(r'action="/routings/(\d+)/answer"', card.text)[0])
    c.cookies.clear()

    # The clinic's user: the NAV link, the page with the minimum, no case card.
    sign_in(c, "referrer")
    page = c.get("/routings")
    assert page.status_code == 200
    assert 'href="/routings"' in page.text and "Ёжикова" in page.text
    assert "невролог" not in page.text  # the purpose is the provider's own note
    assert f'href="/cases/{case_id}' not in page.text
    assert c.get(f"/cases/{case_id}").status_code == 404
    token = csrf_of(page.text)
    empty = c.post(f"/routings/{routing_id}/answer", data={"csrf": token})
    assert empty.status_code == 422 and 'class="error-summary"' in empty.text
    assert f'href="#answer-{routing_id}-outcome_code"' in empty.text
    answered = c.post(
        f"/routings/{routing_id}/answer",
        data={
            "csrf": token,
            f"answer-{routing_id}-outcome_code": "done",
            f"answer-{routing_id}-outcome": "Принят",
        },
        follow_redirects=False,
    )
    assert answered.status_code == 303 and answered.headers["location"] == "/routings?done=answer"
    assert "Результат записан" in c.get("/routings?done=answer").text
    # Another organisation's user cannot answer it.
    c.cookies.clear()
    sign_in(c, "social")
    token = csrf_of(c.get("/routings").text)
    assert c.post(f"/routings/{routing_id}/answer", data={"csrf": token}).status_code == 404
    c.cookies.clear()

    sign_in(c, "curator")
    card = c.get(f"/cases/{case_id}")
    assert "Услуга оказана / обследование проведено" in card.text and "Принят" in card.text
    assert "Семья направлена в другую организацию" in card.text  # the history's label


def test_consilium_planned_held_with_a_routing_and_revise_ipr(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    social = _social(engine)
    c = world.client
    sign_in(c, "curator")
    token = csrf_of(c.get(f"/cases/{case_id}").text)
    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    past = c.post(
        f"/cases/{case_id}/consilia",
        data={
            "csrf": token,
            "consilium-date": yesterday,
            "consilium-time": "10:00",
            "consilium-place": "дистанционно",
            "consilium-agenda": "ИПРП",
            "consilium-orgs": [str(world.provider_id), str(social)],
        },
    )
    assert past.status_code == 422 and 'href="#consilium-date"' in past.text
    assert "прошедшее время" in past.text
    alone = c.post(
        f"/cases/{case_id}/consilia",
        data={"csrf": token, "consilium-date": "", "consilium-orgs": [str(world.provider_id)]},
    )
    assert alone.status_code == 422 and 'href="#consilium-orgs"' in alone.text

    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    planned = c.post(
        f"/cases/{case_id}/consilia",
        data={
            "csrf": token,
            "consilium-date": tomorrow,
            "consilium-time": "11:30",
            "consilium-place": "ул. Ленина, 1",
            "consilium-agenda": "Обследование слуха",
            "consilium-orgs": [str(world.provider_id), str(social), str(world.org_ids["health"])],
        },
        follow_redirects=False,
    )
    assert planned.status_code == 303, planned.text[:2000]
    card = c.get(planned.headers["location"])
    assert "Консилиум назначен" in card.text and "приглашение отправлено" in card.text
    consilium_id = int(re.findall(r'action="/consilia/(\d+)/hold"', card.text)[0])
    p = f"hold-{consilium_id}"
    no_decisions = c.post(f"/consilia/{consilium_id}/hold", data={"csrf": token, f"{p}-revise_ipr": "yes"})
    assert no_decisions.status_code == 422 and f'href="#{p}-decisions"' in no_decisions.text
    held = c.post(
        f"/consilia/{consilium_id}/hold",
        data={
            "csrf": token,
            f"{p}-decisions": "Направить на аудиометрию",
            f"{p}-revise_ipr": "yes",
            f"{p}-routing-target_org_id": str(world.org_ids["health"]),
            f"{p}-routing-kind": "medical_examination",
            f"{p}-routing-purpose": "Аудиометрия",
        },
        follow_redirects=False,
    )
    assert held.status_code == 303
    card = c.get(held.headers["location"])
    assert "Решения консилиума записаны" in card.text
    assert "Консилиум рекомендовал пересмотреть ИПРП" in card.text
    assert "По решению консилиума" in card.text and "Медицинское обследование" in card.text
    routed = world.client.get(f"{API}/cases/{case_id}/routings", headers=world.h("curator")).json()
    assert routed[0]["consilium_id"] == consilium_id


def test_cancel_forms(world: World, engine: Engine) -> None:
    case_id = to_ipr_implementation(world)
    api = world.client
    routing = api.post(
        f"{API}/cases/{case_id}/routings",
        json={"target_org_id": world.org_ids["health"], "kind": "pmpk", "purpose": "ПМПК"},
        headers=world.h("curator"),
    ).json()
    sign_in(api, "head")
    token = csrf_of(api.get(f"/cases/{case_id}").text)
    cancelled = api.post(
        f"/routings/{routing['id']}/cancel",
        data={"csrf": token, f"cancel-{routing['id']}-reason": "Не нужно"},
        follow_redirects=False,
    )
    assert cancelled.status_code == 303 and "routing_cancel" in cancelled.headers["location"]
    again = api.post(f"/routings/{routing['id']}/cancel", data={"csrf": token})
    assert again.status_code == 409 and 'class="error-summary"' in again.text
    no_csrf = api.post(f"/routings/{routing['id']}/cancel", data={})
    assert no_csrf.status_code == 403
