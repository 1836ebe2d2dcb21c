"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the reports' routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
"""

from __future__ import annotations

from typing import Any

REQUESTS: dict[str, Any] = {}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {}
NOT_IN_MATRIX: dict[str, str] = {}
