"""Referral intake: idempotent submissions, matching a child already known (what the answers
may disclose is pinned in tests/test_disclosure.py)."""

from __future__ import annotations

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from models.cases import Case
from models.children import Child
from models.referrals import Referral
from tests.world import API, World


def count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_retried_submission_with_the_same_key_makes_one_referral(world: World, engine: Engine) -> None:
    body = world.referral_body()
    headers = {**world.h("referrer"), "Idempotency-Key": "mis-4711"}
    first = world.client.post(f"{API}/referrals", json=body, headers=headers)
    again = world.client.post(f"{API}/referrals", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert (count(engine, Referral), count(engine, Case), count(engine, Child)) == (1, 1, 1)


def test_same_key_with_another_body_is_a_conflict(world: World, engine: Engine) -> None:
    headers = {**world.h("referrer"), "Idempotency-Key": "mis-4712"}
    assert (
        world.client.post(f"{API}/referrals", json=world.referral_body(), headers=headers).status_code == 201
    )
    other = world.client.post(f"{API}/referrals", json=world.referral_body(comment="другое"), headers=headers)
    assert other.status_code == 409 and other.json()["field"] == "Idempotency-Key"
    assert count(engine, Referral) == 1


def test_keys_are_per_organisation(world: World, engine: Engine) -> None:
    key = {"Idempotency-Key": "same"}
    assert (
        world.client.post(
            f"{API}/referrals", json=world.referral_body(), headers={**world.h("referrer"), **key}
        ).status_code
        == 201
    )
    assert (
        world.client.post(
            f"{API}/referrals", json=world.referral_body(), headers={**world.h("social"), **key}
        ).status_code
        == 201
    )
    assert count(engine, Referral) == 2


def test_child_in_an_open_case_is_handed_over_not_duplicated(world: World, engine: Engine) -> None:
    body = world.referral_body()
    first = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).json()
    child = body["child"]
    again = world.referral_body()
    # Another spelling of the same name (case, ё) and the СНИЛС written with separators.
    snils = child["snils"]
    again["child"] = {
        **child,
        "last_name": child["last_name"].upper().replace("Ё", "Е"),
        "middle_name": "петровна",
        "snils": f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}",
    }
    response = world.client.post(f"{API}/referrals", json=again, headers=world.h("social"))
    assert response.status_code == 201, response.text
    linked = response.json()
    # The referring organisation learns only that it was handed over (tests/test_disclosure.py).
    assert linked["linked_to_existing"] is True and linked["status"] == "handed_over"
    assert linked["case_id"] is None and linked["child_id"] is None
    assert "передано организации, которая уже помогает ребёнку" in linked["message"]
    # The provider serving the child sees it in its case.
    seen = world.client.get(f"{API}/referrals/{linked['id']}", headers=world.h("coordinator")).json()
    assert seen["case_id"] == first["case_id"] and seen["child_id"] == first["child_id"]
    assert seen["match"]["status"] == "exact"
    assert (count(engine, Case), count(engine, Child), count(engine, Referral)) == (1, 1, 2)


def test_same_name_and_birth_date_without_snils_waits_for_review(world: World, engine: Engine) -> None:
    body = world.referral_body()
    world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    again = world.referral_body()
    again["child"] = {**body["child"], "snils": None}
    response = world.client.post(f"{API}/referrals", json=again, headers=world.h("social"))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "registered" and response.json()["case_id"] is None
    assert (count(engine, Case), count(engine, Child), count(engine, Referral)) == (1, 1, 2)


def test_match_by_snils_with_another_name_waits_for_review(world: World, engine: Engine) -> None:
    body = world.referral_body()
    world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    again = world.referral_body(child={**body["child"], "first_name": "Елена"})
    pending = world.client.post(f"{API}/referrals", json=again, headers=world.h("referrer")).json()
    seen = world.client.get(f"{API}/referrals/{pending['id']}", headers=world.h("coordinator")).json()
    assert seen["status"] == "awaiting_match_review" and seen["match"]["mismatched_fields"] == ["first_name"]
    assert count(engine, Case) == 1


def test_child_whose_case_closed_gets_a_new_case(world: World, engine: Engine) -> None:
    body = world.referral_body()
    first = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).json()
    world.advance(first["case_id"], "reject", {"reason_code": "duplicate"}, who="coordinator")
    again = world.client.post(
        f"{API}/referrals", json=world.referral_body(child=body["child"]), headers=world.h("referrer")
    ).json()
    assert again["linked_to_existing"] is False and again["case_id"] != first["case_id"]
    assert again["child_id"] == first["child_id"]


def test_parent_self_referral_is_registered_by_the_provider(world: World) -> None:
    body = world.referral_body(self_referral=True)
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h("coordinator"))
    assert response.status_code == 201, response.text
    assert response.json()["self_referral"] is True and response.json()["referring_org_id"] is None
    assert world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).status_code == 403
    assert (
        world.client.post(
            f"{API}/referrals", json=world.referral_body(), headers=world.h("curator")
        ).status_code
        == 403
    )


def test_referrer_lists_its_referrals_with_their_status(world: World) -> None:
    referral = world.refer()
    world.advance(referral["case_id"], "accept", who="coordinator")
    listed = world.client.get(f"{API}/referrals", headers=world.h("referrer")).json()
    assert listed["total"] == 1
    assert listed["items"][0]["case_state_label"] == "Определение нуждаемости"


def test_children_search_folds_case_and_yo(world: World) -> None:
    world.refer()
    for query in ("ЕЖИКОВА", "ёжикова алёна", "ежикова петровна", "Жиков"):
        found = world.client.get(
            f"{API}/children", params={"q": query}, headers=world.h("coordinator")
        ).json()
        assert len(found) == 1, query
        assert found[0]["representatives"][0]["relation"] == "mother"
    assert world.client.get(f"{API}/children", params={"q": "%"}, headers=world.h("coordinator")).json() == []


def test_children_search_by_snils(world: World) -> None:
    referral = world.refer()
    snils = world.client.get(f"{API}/children/{referral['child_id']}", headers=world.h("coordinator")).json()[
        "snils"
    ]
    found = world.client.get(
        f"{API}/children", params={"snils": snils}, headers=world.h("coordinator")
    ).json()
    assert [c["id"] for c in found] == [referral["child_id"]]
    bad = world.client.get(f"{API}/children", params={"snils": "11223344596"}, headers=world.h("coordinator"))
    assert bad.status_code == 422 and bad.json()["field"] == "snils"
