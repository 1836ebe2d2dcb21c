"""schemathesis hooks of tests/test_api_properties.py (loaded by `st` through SCHEMATHESIS_HOOKS).

Each request of the run goes as the next role in turn, with that role's API token, so every phase
(boundary values, fuzzing, chains of operations) meets the API as every role. The role is named in
an `X-Test-Role` header, so a failure's `curl` line says which one it was.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

import schemathesis

# role -> API token, from the test.
TOKENS: dict[str, str] = json.loads(os.environ["EARLYHELP_TEST_TOKENS"])
ROLES = itertools.cycle(sorted(TOKENS))
# Logging out revokes the token it is called with: that operation gets a token of its own.
LOGOUT_PATH = "/api/v1/auth/logout"
LOGOUT_TOKEN = os.environ["EARLYHELP_TEST_LOGOUT_TOKEN"]


# No caching (a role per request) and no re-fetch on 401: a 401 is an answer to check, not a cue.
@schemathesis.auth(refresh_interval=None, retry_on=[])
class RoleInTurn:
    def get(self, case: schemathesis.Case, ctx: Any) -> tuple[str, str]:
        if case.operation.path == LOGOUT_PATH:
            return "logout", LOGOUT_TOKEN
        role = next(ROLES)
        return role, TOKENS[role]

    def set(self, case: schemathesis.Case, data: tuple[str, str], ctx: Any) -> None:
        role, token = data
        case.headers["Authorization"] = f"Bearer {token}"
        case.headers["X-Test-Role"] = role
