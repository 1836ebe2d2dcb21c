"""The multidisciplinary team of a case, the agreements that let another organisation's staff join it,
and what a team opens: a specialist sees the cases of her teams and of the sessions she gives; an
invited specialist of another organisation reads her team's case and changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import time_machine
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from models.audit import AuditLog
from models.common import utcnow
from tests.test_journey import to_ipr_implementation
from tests.world import API, World

SOON = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()


def _case(world: World) -> int:
    """A case in «Реализация ИПРП», curated by `curator`."""
    return int(to_ipr_implementation(world))


def _agreement(world: World, partner: str = "social", **body: Any) -> dict[str, Any]:
    data = {
        "provider_id": world.provider_id,
        "partner_org_id": _org(world, partner),
        "number": "17/2026",
        "signed_on": (date.today() - timedelta(days=30)).isoformat(),
        **body,
    }
    response = world.client.post(f"{API}/agreements", json=data, headers=world.h("admin"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _org(world: World, name: str) -> int:
    if name in world.org_ids:
        return world.org_ids[name]
    me = world.client.get(f"{API}/me", headers=world.h(name))
    assert me.status_code == 200, me.text
    return int(me.json()["organisation_id"])


def _add(world: World, case_id: int, who: str, role: str = "psychologist", by: str = "curator") -> Any:
    return world.client.post(
        f"{API}/cases/{case_id}/team",
        json={"user_id": world.user_ids[who], "specialist_role": role},
        headers=world.h(by),
    )


def _refusals(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "refused")
        return session.exec(query).one()


def test_team_lists_the_curator_first_then_members_by_role(world: World) -> None:
    case_id = _case(world)
    added = _add(world, case_id, "specialist", "speech_therapist")
    assert added.status_code == 201, added.text
    team = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("coordinator")).json()
    lead, member = team["members"]
    assert lead["lead"] and lead["user_id"] == world.user_ids["curator"] and lead["id"] is None
    assert (
        member["user_id"] == world.user_ids["specialist"] and member["specialist_role"] == "speech_therapist"
    )
    assert member["specialist_role_label"] == "Учитель-логопед" and not member["invited"]
    assert member["organisation_name"] == lead["organisation_name"]


def test_same_person_twice_is_a_conflict_and_removal_ends_membership(world: World) -> None:
    case_id = _case(world)
    assert _add(world, case_id, "specialist").status_code == 201
    again = _add(world, case_id, "specialist", by="coordinator")
    assert again.status_code == 409 and again.json()["field"] == "user_id"
    member_id = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("curator")).json()["members"][
        1
    ]["id"]
    removed = world.client.post(f"{API}/cases/{case_id}/team/{member_id}/remove", headers=world.h("head"))
    assert removed.status_code == 200 and len(removed.json()["members"]) == 1
    twice = world.client.post(f"{API}/cases/{case_id}/team/{member_id}/remove", headers=world.h("head"))
    assert twice.status_code == 409
    # Back in after removal: a new membership.
    assert _add(world, case_id, "specialist").status_code == 201


def test_bad_team_input_is_answered_with_the_field(world: World) -> None:
    case_id = _case(world)
    cases = [
        ({"user_id": world.user_ids["specialist"], "specialist_role": "astrologer"}, 422, "specialist_role"),
        ({"user_id": 2_000_000, "specialist_role": "psychologist"}, 422, "user_id"),
        ({"user_id": world.user_ids["b_coordinator"], "specialist_role": "psychologist"}, 422, "user_id"),
        ({"user_id": world.user_ids["coordinator"], "specialist_role": "psychologist"}, 422, "user_id"),
        ({"user_id": world.user_ids["analyst"], "specialist_role": "psychologist"}, 422, "user_id"),
        ({"user_id": world.user_ids["curator"], "specialist_role": "curator"}, 409, "user_id"),
        ({"user_id": "x", "specialist_role": "psychologist"}, 422, "user_id"),
    ]
    for body, status, field in cases:
        response = world.client.post(f"{API}/cases/{case_id}/team", json=body, headers=world.h("curator"))
        assert response.status_code == status, (body, response.text)
        assert field in response.text, (body, response.text)
    # Only the provider's curator, coordinator and head form the team.
    assert _add(world, case_id, "specialist", by="specialist").status_code in (403, 404)
    assert _add(world, case_id, "specialist", by="coordinator2").status_code == 404
    assert _add(world, case_id, "specialist", by="rrmc").status_code == 403


def test_member_from_an_organisation_without_an_agreement_is_refused(world: World) -> None:
    case_id = _case(world)
    response = _add(world, case_id, "social", "social_worker")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "user_id"
    assert "нет действующего соглашения о межведомственном взаимодействии" in body["message"]
    # An agreement that ended, or that is not yet signed, or has expired, holds nothing either.
    ended = _agreement(world)
    world.client.post(f"{API}/agreements/{ended['id']}/end", headers=world.h("rrmc"))
    _agreement(world, signed_on=(date.today() + timedelta(days=3)).isoformat())
    _agreement(
        world,
        signed_on=(date.today() - timedelta(days=400)).isoformat(),
        valid_until=(date.today() - timedelta(days=1)).isoformat(),
    )
    assert _add(world, case_id, "social", "social_worker").status_code == 422


def test_invited_specialist_reads_her_teams_case_and_changes_nothing(world: World, engine: Engine) -> None:
    case_id = _case(world)
    other_case = _case(world)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": SOON},
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    # Before: a referrer of another organisation sees no case.
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("social")).status_code == 403
    _agreement(world, valid_until=(date.today() + timedelta(days=365)).isoformat())
    added = _add(world, case_id, "social", "social_worker")
    assert added.status_code == 201, added.text
    assert added.json()["members"][1]["invited"] is True

    card = world.client.get(f"{API}/cases/{case_id}", headers=world.h("social"))
    assert card.status_code == 200, card.text
    assert card.json()["allowed_events"] == []
    sessions = world.client.get(f"{API}/cases/{case_id}/sessions", headers=world.h("social"))
    assert sessions.status_code == 200 and len(sessions.json()) == 1
    child = world.client.get(f"{API}/children/{card.json()['child_id']}", headers=world.h("social"))
    assert child.status_code == 200 and child.json()["snils"].startswith("***")
    assert world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("social")).status_code == 200

    # No events, no forms, nothing else of the provider.
    event = world.event(case_id, "start_assessment", {"kind": "intermediate"}, who="social")
    assert event.status_code == 403, event.text
    team_body = {"user_id": world.user_ids["social"], "specialist_role": "curator"}
    for method, path, body in [
        ("POST", f"/cases/{case_id}/sessions", {"service_code": "motor_development", "scheduled_at": SOON}),
        ("POST", f"/cases/{case_id}/contact-attempts", {"at": utcnow().isoformat(), "successful": True}),
        ("POST", f"/cases/{case_id}/team", team_body),
    ]:
        response = world.client.request(method, API + path, json=body, headers=world.h("social"))
        assert response.status_code == 403, (path, response.text)
    assert world.client.get(f"{API}/cases", headers=world.h("social")).status_code == 403
    assert world.client.get(f"{API}/cases/{other_case}", headers=world.h("social")).status_code == 403

    # Removed: the door closes at once, and the refusal is audited.
    member_id = added.json()["members"][1]["id"]
    removed = world.client.post(f"{API}/cases/{case_id}/team/{member_id}/remove", headers=world.h("curator"))
    assert removed.status_code == 200
    before = _refusals(engine)
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("social")).status_code == 403
    assert world.client.get(f"{API}/cases/{case_id}/sessions", headers=world.h("social")).status_code == 403
    assert _refusals(engine) == before + 2


def test_invited_staff_of_another_provider_read_only(world: World) -> None:
    case_id = _case(world)
    _agreement(world, partner="provider2")
    assert _add(world, case_id, "curator2", "defectologist").status_code == 201
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("curator2")).status_code == 200
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": SOON},
        headers=world.h("curator2"),
    )
    assert planned.status_code == 403, planned.text
    # Not in the other provider's lists: an invitation opens the case by its id only.
    listed = world.client.get(f"{API}/cases", params={"limit": 200}, headers=world.h("curator2")).json()
    assert case_id not in [c["id"] for c in listed["items"]]


def test_ending_an_agreement_ends_its_staffs_memberships(world: World) -> None:
    case_id = _case(world)
    agreement = _agreement(world)
    assert _add(world, case_id, "social", "social_worker").status_code == 201
    ended = world.client.post(f"{API}/agreements/{agreement['id']}/end", headers=world.h("admin"))
    assert ended.status_code == 200 and ended.json()["in_force"] is False
    team = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("curator")).json()
    assert [m["lead"] for m in team["members"]] == [True]
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("social")).status_code == 403


def test_specialist_sees_her_teams_and_her_sessions_cases_only(world: World, engine: Engine) -> None:
    team_case, session_case, other_case = _case(world), _case(world), _case(world)
    assert _add(world, team_case, "specialist").status_code == 201
    planned = world.client.post(
        f"{API}/cases/{session_case}/sessions",
        json={
            "service_code": "motor_development",
            "scheduled_at": SOON,
            "specialist_id": world.user_ids["specialist"],
        },
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    listed = world.client.get(f"{API}/cases", params={"limit": 200}, headers=world.h("specialist")).json()
    assert sorted(c["id"] for c in listed["items"]) == sorted([team_case, session_case])
    for case_id in (team_case, session_case):
        assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("specialist")).status_code == 200
    before = _refusals(engine)
    for path in (f"/cases/{other_case}", f"/cases/{other_case}/sessions", f"/cases/{other_case}/ipr"):
        assert world.client.get(API + path, headers=world.h("specialist")).status_code == 404, path
    assert _refusals(engine) == before + 3
    other_child = world.case(other_case)["child_id"]
    assert world.client.get(f"{API}/children/{other_child}", headers=world.h("specialist")).status_code == 404
    children = world.client.get(
        f"{API}/children", params={"q": "Ёжикова", "limit": 100}, headers=world.h("specialist")
    ).json()
    assert other_child not in [c["id"] for c in children]
    # Her team's case she works in as before: a session, a contact attempt.
    work = world.client.post(
        f"{API}/cases/{team_case}/contact-attempts",
        json={"at": utcnow().isoformat(), "successful": True},
        headers=world.h("specialist"),
    )
    assert work.status_code == 201, work.text
    # The head and the coordinator still see all of the provider's cases.
    everything = world.client.get(f"{API}/cases", params={"limit": 200}, headers=world.h("head")).json()
    assert {team_case, session_case, other_case} <= {c["id"] for c in everything["items"]}


def test_agreements_are_kept_by_the_admin_and_the_rrmc_and_read_by_the_head(world: World) -> None:
    created = _agreement(world, valid_until=(date.today() + timedelta(days=10)).isoformat())
    assert created["in_force"] and created["partner_name"] and created["provider_name"]
    by_rrmc = world.client.post(
        f"{API}/agreements",
        json={
            "provider_id": world.provider_id,
            "partner_org_id": world.org_ids["health"],
            "number": "3",
            "signed_on": date.today().isoformat(),
        },
        headers=world.h("rrmc"),
    )
    assert by_rrmc.status_code == 201, by_rrmc.text
    head = world.client.get(f"{API}/agreements", headers=world.h("head"))
    assert head.status_code == 200 and len(head.json()) == 2
    assert world.client.get(f"{API}/agreements", headers=world.h("coordinator2")).status_code == 403
    assert world.client.get(f"{API}/agreements", headers=world.h("b_admin")).json() == []
    assert (
        world.client.post(f"{API}/agreements/{created['id']}/end", headers=world.h("head")).status_code == 403
    )
    assert (
        world.client.post(f"{API}/agreements/{created['id']}/end", headers=world.h("b_admin")).status_code
        == 404
    )
    assert (
        world.client.post(f"{API}/agreements/{created['id']}/end", headers=world.h("admin")).status_code
        == 200
    )
    assert (
        world.client.post(f"{API}/agreements/{created['id']}/end", headers=world.h("rrmc")).status_code == 409
    )


def test_bad_agreement_input_is_answered_with_the_field(world: World) -> None:
    good: dict[str, Any] = {
        "provider_id": world.provider_id,
        "partner_org_id": world.org_ids["health"],
        "number": "5",
        "signed_on": date.today().isoformat(),
    }
    bad: list[tuple[dict[str, Any], str]] = [
        ({"partner_org_id": world.provider_id}, "partner_org_id"),
        ({"partner_org_id": world.org_ids["b_health"]}, "partner_org_id"),
        ({"partner_org_id": 2_000_000}, "partner_org_id"),
        ({"provider_id": world.org_ids["health"]}, "provider_id"),
        ({"provider_id": world.org_ids["b_provider"]}, "provider_id"),
        ({"valid_until": (date.today() - timedelta(days=1)).isoformat()}, "valid_until"),
        ({"number": "   "}, "number"),
        ({"signed_on": "31.02.2026"}, "signed_on"),
    ]
    for change, field in bad:
        response = world.client.post(f"{API}/agreements", json={**good, **change}, headers=world.h("admin"))
        assert response.status_code == 422, (change, response.text)
        assert field in response.text, (change, response.text)
    with_head = world.client.post(f"{API}/agreements", json=good, headers=world.h("head"))
    assert with_head.status_code == 403


def test_an_agreement_past_its_term_closes_the_invited_specialists_door(world: World) -> None:
    """Nobody ends an agreement whose term runs out: the day after `valid_until` it is no longer in
    force, and its staff no longer read the provider's cases (README: «the end of the agreement
    closes the door at once»), nor find them on «Мои команды»."""
    case_id = _case(world)
    last_day = date.today() + timedelta(days=3)
    _agreement(world, valid_until=last_day.isoformat())
    assert _add(world, case_id, "social", "social_worker").status_code == 201
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("social")).status_code == 200
    with time_machine.travel(datetime.combine(last_day + timedelta(days=2), datetime.min.time(), UTC)):
        assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("social")).status_code == 403
        child_id = world.client.get(f"{API}/cases/{case_id}", headers=world.h("curator")).json()["child_id"]
        assert world.client.get(f"{API}/children/{child_id}", headers=world.h("social")).status_code == 403
        assert world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("social")).status_code == 403
        # Nor is she shown as a member of the team she can no longer read.
        team = world.client.get(f"{API}/cases/{case_id}/team", headers=world.h("curator")).json()
        assert [m["lead"] for m in team["members"]] == [True]


def test_a_cancelled_session_opens_no_case_to_its_specialist(world: World) -> None:
    """A specialist sees the cases where she gives or is to give a session (README): a session
    planned for her by mistake and cancelled gives her nothing to give, and no case to read."""
    case_id = _case(world)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={
            "service_code": "motor_development",
            "scheduled_at": SOON,
            "specialist_id": world.user_ids["specialist"],
        },
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("specialist")).status_code == 200
    cancelled = world.client.patch(
        f"{API}/cases/{case_id}/sessions/{planned.json()['id']}",
        json={"status": "cancelled", "notes": "Не тот специалист"},
        headers=world.h("curator"),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert world.client.get(f"{API}/cases/{case_id}", headers=world.h("specialist")).status_code == 404
    listed = world.client.get(f"{API}/cases", params={"limit": 200}, headers=world.h("specialist")).json()
    assert case_id not in [c["id"] for c in listed["items"]]
