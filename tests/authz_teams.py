"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the team and agreement routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
In the matrix's world nobody is in a team and no agreement exists: adding `social` (another
organisation, no agreement) to x's team is refused with 422 for whoever may form the team ("ok"),
so no row changes who sees what; removing member 2 000 000 answers 404 about the member to those who
may form the team — a 404 that the cell cannot tell from scoping's, hence those cells read "404" too;
ending agreement 2 000 000 likewise.
"""

from __future__ import annotations

from datetime import date
from typing import Any

NO_SUCH = 2_000_000


def _team_add(o: Any, m: Any) -> tuple[str, str, dict[str, Any], None]:
    body = {"user_id": m.world.user_ids["social"], "specialist_role": "social_worker"}
    return ("POST", f"/cases/{o.case_id}/team", body, None)


def _agreement(o: Any, m: Any) -> tuple[str, str, dict[str, Any], None]:
    # The partner is the provider itself: refused with 422 for whoever may record agreements.
    body = {
        "provider_id": o.provider_id,
        "partner_org_id": o.provider_id,
        "number": "1",
        "signed_on": date.today().isoformat(),
    }
    return ("POST", "/agreements", body, None)


REQUESTS: dict[str, Any] = {
    "GET /api/v1/cases/{case_id}/team": lambda o, m: ("GET", f"/cases/{o.case_id}/team", None, None),
    "POST /api/v1/cases/{case_id}/team": _team_add,
    "POST /api/v1/cases/{case_id}/team/{member_id}/remove": lambda o, m: (
        "POST",
        f"/cases/{o.case_id}/team/{NO_SUCH}/remove",
        None,
        None,
    ),
    "GET /api/v1/agreements": lambda o, m: ("GET", "/agreements", None, None),
    "POST /api/v1/agreements": _agreement,
    "POST /api/v1/agreements/{agreement_id}/end": lambda o, m: (
        "POST",
        f"/agreements/{NO_SUCH}/end",
        None,
        None,
    ),
}

# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    # Whoever sees the case sees its team (a specialist: hers only, and she is in no team here).
    "GET /api/v1/cases/{case_id}/team": "401 403 403 ok/404 ok/404 404 ok/404 404/ok ok 403 403 404 404 403",
    # The provider's curator, coordinator and head form the team; the РРМЦ reads it.
    "POST /api/v1/cases/{case_id}/team": (
        "401 403 403 ok/404 ok/404 404 ok/404 404/ok 403 403 403 404 404 403"
    ),
    "POST /api/v1/cases/{case_id}/team/{member_id}/remove": (
        "401 403 403 404 404 404 404 404 403 403 403 404 404 403"
    ),
    # Agreements: the region's administrator and the РРМЦ keep them, a provider's head reads its own
    # (here none, and the list is not of cases: every reader answers "ok").
    "GET /api/v1/agreements": "401 403 403 403 403 403 ok 403 ok 403 ok ok 403 ok",
    "POST /api/v1/agreements": "401 403 403 403 403 403 403 403 ok 403 ok ok 403 ok",
    "POST /api/v1/agreements/{agreement_id}/end": "401 403 403 403 403 403 403 403 404 403 404 404 403 404",
}
NOT_IN_MATRIX: dict[str, str] = {}
