"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for this workflow's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

Each object gets one transfer request, made once through the API when a row first needs it: x's
from `provider` to `provider2` (by its head), y's from `provider2` to `provider` (by coordinator2).
The mutations leave the other rows alone: a second request is 409 (one pending per case), accepting
names the sending provider's curator (422: not the receiver's), refusing gives a blank reason (422),
and withdrawing (the last row in sorted order) ends each request, 409 for whoever comes next.
"""

from __future__ import annotations

from datetime import date
from typing import Any

API = "/api/v1"


def _made(m: Any) -> dict[str, int]:
    made: dict[str, int] = m.__dict__.setdefault("_transfers", {})
    return made


def _receiver(o: Any, m: Any) -> int:
    return int(m.world.org_ids["provider2" if o.name == "x" else "provider"])


def _body(o: Any, m: Any) -> dict[str, Any]:
    return {
        "to_provider_id": _receiver(o, m),
        "reason": "Семья переехала",
        "consent": {"date": date.today().isoformat(), "document_ref": "Согласие № 4"},
    }


def _transfer(o: Any, m: Any) -> int:
    made = _made(m)
    if not made:
        for obj, who in ((m.x, "head"), (m.y, "coordinator2")):
            response = m.world.client.post(
                f"{API}/cases/{obj.case_id}/transfers", json=_body(obj, m), headers=m.world.h(who)
            )
            assert response.status_code == 201, response.text
            made[obj.name] = int(response.json()["id"])
    return made[o.name]


def _list(o: Any, m: Any) -> tuple[str, str, None, dict[str, Any]]:
    _transfer(o, m)  # both requests exist before anyone lists them
    return ("GET", "/transfers", None, {"limit": 200})


def _again(o: Any, m: Any) -> tuple[str, str, dict[str, Any], None]:
    _transfer(o, m)  # a pending request exists: a second one is 409
    return ("POST", f"/cases/{o.case_id}/transfers", _body(o, m), None)


REQUESTS: dict[str, Any] = {
    "GET /api/v1/transfers": _list,
    "GET /api/v1/transfers/{transfer_id}": lambda o, m: ("GET", f"/transfers/{_transfer(o, m)}", None, None),
    "POST /api/v1/cases/{case_id}/transfers": _again,
    "POST /api/v1/transfers/{transfer_id}/accept": lambda o, m: (
        "POST",
        f"/transfers/{_transfer(o, m)}/accept",
        {"curator_id": o.curator_id},
        None,
    ),
    "POST /api/v1/transfers/{transfer_id}/refuse": lambda o, m: (
        "POST",
        f"/transfers/{_transfer(o, m)}/refuse",
        {"reason": "   "},
        None,
    ),
    "POST /api/v1/transfers/{transfer_id}/withdraw": lambda o, m: (
        "POST",
        f"/transfers/{_transfer(o, m)}/withdraw",
        {"reason": "Семья передумала"},
        None,
    ),
}

# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    # Coordinators and heads see their provider's transfers both ways, curators the outgoing ones,
    # the РРМЦ its region's; specialists, referrers, analysts and administrators none.
    "GET /api/v1/transfers": "401 403 403 xy x- 403 xy xy xy 403 403 -- -- 403",
    "GET /api/v1/transfers/{transfer_id}": "401 403 403 ok ok/404 403 ok ok ok 403 403 404 404 403",
    # The case's own provider (coordinator, curator, head) or the region's РРМЦ. The specialist
    # reads only the cases of her teams and sessions (api/scoping.py): x is neither, so 404.
    "POST /api/v1/cases/{case_id}/transfers": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    # The receiving provider's coordinator or head only.
    "POST /api/v1/transfers/{transfer_id}/accept": (
        "401 403 403 403/ok 403/404 403 403/ok ok/403 403 403 403 404 404 403"
    ),
    "POST /api/v1/transfers/{transfer_id}/refuse": (
        "401 403 403 403/ok 403/404 403 403/ok ok/403 403 403 403 404 404 403"
    ),
    # The requesting side: its coordinator, curator or head, or the РРМЦ.
    "POST /api/v1/transfers/{transfer_id}/withdraw": (
        "401 403 403 ok/403 ok/404 403 ok/403 403/ok ok 403 403 404 404 403"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
