"""Bad input gets a 4xx naming the field with a message in Russian, and the database is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, select

from tests.standards_override import region_standard
from tests.test_journey import to_need_determination
from tests.world import API, World


def row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            table.name: session.exec(select(func.count()).select_from(table)).one()
            for table in SQLModel.metadata.sorted_tables
            if table.name != "audit_log"
        }


@contextmanager
def unchanged(engine: Engine) -> Iterator[None]:
    before = row_counts(engine)
    yield
    assert row_counts(engine) == before


def post_referral(world: World, engine: Engine, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    with unchanged(engine):
        response = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert response.status_code == status, response.text
    return dict(response.json())


def test_invalid_snils_checksum(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(child={"snils": "112-233-445 96"}))
    assert body["field"] == "child.snils"
    assert body["message"] == "child.snils: Неверная контрольная сумма СНИЛС"


def test_snils_of_wrong_length(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(child={"snils": "12345"}))
    assert body["field"] == "child.snils" and "11 цифр" in str(body["message"])


def test_birth_date_in_the_future(world: World, engine: Engine) -> None:
    future = (date.today() + timedelta(days=3)).isoformat()
    body = post_referral(world, engine, world.referral_body(child={"birth_date": future}))
    assert body["field"] == "child.birth_date" and "в будущем" in str(body["message"])


def test_child_three_or_older_at_referral(world: World, engine: Engine) -> None:
    born = (date.today() - timedelta(days=3 * 365 + 2)).isoformat()
    body = post_referral(world, engine, world.referral_body(child={"birth_date": born}))
    assert body["field"] == "child.birth_date" and "36 мес." in str(body["message"])


def test_region_standard_may_allow_older_children(world: World, engine: Engine, tmp_path: Path) -> None:
    with region_standard(tmp_path, "age:\n  max_months_at_referral: 48\n"):
        born = (date.today() - timedelta(days=3 * 365 + 30)).isoformat()
        response = world.client.post(
            f"{API}/referrals",
            json=world.referral_body(child={"birth_date": born}),
            headers=world.h("referrer"),
        )
    assert response.status_code == 201, response.text


def test_unknown_criterion(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(criteria=["parental_concern", "horoscope"]))
    assert body["field"] == "criteria.1" and "horoscope" in str(body["message"])


def test_unknown_provider_organisation(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(provider_id=987654))
    assert body["field"] == "provider_id" and body["message"] == "Организация не найдена"


def test_referral_to_an_organisation_that_is_not_a_provider(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(provider_id=world.org_ids["health"]))
    assert body["field"] == "provider_id"


def test_referral_to_a_provider_of_another_region(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(provider_id=world.org_ids["b_provider"]))
    assert body["field"] == "provider_id"


def test_oversized_field(world: World, engine: Engine) -> None:
    body = post_referral(world, engine, world.referral_body(child={"last_name": "Я" * 101}))
    assert body["field"] == "child.last_name" and "не более 100" in str(body["message"])


def test_oversized_body_is_refused_before_parsing(world: World, engine: Engine) -> None:
    huge = world.referral_body(comment="x" * 2_000_000)
    with unchanged(engine):
        response = world.client.post(f"{API}/referrals", json=huge, headers=world.h("referrer"))
    assert response.status_code == 413
    assert response.json()["message"] == "Слишком большой запрос"


def test_malformed_json(world: World, engine: Engine) -> None:
    with unchanged(engine):
        response = world.client.post(
            f"{API}/referrals",
            content=b'{"provider_id": 1,',
            headers={**world.h("referrer"), "content-type": "application/json"},
        )
    assert response.status_code == 422
    assert "Некорректный JSON" in response.json()["message"]


def test_missing_and_unknown_fields_are_named(world: World, engine: Engine) -> None:
    body = world.referral_body(surprise=1)
    del body["criteria"]
    errors = post_referral(world, engine, body)["errors"]
    assert {"field": "criteria", "message": "Обязательное поле", "type": "missing"} in errors
    assert any(e["field"] == "surprise" and e["message"] == "Неизвестное поле" for e in errors)


def test_event_not_allowed_in_state_lists_the_allowed_ones(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    with unchanged(engine):
        response = world.event(case_id, "approve_ipr", {}, who="head")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "event_not_allowed"
    assert body["allowed_events"] == ["accept", "decline", "reject"]  # what may fire now
    assert list(body["blocked"]) == ["mark_lost_contact"]  # no failed contacts yet
    assert "«Направлен»" in body["message"]


def test_unknown_event(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    response = world.event(case_id, "teleport", {}, who="coordinator")
    assert response.status_code == 404 and response.json()["field"] == "event"


def test_event_payload_of_wrong_shape(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    with unchanged(engine):
        response = world.event(
            case_id, "determine_need", {"outcome": "maybe", "conclusion": "x"}, who="coordinator"
        )
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "payload.outcome" and "ipr" in body["message"]


def test_stale_version_is_refused(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", who="coordinator")
    with unchanged(engine):
        response = world.event(case_id, "suspend", {}, who="coordinator", reason="Болезнь", version=1)
    assert response.status_code == 409
    assert response.json()["error"] == "stale_version" and response.json()["current_version"] == 2


def test_version_is_required(world: World, engine: Engine) -> None:
    case_id = world.refer()["case_id"]
    response = world.client.post(
        f"{API}/cases/{case_id}/events/accept", json={"payload": {}}, headers=world.h("coordinator")
    )
    assert response.status_code == 428 and response.json()["field"] == "version"


def test_if_match_header_carries_the_version(world: World) -> None:
    case_id = world.refer()["case_id"]
    stale = world.client.post(
        f"{API}/cases/{case_id}/events/accept", json={}, headers={**world.h("coordinator"), "If-Match": '"7"'}
    )
    assert stale.status_code == 409
    fresh = world.client.post(
        f"{API}/cases/{case_id}/events/accept", json={}, headers={**world.h("coordinator"), "If-Match": '"1"'}
    )
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"'


def test_appointment_in_the_past_is_refused(world: World, engine: Engine) -> None:
    case_id = to_need_determination(world)
    with unchanged(engine):
        response = world.client.post(
            f"{API}/cases/{case_id}/sessions",
            json={"service_code": "need_determination", "scheduled_at": "2020-01-01T10:00:00+03:00"},
            headers=world.h("coordinator"),
        )
    assert response.status_code == 422 and response.json()["field"] == "scheduled_at"


def test_time_without_zone_is_refused(world: World) -> None:
    case_id = to_need_determination(world)
    response = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "need_determination", "scheduled_at": "2030-01-01T10:00:00"},
        headers=world.h("coordinator"),
    )
    assert response.status_code == 422 and "часовой пояс" in response.json()["message"]


@pytest.mark.parametrize("query", ["?state=flying", "?limit=0", "?limit=abc"])
def test_bad_list_filters(world: World, query: str) -> None:
    response = world.client.get(f"{API}/cases{query}", headers=world.h("curator"))
    assert response.status_code == 422 and response.json()["field"] in ("state", "limit")
