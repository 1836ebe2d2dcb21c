"""The generated region (tests/region_gen.py) writes what the real journey writes: a few journeys
driven through the API, every history row and deadline they leave has a twin of the same event,
states and payload keys (timer and status) among the generated ones; and generated regions share a
database with the API's own writes."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.cases import CaseHistory
from models.deadlines import Deadline
from models.organisations import Organisation, OrgKind
from tests.region_gen import generate
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World, region_today

Shape = tuple[str, str | None, str, frozenset[str]]


def shapes(rows: list[tuple[str, str | None, str, dict[str, Any]]]) -> set[Shape]:
    return {(event, source, dest, frozenset(payload)) for event, source, dest, payload in rows}


def accepted(w: World) -> int:
    case_id = int(w.refer()["case_id"])
    w.advance(case_id, "accept", {"curator_id": w.user_ids["curator"]}, who="coordinator")
    return case_id


def drive(w: World, engine: Engine) -> None:
    """Journeys of each kind the generator writes, through the one door."""
    # ИПРП; suspended and resumed; a routing answered; a transfer accepted.
    case_id = accepted(w)
    w.advance(case_id, "determine_need", need_payload("ipr"), who="coordinator")
    w.advance(case_id, "approve_ipr", ipr_payload())
    w.advance(case_id, "suspend", reason="Болезнь ребёнка")
    w.advance(case_id, "resume")
    routed = w.client.post(
        f"{API}/cases/{case_id}/routings",
        json={"target_org_id": w.org_ids["health"], "kind": "doctor_consultation", "purpose": "Консультация"},
        headers=w.h("curator"),
    )
    assert routed.status_code == 201, routed.text
    answer = {"outcome_code": "done"}
    answered = w.client.post(
        f"{API}/routings/{routed.json()['id']}/answer", json=answer, headers=w.h("curator")
    )
    assert answered.status_code == 200, answered.text
    consent = {"date": date.today().isoformat(), "document_ref": "Согласие"}
    transfer = w.client.post(
        f"{API}/cases/{case_id}/transfers",
        json={"to_provider_id": w.org_ids["provider2"], "reason": "Переезд", "consent": consent},
        headers=w.h("coordinator"),
    )
    assert transfer.status_code == 201, transfer.text
    taken = w.client.post(
        f"{API}/transfers/{transfer.json()['id']}/accept", json={}, headers=w.h("coordinator2")
    )
    assert taken.status_code == 200, taken.text
    # Rejected; consultations, completed; no need; declined; the final assessment, completed.
    w.advance(w.refer()["case_id"], "reject", {"reason_code": "duplicate"}, who="coordinator")
    consult = accepted(w)
    w.advance(consult, "determine_need", need_payload("consultation"), who="coordinator")
    w.advance(consult, "complete", {"reason_code": "consultations_given"})
    w.advance(accepted(w), "determine_need", need_payload("no_need"), who="coordinator")
    w.advance(accepted(w), "decline", {"reason_code": "no_time"}, reason="Нет времени")
    assessed = accepted(w)
    w.advance(assessed, "determine_need", need_payload("ipr"), who="coordinator")
    w.advance(assessed, "approve_ipr", ipr_payload())
    w.advance(assessed, "start_assessment", {"kind": "final"})
    w.advance(assessed, "complete", {"reason_code": "goals_achieved"})
    # The transition begun and the child enrolled (the completion waits for the adaptation's end).
    moving = accepted(w)
    w.advance(moving, "determine_need", need_payload("ipr"), who="coordinator")
    w.advance(moving, "approve_ipr", ipr_payload())
    with Session(engine) as session:
        doo = session.exec(
            select(Organisation.id)
            .where(Organisation.kind == OrgKind.education)
            .order_by(col(Organisation.id))
        ).first()
    w.advance(moving, "begin_transition", {"destination_org_id": doo})
    w.advance(moving, "enrol", {"enrolled_on": region_today().isoformat()})


def test_the_generator_writes_the_history_and_deadlines_the_real_journey_writes(
    world: World, engine: Engine
) -> None:
    drive(world, engine)
    with Session(engine) as session:
        real = [(h.event, h.from_state, h.to_state, h.payload) for h in session.exec(select(CaseHistory))]
        real_deadlines = {(d.timer, str(d.status)) for d in session.exec(select(Deadline))}
    plan = generate(engine, n=1500, seed=3)
    made = [(e.event, e.from_state, e.to_state, e.payload) for j in plan.journeys for e in j.history]
    missing = shapes(real) - shapes(made)
    assert not missing, f"the generator never writes these shapes: {sorted(missing, key=str)}"
    # Nested payloads too: the conclusion's activities, the ИПРП's services and the parent's agreement.
    for event, key in (("determine_need", "activities"), ("approve_ipr", "services")):
        theirs = {frozenset(item) for row in real if row[0] == event for item in row[3][key]}
        ours = {frozenset(item) for row in made if row[0] == event for item in row[3][key]}
        assert theirs == ours, (event, key)
    agreements = {frozenset(r[3]["parent_agreement"]) for r in [*real, *made] if r[0] == "approve_ipr"}
    assert len(agreements) == 1
    made_deadlines = {(d.timer, str(d.status)) for j in plan.journeys for d in j.deadlines}
    assert real_deadlines <= made_deadlines, real_deadlines - made_deadlines


def test_generated_regions_share_a_database_with_the_api(world: World, engine: Engine) -> None:
    """Two regions written one after the other (the reports' and the bench's use), then the API: the
    ids continue and PostgreSQL's sequences follow the bulk insert."""
    first = generate(engine, n=30, seed=1)
    second = generate(engine, n=30, seed=2)
    assert first.region_id != second.region_id
    assert not {j.case_id for j in first.journeys} & {j.case_id for j in second.journeys}
    assert len({j.child_id for j in [*first.journeys, *second.journeys]}) == 60
    referral = world.refer()
    assert referral["case_id"] > max(j.case_id for j in second.journeys)
