"""The administrator's pages: users (create, disable, enable, reset password), organisations (create,
edit, import from CSV with a line-by-line report) and the region's standard shown read-only."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from models.audit import AuditLog
from models.organisations import Organisation
from models.users import User
from tests.browser import assert_accessible, login
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import World

NEW_USER = {
    "login": "orlova.vp",
    "full_name": "Орлова Вера Павловна",
    "email": "orlova@example.org",
    "role": "curator",
}


def _password_on(html: str) -> str:
    match = re.search(r'id="new-password" class="secret">([^<]+)<', html)
    assert match, html[:2000]
    return match.group(1)


def _create_user(world: World) -> tuple[int, str]:
    sign_in(world.client, "admin")
    form = world.client.get("/admin/users/new")
    assert form.status_code == 200
    answer = world.client.post(
        "/admin/users/new",
        data={**NEW_USER, "organisation_id": str(world.provider_id), "csrf": csrf_of(form.text)},
    )
    assert answer.status_code == 200, answer.text[:2000]
    assert "Пользователь создан" in answer.text and "orlova.vp" in answer.text
    match = re.search(r'href="/admin/users/(\d+)"', answer.text)
    assert match
    return int(match.group(1)), _password_on(answer.text)


def _logs_in(client: TestClient, login_: str, password: str) -> bool:
    answer = client.post("/login", data={"login": login_, "password": password}, follow_redirects=False)
    return answer.status_code == 303


def test_admin_creates_a_user_who_then_logs_in_with_the_password_shown_once(world: World) -> None:
    user_id, password = _create_user(world)
    listing = world.client.get("/admin/users")
    assert "Орлова Вера Павловна" in listing.text and "Куратор" in listing.text
    # The page never shows the password again.
    assert password not in world.client.get(f"/admin/users/{user_id}").text
    assert password not in listing.text
    world.client.cookies.clear()
    assert _logs_in(world.client, "orlova.vp", password)
    assert world.client.get("/", follow_redirects=False).headers["location"] == "/today"


def test_disabling_a_user_makes_the_next_login_fail_and_enabling_restores_it(world: World) -> None:
    user_id, password = _create_user(world)
    check = world.client.get(f"/admin/users/{user_id}/disable")
    assert check.status_code == 200 and "Да, отключить пользователя" in check.text
    done = world.client.post(
        f"/admin/users/{user_id}/disable", data={"csrf": csrf_of(check.text)}, follow_redirects=False
    )
    assert done.status_code == 303
    page = world.client.get(done.headers["location"])
    assert "Пользователь отключён" in page.text and "Включить пользователя" in page.text
    with TestClient(world.client.app) as other:
        assert not _logs_in(other, "orlova.vp", password)
    enabled = world.client.post(
        f"/admin/users/{user_id}/enable", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert enabled.status_code == 303
    with TestClient(world.client.app) as other:
        assert _logs_in(other, "orlova.vp", password)


def test_the_admin_cannot_disable_itself_and_gets_no_button_for_it(world: World) -> None:
    sign_in(world.client, "admin")
    own = world.user_ids["admin"]
    page = world.client.get(f"/admin/users/{own}")
    assert "Отключить пользователя" not in page.text
    refused = world.client.post(f"/admin/users/{own}/disable", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 409 and "не может отключить сам себя" in refused.text


def test_a_password_reset_shows_a_new_password_once_and_the_old_one_stops_working(world: World) -> None:
    user_id, old = _create_user(world)
    check = world.client.get(f"/admin/users/{user_id}/password")
    assert "Сбросить пароль и показать новый" in check.text
    answer = world.client.post(f"/admin/users/{user_id}/password", data={"csrf": csrf_of(check.text)})
    assert answer.status_code == 200 and "Пароль сброшен" in answer.text
    new = _password_on(answer.text)
    assert new != old
    assert new not in world.client.get(f"/admin/users/{user_id}").text
    with TestClient(world.client.app) as other:
        assert not _logs_in(other, "orlova.vp", old)
        assert _logs_in(other, "orlova.vp", new)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"login": "curator"}, "login", "Логин curator уже занят"),
        ({"role": "analyst"}, "role", "Роль «Аналитик» недоступна в организации вида"),
        ({"email": "not-an-address"}, "email", "Некорректный адрес электронной почты"),
        ({"login": "кириллица"}, "login", "латинских букв"),
        ({"full_name": ""}, "full_name", "Укажите ФИО"),
    ],
)
def test_a_refused_user_form_comes_back_422_with_the_error_summary_and_what_was_typed(
    world: World, change: dict[str, str], field: str, message: str
) -> None:
    sign_in(world.client, "admin")
    form = world.client.get("/admin/users/new")
    data = {**NEW_USER, "organisation_id": str(world.provider_id), **change, "csrf": csrf_of(form.text)}
    answer = world.client.post("/admin/users/new", data=data)
    assert answer.status_code == 422
    assert "error-summary" in answer.text and f'href="#{field}"' in answer.text
    assert message in answer.text
    assert 'value="Орлова Вера Павловна"' in answer.text or field == "full_name"


def test_another_organisation_of_another_region_cannot_be_chosen(world: World) -> None:
    sign_in(world.client, "admin")
    form = world.client.get("/admin/users/new")
    assert str(world.org_ids["b_provider"]) not in re.findall(r'<option value="(\d+)"', form.text)
    data = {**NEW_USER, "organisation_id": str(world.org_ids["b_provider"]), "csrf": csrf_of(form.text)}
    answer = world.client.post("/admin/users/new", data=data)
    assert answer.status_code == 422 and "Организация не найдена" in answer.text


@pytest.mark.parametrize(
    "url",
    [
        "/admin/users",
        "/admin/users/new",
        "/admin/organisations",
        "/admin/organisations/new",
        "/admin/organisations/import",
        "/admin/organisations/import/sample.csv",
    ],
)
def test_a_coordinator_gets_the_403_page_on_administration(world: World, url: str) -> None:
    sign_in(world.client, "coordinator")
    answer = world.client.get(url)
    assert answer.status_code == 403 and answer.headers["content-type"].startswith("text/html")


def test_another_regions_admin_gets_the_404_page_for_this_regions_user_and_organisation(
    world: World, engine: Engine
) -> None:
    sign_in(world.client, "b_admin")
    user_id, org_id = world.user_ids["curator"], world.provider_id
    for url in (
        f"/admin/users/{user_id}",
        f"/admin/users/{user_id}/edit",
        f"/admin/users/{user_id}/disable",
        f"/admin/users/{user_id}/password",
        f"/admin/organisations/{org_id}",
    ):
        answer = world.client.get(url)
        assert answer.status_code == 404 and "Такой страницы нет" in answer.text, url
    token = csrf_of(world.client.get("/admin/users").text)
    for url in (
        f"/admin/users/{user_id}/disable",
        f"/admin/users/{user_id}/password",
        f"/admin/users/{user_id}/enable",
        f"/admin/users/{user_id}/edit",
        f"/admin/organisations/{org_id}",
    ):
        assert world.client.post(url, data={"csrf": token, "full_name": "X"}).status_code == 404, url
    # Its own lists hold none of this region's.
    assert f'href="/admin/users/{user_id}"' not in world.client.get("/admin/users").text
    assert f'href="/admin/organisations/{org_id}"' not in world.client.get("/admin/organisations").text
    with Session(engine) as session:
        curator = session.get(User, user_id)
        assert curator is not None and curator.is_active


def test_admin_adds_and_edits_an_organisation(world: World) -> None:
    sign_in(world.client, "admin")
    form = world.client.get("/admin/organisations/new")
    data = {
        "name": "Служба ранней помощи «Росток»",
        "kind": "provider",
        "inn": "",
        "email": "rostok@example.org",
        "phone": "+7 800 000-00-03",
        "address": "",
        "service_area": "Центральный район\nСеверный район",
        "webhook_url": "",
        "csrf": csrf_of(form.text),
    }
    done = world.client.post("/admin/organisations/new", data=data, follow_redirects=False)
    assert done.status_code == 303
    listing = world.client.get(done.headers["location"])
    assert "Сохранено: Служба ранней помощи «Росток»" in listing.text
    assert "Центральный район, Северный район" in listing.text
    org_id = int(
        re.findall(r'href="/admin/organisations/(\d+)">Служба ранней помощи «Росток»', listing.text)[0]
    )
    edit = world.client.get(f"/admin/organisations/{org_id}")
    changed = {**data, "csrf": csrf_of(edit.text), "webhook_url": "https://rostok.example.org/hook"}
    saved = world.client.post(f"/admin/organisations/{org_id}", data=changed)
    # A new webhook address: its secret is shown once.
    assert saved.status_code == 200 and "Секрет для подписи" in saved.text
    assert "Да" in world.client.get("/admin/organisations").text


def test_an_organisation_form_refuses_a_duplicate_name_and_municipalities_of_a_non_provider(
    world: World,
) -> None:
    sign_in(world.client, "admin")
    form = world.client.get("/admin/organisations/new")
    base = {"kind": "health", "csrf": csrf_of(form.text)}
    duplicate = world.client.post(
        "/admin/organisations/new", data={**base, "name": "гбуз «детская городская поликлиника № 1»"}
    )
    assert duplicate.status_code == 422 and "в регионе уже есть" in duplicate.text
    area = world.client.post(
        "/admin/organisations/new", data={**base, "name": "Поликлиника № 9", "service_area": "Южный район"}
    )
    assert area.status_code == 422 and 'href="#service_area"' in area.text
    bad_kind = world.client.post(
        "/admin/organisations/new", data={**base, "kind": "", "name": "Поликлиника № 9"}
    )
    assert bad_kind.status_code == 422 and 'href="#kind"' in bad_kind.text


GOOD_AND_BAD_CSV = (
    "Название;Вид;ИНН;E-mail;Телефон;Адрес;Муниципалитеты\r\n"
    "ГБУЗ «Детская поликлиника № 2»;health;7701234567;dp2@example.org;+7 800 000-00-02;ул. Ленина, 5;\r\n"
    "Клиника «Здоровье»;clinic;;;;;\r\n"
    "Служба ранней помощи «Росток»;provider;;;;;Центральный район, Северный район\r\n"
    ";health;;;;;\r\n"
    "ГБУ «Социально-реабилитационный центр»;Организация социального обслуживания;;;;;\r\n"
    "ГБУЗ «Детская городская поликлиника № 1»;health;;;;;\r\n"
)


def _import_page(client: TestClient, content: bytes) -> object:
    form = client.get("/admin/organisations/import")
    return client.post(
        "/admin/organisations/import",
        data={"csrf": csrf_of(form.text)},
        files={"file": ("организации.csv", content, "text/csv")},
    )


def test_csv_import_creates_the_good_lines_and_reports_each_refused_line_with_its_reason(
    world: World, engine: Engine
) -> None:
    sign_in(world.client, "admin")
    # As Excel writes it in Russia: UTF-8 with BOM, semicolons.
    answer = _import_page(world.client, b"\xef\xbb\xbf" + GOOD_AND_BAD_CSV.encode())
    assert answer.status_code == 200, answer.text[:2000]  # type: ignore[attr-defined]
    html = answer.text  # type: ignore[attr-defined]
    assert "Создано: 3 организации; не принято: 3 строки." in html
    refused = re.findall(r'<tr class="refused-line"><th scope="row">(\d+)</th><td>([^<]+)</td>', html)
    assert [int(line) for line, _ in refused] == [3, 5, 7]
    reasons = dict(refused)
    assert "неизвестный вид «clinic»" in reasons["3"]
    assert reasons["5"].startswith("Название:") and "Укажите название" in reasons["5"]
    assert "в регионе уже есть" in reasons["7"]
    created = re.findall(r'<tr class="created-line"><th scope="row">(\d+)</th>', html)
    assert created == ["2", "4", "6"]
    with Session(engine) as session:
        names = set(session.exec(select(Organisation.name)))
        assert {"ГБУЗ «Детская поликлиника № 2»", "ГБУ «Социально-реабилитационный центр»"} <= names
        assert "Клиника «Здоровье»" not in names
        rostok = session.exec(
            select(Organisation).where(Organisation.name == "Служба ранней помощи «Росток»")
        ).one()
        assert rostok.service_area == ["Центральный район", "Северный район"]
        audited = session.exec(
            select(AuditLog).where(AuditLog.entity == "organisation", AuditLog.action == "create")
        ).all()
        assert len(audited) == 3
    # The same file again: every line is now a duplicate or still wrong.
    again = _import_page(world.client, GOOD_AND_BAD_CSV.encode())
    assert "Создано: 0 организаций; не принято: 6 строк." in again.text  # type: ignore[attr-defined]


def test_csv_import_refuses_a_file_that_is_not_utf8_or_has_an_unknown_column(world: World) -> None:
    sign_in(world.client, "admin")
    cp1251 = _import_page(world.client, GOOD_AND_BAD_CSV.encode("cp1251"))
    assert cp1251.status_code == 422 and "не в кодировке UTF-8" in cp1251.text  # type: ignore[attr-defined]
    unknown = _import_page(world.client, "Название,Вид,Цвет\nА,health,синий\n".encode())
    assert unknown.status_code == 422 and "Неизвестный столбец «Цвет»" in unknown.text  # type: ignore[attr-defined]
    control = _import_page(world.client, "Название,Вид\nА\x01,health\n".encode())
    assert control.status_code == 422 and "управляющий символ U+0001" in control.text  # type: ignore[attr-defined]
    empty = _import_page(world.client, b"")
    assert empty.status_code == 422 and "Выберите файл CSV" in empty.text  # type: ignore[attr-defined]


def test_the_sample_csv_is_itself_importable(world: World) -> None:
    sign_in(world.client, "admin")
    sample = world.client.get("/admin/organisations/import/sample.csv")
    assert sample.status_code == 200 and sample.headers["content-type"].startswith("text/csv")
    assert sample.content.startswith(b"\xef\xbb\xbf")
    answer = _import_page(world.client, sample.content)
    assert "не принято: 0 строк" in answer.text  # type: ignore[attr-defined]


def test_the_standard_page_shows_the_catalogue_and_timers_to_admin_and_supervisors(world: World) -> None:
    for who in ("admin", "rrmc", "head"):
        sign_in(world.client, who)
        page = world.client.get("/standard")
        assert page.status_code == 200, (who, page.text[:500])
        html = page.text
        assert "Каталог услуг" in html and "Сроки" in html and "Критерии направления" in html
        # A service with its specialist, a timer with its term, a criterion, an exit.
        assert re.search(r"Содействие развитию мобильности ребёнка</th>\s*<td>Инструктор-методист", html)
        assert re.search(r"Рассмотреть направление и связаться с семьёй</th>\s*<td>5 рабочих дней", html)
        assert "опасений, связанных с особенностями в развитии и поведении детей" in html
    sign_in(world.client, "curator")
    assert world.client.get("/standard").status_code == 403


def test_every_administration_page_passes_the_accessibility_check(
    world: World, server_url: str, browser: object
) -> None:
    page = login(browser, server_url, "admin")
    org_id = world.provider_id
    for url in (
        "/admin/users",
        "/admin/users/new",
        "/admin/users?role=curator",
        f"/admin/users/{world.user_ids['curator']}",
        f"/admin/users/{world.user_ids['curator']}/edit",
        f"/admin/users/{world.user_ids['curator']}/disable",
        f"/admin/users/{world.user_ids['curator']}/password",
        "/admin/organisations",
        "/admin/organisations/new",
        f"/admin/organisations/{org_id}",
        "/admin/organisations/import",
        "/standard",
    ):
        page.goto(url)
        assert_accessible(page)
    # A refused form and the import report are checked too.
    page.goto("/admin/users/new")
    with page.expect_navigation():
        page.get_by_role("button", name="Создать пользователя").click()
    assert page.locator(".error-summary").is_visible()
    assert_accessible(page)
    page.goto("/admin/users/new")
    page.get_by_label("Логин").fill("orlova.vp")
    page.get_by_label("ФИО").fill("Орлова Вера Павловна")
    page.get_by_label("E-mail").fill("orlova@example.org")
    page.get_by_label("Роль").select_option(label="Куратор")
    page.get_by_label("Организация").select_option(value=str(org_id))
    with page.expect_navigation():
        page.get_by_role("button", name="Создать пользователя").click()
    password = page.locator("#new-password").inner_text()
    assert_accessible(page)
    page.goto("/admin/organisations/import")
    page.get_by_label("Файл CSV").set_input_files(
        files=[{"name": "orgs.csv", "mimeType": "text/csv", "buffer": GOOD_AND_BAD_CSV.encode()}]
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Загрузить и проверить").click()
    assert page.locator(".refused-line").count() == 3
    assert_accessible(page)
    # A file over the body limit is stopped before it is sent, with the form's own message.
    big = b"x" * (world.client.app.state.settings.max_body_bytes + 1)  # type: ignore[attr-defined]
    page.get_by_label("Файл CSV").set_input_files(
        files=[{"name": "big.csv", "mimeType": "text/csv", "buffer": big}]
    )
    page.get_by_role("button", name="Загрузить и проверить").click()
    expect(page.locator("#file-size-error")).to_contain_text("файл слишком большой")
    assert page.url.endswith("/admin/organisations/import")
    assert_accessible(page)
    page.context.close()
    # The new user signs in with the password the page showed.
    assert login(browser, server_url, "orlova.vp", password).url.endswith("/today")


def test_the_user_list_filters_by_organisation_role_and_state(world: World) -> None:
    sign_in(world.client, "admin")
    provider = world.provider_id
    curators = world.client.get("/admin/users", params={"org": provider, "role": "curator"}).text
    assert f'href="/admin/users/{world.user_ids["curator"]}"' in curators
    assert f'href="/admin/users/{world.user_ids["coordinator"]}"' not in curators
    assert f'href="/admin/users/{world.user_ids["curator2"]}"' not in curators
    # Another region's organisation in the query string is ignored, not a door.
    foreign = world.client.get("/admin/users", params={"org": world.org_ids["b_provider"]})
    assert foreign.status_code == 200 and f'href="/admin/users/{world.user_ids["curator"]}"' in foreign.text
    assert "Никого не найдено" in world.client.get("/admin/users", params={"active": "no"}).text


def test_admin_edits_a_users_name_email_and_role_and_a_role_the_org_cannot_hold_is_refused(
    world: World, engine: Engine
) -> None:
    sign_in(world.client, "admin")
    user_id = world.user_ids["specialist"]
    form = world.client.get(f"/admin/users/{user_id}/edit")
    assert 'value="Соколов Дмитрий Олегович"' in form.text
    data = {
        "full_name": "Соколов Дмитрий Олегович",
        "email": "sokolov@example.org",
        "csrf": csrf_of(form.text),
    }
    refused = world.client.post(f"/admin/users/{user_id}/edit", data={**data, "role": "analyst"})
    assert refused.status_code == 422 and 'href="#role"' in refused.text and "недоступна" in refused.text
    done = world.client.post(
        f"/admin/users/{user_id}/edit", data={**data, "role": "curator"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert "Изменения сохранены" in world.client.get(done.headers["location"]).text
    with Session(engine) as session:
        user = session.get(User, user_id)
        assert user is not None and (user.role, user.email) == ("curator", "sokolov@example.org")


def test_a_form_over_the_body_limit_is_answered_with_a_page_not_json(world: World) -> None:
    sign_in(world.client, "admin")
    big = b"x" * (world.client.app.state.settings.max_body_bytes + 1)  # type: ignore[attr-defined]
    answer = world.client.post(
        "/admin/organisations/import",
        content=big,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("text/html")
    assert "Слишком большой файл или форма" in answer.text
    assert 'href="/admin/organisations/import"' in answer.text
    # The API keeps its JSON answer.
    api = world.client.post("/api/v1/organisations/import", content=big, headers={"Content-Type": "text/csv"})
    assert api.status_code == 413 and api.json()["error"] == "too_large"


def test_the_user_list_pages_by_fifty(world: World, engine: Engine) -> None:
    from models.users import Role

    with Session(engine) as session:
        for n in range(60):
            session.add(
                User(
                    organisation_id=world.provider_id,
                    login=f"extra{n:02d}",
                    full_name=f"Яковлева Анна {n:02d}",
                    role=Role.specialist,
                )
            )
        session.commit()
    sign_in(world.client, "admin")
    first = world.client.get("/admin/users", params={"org": world.provider_id})
    rows = re.findall(r'<th scope="row"><a href="/admin/users/\d+">', first.text)
    assert len(rows) == 50 and "Страница 1 из 2" in first.text
    assert f'href="/admin/users?org={world.provider_id}&amp;page=2"' in first.text
    second = world.client.get("/admin/users", params={"org": world.provider_id, "page": 2})
    total = int(re.search(r"<p>(\d+) пользовател", first.text).group(1))  # type: ignore[union-attr]
    assert len(re.findall(r'<th scope="row"><a href="/admin/users/\d+">', second.text)) == total - 50
    assert world.client.get("/admin/users", params={"page": "x"}).status_code == 200  # the first page
