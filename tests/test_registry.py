"""The target-group registry: its lists and filters against counts computed here from what was seeded,
its scope, its audit, the review list of likely duplicates and «разные дети», and its pages."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from models.audit import AuditLog
from models.organisations import Organisation, OrgKind
from models.programmes import NeedOutcome
from tests.registry_seed import seed_child
from tests.world import API, World, snils_for

STATES = (
    "referred",
    "need_determination",
    "consultation",
    "ipr_development",
    "ipr_implementation",
    "completed",
    "no_need",
    "declined",
    "rejected",
)
MUNICIPALITIES = ("Центральный район", "Северный район", "Южный район", None)
CRITERIA = (
    ("parental_concern",),
    ("disabled_child",),
    ("health_group_4_5", "development_features"),
    ("development_features",),
    ("parental_concern", "disabled_child"),
)
OUTCOMES = {
    "consultation": NeedOutcome.consultation,
    "ipr_development": NeedOutcome.ipr,
    "ipr_implementation": NeedOutcome.ipr,
    "completed": NeedOutcome.ipr,
    "no_need": NeedOutcome.no_need,
}


@dataclass
class Spec:
    """What was seeded for one child (its one case), to count from."""

    child_id: int
    provider: str
    municipality: str | None
    criteria: tuple[str, ...]
    state: str
    outcome: NeedOutcome | None
    ipr: bool
    held: bool
    referral_date: date


def _seed_region(world: World, engine: Engine, n: int = 36) -> list[Spec]:
    today = date.today()
    specs = []
    for i in range(n):
        provider = "provider" if i % 3 else "provider2"
        state = STATES[i % len(STATES)]
        outcome = OUTCOMES.get(state)
        ipr = state in ("ipr_implementation", "completed")
        held = state in ("consultation", "completed") or (state == "ipr_implementation" and i % 2 == 0)
        referral_date = today - timedelta(days=10 + 7 * i)
        seeded = seed_child(
            engine,
            provider_id=world.org_ids[provider],
            referrer_org_id=world.org_ids["health"] if i % 2 else None,
            user_id=world.user_ids["coordinator"],
            last=f"Реестрова{chr(ord('а') + i % 30)}",
            first=f"Дарья{i}",
            birth=today - timedelta(days=300 + i),
            snils=snils_for(1000 + i) if i % 4 else None,
            municipality=MUNICIPALITIES[i % len(MUNICIPALITIES)],
            criteria=CRITERIA[i % len(CRITERIA)],
            referral_date=referral_date,
            state=state,
            outcome=outcome,
            ipr=ipr,
            held=held,
        )
        specs.append(
            Spec(
                seeded.child_id,
                provider,
                MUNICIPALITIES[i % len(MUNICIPALITIES)],
                CRITERIA[i % len(CRITERIA)],
                state,
                outcome,
                ipr,
                held,
                referral_date,
            )
        )
    # Another region's child: never in this region's registry.
    seed_child(
        engine,
        provider_id=world.org_ids["b_provider"],
        referrer_org_id=None,
        user_id=world.user_ids["b_coordinator"],
        last="Чужая",
        state="referred",
    )
    return specs


@pytest.fixture
def region(world: World, engine: Engine) -> list[Spec]:
    return _seed_region(world, engine)


def _ids(world: World, who: str, **params: Any) -> set[int]:
    response = world.client.get(
        f"{API}/registry/children", params={"per_page": 100, **params}, headers=world.h(who)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"]) and not body["total_capped"]
    return {item["id"] for item in body["items"]}


def _expected(specs: list[Spec], **wanted: Any) -> set[int]:
    def fits(s: Spec) -> bool:
        if wanted.get("provider") and s.provider != wanted["provider"]:
            return False
        category = wanted.get("category", "identified")
        if category == "in_need" and s.outcome not in (NeedOutcome.ipr, NeedOutcome.consultation):
            return False
        if category == "served" and not (s.ipr or s.held):
            return False
        if wanted.get("criterion") and wanted["criterion"] not in s.criteria:
            return False
        if wanted.get("municipality") and s.municipality != wanted["municipality"]:
            return False
        if wanted.get("state") and s.state != wanted["state"]:
            return False
        if wanted.get("referred_from") and s.referral_date < wanted["referred_from"]:
            return False
        return not (wanted.get("referred_to") and s.referral_date > wanted["referred_to"])

    return {s.child_id for s in specs if fits(s)}


@pytest.mark.parametrize("set_limit", [8000, 1], ids=["as-sets", "as-exists"])
def test_categories_and_filters_match_counts_computed_from_the_seeded_journeys(
    world: World, region: list[Spec], monkeypatch: pytest.MonkeyPatch, set_limit: int
) -> None:
    # A narrow filter is applied as a set, a broad one as a correlated EXISTS: both ways, the same rows.
    monkeypatch.setattr("api.services.registry.SET_LIMIT", set_limit)
    today = date.today()
    cases: list[dict[str, Any]] = [
        {},
        {"category": "in_need"},
        {"category": "served"},
        {"criterion": "disabled_child"},
        {"criterion": "development_features", "category": "in_need"},
        {"municipality": "Северный район"},
        {"state": "completed"},
        {"state": "referred", "municipality": "Центральный район"},
        {"referred_from": today - timedelta(days=100), "referred_to": today - timedelta(days=40)},
        {"category": "served", "criterion": "parental_concern", "referred_from": today - timedelta(days=150)},
    ]
    for wanted in cases:
        params = {k: v.isoformat() if isinstance(v, date) else v for k, v in wanted.items()}
        assert _ids(world, "rrmc", **params) == _expected(region, **wanted), wanted
    # The provider filter of the РРМЦ, and the opened range (the case opened on its referral date).
    provider2 = world.org_ids["provider2"]
    assert _ids(world, "rrmc", provider_id=provider2) == _expected(region, provider="provider2")
    start, end = today - timedelta(days=60), today - timedelta(days=20)
    assert _ids(world, "rrmc", opened_from=start.isoformat(), opened_to=end.isoformat()) == _expected(
        region, referred_from=start, referred_to=end
    )
    # The categories nest: served and in need are among the identified.
    assert _expected(region, category="served") <= _expected(region)
    assert 0 < len(_expected(region, category="in_need")) < len(region)


@pytest.mark.parametrize("walk_limit", [250, 0], ids=["set-probed", "set-driven"])
def test_a_narrow_filter_walked_in_name_order_gives_the_rows_the_sorted_matches_do(
    world: World, region: list[Spec], monkeypatch: pytest.MonkeyPatch, walk_limit: int
) -> None:
    # Past COUNT_CAP the page walks the name index with a narrow filter's set probed per child
    # (id + 0 IN …) or, deep in the list, driven from the set: either way the rows sorted from all matches.
    monkeypatch.setattr("api.services.registry.WALK_LIMIT", walk_limit)
    today = date.today()
    provider2 = world.org_ids["provider2"]
    cases: list[tuple[dict[str, Any], set[int]]] = [
        ({"provider_id": provider2}, _expected(region, provider="provider2")),
        (
            {"provider_id": world.org_ids["provider"], "category": "served"},
            _expected(region, provider="provider", category="served"),
        ),
        (
            {"referred_from": (today - timedelta(days=100)).isoformat(), "criterion": "disabled_child"},
            _expected(region, referred_from=today - timedelta(days=100), criterion="disabled_child"),
        ),
    ]
    for params, expected in cases:
        assert len(expected) > 1, params

        def listed(params: dict[str, Any] = params) -> list[int]:
            response = world.client.get(
                f"{API}/registry/children", params={"per_page": 100, **params}, headers=world.h("rrmc")
            )
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()["items"]]

        sorted_here = listed()
        monkeypatch.setattr("api.services.registry.COUNT_CAP", 1)
        walked = listed()
        monkeypatch.setattr("api.services.registry.COUNT_CAP", 1000)
        assert walked == sorted_here and set(walked) == expected, params


def test_provider_staff_see_their_own_providers_children_only(world: World, region: list[Spec]) -> None:
    assert _ids(world, "coordinator") == _expected(region, provider="provider")
    assert _ids(world, "head", category="served") == _expected(region, provider="provider", category="served")
    assert _ids(world, "coordinator2", state="completed") == _expected(
        region, provider="provider2", state="completed"
    )
    # Another region's РРМЦ sees its own region only.
    assert len(_ids(world, "b_rrmc")) == 1
    for who in ("curator", "specialist", "analyst", "referrer", "social", "admin"):
        response = world.client.get(f"{API}/registry/children", headers=world.h(who))
        assert response.status_code == 403, (who, response.text)
        assert "Реестр детей целевой группы" in response.json()["message"]


def test_a_provider_sees_only_what_its_own_cases_say_of_a_child(world: World, engine: Engine) -> None:
    # Served, in need and referred for a disability at provider2; referred again to «provider» lately.
    # The РРМЦ reads the child's facts (all its cases); «provider» must not learn them through a filter.
    today = date.today()
    common: dict[str, Any] = {"referrer_org_id": None, "user_id": world.user_ids["coordinator"]}
    child = seed_child(
        engine,
        provider_id=world.org_ids["provider2"],
        last="Двухорганизационная",
        criteria=("disabled_child",),
        referral_date=today - timedelta(days=100),
        state="completed",
        outcome=NeedOutcome.ipr,
        ipr=True,
        held=True,
        **common,
    ).child_id
    seed_child(
        engine,
        provider_id=world.provider_id,
        child_id=child,
        criteria=("parental_concern",),
        referral_date=today - timedelta(days=10),
        **common,
    )
    earlier = {"referred_to": (today - timedelta(days=50)).isoformat()}
    for params in ({"category": "served"}, {"category": "in_need"}, {"criterion": "disabled_child"}, earlier):
        assert child in _ids(world, "rrmc", **params), params
        assert child not in _ids(world, "coordinator", **params), params
    assert child in _ids(world, "coordinator", criterion="parental_concern")


def test_a_row_shows_what_the_callers_cases_and_referrals_say(world: World, engine: Engine) -> None:
    today = date.today()
    # A child served by provider2 (completed), then referred again to provider.
    first = seed_child(
        engine,
        provider_id=world.org_ids["provider2"],
        referrer_org_id=world.org_ids["health"],
        user_id=world.user_ids["coordinator2"],
        last="Двухслучаева",
        criteria=("disabled_child",),
        referral_date=today - timedelta(days=200),
        state="completed",
        outcome=NeedOutcome.ipr,
        ipr=True,
        held=True,
    )
    seed_child(
        engine,
        provider_id=world.org_ids["provider"],
        referrer_org_id=None,
        user_id=world.user_ids["coordinator"],
        criteria=("parental_concern",),
        referral_date=today - timedelta(days=5),
        state="referred",
        child_id=first.child_id,
    )
    rrmc = world.client.get(f"{API}/registry/children", params={"q": "двухслучаева"}, headers=world.h("rrmc"))
    [row] = rrmc.json()["items"]
    assert row["criteria"] == ["disabled_child", "parental_concern"]
    assert row["first_referral_date"] == (today - timedelta(days=200)).isoformat()
    assert len(row["providers"]) == 2 and "Обращение родителей" in row["sources"]
    assert row["state"] == "referred"  # the open case is the current one
    # The provider's coordinator: only its own case and referral.
    mine = world.client.get(
        f"{API}/registry/children", params={"q": "двухслучаева"}, headers=world.h("coordinator")
    )
    [own] = mine.json()["items"]
    assert own["criteria"] == ["parental_concern"] and len(own["providers"]) == 1
    assert own["first_referral_date"] == (today - timedelta(days=5)).isoformat()
    # The closed case at provider2: its outcome and dates, for provider2.
    theirs = world.client.get(
        f"{API}/registry/children", params={"q": "двухслучаева"}, headers=world.h("coordinator2")
    )
    [closed] = theirs.json()["items"]
    assert closed["final_state"] == "completed" and closed["closed_on"] is not None
    assert closed["need_outcome"] == "ipr" and closed["ipr_agreed_on"] is not None


def test_every_row_read_is_audited(world: World, engine: Engine, region: list[Spec]) -> None:
    with Session(engine) as session:
        before = session.exec(
            select(func.count()).select_from(AuditLog).where(AuditLog.entity == "child")
        ).one()
    response = world.client.get(f"{API}/registry/children", params={"per_page": 10}, headers=world.h("rrmc"))
    ids = [item["id"] for item in response.json()["items"]]
    assert len(ids) == 10
    with Session(engine) as session:
        rows = session.exec(
            select(AuditLog)
            .where(AuditLog.entity == "child", col(AuditLog.id) > before)
            .order_by(col(AuditLog.id))
        ).all()
    assert [r.child_id for r in rows] == ids and {r.action for r in rows} == {"read"}
    assert {r.user_id for r in rows} == {world.user_ids["rrmc"]}


def test_pages_sort_and_count(world: World, region: list[Spec]) -> None:
    first = world.client.get(
        f"{API}/registry/children", params={"per_page": 20}, headers=world.h("rrmc")
    ).json()
    second = world.client.get(
        f"{API}/registry/children", params={"per_page": 20, "page": 2}, headers=world.h("rrmc")
    ).json()
    assert first["total"] == len(region)
    names = [(i["last_name"], i["first_name"]) for i in first["items"] + second["items"]]
    assert len(names) == len(region)
    newest = world.client.get(
        f"{API}/registry/children", params={"per_page": 5, "sort": "newest"}, headers=world.h("rrmc")
    ).json()
    assert [i["id"] for i in newest["items"]] == sorted((s.child_id for s in region), reverse=True)[:5]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"criterion": "no_such"}, "criterion"),
        ({"state": "flying"}, "state"),
        ({"referred_from": "2026-05-01", "referred_to": "2026-04-01"}, "referred_from"),
        ({"referred_from": "31.12.2025"}, "referred_from"),
        ({"referred_to": "0"}, "referred_to"),
        ({"category": "all"}, "category"),
        ({"q": "   "}, "q"),
        ({"per_page": "1000"}, "per_page"),
    ],
)
def test_bad_filters_are_refused_with_the_field(world: World, params: dict[str, str], field: str) -> None:
    response = world.client.get(f"{API}/registry/children", params=params, headers=world.h("rrmc"))
    assert response.status_code == 422, response.text
    assert field in response.text


# --- likely duplicates ----------------------------------------------------------------------------


def _pairs(world: World, who: str = "rrmc") -> list[tuple[int, int, str]]:
    response = world.client.get(f"{API}/registry/duplicates", headers=world.h(who))
    assert response.status_code == 200, response.text
    return [(p["first"]["id"], p["second"]["id"], p["strength"]) for p in response.json()]


def test_duplicates_are_found_across_spelling_variants_and_not_across_snils(
    world: World, engine: Engine
) -> None:
    birth = date.today() - timedelta(days=420)
    other_birth = birth - timedelta(days=1)

    def child(provider: str, last: str, first: str, middle: str | None, **kw: Any) -> int:
        return seed_child(
            engine,
            provider_id=world.org_ids[provider],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last=last,
            first=first,
            middle=middle,
            birth=kw.pop("birth", birth),
            state=kw.pop("state", "completed"),
            **kw,
        ).child_id

    yo = child("provider", "Ёлкина", "Алёна", "Петровна", snils=snils_for(501))
    plain = child("provider2", "ЕЛКИНА", "алена ", "петровна")  # ё, case, a trailing space
    # The same name and birth date, СНИЛС on both sides and different: two children.
    twin_a = child("provider", "Сидорова", "Мария", "Ивановна", snils=snils_for(502))
    twin_b = child("provider", "Сидорова", "Мария", "Ивановна", snils=snils_for(503))
    # The middle name on one side only: a weak pair.
    short = child("provider", "Петров", "Иван", None)
    full = child("provider", "Петров", "Иван", "Сергеевич")
    # The same name, another birth date: not a pair.
    child("provider", "Ёлкина", "Алёна", "Петровна", birth=other_birth)
    pairs = _pairs(world)
    assert (min(yo, plain), max(yo, plain), "strong") in pairs
    assert (min(short, full), max(short, full), "weak") in pairs
    assert all({a, b} != {twin_a, twin_b} for a, b, _ in pairs)
    assert len(pairs) == 2
    # The pair as the review list shows it: which fields differ.
    [shown] = [
        p
        for p in world.client.get(f"{API}/registry/duplicates", headers=world.h("rrmc")).json()
        if p["strength"] == "strong"
    ]
    assert shown["differing"] == ["snils"] and shown["differing_labels"] == ["СНИЛС"]
    # A provider's head: only the pairs whose both children have a case at his provider.
    assert _pairs(world, "head") == [(min(short, full), max(short, full), "weak")]
    assert _pairs(world, "b_rrmc") == []
    for who in ("coordinator", "curator", "analyst", "referrer"):
        assert world.client.get(f"{API}/registry/duplicates", headers=world.h(who)).status_code == 403


def test_a_pair_marked_different_children_leaves_the_list_and_can_come_back(
    world: World, engine: Engine
) -> None:
    birth = date.today() - timedelta(days=420)
    a, b = (
        seed_child(
            engine,
            provider_id=world.org_ids["provider"],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last="Близнецова",
            first="Ольга",
            birth=birth,
            state="completed",
        ).child_id
        for _ in range(2)
    )
    assert _pairs(world) == [(a, b, "strong")]
    marked = world.client.post(
        f"{API}/registry/distinct-pairs",
        json={"first_child_id": b, "second_child_id": a, "reason": "Близнецы"},
        headers=world.h("head"),
    )
    assert marked.status_code == 201, marked.text
    assert _pairs(world) == []
    again = world.client.post(
        f"{API}/registry/distinct-pairs",
        json={"first_child_id": a, "second_child_id": b},
        headers=world.h("rrmc"),
    )
    assert again.status_code == 409 and "уже отмечены" in again.json()["message"]
    with Session(engine) as session:
        audited = session.exec(
            select(AuditLog.child_id).where(
                AuditLog.entity == "distinct_children", AuditLog.action == "create"
            )
        ).all()
    assert sorted(c or 0 for c in audited) == [a, b]
    removed = world.client.delete(
        f"{API}/registry/distinct-pairs/{marked.json()['id']}", headers=world.h("rrmc")
    )
    assert removed.status_code == 200, removed.text
    assert _pairs(world) == [(a, b, "strong")]


# --- pages ----------------------------------------------------------------------------------------


def _login(world: World, login: str) -> None:
    response = world.client.post("/login", data={"login": login, "password": "demo"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def test_the_registry_page_lists_filters_and_exports_for_the_rrmc(world: World, region: list[Spec]) -> None:
    _login(world, "rrmc")
    page = world.client.get("/registry", params={"category": "served"})
    assert page.status_code == 200, page.text
    assert f"Найдено: {len(_expected(region, category='served'))}" in page.text
    assert "Получают или получили помощь" in page.text and "Скачать реестр (XLSX)" in page.text
    bad = world.client.get("/registry", params={"referred_from": "вчера"})
    assert bad.status_code == 422 and "Дата в формате ДД.ММ.ГГГГ" in bad.text
    export = world.client.get("/registry/children.xlsx", params={"municipality": "Южный район"})
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    assert sheet is not None
    assert sheet.cell(1, 1).value == "Ребёнок"
    assert sheet.max_row - 1 == len(_expected(region, municipality="Южный район"))


def test_the_provider_filter_offers_the_providers_with_cases(
    world: World, engine: Engine, region: list[Spec]
) -> None:
    with Session(engine) as session:
        region_id = session.exec(
            select(Organisation.region_id).where(Organisation.id == world.org_ids["provider"])
        ).one()
        session.add(Organisation(region_id=region_id, kind=OrgKind.provider, name="Центр без случаев"))
        names = dict(
            session.exec(
                select(Organisation.id, Organisation.name).where(
                    col(Organisation.id).in_([world.org_ids["provider"], world.org_ids["provider2"]])
                )
            ).all()
        )
        session.commit()
    _login(world, "rrmc")
    page = world.client.get("/registry")
    assert page.status_code == 200, page.text
    offered = page.text.split('name="provider"', 1)[1].split("</select>", 1)[0]
    assert f'value="{world.org_ids["provider"]}"' in offered and names[world.org_ids["provider"]] in offered
    assert f'value="{world.org_ids["provider2"]}"' in offered
    assert "Центр без случаев" not in offered
    assert f'value="{world.org_ids["b_provider"]}"' not in offered
    world.client.cookies.clear()
    _login(world, "coordinator")
    own = world.client.get("/registry").text.split('name="provider"', 1)[1].split("</select>", 1)[0]
    assert f'value="{world.org_ids["provider"]}"' in own
    assert f'value="{world.org_ids["provider2"]}"' not in own


def test_the_registry_page_and_export_refuse_who_may_not_read_them(world: World, region: list[Spec]) -> None:
    _login(world, "coordinator")
    assert world.client.get("/registry").status_code == 200
    assert world.client.get("/registry/children.xlsx").status_code == 403
    world.client.cookies.clear()
    _login(world, "analyst")
    assert world.client.get("/registry").status_code == 403
    assert world.client.get("/registry/duplicates").status_code == 403


def test_a_long_list_says_more_than_the_cap_and_still_pages_in_name_order(
    world: World, engine: Engine
) -> None:
    from sqlalchemy import insert

    from api.services.registry import COUNT_CAP
    from models.children import Child
    from models.common import normalise_name
    from models.organisations import Organisation

    with Session(engine) as session:
        region_id = session.exec(
            select(Organisation.region_id).where(Organisation.id == world.org_ids["provider"])
        ).one()
        rows = [
            {
                "region_id": region_id,
                "last_name": "Многова",
                "first_name": f"Ира{i:04d}",
                "birth_date": date.today() - timedelta(days=400),
                "sex": "female",
                "name_key": normalise_name("Многова", f"Ира{i:04d}"),
            }
            for i in range(COUNT_CAP + 5)
        ]
        session.execute(insert(Child), rows)
        session.commit()
    pages = [
        world.client.get(
            f"{API}/registry/children", params={"per_page": 100, "page": page}, headers=world.h("rrmc")
        ).json()
        for page in (1, 2)
    ]
    assert all(p["total_capped"] and p["total"] == COUNT_CAP for p in pages)
    names = [item["first_name"] for p in pages for item in p["items"]]
    assert names == [f"Ира{i:04d}" for i in range(200)]
    # A filter few pass: counted exactly, sorted from the matches.
    few = world.client.get(
        f"{API}/registry/children", params={"q": "ира0007"}, headers=world.h("rrmc")
    ).json()
    assert few["total"] == 1 and not few["total_capped"]


def test_a_name_search_lists_the_names_beginning_with_it_first_however_many_match(
    world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # «сок» begins three surnames and is inside three more; «Сок» with «_» and «%» finds nothing more.
    for last in ("Ясокина", "Соколова", "Абросокина", "Сокина", "Высокова", "Сокова"):
        seed_child(
            engine,
            provider_id=world.provider_id,
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last=last,
            first="Анна",
        )
    expected = ["Сокина", "Сокова", "Соколова", "Абросокина", "Высокова", "Ясокина"]

    def names(per_page: int, page: int = 1, q: str = "сок") -> list[str]:
        response = world.client.get(
            f"{API}/registry/children",
            params={"q": q, "per_page": per_page, "page": page},
            headers=world.h("rrmc"),
        )
        assert response.status_code == 200, response.text
        return [item["last_name"] for item in response.json()["items"]]

    assert names(100) == expected  # few: sorted from the matches
    assert names(100, q="Сок_") == [] and names(100, q="с%к") == []
    # Many (past the count's cap): the names beginning with it are read from the index, then the rest,
    # on pages that start before, at and past the end of the first part.
    monkeypatch.setattr("api.services.registry.COUNT_CAP", 1)
    assert names(100) == expected
    assert [name for page in (1, 2, 3) for name in names(2, page)] == expected
    assert names(4, 2) == expected[4:] and names(1, 4) == ["Абросокина"]
    # Another order is the order asked for.
    response = world.client.get(
        f"{API}/registry/children", params={"q": "сок", "sort": "newest"}, headers=world.h("rrmc")
    )
    assert [item["last_name"] for item in response.json()["items"]] == [
        "Сокова",
        "Высокова",
        "Сокина",
        "Абросокина",
        "Соколова",
        "Ясокина",
    ]


def test_different_children_through_the_pages_and_odd_addresses(world: World, engine: Engine) -> None:
    from tests.test_pages_auth import csrf_of, sign_in

    birth = date.today() - timedelta(days=420)
    a, b = (
        seed_child(
            engine,
            provider_id=world.org_ids["provider"],
            referrer_org_id=None,
            user_id=world.user_ids["coordinator"],
            last="Страничная",
            first="Нина",
            birth=birth,
            state="completed",
        ).child_id
        for _ in range(2)
    )
    client = world.client
    sign_in(client, "head")
    listed = client.get("/registry/duplicates")
    assert listed.status_code == 200 and f"/registry/duplicates/{a}/{b}" in listed.text
    pair = client.get(f"/registry/duplicates/{a}/{b}")
    assert pair.status_code == 200 and "Это разные дети" in pair.text
    token = csrf_of(pair.text)
    # The merge without a reason: the pair page again with its error.
    missing = client.post(f"/registry/duplicates/{a}/{b}/check", data={"csrf": token, "keep": str(a)})
    assert missing.status_code == 422 and "Укажите, почему это один и тот же ребёнок" in missing.text
    marked = client.post(
        f"/registry/duplicates/{a}/{b}/distinct",
        data={"csrf": token, "distinct-reason": "Двойняшки"},
        follow_redirects=False,
    )
    assert marked.status_code == 303 and marked.headers["location"] == "/registry/duplicates?done=distinct"
    after = client.get("/registry/duplicates?done=distinct")
    assert f"/registry/duplicates/{a}/{b}" not in after.text and "Двойняшки" in after.text
    mark_id = _pairs_marked(engine)
    restored = client.post(
        f"/registry/distinct-pairs/{mark_id}/delete", data={"csrf": token}, follow_redirects=False
    )
    assert restored.status_code == 303
    assert f"/registry/duplicates/{a}/{b}" in client.get("/registry/duplicates").text
    # Odd addresses: never a 500.
    assert client.get(f"/registry/duplicates/{a}/999999").status_code == 404
    assert client.get(f"/registry/duplicates/{a}/{a}").status_code == 422
    assert client.get("/registry", params={"provider": "abc"}).status_code == 422
    assert client.get("/registry", params={"page": "²"}).status_code == 200
    assert client.post("/registry/merges/999999/undo", data={"csrf": token}).status_code == 404


def _pairs_marked(engine: Engine) -> int:
    from models.registry import DistinctChildren

    with Session(engine) as session:
        return session.exec(select(DistinctChildren.id)).one() or 0
