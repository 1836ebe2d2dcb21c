"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the case documents' routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

The documents of a case are read by exactly who reads the case (api/scoping.get_case): the same cells
as GET /api/v1/cases/{case_id}. Both objects are in «Реализация ИПРП», so the ИПРП exists; the
referrer's door to the conclusion and the ИПРП is its referral's feedback (the family's consent
applies there), never the case.
"""

from __future__ import annotations

from typing import Any

REQUESTS: dict[str, Any] = {
    "GET /api/v1/cases/{case_id}/documents": lambda o, m: (
        "GET",
        f"/cases/{o.case_id}/documents",
        None,
        None,
    ),
    "GET /api/v1/cases/{case_id}/documents/{kind}.pdf": lambda o, m: (
        "GET",
        f"/cases/{o.case_id}/documents/ipr.pdf",
        None,
        None,
    ),
}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    "GET /api/v1/cases/{case_id}/documents": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
    "GET /api/v1/cases/{case_id}/documents/{kind}.pdf": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
