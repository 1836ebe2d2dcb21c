"""The audit log (DESIGN §6, issue 9 "Audit"): refused attempts leave a trace, no write path can
change or empty the log on either database, the client's address is not taken from any client's
X-Forwarded-For, and the operator exports a period as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from api.main import create_app
from core.config import Settings
from models.audit import AuditLog
from tests.world import API, World

EARLYHELP = str(Path(sys.executable).parent / "earlyhelp")


def audit_rows(engine: Engine, **where: Any) -> list[AuditLog]:
    with Session(engine) as session:
        query = select(AuditLog).order_by(col(AuditLog.id))
        for name, value in where.items():
            query = query.where(getattr(AuditLog, name) == value)
        return list(session.exec(query))


@pytest.fixture
def referral(world: World) -> dict[str, Any]:
    return world.refer()


def test_refused_reads_and_writes_of_a_child_are_audited(
    world: World, engine: Engine, referral: dict[str, Any]
) -> None:
    case_id, child_id = referral["case_id"], referral["child_id"]
    attempts = [
        # (who, method, path, body, status, entity, entity_id)
        ("coordinator2", "GET", f"{API}/cases/{case_id}", None, 404, "case", case_id),
        ("referrer", "GET", f"{API}/cases/{case_id}", None, 403, "case", case_id),
        ("b_rrmc", "GET", f"{API}/children/{child_id}", None, 404, "child", child_id),
        ("b_referrer", "GET", f"{API}/referrals/{referral['id']}", None, 404, "referral", referral["id"]),
        ("analyst", "GET", f"{API}/children?q=Ёжикова", None, 403, "child", None),
        (
            "coordinator2",
            "POST",
            f"{API}/cases/{case_id}/events/suspend",
            {"version": 1, "reason": "болезнь"},
            404,
            "case",
            case_id,
        ),
    ]
    for who, method, path, body, status, *_ in attempts:
        response = world.client.request(method, path, json=body, headers=world.h(who))
        assert response.status_code == status, (who, path, response.text)

    refused = audit_rows(engine, action="refused")
    assert len(refused) == len(attempts)
    for row, (who, method, path, _, status, entity, entity_id) in zip(refused, attempts, strict=True):
        assert row.user_id == world.user_ids[who]
        assert row.organisation_id is not None
        assert (row.status, row.entity, row.entity_id) == (status, entity, entity_id)
        # The path without its query string: a search by name stays out of the log.
        assert row.path == f"{method} {path.split('?')[0]}"
        assert row.client_ip
        if entity_id is not None:  # a refused id is traced to its child
            assert row.child_id == child_id
    assert all("Ёжикова" not in (r.path or "") for r in refused)


def test_refusal_row_survives_the_rolled_back_request(
    world: World, engine: Engine, referral: dict[str, Any]
) -> None:
    """A refused write rolls its transaction back; the audit row has one of its own."""
    before = len(audit_rows(engine))
    response = world.client.patch(
        f"{API}/cases/{referral['case_id']}",
        json={"curator_id": world.user_ids["curator"], "version": 1},
        headers=world.h("b_coordinator"),
    )
    assert response.status_code in (403, 404), response.text
    rows = audit_rows(engine)
    assert len(rows) == before + 1 and rows[-1].action == "refused"
    assert rows[-1].user_id == world.user_ids["b_coordinator"]


def test_allowed_and_unauthenticated_requests_leave_no_refusal(
    world: World, engine: Engine, referral: dict[str, Any]
) -> None:
    assert (
        world.client.get(f"{API}/cases/{referral['case_id']}", headers=world.h("curator")).status_code == 200
    )
    assert world.client.get(f"{API}/cases/{referral['case_id']}").status_code == 401
    assert world.client.get(f"{API}/no-such-route", headers=world.h("curator")).status_code == 404
    assert audit_rows(engine, action="refused") == []


def test_a_refused_family_link_is_audited_without_its_token(world: World, engine: Engine) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzIjoxMjN9.bm90LWEtcmVhbC1zaWduYXR1cmU"
    for method in ("GET", "POST"):
        response = world.client.request(method, f"/f/{token}", data={"action": "confirm"})
        assert response.status_code == 400, response.text
    rows = audit_rows(engine, action="refused")
    assert [(r.path, r.status, r.user_id, r.entity) for r in rows] == [
        ("GET /f/[token]", 400, None, "family_link"),
        ("POST /f/[token]", 400, None, "family_link"),
    ]


# --- append-only -----------------------------------------------------------------------------

INSERT = (
    "INSERT INTO audit_log (id, at, action, entity, entity_id) "
    "VALUES (1, '2030-01-01 00:00:00+00:00', 'read', 'forged', 1)"
)
WRITES = {
    "sqlite": {
        "insert or replace": INSERT.replace("INSERT", "INSERT OR REPLACE", 1),
        "replace": INSERT.replace("INSERT", "REPLACE", 1),
        "upsert": INSERT + " ON CONFLICT(id) DO UPDATE SET entity = 'forged'",
        "update": "UPDATE audit_log SET action = 'x'",
        "update of one row": "UPDATE audit_log SET client_ip = '10.0.0.1' WHERE id = 1",
        "delete": "DELETE FROM audit_log",
        "delete of one row": "DELETE FROM audit_log WHERE id = 1",
    },
    "postgresql": {
        "upsert": INSERT + " ON CONFLICT (id) DO UPDATE SET entity = 'forged'",
        "update": "UPDATE audit_log SET action = 'x'",
        "update of no row": "UPDATE audit_log SET action = 'x' WHERE id < 0",
        "delete": "DELETE FROM audit_log",
        "truncate": "TRUNCATE audit_log",
        "truncate cascading from the users": 'TRUNCATE "user" CASCADE',
        "merge": (
            "MERGE INTO audit_log a USING (SELECT 1 AS id) s ON a.id = s.id "
            "WHEN MATCHED THEN UPDATE SET entity = 'forged'"
        ),
    },
}


@pytest.mark.parametrize(
    "kind",
    sorted({kind for statements in WRITES.values() for kind in statements}),
)
def test_audit_log_refuses_every_write_but_insert(
    world: World, engine: Engine, referral: dict[str, Any], kind: str
) -> None:
    statement = WRITES[engine.dialect.name].get(kind)
    if statement is None:
        pytest.skip(f"{kind}: not a statement of {engine.dialect.name}")
    before = [r.model_dump() for r in audit_rows(engine)]
    assert before and before[0]["id"] == 1
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert [r.model_dump() for r in audit_rows(engine)] == before
    # New rows are still written.
    assert (
        world.client.get(f"{API}/cases/{referral['case_id']}", headers=world.h("curator")).status_code == 200
    )
    assert len(audit_rows(engine)) == len(before) + 1


# --- X-Forwarded-For -------------------------------------------------------------------------


def test_forwarded_for_from_a_client_that_is_not_a_trusted_proxy_is_not_stored(
    world: World, engine: Engine, referral: dict[str, Any]
) -> None:
    headers = {**world.h("curator"), "X-Forwarded-For": "203.0.113.77"}
    assert world.client.get(f"{API}/cases/{referral['case_id']}", headers=headers).status_code == 200
    assert audit_rows(engine)[-1].client_ip == "testclient"  # the peer, not the header


def test_forwarded_for_from_a_trusted_proxy_is_stored(
    world: World, engine: Engine, settings: Settings, referral: dict[str, Any]
) -> None:
    behind_proxy = create_app(settings.model_copy(update={"trusted_proxies": "testclient"}), engine=engine)
    with TestClient(behind_proxy) as client:
        headers = {**world.h("curator"), "X-Forwarded-For": "203.0.113.77"}
        assert client.get(f"{API}/cases/{referral['case_id']}", headers=headers).status_code == 200
        stranger = {**world.h("coordinator2"), "X-Forwarded-For": "203.0.113.78"}
        assert client.get(f"{API}/cases/{referral['case_id']}", headers=stranger).status_code == 404
    rows = audit_rows(engine)
    assert [(r.action, r.client_ip) for r in rows[-2:]] == [
        ("read", "203.0.113.77"),
        ("refused", "203.0.113.78"),
    ]


# --- export ----------------------------------------------------------------------------------


def export(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": settings.database_url,
        "EARLYHELP_VAR_DIR": str(settings.var_dir),
    }
    return subprocess.run(
        [EARLYHELP, "audit", "export", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_audit_export_writes_a_period_as_csv_and_json_lines(
    world: World, engine: Engine, settings: Settings, referral: dict[str, Any], tmp_path: Path
) -> None:
    world.client.get(f"{API}/cases/{referral['case_id']}", headers=world.h("coordinator2"))  # refused
    with engine.begin() as conn:  # a row of another year, outside the period
        conn.execute(
            text(
                "INSERT INTO audit_log (at, action, entity, entity_id) "
                "VALUES ('2001-02-03 10:00:00+00:00', 'read', 'case', 9)"
            )
        )
    rows = audit_rows(engine)
    today = datetime.now(UTC).date().isoformat()
    expected = [r.id for r in rows if r.at.year != 2001]

    as_csv = export(settings, "--from", today, "--to", today)
    assert as_csv.returncode == 0, as_csv.stderr
    read = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [int(r["id"]) for r in read] == expected
    refused = next(r for r in read if r["action"] == "refused")
    assert refused["status"] == "404" and refused["user_id"] == str(world.user_ids["coordinator2"])
    assert f"записей: {len(expected)}" in as_csv.stderr

    out = tmp_path / "audit.jsonl"
    as_json = export(
        settings, "--from", "2001-02-03", "--to", "2001-02-03", "--format", "jsonl", "--output", str(out)
    )
    assert as_json.returncode == 0, as_json.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["entity"], r["entity_id"], r["at"]) for r in lines] == [
        ("case", 9, "2001-02-03T10:00:00+00:00")
    ]
    assert out.stat().st_mode & 0o777 == 0o600  # who read which child: the operator's eyes only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-13-01", "--to", "2026-12-31"], "--from: ожидается дата ГГГГ-ММ-ДД"),
        (["--from", "2026-01-01", "--to", "вчера"], "--to: ожидается дата ГГГГ-ММ-ДД"),
        (["--from", "2026-02-01", "--to", "2026-01-01"], "раньше --from"),
        (
            ["--from", "2026-01-01", "--to", "2026-01-31", "--format", "xml"],
            "--format: ожидается csv или jsonl",
        ),
    ],
)
def test_audit_export_refuses_bad_input_in_one_line(
    settings: Settings, args: list[str], message: str
) -> None:
    result = export(settings, *args)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stdout == ""
