"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for this workflow's routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
"""

from __future__ import annotations

from typing import Any

REQUESTS: dict[str, Any] = {}
MATRIX: dict[str, str] = {}
NOT_IN_MATRIX: dict[str, str] = {}
