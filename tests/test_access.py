"""Scoping (DESIGN §6): who sees and changes which case, and the audit log of every access."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.audit import AuditLog
from tests.world import API, World


@pytest.fixture
def referral(world: World) -> dict[str, object]:
    return world.refer()


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("coordinator", 200),  # the provider the child was referred to
        ("curator", 200),
        ("head", 200),  # the provider's head
        ("rrmc", 200),  # the region's resource centre
        ("coordinator2", 404),  # another provider of the same region
        ("b_rrmc", 404),  # the resource centre of another region
        ("b_coordinator", 404),
        ("referrer", 403),  # referrers see referrals, not cases
        ("analyst", 403),  # analysts see counts only
        ("admin", 403),
    ],
)
def test_who_sees_a_case(world: World, referral: dict[str, object], who: str, status: int) -> None:
    response = world.client.get(f"{API}/cases/{referral['case_id']}", headers=world.h(who))
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("referrer", 200),
        ("coordinator", 200),
        ("rrmc", 200),
        ("social", 404),
        ("coordinator2", 404),
        ("b_referrer", 404),
        ("analyst", 403),
    ],
)
def test_who_sees_a_referral(world: World, referral: dict[str, object], who: str, status: int) -> None:
    response = world.client.get(f"{API}/referrals/{referral['id']}", headers=world.h(who))
    assert response.status_code == status, response.text


def test_lists_are_scoped(world: World, referral: dict[str, object]) -> None:
    world.refer(who="social")
    other = world.client.post(
        f"{API}/referrals",
        json=world.referral_body(provider_id=world.org_ids["provider2"]),
        headers=world.h("referrer"),
    )
    assert other.status_code == 201

    def total(path: str, who: str) -> int:
        response = world.client.get(f"{API}/{path}", headers=world.h(who))
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert total("referrals", "referrer") == 2  # its own two, not the social service's
    assert total("referrals", "social") == 1
    assert total("cases", "coordinator") == 2  # provider 1: two children
    assert total("cases", "coordinator2") == 1
    assert total("cases", "rrmc") == 3  # the whole region
    assert total("cases", "b_rrmc") == 0


def test_other_provider_cannot_fire_events(world: World, referral: dict[str, object]) -> None:
    response = world.event(int(referral["case_id"]), "accept", who="coordinator", version=1)  # type: ignore[call-overload]
    assert response.status_code == 200
    stranger = world.client.post(
        f"{API}/cases/{referral['case_id']}/events/suspend",
        json={"version": 2, "reason": "x"},
        headers=world.h("coordinator2"),
    )
    assert stranger.status_code == 404


def test_regional_supervisor_reads_but_does_not_fire(world: World, referral: dict[str, object]) -> None:
    response = world.client.post(
        f"{API}/cases/{referral['case_id']}/events/accept", json={"version": 1}, headers=world.h("rrmc")
    )
    assert response.status_code == 403
    assert "Роль" in response.json()["message"]


def test_specialist_cannot_accept(world: World, referral: dict[str, object]) -> None:
    # In the case's team, so she sees it (api/scoping.py): her role, not the scope, refuses.
    added = world.client.post(
        f"{API}/cases/{referral['case_id']}/team",
        json={"user_id": world.user_ids["specialist"], "specialist_role": "psychologist"},
        headers=world.h("coordinator"),
    )
    assert added.status_code == 201, added.text
    response = world.client.post(
        f"{API}/cases/{referral['case_id']}/events/accept", json={"version": 1}, headers=world.h("specialist")
    )
    assert response.status_code == 403


def test_analyst_gets_counts_only(world: World, referral: dict[str, object]) -> None:
    response = world.client.get(f"{API}/stats/cases", headers=world.h("analyst"))
    assert response.status_code == 200
    body = response.json()
    # One case: a cell of 1 is suppressed for the analyst (standard.statistics.min_cell), zeros shown.
    assert body["total"] is None and body["total_shown"] == "<5"
    referred = next(row for row in body["by_state"] if row["state"] == "referred")
    assert referred == {
        "state": "referred",
        "label": "Направлен",
        "count": None,
        "suppressed": True,
        "shown": "<5",
    }
    assert next(row for row in body["by_state"] if row["state"] == "completed")["count"] == 0
    coordinator = world.client.get(f"{API}/stats/cases", headers=world.h("coordinator")).json()
    assert coordinator["total"] == 1
    assert "child" not in response.text
    assert world.client.get(f"{API}/children?q=а", headers=world.h("analyst")).status_code == 403
    assert world.client.get(f"{API}/stats/cases", headers=world.h("b_analyst")).json()["total"] == 0


def test_children_search_is_scoped(world: World, referral: dict[str, object]) -> None:
    assert len(world.client.get(f"{API}/children?q=ёжикова", headers=world.h("coordinator")).json()) == 1
    assert world.client.get(f"{API}/children?q=ёжикова", headers=world.h("coordinator2")).json() == []
    assert (
        world.client.get(
            f"{API}/children/{referral['child_id']}", headers=world.h("coordinator2")
        ).status_code
        == 404
    )
    assert world.client.get(f"{API}/children?q=ёжикова", headers=world.h("referrer")).status_code == 403


def test_requests_without_valid_credentials_get_401(world: World) -> None:
    assert world.client.get(f"{API}/cases").status_code == 401
    bad = world.client.get(f"{API}/cases", headers={"Authorization": "Bearer eh_not-a-token"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    assert world.client.get(f"{API}/cases", headers={"Authorization": "Bearer a.b.c"}).status_code == 401


def test_password_login_issues_a_working_jwt(world: World) -> None:
    wrong = world.client.post(f"{API}/auth/login", json={"login": "curator", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "Неверный логин или пароль"
    response = world.client.post(f"{API}/auth/login", json={"login": "curator", "password": "demo"})
    assert response.status_code == 200
    token = response.json()["access_token"]
    me = world.client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["login"] == "curator" and me.json()["role_label"] == "Куратор"


def test_every_read_and_write_of_a_child_is_audited(
    world: World, engine: Engine, referral: dict[str, object]
) -> None:
    case_id, child_id = referral["case_id"], referral["child_id"]
    world.client.get(f"{API}/cases/{case_id}", headers=world.h("curator"))
    world.client.get(f"{API}/children/{child_id}", headers=world.h("rrmc"))
    world.event(int(case_id), "accept", who="coordinator", version=1)  # type: ignore[call-overload]
    world.client.get(
        f"{API}/cases/{case_id}", headers=world.h("coordinator2")
    )  # refused: audited as a refusal, not as a read (tests/test_audit.py)
    with Session(engine) as session:
        rows = session.exec(
            select(AuditLog).where(AuditLog.child_id == child_id).order_by(col(AuditLog.id))
        ).all()
    seen = [(r.user_id, r.action, r.entity) for r in rows]
    assert (world.user_ids["referrer"], "create", "referral") in seen
    assert (world.user_ids["curator"], "read", "case") in seen
    assert (world.user_ids["rrmc"], "read", "child") in seen
    assert (world.user_ids["coordinator"], "transition", "case") in seen
    assert [r.action for r in rows if r.user_id == world.user_ids["coordinator2"]] == ["refused"]
    assert all(r.client_ip and r.path for r in rows)


# The audit log's append-only triggers, against every write path: tests/test_audit.py.


def test_only_the_provider_serving_the_child_records_a_consent_given(world: World) -> None:
    """Consents steer every provider's messages and what referrers see: a provider whose case of the
    child is closed may record a withdrawal, never a consent given."""
    referral = world.refer()
    world.advance(int(referral["case_id"]), "reject", {"reason_code": "other"}, who="coordinator", reason="x")
    url = f"{API}/children/{referral['child_id']}/consents"
    today = date.today().isoformat()
    given = {"kind": "share_with_referrer", "status": "given", "date": today, "document_ref": "№ 9"}
    response = world.client.post(url, json=given, headers=world.h("coordinator"))
    assert response.status_code == 409, response.text
    withdrawn = {**given, "status": "withdrawn"}
    response = world.client.post(url, json=withdrawn, headers=world.h("coordinator"))
    assert response.status_code == 201, response.text


def test_the_analysts_api_answers_are_rounded_to_the_standards_multiple(world: World) -> None:
    # Here, not in test_statistics.py: a function's `world` resets the PostgreSQL database that
    # module's generated region lives in.
    for _ in range(7):
        world.refer()
    stats = world.client.get(f"{API}/stats", headers=world.h("analyst")).json()
    assert stats["round_to"] == 5
    referrals = stats["referrals_by_source"]["total"]
    assert (referrals["value"], referrals["rounded"]) == (5, True)
    exact = world.client.get(f"{API}/stats", headers=world.h("rrmc")).json()
    assert exact["round_to"] is None and exact["referrals_by_source"]["total"]["value"] == 7
    by_state = world.client.get(f"{API}/stats/cases", headers=world.h("analyst")).json()
    assert (
        by_state["total"] == 5
        and next(r for r in by_state["by_state"] if r["state"] == "referred")["count"] == 5
    )
