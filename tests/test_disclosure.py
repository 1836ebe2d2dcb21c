"""Matching never discloses (DESIGN §6, issue 9): knowing a child's СНИЛС, or its name and birth
date, opens nothing of a case at another provider; a match whose fields disagree waits for the
provider serving the child; a referrer sees its own referral, and the conclusion and the ИПРП only
with the family's consent to share them.

The world: a child referred by the clinic (`referrer`) is served at «Первые шаги» (`provider`:
`coordinator`, `curator`) with a curator and a written conclusion; the social-protection centre
(`social`) then refers the same child to «Надежда» (`provider2`: `coordinator2`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from io import BytesIO
from typing import Any

from httpx import Response
from pypdf import PdfReader
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from flows.relay import Relay
from models.audit import AuditLog
from models.cases import Case
from models.children import Child
from models.organisations import Organisation
from models.referrals import Referral
from models.users import User
from tests.servers import HttpSink, SmtpServer
from tests.test_effects import drain, relay, settings  # noqa: F401
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World

SERVING = "Первые шаги"  # the provider serving the child: never named to the others
CURATOR = "Петрова"  # the serving curator's surname
CONCLUSION = "Задержка речевого развития, признаки расстройства аутистического спектра"
SECRET_WORDS = ("аутистическ", "речевого развития")
GOAL = "Ребёнок ходит с опорой на одну руку"  # ipr_payload()'s goal
STATES_OF_THE_CASE = ("Разработка ИПРП", "Определение нуждаемости", "ipr_development", "need_determination")


def served_child(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """A child in an open case at «Первые шаги»: the clinic's referral and the child as sent."""
    body = world.referral_body()
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert response.status_code == 201, response.text
    first = response.json()
    case_id = first["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_id, "determine_need", need_payload("ipr", CONCLUSION), who="coordinator")
    return first, body["child"]


def refer(
    world: World, child: dict[str, Any], who: str = "social", provider: str = "provider2", **overrides: Any
) -> Response:
    body = world.referral_body(provider_id=world.org_ids[provider], **overrides)
    body["child"] = child
    return world.client.post(f"{API}/referrals", json=body, headers=world.h(who))


def assert_discloses_nothing(
    seen: dict[str, Any], first: dict[str, Any], real_name: str | None = None
) -> None:
    """Nothing of the serving provider's case: no provider, case, state, curator, stored name."""
    text = json.dumps(seen, ensure_ascii=False)
    assert SERVING not in text and CURATOR not in text
    assert seen["case_id"] is None and seen["case_state"] is None and seen["case_state_label"] is None
    assert not any(state in text for state in STATES_OF_THE_CASE)
    assert f"№ {first['case_id']}" not in text
    assert seen["child_id"] is None and seen.get("match") is None and seen.get("submitted") is None
    if real_name is not None:
        assert real_name not in text


def pdf_text(response: Response) -> str:
    assert response.status_code == 200, response.text
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)
    return " ".join(text.split())


def assert_document_discloses_nothing(text: str, real_name: str | None = None) -> None:
    assert SERVING not in text and CURATOR not in text
    assert not any(word in text for word in SECRET_WORDS)
    assert not any(state in text for state in STATES_OF_THE_CASE)
    assert "Передано организации, которая уже помогает ребёнку" in text or "Зарегистрировано" in text
    if real_name is not None:
        assert real_name not in text


def listed(world: World, who: str, referral_id: int) -> dict[str, Any]:
    response = world.client.get(f"{API}/referrals", params={"limit": 200}, headers=world.h(who))
    assert response.status_code == 200, response.text
    (item,) = [i for i in response.json()["items"] if i["id"] == referral_id]
    return dict(item)


def detail(world: World, who: str, referral_id: int) -> dict[str, Any]:
    response = world.client.get(f"{API}/referrals/{referral_id}", headers=world.h(who))
    assert response.status_code == 200, response.text
    return dict(response.json())


def decide(world: World, referral_id: int, decision: str, who: str = "coordinator") -> Response:
    return world.client.post(
        f"{API}/referrals/{referral_id}/match", json={"decision": decision}, headers=world.h(who)
    )


def count(engine: Engine, table: type) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


# The finding, leak by leak.


def test_answer_to_a_referral_naming_a_served_child_discloses_nothing(world: World) -> None:
    first, child = served_child(world)
    response = refer(world, child)
    assert response.status_code == 201, response.text
    linked = response.json()
    assert_discloses_nothing(linked, first)
    assert linked["status"] == "handed_over" and linked["linked_to_existing"] is True
    assert "передано организации, которая уже помогает ребёнку" in linked["message"]
    assert linked["child_name"].startswith("Ёжикова")  # what it sent, echoed


def test_referrer_list_and_detail_of_a_handed_over_referral_disclose_nothing(world: World) -> None:
    first, child = served_child(world)
    referral_id = refer(world, child).json()["id"]
    world.advance(first["case_id"], "approve_ipr", ipr_payload())  # the case moves on
    for seen in (listed(world, "social", referral_id), detail(world, "social", referral_id)):
        assert_discloses_nothing(seen, first)
        assert seen["status_label"] == "Передано организации, которая уже помогает ребёнку"


def test_addressed_provider_list_and_detail_of_a_handed_over_referral_disclose_nothing(world: World) -> None:
    first, child = served_child(world)
    referral_id = refer(world, child).json()["id"]
    for seen in (listed(world, "coordinator2", referral_id), detail(world, "coordinator2", referral_id)):
        assert_discloses_nothing(seen, first)
        assert seen["status"] == "handed_over"


def test_feedback_document_of_a_handed_over_referral_discloses_nothing(world: World) -> None:
    _first, child = served_child(world)
    referral_id = refer(world, child).json()["id"]
    for who in ("social", "coordinator2"):
        text = pdf_text(world.client.get(f"{API}/referrals/{referral_id}/feedback", headers=world.h(who)))
        assert f"Обратная связь по направлению № {referral_id}" in text
        assert_document_discloses_nothing(text)


def test_self_referral_naming_a_served_child_discloses_nothing(world: World) -> None:
    first, child = served_child(world)
    response = refer(world, child, who="coordinator2", self_referral=True)
    assert response.status_code == 201, response.text
    assert_discloses_nothing(response.json(), first)
    referral_id = response.json()["id"]
    assert_discloses_nothing(listed(world, "coordinator2", referral_id), first)
    assert_discloses_nothing(detail(world, "coordinator2", referral_id), first)
    text = pdf_text(
        world.client.get(f"{API}/referrals/{referral_id}/feedback", headers=world.h("coordinator2"))
    )
    assert_document_discloses_nothing(text)


def test_made_up_name_with_a_real_snils_discloses_nothing(world: World, engine: Engine) -> None:
    first, child = served_child(world)
    made_up = {**child, "last_name": "Иванова", "first_name": "Мария", "middle_name": "Петровна"}
    response = refer(world, made_up)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert_discloses_nothing(answer, first, real_name="Ёжикова")
    assert answer["child_name"] == "Иванова Мария Петровна" and answer["status"] == "registered"
    for who in ("social", "coordinator2"):
        assert_discloses_nothing(listed(world, who, answer["id"]), first, real_name="Ёжикова")
        assert_discloses_nothing(detail(world, who, answer["id"]), first, real_name="Ёжикова")
        text = pdf_text(world.client.get(f"{API}/referrals/{answer['id']}/feedback", headers=world.h(who)))
        assert_document_discloses_nothing(text, real_name="Ёжикова")
    with Session(engine) as session:  # nothing was linked
        row = session.get(Referral, answer["id"])
        assert row is not None and row.case_id is None and row.child_id is None


def test_later_feedback_messages_skip_an_organisation_that_linked_by_identifier(
    world: World,
    engine: Engine,
    relay: Relay,  # noqa: F811
    runner: asyncio.Runner,
    smtp: SmtpServer,
    sink: HttpSink,
) -> None:
    with Session(engine) as session:  # the social-protection centre has e-mail and a webhook
        social = session.exec(select(User.organisation_id).where(User.id == world.user_ids["social"])).one()
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == social)
            .values(email="social@kcson.example", webhook_url=sink.url("/hook/social"), webhook_secret="s")
        )
        session.commit()
    first, child = served_child(world)
    drain(runner, relay)
    smtp.inbox.clear()
    linked = refer(world, child).json()
    world.advance(first["case_id"], "approve_ipr", ipr_payload())
    world.advance(first["case_id"], "decline", reason="Семья переезжает")
    drain(runner, relay)
    drain(runner, relay)
    assert smtp.to("social@kcson.example") == [] and sink.received("/hook/social") == []
    # The clinic whose referral opened the case hears back, about its own referral.
    to_clinic = sorted(str(m["Subject"]) for m in smtp.to("org0@example.org"))
    assert to_clinic == sorted(
        [f"Утверждена ИПРП по направлению № {first['id']}", f"Отказ семьи по направлению № {first['id']}"]
    )
    # The serving provider is told a referral was handed to it.
    handed = [m for m in smtp.to("org7@example.org") if f"№ {linked['id']}" in str(m["Subject"])]
    assert len(handed) == 1 and f"случаю № {first['case_id']}" in str(handed[0]["Subject"])


# A match whose identity fields disagree waits for the provider serving the child.


def test_mismatch_waits_for_the_serving_provider(world: World, engine: Engine) -> None:
    first, child = served_child(world)
    cases = count(engine, Case)
    made_up = {**child, "first_name": "Мария"}
    referral_id = refer(world, made_up).json()["id"]
    assert count(engine, Case) == cases
    seen = detail(world, "coordinator", referral_id)  # the serving provider
    assert seen["status"] == "awaiting_match_review"
    assert seen["match"]["mismatched_fields"] == ["first_name"]
    assert seen["match"]["matched_child_id"] == first["child_id"]
    # Until it is confirmed, only the identity to compare: not what may be another child's referral.
    assert seen["criteria"] == [] and seen["submitted"]["representatives"] == []
    assert seen["submitted"]["child"]["first_name"] == "Мария"
    for who, status in (
        ("social", 403),
        ("coordinator2", 403),
        ("specialist", 404),  # sees only her teams' and sessions' cases, not the provider's intake
        ("rrmc", 403),
        ("b_coordinator2", 404),
    ):
        assert decide(world, referral_id, "confirm", who=who).status_code == status, who
    assert count(engine, Case) == cases


def test_same_name_and_birth_date_with_a_snils_on_one_side_only_waits(world: World) -> None:
    _first, child = served_child(world)
    answer = refer(world, {**child, "snils": None}).json()
    assert answer["status"] == "registered" and answer["case_id"] is None
    assert detail(world, "coordinator", answer["id"])["match"]["mismatched_fields"] == ["snils"]


def test_confirmed_match_joins_the_serving_case(world: World, engine: Engine) -> None:
    first, child = served_child(world)
    referral_id = refer(world, {**child, "first_name": "Алена"}).json()["id"]
    confirmed = decide(world, referral_id, "confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert decide(world, referral_id, "confirm").status_code == 409  # decided once
    seen = detail(world, "coordinator", referral_id)
    assert seen["case_id"] == first["case_id"] and seen["status"] == "handed_over"
    assert (
        seen["match"]["status"] == "confirmed"
        and seen["match"]["decided_by_id"] == world.user_ids["coordinator"]
    )
    assert_discloses_nothing(detail(world, "social", referral_id), first)
    with Session(engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.entity == "referral_match")).all()
    assert [(a.action, a.entity_id, a.user_id) for a in audit] == [
        ("update", referral_id, world.user_ids["coordinator"])
    ]


def test_refused_match_registers_a_child_of_its_own(world: World, engine: Engine) -> None:
    first, child = served_child(world)
    made_up = {**child, "last_name": "Иванова", "first_name": "Мария"}
    referral_id = refer(world, made_up).json()["id"]
    assert decide(world, referral_id, "refuse").status_code == 200
    # The referral is the addressed provider's now, with a case of its own; the reviewer lets go.
    assert (
        world.client.get(f"{API}/referrals/{referral_id}", headers=world.h("coordinator")).status_code == 404
    )
    own = detail(world, "social", referral_id)
    assert own["status"] == "referred" and own["case_id"] is not None and own["case_id"] != first["case_id"]
    at_addressed = detail(world, "coordinator2", referral_id)
    assert at_addressed["case_id"] == own["case_id"] and at_addressed["child_name"].startswith(
        "Иванова Мария"
    )
    with Session(engine) as session:
        case = session.get(Case, own["case_id"])
        assert case is not None and case.provider_id == world.org_ids["provider2"]
        separate = session.get(Child, case.child_id)
        assert separate is not None and separate.id != first["child_id"]
        assert separate.snils is None  # the СНИЛС is the other child's: to be clarified with the family
        original = session.get(Child, first["child_id"])
        assert original is not None and original.last_name == "Ёжикова"


def test_confirmed_match_of_a_child_with_no_open_case_opens_a_case_at_the_addressed_provider(
    world: World,
) -> None:
    first, child = served_child(world)
    world.advance(first["case_id"], "decline", reason="Семья отказалась", who="coordinator")
    referral_id = refer(world, {**child, "first_name": "Алена"}).json()["id"]
    # The provider that served the child last knows it, and decides.
    assert detail(world, "coordinator", referral_id)["status"] == "awaiting_match_review"
    assert decide(world, referral_id, "confirm").status_code == 200
    own = detail(world, "coordinator2", referral_id)
    assert own["status"] == "referred" and own["child_id"] == first["child_id"]


# A referrer's own referral: its state; the conclusion and the ИПРП only with consent.


def test_conclusion_and_ipr_reach_the_referrer_only_with_the_familys_consent(world: World) -> None:
    first, _ = served_child(world)
    world.advance(first["case_id"], "approve_ipr", ipr_payload())
    feedback = f"{API}/referrals/{first['id']}/feedback"

    def consent(status: str) -> None:
        response = world.client.post(
            f"{API}/children/{first['child_id']}/consents",
            json={"kind": "share_with_referrer", "status": status, "date": date.today().isoformat()},
            headers=world.h("coordinator"),
        )
        assert response.status_code == 201, response.text

    text = pdf_text(world.client.get(feedback, headers=world.h("referrer")))
    assert "Реализация ИПРП" in text and "Петрова" in text  # its own referral's state and curator
    assert not any(word in text for word in SECRET_WORDS) and GOAL not in text
    assert "нет согласия родителя" in text
    consent("given")
    text = pdf_text(world.client.get(feedback, headers=world.h("referrer")))
    assert all(word in text for word in SECRET_WORDS) and GOAL in text
    consent("withdrawn")
    text = pdf_text(world.client.get(feedback, headers=world.h("referrer")))
    assert not any(word in text for word in SECRET_WORDS) and GOAL not in text


def test_earlier_referrer_keeps_the_state_of_its_own_referral(world: World) -> None:
    first, child = served_child(world)
    refer(world, child)
    seen = detail(world, "referrer", first["id"])
    assert seen["case_id"] == first["case_id"] and seen["status"] == "ipr_development"
    assert seen["status_label"] == "Разработка ИПРП" and seen["child_id"] == first["child_id"]


# A child whose case is closed at another provider: knowing it opens nothing there either.


def closed_child(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """A child referred by the clinic to «Первые шаги» and rejected there: its case is closed."""
    body = world.referral_body()
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert response.status_code == 201, response.text
    first = response.json()
    world.advance(first["case_id"], "reject", {"reason_code": "outside_service_area"}, who="coordinator")
    return first, body["child"]


def assert_stored_child_closed_to(world: World, who: str, child_id: int) -> None:
    for path in (f"children/{child_id}", f"children/{child_id}/consents"):
        response = world.client.get(f"{API}/{path}", headers=world.h(who))
        assert response.status_code == 404, (path, response.text)
        assert "mother@example.org" not in response.text and "123-45-67" not in response.text


def test_exact_match_of_a_child_closed_at_another_provider_waits_for_that_provider(
    world: World, engine: Engine
) -> None:
    first, child = closed_child(world)
    cases = count(engine, Case)
    response = refer(world, child, who="coordinator2", self_referral=True, representatives=[])
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "registered" and answer["child_id"] is None and answer["case_id"] is None
    assert "mother@example.org" not in response.text and "123-45-67" not in response.text
    assert_stored_child_closed_to(world, "coordinator2", first["child_id"])
    assert count(engine, Case) == cases
    # The provider that served the child last decides, as for a match whose fields disagree.
    seen = detail(world, "coordinator", answer["id"])
    assert seen["status"] == "awaiting_match_review"
    assert seen["match"]["matched_child_id"] == first["child_id"] and seen["match"]["mismatched_fields"] == []
    assert "не совпадает: )" not in seen["message"]
    with Session(engine) as session:
        row = session.get(Referral, answer["id"])
        assert row is not None and row.match_reviewer_id == world.org_ids["provider"]
    # Confirmed, it opens a case for that child at the provider it was addressed to.
    assert decide(world, answer["id"], "confirm").status_code == 200
    own = detail(world, "coordinator2", answer["id"])
    assert own["status"] == "referred" and own["child_id"] == first["child_id"]


def test_name_and_birth_date_match_of_a_child_closed_at_another_provider_waits(world: World) -> None:
    body = world.referral_body()
    body["child"]["snils"] = None
    first = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).json()
    world.advance(first["case_id"], "reject", {"reason_code": "outside_service_area"}, who="coordinator")
    response = refer(world, body["child"], who="coordinator2", self_referral=True, representatives=[])
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "registered" and response.json()["child_id"] is None
    assert_stored_child_closed_to(world, "coordinator2", first["child_id"])
    assert detail(world, "coordinator", response.json()["id"])["status"] == "awaiting_match_review"
    # Refused, the referral's child is a child of its own at the addressed provider.
    assert decide(world, response.json()["id"], "refuse").status_code == 200
    own = detail(world, "coordinator2", response.json()["id"])
    assert own["status"] == "referred" and own["child_id"] not in (None, first["child_id"])
    assert_stored_child_closed_to(world, "coordinator2", first["child_id"])


def test_exact_match_of_a_child_closed_at_the_addressed_provider_reopens_there_disclosing_nothing(
    world: World,
) -> None:
    first, child = closed_child(world)
    response = refer(world, child, provider="provider", representatives=[])  # the social centre
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["status"] == "referred" and answer["child_id"] == first["child_id"]
    assert answer["case_id"] not in (None, first["case_id"])
    # The sender's answer carries what it sent: not the family the first referral recorded.
    text = response.text
    assert "mother@example.org" not in text and "123-45-67" not in text and answer.get("submitted") is None
    assert answer["child_name"] == " ".join(child[k] for k in ("last_name", "first_name", "middle_name"))


def test_the_snils_is_shown_in_full_only_to_those_who_register_and_coordinate_a_family(world: World) -> None:
    referral = world.refer()
    case = world.case(referral["case_id"], "coordinator")
    team = {"user_id": world.user_ids["specialist"], "specialist_role": "psychologist"}  # so she sees it
    added = world.client.post(f"{API}/cases/{case['id']}/team", json=team, headers=world.h("coordinator"))
    assert added.status_code == 201, added.text
    seen = {
        who: world.client.get(f"{API}/children/{case['child_id']}", headers=world.h(who)).json()["snils"]
        for who in ("coordinator", "curator", "head", "specialist", "rrmc")
    }
    full = seen["coordinator"]
    assert full.isdigit() and len(full) == 11
    assert seen["curator"] == seen["head"] == full
    assert seen["specialist"] == seen["rrmc"] == f"***-***-*** {full[-2:]}"
    found = world.client.get(f"{API}/children", params={"snils": full}, headers=world.h("specialist")).json()
    assert [c["snils"] for c in found] == [f"***-***-*** {full[-2:]}"]
