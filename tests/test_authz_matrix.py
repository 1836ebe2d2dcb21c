"""The authorisation matrix: every role × every operation × an object of its own organisation and of
another one, each cell's answer written down.

The operations come from the app's OpenAPI (generated from its routes): a new route without its row
here fails `test_every_operation_has_a_row`, so nobody adds a door without deciding who may pass it.

Two objects, each a case in «Реализация ИПРП» with a planned session:
- x: referred by `referrer` (a clinic) to `provider` (coordinator, curator, specialist, head);
- y: referred by `social` (a social-protection centre) to `provider2` (coordinator2).
Each cell is one of
- ``ok``: the request passed authorisation and scoping (2xx, or 409/422 about the request itself);
- a status (401, 403, 404, …): exactly that answer, and nothing changed;
- for lists, which of the two objects the caller sees: ``xy``, ``x-``, ``-y``, ``--``.
A cell ``a/b`` gives the answer for x, then for y; a single value holds for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from models.audit import AuditLog
from models.cases import Case
from tests import (
    authz_documents,
    authz_enrolments,
    authz_public,
    authz_registry,
    authz_reports,
    authz_routings,
    authz_stats,
    authz_teams,
    authz_transfers,
)
from tests.test_journey import ipr_payload, need_payload
from tests.world import API, World

# The callers, in the order of the matrix's columns. `anon` sends no token; `b_*` are of another region.
ROLES = (
    "anon",
    "referrer",
    "social",
    "coordinator",
    "curator",
    "specialist",
    "head",
    "coordinator2",
    "rrmc",
    "analyst",
    "admin",
    "b_rrmc",
    "b_coordinator",
    "b_admin",
)


@dataclass
class Obj:
    """One child's case at one provider, with the ids a request may need."""

    name: str
    case_id: int
    child_id: int
    referral_id: int
    session_id: int
    provider_id: int
    curator_id: int
    # A specialist of the provider, for the administration rows (disabled and enabled again there).
    user_id: int
    # A referral of the same child under another name, waiting for the provider to confirm the match.
    match_referral_id: int


# method, url, json (or a str: a CSV file, sent as text/csv), params
Request = tuple[str, str, dict[str, Any] | str | None, dict[str, Any] | None]
Builder = Callable[[Obj, "Matrix"], Request]


@dataclass
class Matrix:
    world: World
    engine: Engine
    x: Obj
    y: Obj
    logins: list[int]

    def refusals(self) -> int:
        with Session(self.engine) as session:
            query = select(func.count()).select_from(AuditLog).where(AuditLog.action == "refused")
            return session.exec(query).one()

    def new_login(self) -> str:
        self.logins.append(len(self.logins) + 1)
        return f"matrix-user-{len(self.logins)}"

    def version(self, case_id: int) -> int:
        with Session(self.engine) as session:
            case = session.exec(select(Case).where(Case.id == case_id)).one()
            return case.version


SOON = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0).isoformat()
TODAY = date.today().isoformat()


def _get(path: str, **params: Any) -> Builder:
    return lambda o, m: ("GET", path.format(**vars(o)), None, params or None)


# How to call each operation on an object. Mutations are chosen so that a second authorised caller
# gets an answer about the request (409/422), never one about itself.
REQUESTS: dict[str, Builder] = {
    "GET /api/v1/me": _get("/me"),
    "GET /api/v1/journey": _get("/journey"),
    "GET /api/v1/journey.mermaid": _get("/journey.mermaid"),
    "GET /api/v1/standard": _get("/standard"),
    "GET /api/v1/organisations": _get("/organisations"),
    "POST /api/v1/referrals": lambda o, m: (
        "POST",
        "/referrals",
        m.world.referral_body(provider_id=o.provider_id),
        None,
    ),
    "GET /api/v1/referrals": _get("/referrals", limit=200),
    "GET /api/v1/referrals/{referral_id}": _get("/referrals/{referral_id}"),
    "GET /api/v1/referrals/{referral_id}/feedback": _get("/referrals/{referral_id}/feedback"),
    "GET /api/v1/children": _get("/children", q="Ёжикова", limit=100),
    "GET /api/v1/children/{child_id}": _get("/children/{child_id}"),
    "POST /api/v1/children/{child_id}/consents": lambda o, m: (
        "POST",
        f"/children/{o.child_id}/consents",
        {"kind": "messages", "date": TODAY, "document_ref": "Согласие № 7"},
        None,
    ),
    "GET /api/v1/children/{child_id}/consents": _get("/children/{child_id}/consents"),
    "GET /api/v1/cases": _get("/cases", limit=200),
    "GET /api/v1/cases/{case_id}": _get("/cases/{case_id}"),
    "PATCH /api/v1/cases/{case_id}": lambda o, m: (
        "PATCH",
        f"/cases/{o.case_id}",
        {"version": m.version(o.case_id), "curator_id": o.curator_id},
        None,
    ),
    "POST /api/v1/cases/{case_id}/events/{event}": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/events/start_assessment",
        {"version": m.version(o.case_id), "payload": {"kind": "intermediate"}},
        None,
    ),
    "POST /api/v1/cases/{case_id}/contact-attempts": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/contact-attempts",
        {"at": datetime.now(UTC).isoformat(), "channel": "phone", "successful": True},
        None,
    ),
    "GET /api/v1/cases/{case_id}/contact-attempts": _get("/cases/{case_id}/contact-attempts"),
    "POST /api/v1/cases/{case_id}/sessions": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/sessions",
        {"service_code": "motor_development", "scheduled_at": SOON},
        None,
    ),
    "GET /api/v1/cases/{case_id}/sessions": _get("/cases/{case_id}/sessions"),
    "GET /api/v1/cases/{case_id}/ipr": _get("/cases/{case_id}/ipr"),
    "PATCH /api/v1/cases/{case_id}/sessions/{session_id}": lambda o, m: (
        "PATCH",
        f"/cases/{o.case_id}/sessions/{o.session_id}",
        {"status": "cancelled", "notes": "Семья попросила перенести"},
        None,
    ),
    "GET /api/v1/overdue": _get("/overdue", due_within_days=365, limit=200),
    "GET /api/v1/stats/cases": _get("/stats/cases"),
    "POST /api/v1/referrals/{referral_id}/match": lambda o, m: (
        "POST",
        f"/referrals/{o.match_referral_id}/match",
        {"decision": "confirm"},
        None,
    ),
    "GET /api/v1/users": _get("/users"),
    "POST /api/v1/users": lambda o, m: (
        "POST",
        "/users",
        {
            "login": m.new_login(),
            "full_name": "Орлова Вера Павловна",
            "email": "orlova@example.org",
            "role": "specialist",
            "organisation_id": o.provider_id,
        },
        None,
    ),
    "GET /api/v1/users/{user_id}": _get("/users/{user_id}"),
    "PATCH /api/v1/users/{user_id}": lambda o, m: (
        "PATCH",
        f"/users/{o.user_id}",
        {"full_name": "Орлова Вера Петровна"},
        None,
    ),
    # Disabled, then enabled again in the next row (sorted order): the spare user, nobody the other
    # rows call as.
    "POST /api/v1/users/{user_id}/disable": lambda o, m: ("POST", f"/users/{o.user_id}/disable", None, None),
    "POST /api/v1/users/{user_id}/enable": lambda o, m: ("POST", f"/users/{o.user_id}/enable", None, None),
    "POST /api/v1/users/{user_id}/password": lambda o, m: (
        "POST",
        f"/users/{o.user_id}/password",
        {},
        None,
    ),
    "GET /api/v1/organisations/{org_id}/staff": _get("/organisations/{provider_id}/staff", role="curator"),
    "POST /api/v1/organisations": lambda o, m: (
        "POST",
        "/organisations",
        {"name": f"Поликлиника {m.new_login()}", "kind": "health"},
        None,
    ),
    "PATCH /api/v1/organisations/{org_id}": lambda o, m: (
        "PATCH",
        f"/organisations/{o.provider_id}",
        {"phone": "+7 800 000-00-09"},
        None,
    ),
    "POST /api/v1/organisations/import": lambda o, m: (
        "POST",
        "/organisations/import",
        f"Название;Вид\nПоликлиника {m.new_login()};health\n",
        None,
    ),
}

# Operations outside the matrix, and why.
NOT_IN_MATRIX = {
    "POST /api/v1/auth/login": "the door itself: tested in test_accounts.py",
    "POST /api/v1/auth/logout": "ends the caller's own token, nobody else's: tested in test_accounts.py",
}

# Each row: one cell per role of ROLES, in that order.
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
# The specialist sees the cases of her teams and of the sessions she gives (api/scoping.py); here she
# is in no team and gives no session, so x is as closed to her as y (tests/test_teams.py opens it).
MATRIX: dict[str, str] = {
    "GET /api/v1/me": "401 ok ok ok ok ok ok ok ok ok ok ok ok ok",
    "GET /api/v1/journey": "ok ok ok ok ok ok ok ok ok ok ok ok ok ok",
    "GET /api/v1/journey.mermaid": "ok ok ok ok ok ok ok ok ok ok ok ok ok ok",
    # The region's standard holds no personal data: every signed-in user reads their region's.
    "GET /api/v1/standard": "401 ok ok ok ok ok ok ok ok ok ok ok ok ok",
    "GET /api/v1/organisations": "401 ok ok ok ok ok ok ok ok ok ok ok ok ok",
    # Referrers refer to any provider of their region; a provider registers a parent's own request.
    "POST /api/v1/referrals": "401 ok ok 403 403 403 403 403 403 403 403 403 403 403",
    "GET /api/v1/referrals": "401 x- -y x- x- -- x- -y xy 403 403 -- -- 403",
    "GET /api/v1/referrals/{referral_id}": (
        "401 ok/404 404/ok ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "GET /api/v1/referrals/{referral_id}/feedback": (
        "401 ok/404 404/ok ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "GET /api/v1/children": "401 403 403 x- x- -- x- -y xy 403 403 -- -- 403",
    "GET /api/v1/children/{child_id}": ("401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"),
    "POST /api/v1/children/{child_id}/consents": (
        "401 403 403 ok/404 ok/404 403 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/children/{child_id}/consents": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "GET /api/v1/cases": "401 403 403 x- x- -- x- -y xy 403 403 -- -- 403",
    "GET /api/v1/cases/{case_id}": "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403",
    "PATCH /api/v1/cases/{case_id}": "401 403 403 ok/404 403 403 ok/404 404/ok 403 403 403 403 404 403",
    # The event is start_assessment: the curator's and the head's, not the coordinator's.
    "POST /api/v1/cases/{case_id}/events/{event}": (
        "401 403 403 403/404 ok/404 404 ok/404 404/403 403 403 403 404 404 403"
    ),
    "POST /api/v1/cases/{case_id}/contact-attempts": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/cases/{case_id}/contact-attempts": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "POST /api/v1/cases/{case_id}/sessions": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/cases/{case_id}/sessions": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "PATCH /api/v1/cases/{case_id}/sessions/{session_id}": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/cases/{case_id}/ipr": ("401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"),
    "GET /api/v1/overdue": "401 403 403 x- x- -- x- -y xy 403 403 -- -- 403",
    # A referral waiting for its match to be confirmed: the provider serving the child decides.
    "POST /api/v1/referrals/{referral_id}/match": (
        "401 403/404 404/403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 404 404 403"
    ),
    # Administration: the region's administrator only; another region's sees nothing.
    "GET /api/v1/users": "401 403 403 403 403 403 403 403 403 403 xy 403 403 --",
    "POST /api/v1/users": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "GET /api/v1/users/{user_id}": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "PATCH /api/v1/users/{user_id}": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "POST /api/v1/users/{user_id}/disable": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "POST /api/v1/users/{user_id}/enable": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "POST /api/v1/users/{user_id}/password": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    # A provider's staff (names and roles) for picking a curator: its own staff and the region's РРМЦ.
    "GET /api/v1/organisations/{org_id}/staff": (
        "401 404 404 ok/404 ok/404 ok/404 ok/404 404/ok ok 404 ok 404 404 404"
    ),
    # The registry of organisations: each region's administrator keeps its own region's.
    "POST /api/v1/organisations": "401 403 403 403 403 403 403 403 403 403 ok 403 403 ok",
    "PATCH /api/v1/organisations/{org_id}": "401 403 403 403 403 403 403 403 403 403 ok 403 403 404",
    "POST /api/v1/organisations/import": "401 403 403 403 403 403 403 403 403 403 ok 403 403 ok",
    # Counts only: a provider's staff see their own organisation's, the РРМЦ and analysts the region's.
    "GET /api/v1/stats/cases": "401 403 403 ok ok ok ok ok ok ok 403 ok ok 403",
}


# The workflows' rows live beside their tests (one module each, so their owners do not collide).
for _rows in (
    authz_transfers,
    authz_routings,
    authz_teams,
    authz_enrolments,
    authz_public,
    authz_registry,
    authz_stats,
    authz_reports,
    authz_documents,
):
    assert not (_rows.REQUESTS.keys() & REQUESTS.keys()), "a row defined twice"
    REQUESTS.update(_rows.REQUESTS)
    MATRIX.update(_rows.MATRIX)
    NOT_IN_MATRIX.update(_rows.NOT_IN_MATRIX)


def operations(app: FastAPI) -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


def test_every_operation_has_a_row(app: FastAPI) -> None:
    ops = operations(app)
    missing = sorted(ops - MATRIX.keys() - NOT_IN_MATRIX.keys())
    stale = sorted((MATRIX.keys() | NOT_IN_MATRIX.keys()) - ops)
    assert not missing, f"operations without a row in the authorisation matrix: {missing}"
    assert not stale, f"rows for operations the app no longer has: {stale}"
    assert MATRIX.keys() == REQUESTS.keys()
    for op, row in MATRIX.items():
        assert len(row.split()) == len(ROLES), f"{op}: {len(row.split())} cells for {len(ROLES)} roles"


def _object(world: World, name: str, referrer: str, provider: str, coordinator: str, curator: str) -> Obj:
    body = world.referral_body(provider_id=world.org_ids[provider])
    response = world.client.post(f"{API}/referrals", json=body, headers=world.h(referrer))
    assert response.status_code == 201, response.text
    referral = response.json()
    case_id = int(referral["case_id"])
    world.advance(case_id, "accept", {"curator_id": world.user_ids[curator]}, who=coordinator)
    world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who=coordinator)
    world.advance(case_id, "approve_ipr", ipr_payload(), who=curator)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": SOON},
        headers=world.h(curator),
    )
    assert planned.status_code == 201, planned.text
    # The same СНИЛС under another first name: not linked silently, the serving provider decides.
    body["child"]["first_name"] = "Другая"
    match = world.client.post(f"{API}/referrals", json=body, headers=world.h(referrer))
    assert match.status_code == 201 and match.json()["status"] == "registered", match.text
    spare = world.client.post(
        f"{API}/users",
        json={
            "login": f"spare-{name}",
            "full_name": "Запасова Нина Ивановна",
            "email": f"spare-{name}@example.org",
            "role": "specialist",
            "organisation_id": world.org_ids[provider],
        },
        headers=world.h("admin"),
    )
    assert spare.status_code == 201, spare.text
    return Obj(
        name=name,
        case_id=case_id,
        child_id=int(referral["child_id"]),
        referral_id=int(referral["id"]),
        session_id=int(planned.json()["id"]),
        provider_id=world.org_ids[provider],
        curator_id=world.user_ids[curator],
        user_id=int(spare.json()["user"]["id"]),
        match_referral_id=int(match.json()["id"]),
    )


@pytest.fixture
def matrix(world: World, engine: Engine) -> Matrix:
    x = _object(world, "x", "referrer", "provider", "coordinator", "curator")
    y = _object(world, "y", "social", "provider2", "coordinator2", "curator2")
    return Matrix(world=world, engine=engine, x=x, y=y, logins=[])


def _listed(body: Any, obj: Obj, op: str) -> bool:
    items = body["items"] if isinstance(body, dict) else body
    path = op.split(" ")[1]
    if path.endswith("/referrals"):
        return any(item["id"] == obj.referral_id for item in items)
    if path.endswith("/children"):
        return any(item["id"] == obj.child_id for item in items)
    if path.endswith("/users"):
        return any(item["id"] == obj.user_id for item in items)
    return any(item["case_id" if "case_id" in item else "id"] == obj.case_id for item in items)


def _cell(matrix: Matrix, op: str, role: str, obj: Obj) -> str:
    method, path, body, params = REQUESTS[op](obj, matrix)
    headers = {} if role == "anon" else matrix.world.h(role)
    refused_before = matrix.refusals()
    if isinstance(body, str):  # a file upload (POST /organisations/import)
        headers = {**headers, "Content-Type": "text/csv"}
        response = matrix.world.client.request(
            method, API + path, content=body.encode(), params=params, headers=headers
        )
    else:
        response = matrix.world.client.request(method, API + path, json=body, params=params, headers=headers)
    status = response.status_code
    assert status < 500, f"{op} as {role}: {status} {response.text}"
    if status in (403, 404) and role != "anon":
        # Every refused attempt of a known caller is in the audit log (DESIGN §6).
        assert matrix.refusals() == refused_before + 1, f"{op} as {role}: {status} left no audit row"
    if status >= 400 and status not in (409, 422):
        return str(status)
    return "ok"


def _row(matrix: Matrix, op: str) -> list[str]:
    observed: list[str] = []
    for role, expected in zip(ROLES, MATRIX[op].split(), strict=True):
        if expected in ("xy", "x-", "-y", "--"):
            method, path, body, params = REQUESTS[op](matrix.x, matrix)
            headers = {} if role == "anon" else matrix.world.h(role)
            response = matrix.world.client.request(
                method, API + path, json=body, params=params, headers=headers
            )
            assert response.status_code == 200, f"{op} as {role}: {response.status_code} {response.text}"
            data = response.json()
            seen_x, seen_y = _listed(data, matrix.x, op), _listed(data, matrix.y, op)
            cell = ("x" if seen_x else "-") + ("y" if seen_y else "-")
        else:
            x, y = _cell(matrix, op, role, matrix.x), _cell(matrix, op, role, matrix.y)
            cell = x if x == y and "/" not in expected else f"{x}/{y}"
        observed.append(cell)
    return observed


def test_authorisation_matrix(matrix: Matrix) -> None:
    """One world for all rows (building one per row costs ~2 s each): the mutations of REQUESTS
    leave both objects visible to the same callers, so the rows do not depend on their order."""
    problems = []
    for op in sorted(MATRIX):
        observed = _row(matrix, op)
        wrong = [
            f"{role}: expected {want}, got {got}"
            for role, want, got in zip(ROLES, MATRIX[op].split(), observed, strict=True)
            if want != got
        ]
        if wrong:
            problems.append(f"{op}\n    " + "\n    ".join(wrong) + f"\n    observed: {' '.join(observed)!r}")
    assert not problems, "\n".join(problems)
