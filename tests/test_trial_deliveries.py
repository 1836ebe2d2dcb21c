"""A trial installation (no SMTP, no SMS gateway) sends nothing, but every delivery keeps the text it
would have sent, so the case shows what each family and organisation would have received."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, func, select

from core.config import Settings
from flows.relay import Relay
from models.organisations import Organisation
from models.outbox import Delivery
from tests.world import World

# As tests/test_effects.py: the test region has no night, so messages are due whatever the hour.


@pytest.fixture(autouse=True)
def _no_night(no_night: None) -> None:
    """Every test here sends at any hour (conftest.no_night)."""


@pytest.fixture
def runner(prefect_server: None) -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def relay(engine: Engine, settings: Settings) -> Relay:
    trial = settings.model_copy(
        update={
            "smtp_host": "",
            "sms_gateway_url": "",
            "delivery_retry_delays": [0.05],
            "relay_backoff_seconds": 0.0,
            "relay_lease_seconds": 1,
        }
    )
    return Relay(engine, trial, name="trial-relay")


def drain(runner: asyncio.Runner, relay: Relay, rounds: int = 10) -> None:
    for _ in range(rounds):
        if runner.run(relay.run_once()) == 0:
            return


def _deliveries(case: dict[str, Any], template: str) -> list[dict[str, Any]]:
    effect = next(e for e in case["effects"] if e["template"] == template)
    return list(effect["deliveries"])


def test_without_channels_each_recipient_gets_a_skipped_delivery_with_the_text_it_would_have_had(
    world: World, engine: Engine, relay: Relay, runner: asyncio.Runner
) -> None:
    with Session(engine) as session:
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.provider_id)
            .values(email="intake@provider.example", phone="+7 800 100-20-30")
        )
        session.commit()
    referral = world.refer()
    case_id = referral["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    drain(runner, relay)

    case = world.case(case_id, "head")
    (family,) = _deliveries(case, "need_determination_invitation")
    assert (family["channel"], family["status"]) == ("sms", "skipped")
    assert family["error"] == "SMS-шлюз не настроен (EARLYHELP_SMS_GATEWAY_URL)"
    assert family["subject"] is None
    # The SMS as the family would have read it: the template rendered with the case's data.
    assert "приглашаем вас с ребёнком (Алёна" in family["text"] and "Тел. +7 800 100-20-30" in family["text"]
    assert "{{" not in family["text"]

    (curator,) = _deliveries(case, "case_assigned")
    assert (curator["channel"], curator["status"]) == ("email", "skipped")
    assert curator["error"] == "e-mail не настроен (EARLYHELP_SMTP_HOST)"
    assert curator["subject"] == f"Вам назначен случай № {case_id}"
    assert f"вам как куратору назначен случай № {case_id} (Определение нуждаемости)" in curator["text"]

    (provider,) = _deliveries(case, "new_referral")
    assert (provider["status"], provider["subject"]) == ("skipped", f"Новое направление № {referral['id']}")
    assert f"Случай № {case_id}." in provider["text"]

    # Nothing is sent again, nor recorded twice: the outbox rows are settled.
    with Session(engine) as session:
        before = session.exec(select(func.count()).select_from(Delivery)).one()
    drain(runner, relay)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Delivery)).one() == before
