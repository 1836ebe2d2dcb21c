"""The journeys' facts kept on the child's row (statemachines/child_facts.py): each door that changes
them keeps them as the journeys say, counted here from the journeys' own rows; and the РРМЦ's
registry filters read them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text, update
from sqlmodel import Session, col, select

from core.migrate import alembic_config, upgrade
from models.children import Child
from models.programmes import NeedConclusion, NeedOutcome, ServiceForm, ServiceSession, SessionStatus
from models.referrals import Referral
from statemachines import child_facts
from tests.registry_seed import facts_from_journeys, seed_child, stored_facts
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World


def _facts(engine: Engine, child_id: int) -> dict[str, Any]:
    """The child's stored facts, after checking them against its journeys."""
    with Session(engine) as session:
        stored = stored_facts(session, [child_id])[child_id]
        assert stored == facts_from_journeys(session, [child_id])[child_id]
    return stored


def _rrmc_ids(world: World, **params: Any) -> set[int]:
    response = world.client.get(
        f"{API}/registry/children", params={"per_page": 100, **params}, headers=world.h("rrmc")
    )
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_each_door_keeps_the_childs_facts_as_its_journeys_say(world: World, engine: Engine) -> None:
    today = date.today()
    body = world.referral_body(
        criteria=["parental_concern"], referral_date=(today - timedelta(days=40)).isoformat()
    )
    first = _refer(world, body)
    child, case_id = first["child_id"], first["case_id"]
    assert _facts(engine, child) == {
        "in_need": False,
        "served": False,
        "referral_criteria": ["parental_concern"],
        "first_referred_on": today - timedelta(days=40),
        "last_referred_on": today - timedelta(days=40),
    }
    # Two more referrals of the same child (its СНИЛС), handed to its open case.
    for days, criteria in ((5, ["disabled_child"]), (20, ["parental_concern"])):
        again = _refer(
            world, {**body, "criteria": criteria, "referral_date": (today - timedelta(days=days)).isoformat()}
        )
        with Session(engine) as session:  # the referrer is not told; the rows say where it went
            referral = session.get(Referral, again["id"])
            assert referral is not None and (referral.child_id, referral.case_id) == (child, case_id)
    facts = _facts(engine, child)
    assert facts["referral_criteria"] == ["disabled_child", "parental_concern"]
    assert (facts["first_referred_on"], facts["last_referred_on"]) == (
        today - timedelta(days=40),
        today - timedelta(days=5),
    )
    # A conclusion of need (a transition), then an ИПРП the parent agreed to.
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("ipr"), who="coordinator")
    assert (_facts(engine, child)["in_need"], _facts(engine, child)["served"]) == (True, False)
    world.advance(case_id, "approve_ipr", ipr_payload())
    assert _facts(engine, child)["served"] is True

    # Another child: consultations only, served once a session is held.
    other = world.refer(criteria=["development_features"])
    other_case = other["case_id"]
    world.advance(other_case, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(other_case, "determine_need", need_payload("consultation"), who="coordinator")
    planned = world.client.post(
        f"{API}/cases/{other_case}/sessions",
        json={"service_code": "development_counselling", "scheduled_at": "2030-01-10T10:00:00+03:00"},
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    assert _facts(engine, other["child_id"])["served"] is False
    with Session(engine) as session:  # the session took place yesterday
        session.execute(
            update(ServiceSession)
            .where(col(ServiceSession.id) == planned.json()["id"])
            .values(scheduled_at=datetime.now(UTC) - timedelta(days=1))
        )
        session.commit()
    held = world.client.patch(
        f"{API}/cases/{other_case}/sessions/{planned.json()['id']}",
        json={"status": "held"},
        headers=world.h("curator"),
    )
    assert held.status_code == 200, held.text
    assert _facts(engine, other["child_id"]) == {
        "in_need": True,
        "served": True,
        "referral_criteria": ["development_features"],
        "first_referred_on": today,
        "last_referred_on": today,
    }

    # The РРМЦ's filters read the facts.
    assert {child, other["child_id"]} <= _rrmc_ids(world, category="served")
    assert child in _rrmc_ids(world, criterion="disabled_child")
    assert child not in _rrmc_ids(world, criterion="development_features")

    def period(start: int, end: int) -> dict[str, str]:
        return {
            "referred_from": (today - timedelta(days=start)).isoformat(),
            "referred_to": (today - timedelta(days=end)).isoformat(),
        }

    # Referred 40, 20 and 5 days ago: a period between the first and the last finds the child by the
    # referral in it, and not without one.
    assert child in _rrmc_ids(world, **period(25, 15))
    assert child not in _rrmc_ids(world, **period(14, 6))
    assert child in _rrmc_ids(world, **period(45, 30))
    assert child in _rrmc_ids(world, referred_from=(today - timedelta(days=6)).isoformat())
    assert child not in _rrmc_ids(world, referred_to=(today - timedelta(days=41)).isoformat())


def _refer(world: World, body: dict[str, Any]) -> dict[str, Any]:
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_merge_and_its_undo_move_the_facts_with_the_journeys(world: World, engine: Engine) -> None:
    today = date.today()
    common: dict[str, Any] = {"referrer_org_id": None, "user_id": world.user_ids["coordinator"]}
    kept = seed_child(
        engine,
        provider_id=world.provider_id,
        last="Слиянская",
        criteria=("parental_concern",),
        referral_date=today - timedelta(days=90),
        state="completed",
        outcome=NeedOutcome.ipr,
        ipr=True,
        **common,
    ).child_id
    gone = seed_child(
        engine,
        provider_id=world.org_ids["provider2"],
        last="Слиянская",
        criteria=("disabled_child",),
        referral_date=today - timedelta(days=10),
        state="consultation",
        outcome=NeedOutcome.consultation,
        **common,
    ).child_id
    before = {kept: _facts(engine, kept), gone: _facts(engine, gone)}
    assert before[kept]["served"] and not before[gone]["served"]
    merged = world.client.post(
        f"{API}/registry/merges",
        json={"keep_child_id": kept, "merge_child_id": gone, "reason": "Один ребёнок"},
        headers=world.h("rrmc"),
    )
    assert merged.status_code == 201, merged.text
    assert _facts(engine, kept) == {
        "in_need": True,
        "served": True,
        "referral_criteria": ["disabled_child", "parental_concern"],
        "first_referred_on": today - timedelta(days=90),
        "last_referred_on": today - timedelta(days=10),
    }
    assert _facts(engine, gone)["first_referred_on"] is None
    assert kept in _rrmc_ids(world, criterion="disabled_child")
    undone = world.client.post(
        f"{API}/registry/merges/{merged.json()['id']}/undo",
        json={"reason": "Ошибка"},
        headers=world.h("rrmc"),
    )
    assert undone.status_code == 200, undone.text
    assert {kept: _facts(engine, kept), gone: _facts(engine, gone)} == before


def test_two_doors_refreshing_one_child_at_once_both_count(world: World, engine: Engine) -> None:
    """PostgreSQL: the second refresh waits for the first to commit and then counts its journeys too.
    SQLite writes one transaction at a time: nothing can interleave there."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    seeded = seed_child(
        engine, provider_id=world.provider_id, referrer_org_id=None, user_id=world.user_ids["coordinator"]
    )
    first, second = Session(engine), Session(engine)
    failed: list[BaseException] = []

    def conclude() -> None:  # the second door: a conclusion of need, refreshed and committed
        try:
            second.add(
                NeedConclusion(
                    case_id=seeded.case_id,
                    outcome=NeedOutcome.ipr,
                    text="Нужна ИПРП",
                    concluded_on=date.today(),
                    author_id=world.user_ids["coordinator"],
                )
            )
            child_facts.refresh(second, [seeded.child_id])
            second.commit()
        except BaseException as error:  # reported below
            failed.append(error)

    thread = threading.Thread(target=conclude)
    try:
        # The first door: a session held, the child's facts refreshed, not committed yet.
        first.add(
            ServiceSession(
                case_id=seeded.case_id,
                service_code="family_support",
                form=ServiceForm.in_person,
                scheduled_at=datetime.now(UTC) - timedelta(days=1),
                duration_minutes=45,
                status=SessionStatus.held,
            )
        )
        child_facts.refresh(first, [seeded.child_id])
        thread.start()
        deadline = time.monotonic() + 60
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        # Until the second waits for the first's lock; each look in a transaction of its own (the
        # activity view is read once a transaction).
        while True:
            with engine.connect() as watcher:
                if watcher.execute(waiting).scalar_one():
                    break
            assert time.monotonic() < deadline and thread.is_alive(), ("the second did not wait", failed)
            time.sleep(0.05)
        first.commit()
    finally:
        # Whatever failed, no transaction is left holding the child (the next test truncates).
        first.close()
        if thread.is_alive():
            thread.join(60)
        second.close()
    assert not failed and not thread.is_alive(), failed
    facts = _facts(engine, seeded.child_id)
    assert (facts["in_need"], facts["served"]) == (True, True)


def test_a_database_with_children_upgrades_to_the_facts_the_doors_keep(world: World, engine: Engine) -> None:
    """Migration 0023 on a database that has children (SQLite cannot copy a table others point at):
    down to 0022 and up again, the facts it computes are those the doors kept."""
    test_each_door_keeps_the_childs_facts_as_its_journeys_say(world, engine)
    with Session(engine) as session:
        ids = [i for i in session.exec(select(Child.id)) if i]
        before = stored_facts(session, ids)
    assert any(f["served"] for f in before.values()) and any(f["in_need"] for f in before.values())
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    command.downgrade(alembic_config(url), "0022")
    upgrade(url)
    with Session(engine) as session:
        assert stored_facts(session, ids) == before
