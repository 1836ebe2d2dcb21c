"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the case documents' routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

The documents of a case are read by exactly who reads the case (api/scoping.get_case): the same cells
as GET /api/v1/cases/{case_id}. Both objects are in «Реализация ИПРП», so the ИПРП exists. The
referrer never gets them through the case: its door is through its referral, under the feedback
document's consent rule (api/services/disclosure.py).
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
    "GET /api/v1/referrals/{referral_id}/documents/{kind}.pdf": lambda o, m: (
        "GET",
        f"/referrals/{o.referral_id}/documents/ipr.pdf",
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
    # Through the referral, whoever may see it gets the referring organisation's view: the family of
    # neither object has consented to share (tests/test_case_documents.py gives the consent), so 404
    # for each who sees the referral, as for one who does not.
    "GET /api/v1/referrals/{referral_id}/documents/{kind}.pdf": (
        "401 404 404 404 404 404 404 404 404 403 403 404 404 403"
    ),
}
NOT_IN_MATRIX: dict[str, str] = {}
