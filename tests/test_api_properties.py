"""A property-based run of the whole API (schemathesis) against the OpenAPI the app serves, as
every role: no answer is a server error, and every answer has a status, content type, headers and
body that the OpenAPI documents for its operation (all of schemathesis's checks).

The app runs in a real uvicorn on loopback (the `server_url` fixture), on SQLite and on PostgreSQL.
Each request goes as the next role in turn (tests/schemathesis_hooks.py), through all of
schemathesis's phases: boundary values of every field (coverage), generated data (fuzzing) and
chains of operations fed by the ids they return (stateful). The run is bounded (a few generated
examples per operation) and deterministic (tests/schemathesis.toml), so CI is stable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.openapi import NO_CONTROL_CHARACTERS
from api.security import new_api_token
from core.db import session_scope
from models.users import ApiToken
from tests.world import World

HERE = Path(__file__).parent
ST = Path(sys.executable).with_name("st")
ROLES = ["referrer", "coordinator", "curator", "specialist", "head", "rrmc", "analyst", "admin"]
EXAMPLES_PER_OPERATION = 5


def seed_data(world: World) -> None:
    """Rows for the ids the run tries: referrals, and cases in a few states."""
    for _ in range(2):
        world.refer()
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")


def spare_token(engine: Engine, world: World) -> str:
    """A token of its own for POST /auth/logout, which revokes it."""
    token, digest = new_api_token()
    with session_scope(engine) as session:
        session.add(ApiToken(user_id=world.user_ids["curator"], name="logout", token_hash=digest))
    return token


def test_api_answers_as_documented(server_url: str, engine: Engine, world: World, tmp_path: Path) -> None:
    seed_data(world)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"),
        "EARLYHELP_TEST_TOKENS": json.dumps({role: world.tokens[role] for role in ROLES}),
        "EARLYHELP_TEST_LOGOUT_TOKEN": spare_token(engine, world),
    }
    command = [
        str(ST),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server_url}/openapi.json",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-40_000:] + result.stderr[-5000:]
    print(result.stdout[-2500:])  # the summary, with `pytest -s`


def test_openapi_documents_every_error_with_the_error_shape(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components and "ValidationError" not in components
    assert {"error", "message", "field"} <= set(components["ErrorOut"]["required"])
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            answers = operation["responses"]
            expected = {"422", "503"}
            if operation.get("security"):
                expected.add("401")
            if "requestBody" in operation:
                expected |= {"413", "415"}
            assert expected <= answers.keys(), where
            for status, answer in answers.items():
                if status.startswith(("4", "5")):
                    json_schema = answer["content"]["application/json"]["schema"]
                    assert json_schema == {"$ref": "#/components/schemas/ErrorOut"}, (where, status)
            assert "Retry-After" in answers["503"]["headers"], where


def test_openapi_strings_of_requests_refuse_control_characters(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    login = schema["components"]["schemas"]["LoginIn"]["properties"]["login"]
    assert login["pattern"] == NO_CONTROL_CHARACTERS
    case_filters = schema["paths"]["/api/v1/children"]["get"]["parameters"]
    q = next(p for p in case_filters if p["name"] == "q")
    assert {"type": "string", "maxLength": 200, "pattern": NO_CONTROL_CHARACTERS} in q["schema"]["anyOf"]
