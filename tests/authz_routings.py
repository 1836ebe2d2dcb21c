"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for this workflow's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

Each object gets a routing and a consilium of its own, made once through the API by its curator:
x's routing goes to the clinic (`referrer`'s organisation), y's to the social centre (`social`'s),
so each referrer answers the routing addressed to it and sees nothing of the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from models.organisations import Organisation, OrgKind

API = "/api/v1"
SOON = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0).isoformat()


def _curator(o: Any) -> str:
    return "curator" if o.name == "x" else "curator2"


def _target(o: Any, m: Any) -> int:
    """x → the clinic, y → the social centre (both of the first region)."""
    if o.name == "x":
        return int(m.world.org_ids["health"])
    with Session(m.engine) as session:
        found = session.exec(
            select(Organisation.id).where(Organisation.kind == OrgKind.social).order_by(Organisation.id)  # type: ignore[arg-type]
        ).first()
    assert found is not None
    return int(found)


def _made(m: Any) -> dict[str, int]:
    made: dict[str, int] = m.__dict__.setdefault("_routings_and_consilia", {})
    return made


def _routing(o: Any, m: Any) -> int:
    made = _made(m)
    key = f"routing-{o.name}"
    if key not in made:
        response = m.world.client.post(
            f"{API}/cases/{o.case_id}/routings",
            json={"target_org_id": _target(o, m), "kind": "social_services", "purpose": "Оформление пособия"},
            headers=m.world.h(_curator(o)),
        )
        assert response.status_code == 201, response.text
        made[key] = int(response.json()["id"])
    return made[key]


def _consilium(o: Any, m: Any) -> int:
    made = _made(m)
    key = f"consilium-{o.name}"
    if key not in made:
        response = m.world.client.post(
            f"{API}/cases/{o.case_id}/consilia",
            json={
                "scheduled_at": SOON,
                "place": "дистанционно",
                "agenda": "ИПРП",
                "participant_org_ids": [_target(o, m)],
            },
            headers=m.world.h(_curator(o)),
        )
        assert response.status_code == 201, response.text
        made[key] = int(response.json()["id"])
    return made[key]


def _list(o: Any, m: Any) -> tuple[str, str, None, dict[str, Any]]:
    _routing(m.x, m)
    _routing(m.y, m)
    return ("GET", "/routings", None, {"limit": 200})


REQUESTS: dict[str, Any] = {
    "POST /api/v1/cases/{case_id}/routings": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/routings",
        {"target_org_id": _target(o, m), "kind": "doctor_consultation", "purpose": "Консультация невролога"},
        None,
    ),
    "GET /api/v1/cases/{case_id}/routings": lambda o, m: ("GET", f"/cases/{o.case_id}/routings", None, None),
    "GET /api/v1/routings": _list,
    "POST /api/v1/routings/{routing_id}/answer": lambda o, m: (
        "POST",
        f"/routings/{_routing(o, m)}/answer",
        {"outcome_code": "done", "outcome": "Консультация проведена"},
        None,
    ),
    "POST /api/v1/routings/{routing_id}/cancel": lambda o, m: (
        "POST",
        f"/routings/{_routing(o, m)}/cancel",
        {"reason": "Больше не нужно"},
        None,
    ),
    "POST /api/v1/cases/{case_id}/consilia": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/consilia",
        {
            "scheduled_at": SOON,
            "place": "дистанционно",
            "agenda": "ИПРП",
            "participant_org_ids": [_target(o, m)],
        },
        None,
    ),
    "GET /api/v1/cases/{case_id}/consilia": lambda o, m: ("GET", f"/cases/{o.case_id}/consilia", None, None),
    "POST /api/v1/consilia/{consilium_id}/hold": lambda o, m: (
        "POST",
        f"/consilia/{_consilium(o, m)}/hold",
        {"decisions": "Пересмотреть ИПРП", "revise_ipr": True},
        None,
    ),
    "POST /api/v1/consilia/{consilium_id}/cancel": lambda o, m: (
        "POST",
        f"/consilia/{_consilium(o, m)}/cancel",
        {"reason": "Перенесён"},
        None,
    ),
}

# A specialist sees the cases of her teams and of her sessions (api/scoping.py): `specialist` is in
# neither object's team, so she reads their routings and consilia as she reads the case: 404.
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    # The case's curator, coordinator and head route and plan; a specialist, a referrer, the РРМЦ do not.
    "POST /api/v1/cases/{case_id}/routings": (
        "401 403 403 ok/404 ok/404 403 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/cases/{case_id}/routings": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    # The organisation a routing is addressed to lists it (in the minimal form), never the case.
    "GET /api/v1/routings": "401 x- -y x- x- -- x- -y xy 403 403 -- -- 403",
    # Answered by the organisation it went to or by the provider's curator, coordinator, head.
    "POST /api/v1/routings/{routing_id}/answer": (
        "401 ok/404 404/ok ok/404 ok/404 404 ok/404 404/ok 403 403 403 404 404 403"
    ),
    # Cancelled by the provider only; the organisation it went to sees it but cannot cancel it.
    "POST /api/v1/routings/{routing_id}/cancel": (
        "401 403/404 404/403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 404 404 403"
    ),
    "POST /api/v1/cases/{case_id}/consilia": (
        "401 403 403 ok/404 ok/404 403 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "GET /api/v1/cases/{case_id}/consilia": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "POST /api/v1/consilia/{consilium_id}/hold": (
        "401 403 403 ok/404 ok/404 403 ok/404 404/ok 403 403 403 403 404 403"
    ),
    "POST /api/v1/consilia/{consilium_id}/cancel": (
        "401 403 403 ok/404 ok/404 403 ok/404 404/ok 403 403 403 403 404 403"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
