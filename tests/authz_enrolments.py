"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for this workflow's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.

The enrolments are the receiving organisation's door (a ДОО's staff): of the matrix's callers only
`social` works at an organisation that can receive a child (a social-service centre), and neither
object is on its way there, so it sees none and confirms none (404); every other role is refused
(403). A ДОО seeing and confirming its own child is tests/test_adaptation.py's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

REQUESTS: dict[str, Any] = {
    "GET /api/v1/enrolments": lambda o, m: ("GET", "/enrolments", None, None),
    "POST /api/v1/enrolments/{case_id}/confirm": lambda o, m: (
        "POST",
        f"/enrolments/{o.case_id}/confirm",
        {"enrolled_on": date.today().isoformat()},
        None,
    ),
}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    "GET /api/v1/enrolments": "401 403 -- 403 403 403 403 403 403 403 403 403 403 403",
    "POST /api/v1/enrolments/{case_id}/confirm": "401 403 404 403 403 403 403 403 403 403 403 403 403 403",
}
NOT_IN_MATRIX: dict[str, str] = {}
