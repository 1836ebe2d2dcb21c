"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the statistics' routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
The object is its provider: the statistics of x's provider (`provider`) and of y's (`provider2`).
The analyst and the РРМЦ see any provider of their region, another region's РРМЦ none (404); a
provider's head, coordinators and curators see their own provider's only (another one: 404); the
specialist, the referring organisations and the administrators are refused (403).
"""

from __future__ import annotations

from typing import Any

REQUESTS: dict[str, Any] = {
    "GET /api/v1/stats": lambda o, m: (
        "GET",
        "/stats",
        None,
        {"provider_id": o.provider_id, "start": "2025-01-01", "end": "2025-12-31"},
    ),
}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    "GET /api/v1/stats": "401 403 403 ok/404 ok/404 403 ok/404 404/ok ok ok 403 404 404 403",
}
NOT_IN_MATRIX: dict[str, str] = {}
