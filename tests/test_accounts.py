"""Accounts (issue 9, item 5): login throttling, equal work for unknown logins, the password policy,
logout and revocation, disabled users, issuer/audience, separate and rotating keys, and the
administrator's API."""

from __future__ import annotations

import os
import stat
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import time_machine
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlmodel import Session, select

import api.services.auth as auth_routes
from api.main import create_app
from api.routes.auth import LoginIn
from api.security import PASSWORD_MAX_LENGTH, LoginThrottle, password_problem
from core.config import Settings
from core.tokens import AUDIENCE, ISSUER, KeyStore, Purpose, key_store, session_link_token
from models.audit import AuditLog
from models.users import User
from tests.test_journey import to_ipr_implementation
from tests.world import API, World

GOOD_PASSWORD = "Ласточка-весной-7"
ClientMaker = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings, engine: Engine) -> Iterator[ClientMaker]:
    """A client of an app on the same database with some settings changed."""
    opened: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=changes), engine=engine))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def login(client: TestClient, name: str, password: str = "demo") -> Response:
    return client.post(f"{API}/auth/login", json={"login": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def session_token(client: TestClient, name: str, password: str = "demo") -> str:
    response = login(client, name, password)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def me(client: TestClient, token: str) -> int:
    return client.get(f"{API}/me", headers=bearer(token)).status_code


def keys_of(client: TestClient) -> KeyStore:
    keys: KeyStore = client.app.state.keys  # type: ignore[attr-defined]
    return keys


# Throttling


def test_failed_logins_are_throttled_per_login_with_retry_after(
    world: World, make_client: ClientMaker
) -> None:
    client = make_client(login_failures_per_login="3/15 minutes")
    for _ in range(3):
        assert login(client, "curator", "wrong-password").status_code == 401
    refused = login(client, "curator", "demo")  # even the right password waits out the window
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "too_many_attempts" and body["field"] is None
    assert body["message"].startswith("Слишком много попыток входа. Повторите через ")
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert body["retry_after"] == int(refused.headers["Retry-After"])
    assert login(client, "specialist").status_code == 200  # another login is not affected


def test_the_real_user_is_not_locked_out_forever(world: World, make_client: ClientMaker) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        client = make_client(login_failures_per_login="3/15 minutes")
        for _ in range(3):
            login(client, "curator", "wrong-password")
        assert login(client, "curator").status_code == 429
        clock.shift(timedelta(minutes=15, seconds=1))
        assert login(client, "curator").status_code == 200


def test_successful_logins_do_not_count(world: World, make_client: ClientMaker) -> None:
    client = make_client(login_failures_per_login="2/15 minutes")
    for _ in range(4):
        assert login(client, "curator").status_code == 200


def test_attempts_are_throttled_per_client_address(world: World, make_client: ClientMaker) -> None:
    client = make_client(login_attempts_per_address="4/minute")
    for name in ("nobody-1", "nobody-2", "nobody-3", "nobody-4"):
        assert login(client, name, "wrong-password").status_code == 401
    refused = login(client, "curator")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_a_throttled_attempt_computes_no_password_hash(
    world: World, make_client: ClientMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(login_failures_per_login="2/15 minutes")
    verified: list[str] = []
    real = auth_routes.verify_password

    def counting(password: str, hashed: str | None) -> bool:
        verified.append(password)
        return real(password, hashed)

    monkeypatch.setattr(auth_routes, "verify_password", counting)
    for _ in range(2):
        login(client, "curator", "wrong-password")
    assert len(verified) == 2
    for _ in range(20):
        assert login(client, "curator", "wrong-password").status_code == 429
    assert len(verified) == 2


# Equal work for every login


def test_an_unknown_login_takes_as_long_as_a_known_one(
    world: World, make_client: ClientMaker, engine: Engine
) -> None:
    client = make_client(login_failures_per_login="1000/minute", login_attempts_per_address="1000/minute")
    with Session(engine) as session:
        system = session.exec(select(User).where(User.login == "analyst")).one()
        system.password_hash = None  # an account that signs in by API token only
        session.add(system)
        disabled = session.exec(select(User).where(User.login == "specialist")).one()
        disabled.is_active = False
        session.add(disabled)
        session.commit()

    def took(name: str) -> float:
        started = time.perf_counter()
        assert login(client, name, "wrong-password").status_code == 401
        return time.perf_counter() - started

    kinds = {
        "known": "curator",
        "unknown": "no-such-login",
        "no password": "analyst",
        "disabled": "specialist",
    }
    took("curator")  # warm-up: the first unknown login computes the dummy hash once
    took("no-such-login")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(5):
        for kind, name in kinds.items():
            times[kind].append(took(name))
    known = statistics.median(times["known"])
    for kind in ("unknown", "no password", "disabled"):
        ratio = statistics.median(times[kind]) / known
        assert 0.5 < ratio < 2, f"{kind}: {ratio:.2f} of a known login's time ({times})"


# The password policy


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("1", "короткий"),
        ("curator", "короткий"),
        ("curator-2026", "логином"),
        ("My-CURATOR-pass", "логином"),
        ("1234567890", "распространённых"),
        ("qwertyuiop", "распространённых"),
        ("йцукенгшщз", "распространённых"),  # qwertyuiop typed in the Russian layout
        ("aaaaaaaaaaaa", "разных символов"),
        ("x" * 300, "длинный"),
    ],
)
def test_weak_passwords_are_refused(password: str, why: str) -> None:
    problem = password_problem(password, "curator")
    assert problem is not None and why in problem


def test_a_good_password_passes() -> None:
    assert password_problem(GOOD_PASSWORD, "curator") is None


def test_login_accepts_the_longest_password_the_policy_allows(world: World) -> None:
    assert LoginIn.model_json_schema()["properties"]["password"]["maxLength"] == PASSWORD_MAX_LENGTH
    longest = "Ёж-" + "абвгд" * ((PASSWORD_MAX_LENGTH - 3) // 5) + "x" * ((PASSWORD_MAX_LENGTH - 3) % 5)
    assert len(longest) == PASSWORD_MAX_LENGTH and password_problem(longest, "curator") is None
    reset = world.client.post(
        f"{API}/users/{world.user_ids['curator']}/password",
        json={"password": longest},
        headers=world.h("admin"),
    )
    assert reset.status_code == 200, reset.text
    assert login(world.client, "curator", longest).status_code == 200
    too_long = world.client.post(
        f"{API}/users/{world.user_ids['curator']}/password",
        json={"password": "x" * 300},
        headers=world.h("admin"),
    )
    assert too_long.status_code == 422 and too_long.json()["field"] == "password"


# Logout, revocation, disabled users


def test_logout_ends_that_session_only(world: World) -> None:
    first = session_token(world.client, "curator")
    second = session_token(world.client, "curator")
    assert world.client.post(f"{API}/auth/logout", headers=bearer(first)).status_code == 204
    assert me(world.client, first) == 401
    assert me(world.client, second) == 200
    assert world.client.post(f"{API}/auth/logout", headers=bearer(first)).status_code == 401


def test_logout_with_an_api_token_revokes_it(world: World) -> None:
    assert world.client.post(f"{API}/auth/logout", headers=world.h("referrer")).status_code == 204
    assert world.client.get(f"{API}/me", headers=world.h("referrer")).status_code == 401


def test_a_disabled_users_tokens_fail_at_once(world: World) -> None:
    jwt_token = session_token(world.client, "curator")
    assert me(world.client, jwt_token) == 200
    disabled = world.client.post(f"{API}/users/{world.user_ids['curator']}/disable", headers=world.h("admin"))
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert me(world.client, jwt_token) == 401
    assert world.client.get(f"{API}/me", headers=world.h("curator")).status_code == 401
    assert login(world.client, "curator").status_code == 401
    enabled = world.client.post(f"{API}/users/{world.user_ids['curator']}/enable", headers=world.h("admin"))
    assert enabled.status_code == 200
    assert me(world.client, jwt_token) == 401  # its sessions ended for good
    assert world.client.get(f"{API}/me", headers=world.h("curator")).status_code == 200  # API tokens return


# Issuer, audience, key ids, separate keys


def _forge(secret: str, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    now = datetime.now(UTC)
    base = {"iat": now, "exp": now + timedelta(hours=1), "jti": "a" * 32, "gen": 0}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256", headers=headers)


def test_staff_tokens_need_our_issuer_audience_and_key_id(world: World) -> None:
    staff = keys_of(world.client).ring(Purpose.staff).current
    sub = str(world.user_ids["curator"])
    kid = {"kid": staff.kid}
    full = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE[Purpose.staff]}
    assert me(world.client, _forge(staff.secret, full, kid)) == 200  # the forgery itself is well made
    missing_iss = {k: v for k, v in full.items() if k != "iss"}
    missing_aud = {k: v for k, v in full.items() if k != "aud"}
    for claims, headers in [
        ({"sub": sub}, kid),  # a token as they were before: no issuer, no audience
        (missing_iss, kid),
        (missing_aud, kid),
        ({**full, "iss": "someone-else"}, kid),
        ({**full, "aud": AUDIENCE[Purpose.family]}, kid),
        (full, None),  # no key id
        (full, {"kid": "unknown"}),
    ]:
        assert me(world.client, _forge(staff.secret, claims, headers)) == 401, (claims, headers)


def test_family_links_and_staff_tokens_do_not_pass_for_each_other(world: World) -> None:
    keys = keys_of(world.client)
    case_id = to_ipr_implementation(world)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": at.isoformat()},
        headers=world.h("curator"),
    ).json()
    good = session_link_token(planned["id"], at + timedelta(hours=12), keys)
    assert world.client.get(f"/f/{good}").status_code == 200
    staff, family = keys.ring(Purpose.staff), keys.ring(Purpose.family)
    assert staff.current.secret != family.current.secret
    # A link signed with the staff key (its kid, and again posing as the family key's kid): refused.
    link_claims = {"sid": planned["id"], "p": "session_response", "exp": at + timedelta(hours=12)}
    as_staff = staff.sign(link_claims)
    posing = _forge(
        staff.current.secret,
        {**link_claims, "iss": ISSUER, "aud": AUDIENCE[Purpose.family]},
        {"kid": family.current.kid},
    )
    for bad in (as_staff, posing):
        assert world.client.get(f"/f/{bad}").status_code == 400
    # A staff token signed with the family key: refused.
    sub = str(world.user_ids["curator"])
    staff_claims = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE[Purpose.staff]}
    assert me(world.client, _forge(family.current.secret, staff_claims, {"kid": family.current.kid})) == 401
    assert me(world.client, _forge(family.current.secret, staff_claims, {"kid": staff.current.kid})) == 401


# Key rotation (keys in var_dir files)


def test_rotated_staff_keys_accept_old_tokens_until_they_expire(
    world: World, make_client: ClientMaker, settings: Settings
) -> None:
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        client = make_client(secret_key="", jwt_ttl_minutes=60)
        keys = keys_of(client)
        path = keys.path(Purpose.staff)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        old_kid = keys.ring(Purpose.staff).current.kid
        old_token = session_token(client, "curator")
        assert jwt.get_unverified_header(old_token)["kid"] == old_kid

        new_key = keys.rotate(Purpose.staff)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        new_token = session_token(client, "curator")
        assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
        assert me(client, old_token) == 200 and me(client, new_token) == 200

        # Past the lifetime of any token the old key signed, it is no longer accepted, and the
        # next rotation drops it from the file.
        old_secret = next(k.secret for k in keys.ring(Purpose.staff).keys if k.kid == old_kid)
        clock.shift(timedelta(minutes=61))
        late = _forge(
            old_secret,
            {"sub": str(world.user_ids["curator"]), "iss": ISSUER, "aud": AUDIENCE[Purpose.staff]},
            {"kid": old_kid},
        )
        assert me(client, late) == 401
        keys.rotate(Purpose.staff)
        assert old_kid not in {k.kid for k in keys.ring(Purpose.staff).keys}
        assert me(client, session_token(client, "curator")) == 200


def test_rotated_family_keys_keep_sent_links_working(world: World, make_client: ClientMaker) -> None:
    client = make_client(family_link_key="", family_link_max_days=3)
    keys = keys_of(client)
    case_id = to_ipr_implementation(world)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    planned = client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": at.isoformat()},
        headers=world.h("curator"),
    ).json()
    sent = session_link_token(planned["id"], at + timedelta(hours=12), keys)
    keys.rotate(Purpose.family)
    assert client.get(f"/f/{sent}").status_code == 200
    assert client.get(f"/f/{session_link_token(planned['id'], at, keys)}").status_code == 200
    rotated_at = datetime.now(UTC)
    with time_machine.travel(at + timedelta(hours=13), tick=False):
        # The link's own time is over, its key still accepted: the family is told it expired.
        assert client.get(f"/f/{sent}").status_code == 410
    with time_machine.travel(rotated_at + timedelta(days=3, minutes=1), tick=False):
        # Every link the old key signed has expired (links live at most 3 days here): the key is
        # no longer accepted, and the next rotation drops it from the file.
        assert client.get(f"/f/{sent}").status_code == 400
        keys.rotate(Purpose.family)
    assert len(keys.ring(Purpose.family).keys) == 2


def test_keys_from_settings_cannot_be_rotated_in_files(settings: Settings) -> None:
    with pytest.raises(ValueError, match="EARLYHELP_SECRET_KEYS_PREVIOUS"):
        key_store(settings).rotate(Purpose.staff)


def test_previous_keys_from_settings_are_still_accepted(world: World, make_client: ClientMaker) -> None:
    old = make_client(secret_key="the-old-staff-key-of-sufficient-length-for-hs256")
    token = session_token(old, "curator")
    new = make_client(
        secret_key="the-new-staff-key-of-sufficient-length-for-hs256",
        secret_keys_previous=["the-old-staff-key-of-sufficient-length-for-hs256"],
    )
    assert me(new, token) == 200
    without = make_client(secret_key="the-new-staff-key-of-sufficient-length-for-hs256")
    assert me(without, token) == 401


# The administrator's API


def test_admin_creates_a_user_with_a_generated_password_shown_once(world: World, engine: Engine) -> None:
    created = world.client.post(
        f"{API}/users",
        json={
            "login": "new.curator",
            "full_name": "Орлова Нина Петровна",
            "email": "Orlova@Example.org",
            "role": "curator",
            "organisation_id": world.provider_id,
        },
        headers=world.h("admin"),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"]["email"] == "Orlova@example.org" and body["user"]["role"] == "curator"
    password = body["password"]
    assert password_problem(password, "new.curator") is None
    assert login(world.client, "new.curator", password).status_code == 200
    listed = world.client.get(f"{API}/users/{body['user']['id']}", headers=world.h("admin")).json()
    assert "password" not in listed
    with Session(engine) as session:
        audited = session.exec(
            select(AuditLog.action).where(AuditLog.entity == "user", AuditLog.entity_id == body["user"]["id"])
        ).all()
    assert "create" in audited and "read" in audited


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"password": "1"}, "password"),
        ({"password": "new.curator"}, "password"),
        ({"password": "qwertyuiop"}, "password"),
        ({"email": "not an address"}, "email"),
        ({"login": "с пробелом"}, "login"),
        ({"role": "curator", "organisation_id": "health"}, "role"),
    ],
)
def test_admin_create_refuses_weak_passwords_and_bad_fields(
    world: World, changes: dict[str, Any], field: str
) -> None:
    body = {
        "login": "new.curator",
        "full_name": "Орлова Нина Петровна",
        "email": "orlova@example.org",
        "role": "curator",
        "organisation_id": world.provider_id,
        **changes,
    }
    if body["organisation_id"] == "health":
        body["organisation_id"] = world.org_ids["health"]
    refused = world.client.post(f"{API}/users", json=body, headers=world.h("admin"))
    assert refused.status_code == 422 and refused.json()["field"] == field, refused.text


def test_admin_changes_email_role_name_and_resets_the_password(world: World) -> None:
    user_id = world.user_ids["specialist"]
    old_session = session_token(world.client, "specialist")
    changed = world.client.patch(
        f"{API}/users/{user_id}",
        json={"email": "sokolov@example.org", "role": "curator", "full_name": "Соколов Дмитрий Олегович"},
        headers=world.h("admin"),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "curator" and changed.json()["email"] == "sokolov@example.org"
    assert me(world.client, old_session) == 401  # a new role: the sessions of the old one end
    newer = session_token(world.client, "specialist")
    reset = world.client.post(f"{API}/users/{user_id}/password", json={}, headers=world.h("admin"))
    assert reset.status_code == 200
    assert me(world.client, newer) == 401
    assert login(world.client, "specialist", "demo").status_code == 401
    assert login(world.client, "specialist", reset.json()["password"]).status_code == 200


def test_admin_lists_only_the_users_of_its_region(world: World) -> None:
    listed = world.client.get(f"{API}/users", headers=world.h("admin"))
    assert listed.status_code == 200
    logins = {u["login"] for u in listed.json()}
    assert "curator" in logins and not any(name.startswith("b_") for name in logins)
    curators = world.client.get(f"{API}/users", params={"role": "curator"}, headers=world.h("admin")).json()
    assert {u["role"] for u in curators} == {"curator"}


@pytest.mark.parametrize("who", ["curator", "head", "rrmc", "analyst", "referrer"])
def test_only_the_admin_administers(world: World, who: str) -> None:
    user_id = world.user_ids["specialist"]
    for method, path, body in [
        ("GET", "/users", None),
        ("GET", f"/users/{user_id}", None),
        (
            "POST",
            "/users",
            {
                "login": "x.y",
                "full_name": "Икс",
                "email": "x@example.org",
                "role": "curator",
                "organisation_id": world.provider_id,
            },
        ),
        ("PATCH", f"/users/{user_id}", {"role": "supervisor"}),
        ("POST", f"/users/{user_id}/disable", None),
        ("POST", f"/users/{user_id}/password", {}),
    ]:
        answer = world.client.request(method, f"{API}{path}", json=body, headers=world.h(who))
        assert answer.status_code == 403, (method, path, answer.text)


def test_an_admin_of_another_region_finds_nothing(world: World) -> None:
    user_id = world.user_ids["specialist"]
    for method, path, body in [
        ("GET", f"/users/{user_id}", None),
        ("PATCH", f"/users/{user_id}", {"email": "x@example.org"}),
        ("POST", f"/users/{user_id}/disable", None),
        ("POST", f"/users/{user_id}/password", {}),
        (
            "POST",
            "/users",
            {
                "login": "x.y",
                "full_name": "Икс",
                "email": "x@example.org",
                "role": "curator",
                "organisation_id": world.provider_id,
            },
        ),
    ]:
        answer = world.client.request(method, f"{API}{path}", json=body, headers=world.h("b_admin"))
        assert answer.status_code == 404, (method, path, answer.text)
    assert login(world.client, "specialist").status_code == 200


def test_an_admin_cannot_lock_itself_out(world: World) -> None:
    admin_id = world.user_ids["admin"]
    assert world.client.post(f"{API}/users/{admin_id}/disable", headers=world.h("admin")).status_code == 409
    demoted = world.client.patch(
        f"{API}/users/{admin_id}", json={"role": "analyst"}, headers=world.h("admin")
    )
    assert demoted.status_code == 409


# A provider's staff, for picking a curator


def test_coordinator_lists_its_providers_curators_without_contacts(world: World) -> None:
    staff = world.client.get(
        f"{API}/organisations/{world.provider_id}/staff",
        params={"role": "curator"},
        headers=world.h("coordinator"),
    )
    assert staff.status_code == 200
    assert staff.json() == [
        {
            "id": world.user_ids["curator"],
            "full_name": "Петрова Анна Викторовна",
            "role": "curator",
            "role_label": "Куратор",
        }
    ]
    everyone = world.client.get(f"{API}/organisations/{world.provider_id}/staff", headers=world.h("head"))
    assert {m["role"] for m in everyone.json()} == {
        "intake_coordinator",
        "curator",
        "specialist",
        "supervisor",
    }
    assert (
        world.client.get(
            f"{API}/organisations/{world.provider_id}/staff", headers=world.h("rrmc")
        ).status_code
        == 200
    )


@pytest.mark.parametrize("who", ["coordinator2", "referrer", "analyst", "b_rrmc", "b_coordinator"])
def test_others_do_not_see_a_providers_staff(world: World, who: str) -> None:
    answer = world.client.get(f"{API}/organisations/{world.provider_id}/staff", headers=world.h(who))
    assert answer.status_code == 404


def test_demo_users_have_e_mail(world: World) -> None:
    assert world.client.get(f"{API}/me", headers=world.h("curator")).json()["email"] == "curator@example.org"


def test_key_files_are_readable_by_the_owner_only(make_client: ClientMaker, settings: Settings) -> None:
    client = make_client(secret_key="", family_link_key="")
    for purpose in Purpose:
        path = keys_of(client).path(purpose)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_attempt_counts_before_its_password_is_checked(settings: Settings) -> None:
    """Parallel guesses cannot outrun the per-login limit: each is counted when admitted, not after
    its failed verification; a success clears the count."""
    throttle = LoginThrottle(settings.model_copy(update={"login_failures_per_login": "3/15 minutes"}))
    assert [throttle.admit("curator", "10.0.0.1") for _ in range(3)] == [None, None, None]
    assert throttle.admit("Curator", "10.0.0.2") is not None  # no failure recorded yet: still refused
    throttle.succeeded("curator")
    assert throttle.admit("curator", "10.0.0.1") is None
