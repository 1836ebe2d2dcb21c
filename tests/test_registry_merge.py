"""Merging two records of one child and undoing it: everything moves and comes back exactly, both are
audited and written into the cases' history, the guards refuse what must not merge, a merged child is
gone from every door, and two merges at once do not interleave. The pages in a real browser."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models.audit import AuditLog
from models.cases import Case, CaseHistory
from models.children import Child, LegalRepresentative
from models.consents import Consent
from models.deadlines import Deadline
from models.programmes import Ipr, NeedConclusion, ServiceSession
from models.referrals import Referral
from models.registry import MERGE_EVENT, MERGE_EVENTS, UNDO_EVENT, ChildMerge
from tests.browser import assert_accessible, login
from tests.registry_seed import seed_child
from tests.test_journey import ipr_payload, need_payload
from tests.test_pages_auth import sign_in
from tests.world import API, World, snils_for

SNAPSHOT_TABLES: tuple[Any, ...] = (
    Child,
    Referral,
    Case,
    Consent,
    LegalRepresentative,
    NeedConclusion,
    Ipr,
    ServiceSession,
    Deadline,
    CaseHistory,
)


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables a merge touches (the history without the merge's own rows)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with Session(engine) as session:
        for table in SNAPSHOT_TABLES:
            rows = session.exec(select(table).order_by(col(table.id))).all()
            dumped = [row.model_dump(warnings=False) for row in rows]
            if table is CaseHistory:
                dumped = [r for r in dumped if r["event"] not in MERGE_EVENTS]
            out[table.__tablename__] = dumped
    return out


@pytest.fixture
def pair(world: World) -> dict[str, int]:
    """Two records of one child made the way they arise: a second referral without the СНИЛС matched
    the known child, the serving provider refused the match, so a child of its own was registered
    (at provider2, whose coordinator then rejected the case as a duplicate). The known child is in
    «Реализация ИПРП» with a conclusion, a programme and a planned session; the new one has no СНИЛС
    and no municipality."""
    client = world.client
    body = world.referral_body()
    first = client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert first.status_code == 201, first.text
    case_a = first.json()["case_id"]
    world.advance(case_a, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
    world.advance(case_a, "determine_need", need_payload("ipr"), who="coordinator")
    world.advance(case_a, "approve_ipr", ipr_payload())
    planned = client.post(
        f"{API}/cases/{case_a}/sessions",
        json={"service_code": "motor_development", "scheduled_at": "2030-01-10T10:00:00+03:00"},
        headers=world.h("curator"),
    )
    assert planned.status_code == 201, planned.text
    second_body = {
        **body,
        "provider_id": world.org_ids["provider2"],
        "child": {**body["child"], "snils": None, "municipality": None},
        "representatives": [
            {**body["representatives"][0], "full_name": "Ёжиков Олег Иванович", "relation": "father"}
        ],
    }
    second = client.post(f"{API}/referrals", json=second_body, headers=world.h("social"))
    assert second.status_code == 201 and second.json()["status"] == "registered", second.text
    refused = client.post(
        f"{API}/referrals/{second.json()['id']}/match",
        json={"decision": "refuse"},
        headers=world.h("coordinator"),
    )
    assert refused.status_code == 200, refused.text
    mine = client.get(f"{API}/referrals/{second.json()['id']}", headers=world.h("coordinator2")).json()
    world.advance(mine["case_id"], "reject", {"reason_code": "duplicate"}, who="coordinator2")
    return {
        "known": int(first.json()["child_id"]),
        "known_case": int(case_a),
        "new": int(mine["child_id"]),
        "new_case": int(mine["case_id"]),
        "known_referral": int(first.json()["id"]),
    }


def _merge(
    world: World, keep: int, gone: int, who: str = "rrmc", reason: str = "Один ребёнок"
) -> httpx.Response:
    return world.client.post(
        f"{API}/registry/merges",
        json={"keep_child_id": keep, "merge_child_id": gone, "reason": reason},
        headers=world.h(who),
    )


def test_a_merge_undone_restores_exactly_the_rows_before_it(
    world: World, engine: Engine, pair: dict[str, int]
) -> None:
    duplicates = world.client.get(f"{API}/registry/duplicates", headers=world.h("rrmc")).json()
    assert [(p["first"]["id"], p["second"]["id"]) for p in duplicates] == [(pair["known"], pair["new"])]
    before = snapshot(engine)
    merged = _merge(world, keep=pair["new"], gone=pair["known"])
    assert merged.status_code == 201, merged.text
    body = merged.json()
    assert body["moved"]["case"] == 1 and body["moved"]["referral"] >= 1 and body["moved"]["consent"] >= 1
    assert body["filled_fields"] == ["snils", "municipality"]
    after_merge = snapshot(engine)
    assert after_merge != before
    with Session(engine) as session:
        kept = session.get(Child, pair["new"])
        gone = session.get(Child, pair["known"])
        assert kept is not None and gone is not None
        assert kept.snils == snils_for(1) and kept.municipality == "Центральный район"
        assert gone.snils is None and gone.merged_into_id == pair["new"]
        moved_case = session.get(Case, pair["known_case"])
        assert moved_case is not None and moved_case.child_id == pair["new"]
        # The conclusion, the programme and the session hang on the case: they came with it.
        assert session.exec(select(Ipr).where(Ipr.case_id == pair["known_case"])).first() is not None
        merge_rows = session.exec(select(CaseHistory).where(CaseHistory.event == MERGE_EVENT)).all()
        assert {r.case_id for r in merge_rows} == {pair["known_case"], pair["new_case"]}
        assert all(r.from_state == r.to_state for r in merge_rows)
    # The moved case's card shows the row, and the case goes on.
    sign_in(world.client, "curator")
    card = world.client.get(f"/cases/{pair['known_case']}")
    assert card.status_code == 200 and "Записи о ребёнке объединены" in card.text
    world.client.cookies.clear()
    assert world.case(pair["known_case"])["state"] == "ipr_implementation"

    undone = world.client.post(
        f"{API}/registry/merges/{body['id']}/undo", json={"reason": "Ошибка"}, headers=world.h("rrmc")
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_at"] is not None
    assert snapshot(engine) == before
    with Session(engine) as session:
        undo_rows = session.exec(select(CaseHistory).where(CaseHistory.event == UNDO_EVENT)).all()
        assert {r.case_id for r in undo_rows} == {pair["known_case"], pair["new_case"]}
        audited = {
            (r.action, r.child_id)
            for r in session.exec(select(AuditLog).where(AuditLog.entity == "child_merge")).all()
            if r.action in ("merge", "merge_undo")
        }
    both = {pair["known"], pair["new"]}
    assert audited == {("merge", c) for c in both} | {("merge_undo", c) for c in both}
    again = world.client.post(f"{API}/registry/merges/{body['id']}/undo", headers=world.h("rrmc"))
    assert again.status_code == 409 and "уже отменено" in again.json()["message"]


def test_a_merged_child_is_gone_from_every_door(world: World, engine: Engine, pair: dict[str, int]) -> None:
    assert _merge(world, keep=pair["new"], gone=pair["known"]).status_code == 201
    for who in ("rrmc", "coordinator", "curator"):
        response = world.client.get(f"{API}/children/{pair['known']}", headers=world.h(who))
        assert response.status_code == 404, (who, response.text)
    assert world.client.get(f"{API}/children/{pair['new']}", headers=world.h("curator")).status_code == 200
    found = world.client.get(f"{API}/children", params={"q": "Ёжикова"}, headers=world.h("rrmc")).json()
    assert [c["id"] for c in found] == [pair["new"]]
    registry = world.client.get(f"{API}/registry/children", headers=world.h("rrmc")).json()
    assert [row["id"] for row in registry["items"]] == [pair["new"]]
    assert registry["items"][0]["state"] == "ipr_implementation"
    assert world.client.get(f"{API}/registry/duplicates", headers=world.h("rrmc")).json() == []
    # A new referral with the same name and birth date, no СНИЛС: matched to the kept record.
    body = world.referral_body()
    body["child"] = {**body["child"], "first_name": "Алёнаа", "snils": None}
    referral = world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer"))
    assert referral.status_code == 201, referral.text
    seen = world.client.get(f"{API}/referrals/{referral.json()['id']}", headers=world.h("coordinator")).json()
    assert seen["match"]["matched_child_id"] == pair["new"]


def test_the_undo_is_refused_when_the_kept_child_changed_since(
    world: World, engine: Engine, pair: dict[str, int]
) -> None:
    merged = _merge(world, keep=pair["new"], gone=pair["known"]).json()
    body = world.referral_body()
    body["child"] = {**body["child"], "first_name": "Алёнаа", "snils": None}
    assert world.client.post(f"{API}/referrals", json=body, headers=world.h("referrer")).status_code == 201
    before = snapshot(engine)
    refused = world.client.post(f"{API}/registry/merges/{merged['id']}/undo", headers=world.h("rrmc"))
    assert refused.status_code == 409, refused.text
    assert "отменить объединение нельзя" in refused.json()["message"]
    assert snapshot(engine) == before


def test_merges_are_undone_last_first(world: World, engine: Engine) -> None:
    birth = date.today() - timedelta(days=400)
    a, b, c = (
        seed_child(
            engine,
            provider_id=world.org_ids["provider"],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last="Трижды",
            birth=birth,
            state="completed",
        ).child_id
        for _ in range(3)
    )
    before = snapshot(engine)
    first = _merge(world, keep=b, gone=a).json()
    second = _merge(world, keep=c, gone=b).json()
    early = world.client.post(f"{API}/registry/merges/{first['id']}/undo", headers=world.h("rrmc"))
    assert early.status_code == 409 and "более позднее" in early.json()["message"]
    for merge_id in (second["id"], first["id"]):
        response = world.client.post(f"{API}/registry/merges/{merge_id}/undo", headers=world.h("rrmc"))
        assert response.status_code == 200, response.text
    assert snapshot(engine) == before
    # Two records joined to one kept record: the later one is undone first.
    third = _merge(world, keep=c, gone=a).json()
    fourth = _merge(world, keep=c, gone=b).json()
    early = world.client.post(f"{API}/registry/merges/{third['id']}/undo", headers=world.h("rrmc"))
    assert early.status_code == 409 and "позже присоединена" in early.json()["message"]
    for merge_id in (fourth["id"], third["id"]):
        response = world.client.post(f"{API}/registry/merges/{merge_id}/undo", headers=world.h("rrmc"))
        assert response.status_code == 200, response.text
    assert snapshot(engine) == before


def test_the_guards_refuse_what_must_not_merge(world: World, engine: Engine) -> None:
    def seeded(provider: str, **kw: Any) -> int:
        return seed_child(
            engine,
            provider_id=world.org_ids[provider],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last="Охранова",
            state=kw.pop("state", "completed"),
            **kw,
        ).child_id

    with_snils = seeded("provider", snils=snils_for(901))
    other_snils = seeded("provider", snils=snils_for(902))
    open_one = seeded("provider", state="ipr_implementation")
    open_two = seeded("provider", state="referred")
    only_here = seeded("provider")
    also_here = seeded("provider")
    only_there = seeded("provider2")
    # Served by both providers: a merge would open one's record to the other, so the РРМЦ decides.
    both = seeded("provider")
    seed_child(
        engine,
        provider_id=world.org_ids["provider2"],
        referrer_org_id=None,
        user_id=world.user_ids["coordinator2"],
        state="completed",
        child_id=both,
    )
    elsewhere = seed_child(
        engine,
        provider_id=world.org_ids["b_provider"],
        referrer_org_id=None,
        user_id=world.user_ids["b_coordinator"],
        last="Охранова",
    ).child_id
    cases: list[tuple[str, int, int, int, str]] = [
        ("rrmc", with_snils, with_snils, 422, "две разные записи"),
        ("rrmc", with_snils, other_snils, 422, "разные СНИЛС"),
        ("rrmc", with_snils, elsewhere, 404, "не найден"),
        ("b_rrmc", elsewhere, with_snils, 404, "не найден"),
        ("rrmc", open_one, open_two, 409, "незавершённые случаи"),
        ("head", only_there, only_here, 404, "не найден"),
        ("head", only_here, both, 403, "только РРМЦ"),
        ("coordinator", only_here, also_here, 403, "РРМЦ"),
        ("analyst", only_here, also_here, 403, "РРМЦ"),
        ("referrer", only_here, also_here, 403, "РРМЦ"),
    ]
    before = snapshot(engine)
    for who, keep, gone, status, text in cases:
        response = _merge(world, keep, gone, who=who)
        assert response.status_code == status, (who, keep, gone, response.text)
        assert text in response.json()["message"], (who, response.json())
    assert snapshot(engine) == before
    # A head merges two records of children his provider alone has served, and undoes it.
    done = _merge(world, only_here, also_here, who="head")
    assert done.status_code == 201, done.text
    again = _merge(world, only_here, also_here, who="head")
    assert again.status_code == 404  # the merged one is gone
    assert (
        world.client.get(f"{API}/registry/merges", headers=world.h("head")).json()[0]["id"]
        == done.json()["id"]
    )
    undo = world.client.post(f"{API}/registry/merges/{done.json()['id']}/undo", headers=world.h("head"))
    assert undo.status_code == 200, undo.text
    blank = world.client.post(
        f"{API}/registry/merges",
        json={"keep_child_id": only_here, "merge_child_id": also_here, "reason": "   "},
        headers=world.h("rrmc"),
    )
    assert blank.status_code == 422 and "reason" in blank.text


@pytest.mark.parametrize("round_", range(2))
def test_two_merges_at_once_one_wins_the_other_gets_409(
    world: World, engine: Engine, server_url: str, round_: int
) -> None:
    birth = date.today() - timedelta(days=400)
    keep_a, keep_b, gone = (
        seed_child(
            engine,
            provider_id=world.org_ids["provider"],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last="Гонкина",
            birth=birth,
            state="completed",
        ).child_id
        for _ in range(3)
    )
    barrier = threading.Barrier(2)

    def merge(keep: int) -> int:
        with httpx.Client(base_url=server_url, headers=world.h("rrmc"), timeout=30) as client:
            barrier.wait()
            response = client.post(
                f"{API}/registry/merges",
                json={"keep_child_id": keep, "merge_child_id": gone, "reason": "Гонка"},
            )
            return response.status_code

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(merge, [keep_a, keep_b]))
    assert results == [201, 409], results
    with Session(engine) as session:
        assert len(session.exec(select(ChildMerge)).all()) == 1
        moved = session.exec(select(Case).where(Case.child_id == gone)).all()
        assert moved == []


def test_merge_and_undo_through_the_pages_in_a_browser(
    world: World, engine: Engine, server_url: str, browser: object
) -> None:
    birth = date.today() - timedelta(days=500)
    first, second = (
        seed_child(
            engine,
            provider_id=world.org_ids["provider"],
            referrer_org_id=world.org_ids["health"],
            user_id=world.user_ids["coordinator"],
            last=last,
            first="Алёна",
            middle="Петровна",
            birth=birth,
            snils=snils,
            state=state,
        ).child_id
        for last, snils, state in (("Ёлкина", snils_for(77), "completed"), ("Елкина", None, "referred"))
    )
    page: Any = login(browser, server_url, "rrmc")
    page.goto("/registry")
    assert "Реестр детей целевой группы" in page.inner_text("h1")
    assert_accessible(page)
    page.goto("/registry/duplicates")
    assert_accessible(page)
    page.get_by_role("link", name="Сравнить записи").click()
    page.wait_for_url(f"**/registry/duplicates/{first}/{second}")
    assert_accessible(page)
    # Without a choice: the error summary, and the page still passes.
    page.get_by_role("button", name="Продолжить").click()
    assert "Выберите запись, которая останется" in page.inner_text(".error-summary")
    assert_accessible(page)
    page.get_by_label(f"Запись № {second}: Елкина Алёна Петровна").check()
    page.get_by_label("Почему это один и тот же ребёнок").fill("Сверено с матерью")
    page.get_by_role("button", name="Продолжить").click()
    assert "Проверьте перед объединением" in page.inner_text("h1")
    assert "СНИЛС" in page.inner_text(".summary-list")
    assert_accessible(page)
    page.get_by_role("button", name="Объединить записи").click()
    page.wait_for_url("**/registry/merges?done=merged")
    assert "Записи объединены" in page.inner_text("main")
    assert_accessible(page)
    with Session(engine) as session:
        gone = session.get(Child, first)
        assert gone is not None and gone.merged_into_id == second
    page.get_by_label("Причина отмены").fill("Ошиблись")
    page.get_by_role("button", name="Отменить объединение").click()
    page.wait_for_url("**/registry/merges?done=undone")
    assert "Объединение отменено" in page.inner_text("main")
    with Session(engine) as session:
        back = session.get(Child, first)
        assert back is not None and back.merged_into_id is None and back.snils == snils_for(77)
    page.context.close()
