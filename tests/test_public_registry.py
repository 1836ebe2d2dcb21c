"""The public registry of providers: read without login, filtered, exported (JSON, CSV), with QR codes
that decode to the public page and A4 posters; kept by the region's administrator and by a provider's
own head and coordinator (audited); and nothing else leaks from it — no child, no staff, no secret."""

from __future__ import annotations

import csv
import io
from typing import Any

import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.demo import USERS, load_demo
from api.services import public_registry
from core.db import session_scope
from models.audit import AuditLog
from models.organisations import Organisation, OrgKind, ProviderOpen, Region
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World

PUBLIC = f"{API}/public"
PUBLIC_URL = "http://127.0.0.1:8000"  # Settings.public_url's default, which the tests' app keeps

FIRST = {
    "municipality": "Центральный район",
    "address": "г. Демо, ул. Садовая, д. 7",
    "ownership": "state",
    "site": "first.example.org",
    "forms": ["home", "in_person"],
    "age_from_months": 0,
    "age_to_months": 36,
    "free_places": 4,
    "working_hours": "пн–пт 9:00–18:00",
    "service_area": ["Центральный район", "Северный район"],
}
SECOND = {
    "municipality": "Южный район",
    "ownership": "non_state",
    "forms": ["remote"],
    "age_from_months": 12,
    "age_to_months": 48,
    "free_places": 0,
    "service_area": ["Южный район"],
}
PROVIDER_KEYS = set(ProviderOpen.model_fields)
REGION_KEYS = {"code", "name", "page_url"}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _publish(world: World) -> None:
    """The administrator gives both demo providers their public details."""
    for name, fields in (("provider", FIRST), ("provider2", SECOND)):
        patch = world.client.patch(
            f"{API}/organisations/{world.org_ids[name]}", json=fields, headers=world.h("admin")
        )
        _ok(patch)


def _names(response: Any) -> set[str]:
    return {item["name"] for item in _ok(response)}


def _provider_name(world: World, key: str) -> str:
    body = _ok(world.client.get(f"{API}/organisations", headers=world.h("admin")))
    return next(o["name"] for o in body if o["id"] == world.org_ids[key])


def test_the_registry_is_read_without_login(world: World) -> None:
    _publish(world)
    regions = _ok(world.client.get(f"{PUBLIC}/regions"))
    assert {r["code"] for r in regions} == {"demo", "other"}
    assert next(r for r in regions if r["code"] == "demo")["page_url"] == f"{PUBLIC_URL}/public/demo"
    found = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers"))
    assert {p["id"] for p in found} == {world.org_ids["provider"], world.org_ids["provider2"]}
    first = next(p for p in found if p["id"] == world.provider_id)
    assert first["site"] == "https://first.example.org"  # a bare domain is taken as https
    assert first["forms"] == ["in_person", "home"] and first["form_labels"] == ["очно", "на дому"]
    assert first["ownership_label"] == "государственная (муниципальная)"
    assert first["free_places"] == 4 and first["free_places_updated_at"] is not None
    assert first["page_url"] == f"{PUBLIC_URL}/public/demo/providers/{world.provider_id}"
    one = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))
    assert one == first
    places = _ok(world.client.get(f"{PUBLIC}/regions/demo/municipalities"))
    assert places == ["Северный район", "Центральный район", "Южный район"]
    # The pages too: no login, no staff menu.
    page = world.client.get(f"/public/demo/providers/{world.provider_id}")
    assert page.status_code == 200 and first["name"] in page.text
    assert "Основное меню" not in page.text and "Выйти" not in page.text
    assert "Служба ранней помощи" in world.client.get("/public/demo").text


def test_filters_by_municipality_form_age_and_a_name_with_yo_and_any_case(world: World) -> None:
    _publish(world)
    first, second = _provider_name(world, "provider"), _provider_name(world, "provider2")

    def names(**params: Any) -> set[str]:
        return _names(world.client.get(f"{PUBLIC}/regions/demo/providers", params=params))

    assert names(municipality="Северный район") == {first}
    assert names(municipality="южный РАЙОН") == {second}  # normalised like names elsewhere
    assert names(municipality="Другой район") == set()
    assert names(form="home") == {first}
    assert names(form="remote") == {second}
    assert names(form="group") == set()
    assert names(age_months=6) == {first}
    assert names(age_months=24) == {first, second}
    assert names(age_months=40) == {second}
    assert names(age_months=96) == set()
    # «Первые шаги» typed without ё and in capitals; «Надежда» by a part of a word.
    assert names(q="ЦЕНТР РАННЕЙ ПОМОЩИ") == {first}
    assert names(q="надеж") == {second}
    assert names(q="реабилитационныи") == set()  # й is not и: only ё and е are one letter
    assert names(q="Реабилитационный", form="remote", age_months=20, municipality="Южный район") == {second}
    # ё in the name of a provider the administrator adds, found by е.
    created = world.client.post(
        f"{API}/organisations",
        json={"name": "Служба «Ёлочка»", "kind": "provider", "phone": "+7 800 000-00-11"},
        headers=world.h("admin"),
    )
    _ok(created, 201)
    assert names(q="елочка") == {"Служба «Ёлочка»"}
    # A provider with an empty service area serves the whole region: it is in every municipality.
    assert "Служба «Ёлочка»" in names(municipality="Северный район")


def test_csv_parses_with_the_csv_module_and_matches_the_json(world: World) -> None:
    _publish(world)
    answer = world.client.get(f"{PUBLIC}/regions/demo/providers.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    listed = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers"))
    assert [int(r["Номер"]) for r in rows] == [p["id"] for p in listed]
    for row, item in zip(rows, listed, strict=True):
        assert row["Название"] == item["name"]
        assert row["Телефон"] == (item["phone"] or "")
        assert row["E-mail"] == (item["email"] or "")
        assert row["Формы работы"] == ", ".join(item["form_labels"])
        assert row["Страница в реестре"] == item["page_url"]
        assert row["Свободные места"] == str(item["free_places"])
    filtered = world.client.get(f"{PUBLIC}/regions/demo/providers.csv", params={"form": "remote"})
    assert len(list(csv.reader(io.StringIO(filtered.content.decode("utf-8-sig")), delimiter=";"))) == 2


def _hide(engine: Engine, **changes: Any) -> int:
    """A provider of the demo region made with `changes` directly in the database (no API hides or
    deactivates one yet: the administrator's is_public does, tested below)."""
    with session_scope(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        values: dict[str, Any] = {"phone": "+7 800 000-00-77", **changes}
        org = Organisation(region_id=region.id or 0, kind=OrgKind.provider, **values)
        session.add(org)
        session.flush()
        return org.id or 0


def test_a_large_regions_list_comes_a_page_of_25_at_a_time(world: World, engine: Engine) -> None:
    for n in range(30):
        _hide(engine, name=f"Служба ранней помощи № {n:02d}")  # public: a phone, is_public by default
    first = world.client.get("/public/demo")
    assert first.status_code == 200
    assert first.text.count('<h3><a href="/public/demo/providers/') == 25
    assert "Страница 1 из 2" in first.text and 'href="/public/demo?page=2"' in first.text
    second = world.client.get("/public/demo?page=2")
    listed = second.text.count('<h3><a href="/public/demo/providers/')
    assert listed == 30 + 2 - 25  # the demo's two providers too
    assert world.client.get("/public/demo?page=99").text.count("Страница 2 из 2") == 1  # the last one
    assert "Страница 1 из 2" in world.client.get("/public/demo?page=abc").text
    found = world.client.get("/public/demo", params={"q": "№ 0"})
    assert "Найдено: 10 из 32" in found.text and "Страница" not in found.text
    # The API and the CSV still give the whole list.
    assert len(_ok(world.client.get(f"{API}/public/regions/demo/providers"))) == 32


def test_another_region_hidden_inactive_unreachable_and_non_providers_are_absent(
    world: World, engine: Engine
) -> None:
    _publish(world)
    hidden = _hide(engine, name="Скрытая служба", is_public=False)
    inactive = _hide(engine, name="Закрытая служба", is_active=False)
    unreachable = _hide(engine, name="Служба без телефона", phone=None)
    listed = {p["id"] for p in _ok(world.client.get(f"{PUBLIC}/regions/demo/providers"))}
    absent = {
        "hidden": hidden,
        "inactive": inactive,
        "unreachable": unreachable,
        "clinic": world.org_ids["health"],
        "rrmc": world.org_ids["rrmc"],
        "another region's": world.org_ids["b_provider"],
    }
    for what, org_id in absent.items():
        assert org_id not in listed, what
        for suffix in ("", "/qr.svg", "/qr.png", "/poster.pdf"):
            answer = world.client.get(f"{PUBLIC}/regions/demo/providers/{org_id}{suffix}")
            assert answer.status_code == 404, (what, suffix)
            assert answer.json()["message"] == "Организация не найдена в публичном реестре региона"
        assert world.client.get(f"/public/demo/providers/{org_id}").status_code == 404
    other = {p["id"] for p in _ok(world.client.get(f"{PUBLIC}/regions/other/providers"))}
    assert other == {world.org_ids["b_provider"], world.org_ids["b_provider2"]}
    # The administrator hides one: gone from the list; shown again, back.
    hide = {"is_public": False}
    _ok(world.client.patch(f"{API}/organisations/{world.provider_id}", json=hide, headers=world.h("admin")))
    assert world.provider_id not in {
        p["id"] for p in _ok(world.client.get(f"{PUBLIC}/regions/demo/providers"))
    }
    show = {"is_public": True}
    _ok(world.client.patch(f"{API}/organisations/{world.provider_id}", json=show, headers=world.h("admin")))
    assert world.provider_id in {p["id"] for p in _ok(world.client.get(f"{PUBLIC}/regions/demo/providers"))}


def _every_public_answer(world: World) -> dict[str, Any]:
    provider = f"{PUBLIC}/regions/demo/providers/{world.provider_id}"
    paths = [
        f"{PUBLIC}/regions",
        f"{PUBLIC}/regions/demo/municipalities",
        f"{PUBLIC}/regions/demo/providers",
        f"{PUBLIC}/regions/demo/providers.csv",
        provider,
        f"{provider}/qr.svg",
        f"{provider}/poster.pdf",
        f"{PUBLIC}/regions/demo/qr.svg",
        f"{PUBLIC}/regions/demo/poster.pdf",
        "/public",
        "/public/demo",
        f"/public/demo/providers/{world.provider_id}",
    ]
    answers = {}
    for path in paths:
        answer = world.client.get(path)
        assert answer.status_code == 200, path
        answers[path] = answer
    return answers


def test_nothing_else_leaks_no_key_outside_the_allow_list_no_child_no_staff_no_secret(
    world: World,
) -> None:
    _publish(world)
    saved = world.client.patch(
        f"{API}/organisations/{world.provider_id}",
        json={"webhook_url": "https://mis.example.org/hook", "inn": "7701234567"},
        headers=world.h("admin"),
    )
    secret = _ok(saved)["webhook_secret"]
    referral = world.refer()
    child = _ok(world.client.get(f"{API}/children/{referral['child_id']}", headers=world.h("coordinator")))
    forbidden = [
        child["last_name"],
        child["first_name"],
        child["snils"],
        child["snils"].replace("-", "").replace(" ", ""),
        "+7 900 123-45-67",  # the representative's phone
        "Ёжикова Ирина",
        "mother@example.org",
        secret,
        "7701234567",
        "mis.example.org",
        *(full_name for _, full_name, _, _ in USERS),
    ]
    for path, answer in _every_public_answer(world).items():
        kind = answer.headers["content-type"]
        if kind.startswith("application/json"):
            body = answer.json()
            items = body if isinstance(body, list) else [body]
            for item in items:
                if isinstance(item, str):
                    continue
                allowed = REGION_KEYS if path.endswith("/regions") else PROVIDER_KEYS
                assert set(item) <= allowed, (path, set(item) - allowed)
            text = answer.text
        elif kind.startswith("application/pdf"):
            text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.content)).pages)
        else:
            text = answer.content.decode("utf-8-sig")
        for value in forbidden:
            assert value not in text, (path, value)


def _decode(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_qr_codes_decode_to_the_public_pages(world: World) -> None:
    page = f"{PUBLIC_URL}/public/demo/providers/{world.provider_id}"
    png = world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}/qr.png")
    assert png.headers["content-type"] == "image/png"
    assert _decode(png.content) == [page]
    region_png = world.client.get(f"{PUBLIC}/regions/demo/qr.png")
    assert _decode(region_png.content) == [f"{PUBLIC_URL}/public/demo"]
    # The SVG is the same code (segno draws both from one matrix): compared with segno's own.
    svg = world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content == public_registry.qr_svg(page)
    assert b"<svg" in svg.content


def test_the_poster_is_an_a4_pdf_with_the_name_contacts_and_the_url(world: World) -> None:
    _publish(world)
    name = _provider_name(world, "provider")
    answer = world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}/poster.pdf")
    assert answer.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(answer.content))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    text = " ".join(reader.pages[0].extract_text().split())
    assert name in text
    assert f"{PUBLIC_URL}/public/demo/providers/{world.provider_id}" in text
    assert "г. Демо, ул. Садовая, д. 7" in text and "очно, на дому" in text
    assert "Ранняя помощь детям от рождения до 3 лет" in text
    region = PdfReader(io.BytesIO(world.client.get(f"{PUBLIC}/regions/demo/poster.pdf").content))
    region_text = " ".join(region.pages[0].extract_text().split())
    assert "Демонстрационная область" in region_text and f"{PUBLIC_URL}/public/demo" in region_text


BAD_INPUT = [
    ("/regions/nowhere/providers", 404, "region_code", "Регион не найден"),
    ("/regions/nowhere/poster.pdf", 404, "region_code", "Регион не найден"),
    ("/regions/demo/providers?form=teleport", 422, "form", "Допустимые значения"),
    ("/regions/demo/providers?age_months=-1", 422, "age_months", "не меньше 0"),
    ("/regions/demo/providers?age_months=97", 422, "age_months", "не больше 96"),
    ("/regions/demo/providers?age_months=год", 422, "age_months", "Ожидается целое число"),
    ("/regions/demo/providers?q=" + "я" * 101, 422, "q", "не более 100"),
    ("/regions/demo/providers.csv?municipality=" + "я" * 201, 422, "municipality", "не более 200"),
    ("/regions/demo/providers/0", 422, "org_id", "не меньше 1"),
    ("/regions/demo/providers/99999999999", 422, "org_id", "не больше"),
    ("/regions/demo/providers/2000000", 404, "org_id", "Организация не найдена"),
    ("/regions/bad%20code/providers", 422, "region_code", "не соответствует формату"),
]


def test_bad_input_is_refused_in_russian(world: World) -> None:
    for path, status, field, message in BAD_INPUT:
        answer = world.client.get(PUBLIC + path)
        assert answer.status_code == status, (path, answer.text)
        body = answer.json()
        assert body["field"] == field and message in body["message"], (path, body)


def test_the_public_pages_refuse_bad_input_beside_the_field(world: World) -> None:
    assert world.client.get("/public/nowhere").status_code == 404
    page = world.client.get("/public/demo", params={"age": "-1", "form": "teleport", "municipality": "Марс"})
    assert page.status_code == 422
    assert "Возраст — целое число месяцев от 0 до 96" in page.text
    assert "Выберите форму работы из списка" in page.text and "Выберите муниципалитет из списка" in page.text
    assert world.client.get("/public/demo", params={"q": "я" * 400}).status_code == 422


def test_answers_carry_an_etag_and_a_public_cache_time(world: World) -> None:
    answer = world.client.get(f"{PUBLIC}/regions/demo/providers")
    assert answer.headers["cache-control"] == "public, max-age=60"
    again = world.client.get(
        f"{PUBLIC}/regions/demo/providers", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    _publish(world)  # the answer changes, and so does its tag
    changed = world.client.get(
        f"{PUBLIC}/regions/demo/providers", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != answer.headers["etag"]
    # Staff answers keep no-store.
    assert (
        world.client.get(f"{API}/organisations", headers=world.h("admin")).headers["cache-control"]
        == "no-store"
    )


def _audited(engine: Engine, org_id: int, action: str = "update") -> int:
    # A refused attempt is recorded under the path's parameter (org_id: entity "org"; api/audit.py).
    entity = "org" if action == "refused" else "organisation"
    with Session(engine) as session:
        query = (
            select(AuditLog)
            .where(AuditLog.entity == entity)
            .where(AuditLog.entity_id == org_id)
            .where(AuditLog.action == action)
        )
        return len(list(session.exec(query)))


def test_admin_edits_the_public_fields_with_checks_in_russian_and_an_audit_row(
    world: World, engine: Engine
) -> None:
    before = _audited(engine, world.provider_id)
    _publish(world)
    assert _audited(engine, world.provider_id) == before + 1
    url, h = f"{API}/organisations/{world.provider_id}", world.h("admin")
    refusals = [
        ({"site": "ftp://example.org"}, "site", "https://"),
        ({"site": "javascript:alert(1)"}, "site", "https://"),
        ({"site": "http://[::1"}, "site", "https://"),  # urlsplit's own error is English
        ({"webhook_url": "http://[::1"}, "webhook_url", "https://"),
        ({"age_from_months": 30, "age_to_months": 12}, "age_to_months", "не может быть меньше"),
        ({"age_to_months": 6}, "age_to_months", "не может быть меньше"),  # with the stored «from», 12
        ({"age_from_months": 97}, "age_from_months", "не больше 96"),
        ({"free_places": -1}, "free_places", "не меньше 0"),
        ({"free_places": "5"}, "free_places", "Ожидается целое число"),
        ({"forms": ["teleport"]}, "forms.0", "Допустимые значения"),
        ({"ownership": "private"}, "ownership", "Допустимые значения"),
    ]
    _ok(world.client.patch(url, json={"age_from_months": 12}, headers=h))
    for body, field, message in refusals:
        answer = world.client.patch(url, json=body, headers=h)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["field"] == field and message in answer.json()["message"], (body, answer.json())
    # Nothing half-written: the provider is as it was.
    saved = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))
    assert (
        saved["age_from_months"] == 12
        and saved["age_to_months"] == 36
        and saved["site"] == "https://first.example.org"
    )
    # A clinic has no forms, ages or free places in the registry.
    clinic = world.client.patch(
        f"{API}/organisations/{world.org_ids['health']}", json={"forms": ["home"]}, headers=h
    )
    assert clinic.status_code == 422 and clinic.json()["field"] == "forms"
    # The free places are dated when stated; cleared, the date goes too.
    cleared = _ok(world.client.patch(url, json={"free_places": None}, headers=h))["organisation"]
    assert cleared["free_places"] is None and cleared["free_places_updated_at"] is None


def test_a_providers_head_and_coordinator_update_their_own_free_places_and_nobody_elses(
    world: World, engine: Engine
) -> None:
    _publish(world)
    mine = f"{API}/organisations/{world.provider_id}/public"
    before = _audited(engine, world.provider_id)
    body = {"free_places": 2, "forms": ["remote", "in_person", "remote"], "working_hours": "пн–чт 9–17"}
    updated = _ok(world.client.patch(mine, json=body, headers=world.h("head")))
    assert updated["free_places"] == 2 and updated["forms"] == ["in_person", "remote"]
    assert _audited(engine, world.provider_id) == before + 1
    public = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))
    assert public["free_places"] == 2 and public["working_hours"] == "пн–чт 9–17"
    _ok(world.client.patch(mine, json={"free_places": 1}, headers=world.h("coordinator")))
    # Another provider's head or coordinator: 404 (and a refused row), as for an unknown id.
    refused = _audited(engine, world.provider_id, "refused")
    for who in ("coordinator2", "rrmc", "b_coordinator"):
        answer = world.client.patch(mine, json={"free_places": 99}, headers=world.h(who))
        assert answer.status_code == 404, who
    assert _audited(engine, world.provider_id, "refused") == refused + 3
    for who in ("curator", "specialist", "referrer", "analyst"):
        assert world.client.patch(mine, json={"free_places": 99}, headers=world.h(who)).status_code == 403
    assert world.client.patch(mine, json={"free_places": 99}).status_code == 401
    assert world.client.patch(mine, json={"free_places": -5}, headers=world.h("head")).status_code == 422
    assert world.client.patch(mine, json={"site": "x.org"}, headers=world.h("head")).status_code == 422
    assert _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))["free_places"] == 1


def test_the_heads_page_saves_free_places_with_an_audit_row(world: World, engine: Engine) -> None:
    sign_in(world.client, "head")
    form = world.client.get("/my-organisation")
    assert form.status_code == 200 and "Свободные места сейчас" in form.text
    before = _audited(engine, world.provider_id)
    bad = world.client.post("/my-organisation", data={"free_places": "-2", "csrf": csrf_of(form.text)})
    assert bad.status_code == 422 and "не меньше 0" in bad.text
    saved = world.client.post(
        "/my-organisation",
        data={
            "free_places": "7",
            "forms": ["home", "group"],
            "working_hours": "",
            "csrf": csrf_of(form.text),
        },
    )
    assert saved.status_code == 200 and "Сохранено" in saved.text
    assert _audited(engine, world.provider_id) == before + 1
    public = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))
    assert public["free_places"] == 7 and public["forms"] == ["home", "group"]
    sign_in(world.client, "curator")
    assert world.client.get("/my-organisation").status_code == 403
    # The РРМЦ's supervisor has the page too: no form, the region's registry and poster instead.
    sign_in(world.client, "rrmc")
    rrmc = world.client.get("/my-organisation")
    assert rrmc.status_code == 200 and "не оказывает раннюю помощь" in rrmc.text
    assert 'href="/public/demo"' in rrmc.text and "Свободные места сейчас" not in rrmc.text


def test_the_admins_organisation_form_saves_the_public_fields(world: World, engine: Engine) -> None:
    sign_in(world.client, "admin")
    url = f"/admin/organisations/{world.provider_id}"
    form = world.client.get(url)
    assert form.status_code == 200 and "Публичный реестр" in form.text
    values = {
        "name": _provider_name(world, "provider"),
        "kind": "provider",
        "phone": "+7 800 000-00-00",
        "service_area": "Центральный район",
        "municipality": "Центральный район",
        "ownership": "non_state",
        "site": "https://site.example.org",
        "forms": ["remote", "home"],
        "age_from_months": "3",
        "age_to_months": "30",
        "free_places": "5",
        "is_public": "yes",
        "csrf": csrf_of(form.text),
    }
    bad = world.client.post(url, data={**values, "age_from_months": "40"})
    assert bad.status_code == 422 and "не может быть меньше" in bad.text
    saved = world.client.post(url, data=values)
    assert saved.status_code == 200, saved.text[:1000]
    public = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))
    assert public["ownership"] == "non_state" and public["forms"] == ["remote", "home"]
    assert (public["age_from_months"], public["age_to_months"], public["free_places"]) == (3, 30, 5)
    stated = public["free_places_updated_at"]
    # Saved again for another field, the free places keep their date (they were not restated).
    _ok_page = world.client.post(url, data={**values, "working_hours": "пн–пт"})
    assert _ok_page.status_code == 200
    assert (
        _ok(world.client.get(f"{PUBLIC}/regions/demo/providers/{world.provider_id}"))[
            "free_places_updated_at"
        ]
        == stated
    )
    listing = world.client.get("/admin/organisations")
    assert f'href="/public/demo/providers/{world.provider_id}"' in listing.text
    hidden = world.client.post(url, data={key: v for key, v in values.items() if key != "is_public"})
    assert hidden.status_code == 200
    assert "скрыта администратором" in world.client.get("/admin/organisations").text


def test_the_csv_import_takes_the_public_columns(world: World) -> None:
    data = (
        "Название;Вид;Телефон;Муниципалитет;Форма собственности;Сайт;Формы работы;"
        "Возраст с (мес.);Возраст до (мес.);Свободные места;Часы работы\n"
        "Служба «Росток»;provider;+7 800 000-00-03;Северный район;негосударственная;rostok.example.org;"
        "очно, на дому;0;36;3;пн–пт\n"
        "Служба «Плохая»;provider;+7 800 000-00-04;;частная;;телепортация;40;10;-1;\n"
        "Поликлиника № 9;health;;;;;в группе;;;;\n"
    )
    answer = world.client.post(
        f"{API}/organisations/import",
        content=data.encode(),
        headers={**world.h("admin"), "Content-Type": "text/csv"},
    )
    report = _ok(answer)
    assert [c["name"] for c in report["created"]] == ["Служба «Росток»"]
    reasons = {r["line"]: r["reason"] for r in report["refused"]}
    assert "Форма собственности" in reasons[3] and "Формы работы" in reasons[3]
    assert "Свободные места" in reasons[3]
    assert "Формы работы" in reasons[4] and "только для организации, оказывающей раннюю помощь" in reasons[4]
    found = _ok(world.client.get(f"{PUBLIC}/regions/demo/providers", params={"q": "росток"}))
    assert len(found) == 1
    assert found[0]["ownership"] == "non_state" and found[0]["forms"] == ["in_person", "home"]
    assert found[0]["site"] == "https://rostok.example.org" and found[0]["free_places"] == 3


def test_the_csv_import_names_a_bad_sites_column_once(world: World) -> None:
    data = "Название;Вид;Телефон;Сайт\nСлужба «Лучик»;provider;+7 800 000-00-05;javascript:alert(1)\n"
    answer = world.client.post(
        f"{API}/organisations/import",
        content=data.encode(),
        headers={**world.h("admin"), "Content-Type": "text/csv"},
    )
    (refused,) = _ok(answer)["refused"]
    assert refused["reason"] == (
        "Сайт: Полный адрес, начинающийся с https:// или http://, например https://example.org"
    )


def test_the_demo_region_has_a_public_registry_worth_looking_at(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert load_demo(session)
    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        found = [item.org for item in public_registry.providers(session, region)]
        assert len(found) == 3
        assert {o.ownership for o in found} == {"state", "non_state"}
        assert all(o.address and o.forms and o.municipality and o.free_places is not None for o in found)
        remote = public_registry.ProviderFilter(form=public_registry.ServiceForm.remote)
        assert [item.org.name for item in public_registry.providers(session, region, remote)]
        hidden = session.exec(select(Organisation).where(col(Organisation.kind) != OrgKind.provider)).all()
        assert all(o.id not in {f.id for f in found} for o in hidden)
