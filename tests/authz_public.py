"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the public registry's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
The public registry needs no login: every caller, anonymous or of any role and region, reads the
demo region's providers (x's provider and y's provider2 are both in it) — the same answer for all.
Its keeping is not public: a provider's head and intake coordinator change their own organisation's
free places (another's is 404), the region's administrator any of the region's.
"""

from __future__ import annotations

from typing import Any

REGION = "demo"


def _public(path: str) -> Any:
    return lambda o, m: ("GET", "/public" + path.format(region=REGION, provider_id=o.provider_id), None, None)


_PROVIDER = "/regions/{region}/providers/{provider_id}"

REQUESTS: dict[str, Any] = {
    "GET /api/v1/public/regions": _public("/regions"),
    "GET /api/v1/public/regions/{region_code}/municipalities": _public("/regions/{region}/municipalities"),
    "GET /api/v1/public/regions/{region_code}/providers": _public("/regions/{region}/providers"),
    "GET /api/v1/public/regions/{region_code}/providers.csv": _public("/regions/{region}/providers.csv"),
    "GET /api/v1/public/regions/{region_code}/providers/{org_id}": _public(_PROVIDER),
    "GET /api/v1/public/regions/{region_code}/qr.svg": _public("/regions/{region}/qr.svg"),
    "GET /api/v1/public/regions/{region_code}/qr.png": _public("/regions/{region}/qr.png"),
    "GET /api/v1/public/regions/{region_code}/poster.pdf": _public("/regions/{region}/poster.pdf"),
    "GET /api/v1/public/regions/{region_code}/providers/{org_id}/qr.svg": _public(_PROVIDER + "/qr.svg"),
    "GET /api/v1/public/regions/{region_code}/providers/{org_id}/qr.png": _public(_PROVIDER + "/qr.png"),
    "GET /api/v1/public/regions/{region_code}/providers/{org_id}/poster.pdf": _public(
        _PROVIDER + "/poster.pdf"
    ),
    "PATCH /api/v1/organisations/{org_id}/public": lambda o, m: (
        "PATCH",
        f"/organisations/{o.provider_id}/public",
        {"free_places": 3},
        None,
    ),
}

EVERYONE = " ".join(["ok"] * 14)

# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    **{op: EVERYONE for op in REQUESTS if op.startswith("GET /api/v1/public/")},
    "PATCH /api/v1/organisations/{org_id}/public": (
        "401 403 403 ok/404 403 403 ok/404 404/ok 404 403 ok 404 404 404"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
