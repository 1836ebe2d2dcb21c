"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the target-group registry's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

The named registry: the РРМЦ reads its region's children, a provider's head and intake coordinator
their provider's; the curator, the specialist, the analyst (counts only), referrers and the
administrator are refused (403). The review list, «разные дети» and the merge: the РРМЦ and a
provider's head (for children of his provider only). The merge rows ask to merge the object's child
into itself: an authorised caller gets 422 about the request, never a change to the matrix's world.
The rows about one merge and one «разные дети» mark use a pair of extra children seeded at the
object's provider (tests/registry_seed.py), merged once by its head (x) or the РРМЦ (y).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel import Session, select

from models.organisations import Organisation
from models.registry import DistinctChildren
from tests.registry_seed import seed_child

# Per matrix (its engine) and object: the extra pair's child ids and the merge's id.
_EXTRA: dict[tuple[int, str], dict[str, int]] = {}


def _extra(o: Any, m: Any) -> dict[str, int]:
    key = (id(m.engine), o.name)
    if key not in _EXTRA:
        user = m.world.user_ids["coordinator" if o.name == "x" else "coordinator2"]
        birth = date.today() - timedelta(days=700)
        first = seed_child(
            m.engine,
            provider_id=o.provider_id,
            referrer_org_id=None,
            user_id=user,
            last="Дублева",
            first=f"Ира{o.name}",
            birth=birth,
            state="rejected",
        )
        second = seed_child(
            m.engine,
            provider_id=o.provider_id,
            referrer_org_id=None,
            user_id=user,
            last="Дублева",
            first=f"Ира{o.name}",
            birth=birth,
            state="completed",
        )
        third = seed_child(
            m.engine,
            provider_id=o.provider_id,
            referrer_org_id=None,
            user_id=user,
            last="Разнова",
            first=f"Вера{o.name}",
            birth=birth,
            state="completed",
        )
        merger = "head" if o.name == "x" else "rrmc"
        response = m.world.client.post(
            "/api/v1/registry/merges",
            json={"keep_child_id": first.child_id, "merge_child_id": second.child_id, "reason": "Дубль"},
            headers=m.world.h(merger),
        )
        assert response.status_code == 201, response.text
        _EXTRA[key] = {"merge_id": response.json()["id"], "third": third.child_id, "org": o.provider_id}
    return _EXTRA[key]


def _distinct(o: Any, m: Any) -> int:
    """A «разные дети» mark on (the object's child, the extra third child), made again if a previous
    cell removed it; marked by the object's provider (its head removes it, or the РРМЦ)."""
    extra = _extra(o, m)
    low, high = sorted((o.child_id, extra["third"]))
    with Session(m.engine) as session:
        row = session.exec(
            select(DistinctChildren).where(
                DistinctChildren.child_low_id == low, DistinctChildren.child_high_id == high
            )
        ).first()
        if row is None:
            org = session.get(Organisation, o.provider_id)
            assert org is not None
            row = DistinctChildren(
                region_id=org.region_id,
                child_low_id=low,
                child_high_id=high,
                marked_by_id=m.world.user_ids["head" if o.name == "x" else "coordinator2"],
                organisation_id=o.provider_id,
            )
            session.add(row)
            session.commit()
        return row.id or 0


REQUESTS: dict[str, Any] = {
    "GET /api/v1/registry/children": lambda o, m: ("GET", "/registry/children", None, {"per_page": 100}),
    "GET /api/v1/registry/duplicates": lambda o, m: ("GET", "/registry/duplicates", None, None),
    "POST /api/v1/registry/distinct-pairs": lambda o, m: (
        "POST",
        "/registry/distinct-pairs",
        {"first_child_id": o.child_id, "second_child_id": o.child_id},
        None,
    ),
    "DELETE /api/v1/registry/distinct-pairs/{distinct_id}": lambda o, m: (
        "DELETE",
        f"/registry/distinct-pairs/{_distinct(o, m)}",
        None,
        None,
    ),
    "POST /api/v1/registry/merges": lambda o, m: (
        "POST",
        "/registry/merges",
        {"keep_child_id": o.child_id, "merge_child_id": o.child_id, "reason": "Проверка"},
        None,
    ),
    "GET /api/v1/registry/merges": lambda o, m: ("GET", "/registry/merges", None, None),
    "GET /api/v1/registry/merges/{merge_id}": lambda o, m: (
        "GET",
        f"/registry/merges/{_extra(o, m)['merge_id']}",
        None,
        None,
    ),
    # The first authorised caller undoes it; the next one gets 409 (already undone): both "ok".
    "POST /api/v1/registry/merges/{merge_id}/undo": lambda o, m: (
        "POST",
        f"/registry/merges/{_extra(o, m)['merge_id']}/undo",
        {"reason": "Проверка"},
        None,
    ),
}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    "GET /api/v1/registry/children": "401 403 403 x- 403 403 x- -y xy 403 403 -- -- 403",
    "GET /api/v1/registry/duplicates": "401 403 403 403 403 403 ok 403 ok 403 403 ok 403 403",
    "POST /api/v1/registry/distinct-pairs": "401 403 403 403 403 403 ok/404 403 ok 403 403 404 403 403",
    # A mark is its organisation's (the head's for x, provider2's for y) or the region's РРМЦ's.
    "DELETE /api/v1/registry/distinct-pairs/{distinct_id}": (
        "401 403 403 403 403 403 ok/404 403 ok 403 403 404 403 403"
    ),
    "POST /api/v1/registry/merges": "401 403 403 403 403 403 ok/404 403 ok 403 403 404 403 403",
    "GET /api/v1/registry/merges": "401 403 403 403 403 403 ok 403 ok 403 403 ok 403 403",
    # x's merge was made by the provider's head, y's by the РРМЦ: a head sees his organisation's.
    "GET /api/v1/registry/merges/{merge_id}": "401 403 403 403 403 403 ok/404 403 ok 403 403 404 403 403",
    "POST /api/v1/registry/merges/{merge_id}/undo": (
        "401 403 403 403 403 403 ok/404 403 ok 403 403 404 403 403"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
