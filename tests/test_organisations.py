"""The organisation registry through the API: create, edit and import from CSV, by the region's
administrator only, audited; the same rules as the administrator's pages (one service)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.audit import AuditLog
from models.organisations import Organisation
from tests.test_pages_admin import GOOD_AND_BAD_CSV
from tests.world import API, World

ROSTOK: dict[str, Any] = {
    "name": "Служба ранней помощи «Росток»",
    "kind": "provider",
    "email": "Rostok@Example.org",
    "phone": "+7 800 000-00-03",
    "service_area": ["Центральный район", "Северный район"],
}


def _csv(world: World, content: bytes, who: str = "admin", media: str = "text/csv") -> Any:
    headers = {**world.h(who), "Content-Type": media}
    return world.client.post(f"{API}/organisations/import", content=content, headers=headers)


def test_admin_creates_an_organisation_that_every_role_of_the_region_then_sees(
    world: World, engine: Engine
) -> None:
    answer = world.client.post(f"{API}/organisations", json=ROSTOK, headers=world.h("admin"))
    assert answer.status_code == 201, answer.text
    created = answer.json()
    org = created["organisation"]
    assert org["kind_label"] == "Организация, оказывающая раннюю помощь"
    assert org["email"] == "Rostok@example.org" and created["webhook_secret"] is None
    listed = world.client.get(
        f"{API}/organisations", params={"kind": "provider"}, headers=world.h("referrer")
    )
    assert org["id"] in [o["id"] for o in listed.json()]
    other = world.client.get(f"{API}/organisations", headers=world.h("b_referrer"))
    assert org["id"] not in [o["id"] for o in other.json()]
    with Session(engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.entity == "organisation")).one()
        assert (audit.action, audit.entity_id) == ("create", org["id"])


def test_a_webhook_gets_a_secret_shown_once_and_a_new_one_on_request(world: World, engine: Engine) -> None:
    body = {**ROSTOK, "webhook_url": "https://rostok.example.org/hook"}
    created = world.client.post(f"{API}/organisations", json=body, headers=world.h("admin")).json()
    secret = created["webhook_secret"]
    assert secret and "webhook_secret" not in created["organisation"]
    org_id = created["organisation"]["id"]
    unchanged = world.client.patch(
        f"{API}/organisations/{org_id}", json={"phone": "+7 800 000-00-09"}, headers=world.h("admin")
    )
    assert unchanged.status_code == 200 and unchanged.json()["webhook_secret"] is None
    renewed = world.client.patch(
        f"{API}/organisations/{org_id}", json={"new_webhook_secret": True}, headers=world.h("admin")
    ).json()
    assert renewed["webhook_secret"] not in (None, secret)
    with Session(engine) as session:
        org = session.get(Organisation, org_id)
        assert org is not None and org.webhook_secret == renewed["webhook_secret"]


def test_create_refuses_a_duplicate_name_municipalities_of_a_non_provider_and_bad_fields(
    world: World,
) -> None:
    h = world.h("admin")
    duplicate = {"name": "  ГБУЗ «Детская городская  поликлиника № 1» ", "kind": "health"}
    answer = world.client.post(f"{API}/organisations", json=duplicate, headers=h)
    assert answer.status_code == 409 and answer.json()["field"] == "name"
    area = {"name": "Поликлиника № 9", "kind": "health", "service_area": ["Южный район"]}
    answer = world.client.post(f"{API}/organisations", json=area, headers=h)
    assert answer.status_code == 422 and answer.json()["field"] == "service_area"
    for field, value in (("inn", "123"), ("phone", "call me"), ("email", "nope"), ("webhook_url", "ftp://x")):
        answer = world.client.post(
            f"{API}/organisations",
            json={"name": "Поликлиника № 9", "kind": "health", field: value},
            headers=h,
        )
        assert answer.status_code == 422 and answer.json()["field"] == field, (field, answer.text)


def test_edit_keeps_what_is_not_given_and_refuses_a_kind_its_users_cannot_hold(world: World) -> None:
    h = world.h("admin")
    provider = world.provider_id
    answer = world.client.patch(f"{API}/organisations/{provider}", json={"address": "ул. Мира, 1"}, headers=h)
    assert answer.status_code == 200, answer.text
    org = answer.json()["organisation"]
    assert org["address"] == "ул. Мира, 1" and org["service_area"] == ["Центральный район", "Северный район"]
    kind = world.client.patch(f"{API}/organisations/{provider}", json={"kind": "health"}, headers=h)
    assert kind.status_code == 409 and "Координатор приёма" in kind.json()["message"]
    rename = world.client.patch(
        f"{API}/organisations/{provider}", json={"name": "Бюро медико-социальной экспертизы № 3"}, headers=h
    )
    assert rename.status_code == 409 and rename.json()["field"] == "name"
    cleared = world.client.patch(f"{API}/organisations/{provider}", json={"address": None}, headers=h)
    assert cleared.json()["organisation"]["address"] is None


def test_csv_import_through_the_api_reports_each_line(world: World, engine: Engine) -> None:
    answer = _csv(world, b"\xef\xbb\xbf" + GOOD_AND_BAD_CSV.encode())
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [c["line"] for c in report["created"]] == [2, 4, 6]
    assert [(r["line"], r["reason"].split(":")[0]) for r in report["refused"]] == [
        (3, "Вид"),
        (5, "Название"),
        (7, "Название"),
    ]
    with Session(engine) as session:
        audited = session.exec(select(AuditLog.entity_id).where(AuditLog.entity == "organisation")).all()
        assert sorted(i or 0 for i in audited) == sorted(c["id"] for c in report["created"])


def test_csv_import_with_commas_and_english_headings(world: World) -> None:
    content = 'name,kind,service_area\n"Росток",provider,"Центральный район, Южный район"\n'.encode()
    report = _csv(world, content).json()
    assert report["refused"] == [] and report["created"][0]["name"] == "Росток"


def test_csv_import_refuses_what_it_cannot_read_and_creates_nothing(world: World, engine: Engine) -> None:
    with Session(engine) as session:
        before = len(session.exec(select(Organisation.id)).all())
    control = _csv(world, "Название;Вид\nРосток;provider\nА\x00;health\n".encode())
    assert control.status_code == 422 and "U+0000" in control.json()["message"]
    assert _csv(world, GOOD_AND_BAD_CSV.encode("cp1251")).status_code == 422
    assert _csv(world, b"").status_code == 422
    assert _csv(world, b"name;kind\n").status_code == 422
    json_body = _csv(world, b'{"name": "x"}', media="application/json")
    assert json_body.status_code == 415
    with Session(engine) as session:
        assert len(session.exec(select(Organisation.id)).all()) == before


def test_csv_import_over_the_body_limit_is_refused_413(world: World) -> None:
    limit = world.client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    big = ("Название;Вид\n" + "Организация;health\n" * (limit // 18 + 10)).encode()
    answer = _csv(world, big)
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"


def test_only_the_regions_admin_changes_the_registry(world: World) -> None:
    for who in ("coordinator", "rrmc", "analyst"):
        assert world.client.post(f"{API}/organisations", json=ROSTOK, headers=world.h(who)).status_code == 403
        assert _csv(world, GOOD_AND_BAD_CSV.encode(), who=who).status_code == 403
    patch = world.client.patch(
        f"{API}/organisations/{world.provider_id}",
        json={"phone": "+7 800 000-00-09"},
        headers=world.h("b_admin"),
    )
    assert patch.status_code == 404


def test_patch_on_the_import_path_is_405_not_a_422_about_an_id(world: World) -> None:
    answer = world.client.patch(f"{API}/organisations/import", json={}, headers=world.h("admin"))
    assert answer.status_code == 405 and "POST" in answer.headers["allow"]
