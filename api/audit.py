"""The audit log's two doors besides the routes' own rows (api/deps.py, Audit):

- `RefusalAudit`, a pure ASGI middleware: every attempt the app refuses leaves a row (action
  `refused`) — a 403 or 404 answered to an authenticated caller (get_principal leaves the caller on
  request.state), and a family page refusing its link. The request's own transaction is rolled back
  on that error, so the row is written in a transaction of its own, before the answer leaves.
- `export`, the operator's `earlyhelp audit export`: rows of a period, streamed as CSV or JSON lines.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO

from anyio import to_thread
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import FAMILY_PREFIX, db_error_summary, safe_path
from models.audit import AuditLog
from models.cases import Case
from models.common import utcnow
from models.referrals import Referral

log = logging.getLogger("earlyhelp.audit")

REFUSED = "refused"
# Answers that refuse an authenticated caller, and those of a family page refusing its link
# (400: altered, 404: gone, 410: expired).
STAFF_REFUSALS = frozenset({403, 404})
FAMILY_REFUSALS = frozenset({400, 403, 404, 410})
API_PREFIX = "/api/v1/"
_ENTITIES = {"cases": "case", "children": "child", "referrals": "referral", "sessions": "session"}
_MAX_ID = 2**31 - 1  # the audit log's integer columns (PostgreSQL int4)


class RefusalAudit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The same dict the request's Request.state writes into (get_principal puts the caller's
        # ids there: api/deps.py).
        state = scope.setdefault("state", {})

        async def send_after_audit(message: Message) -> None:
            if message["type"] == "http.response.start":
                row = _refusal(scope, state, message["status"])
                if row is not None:
                    await to_thread.run_sync(_write, scope["app"].state.engine, row)
            await send(message)

        await self.app(scope, receive, send_after_audit)


def _refusal(scope: Scope, state: dict[str, Any], status: int) -> dict[str, Any] | None:
    path = str(scope.get("path", ""))
    caller: tuple[int, int | None] | None = state.get("caller")  # (user id, organisation id)
    family = path.startswith(FAMILY_PREFIX)
    if family and status not in FAMILY_REFUSALS:
        return None
    if not family and (caller is None or status not in STAFF_REFUSALS):
        return None
    entity, entity_id = _entity(path, scope.get("path_params") or {})
    client = scope.get("client")
    return {
        "at": utcnow(),
        "user_id": caller[0] if caller else None,
        "organisation_id": caller[1] if caller else None,
        "action": REFUSED,
        "entity": entity,
        "entity_id": entity_id,
        "child_id": None,
        "client_ip": client[0][:64] if client else None,
        "path": f"{scope.get('method', '')} {safe_path(path)}"[:300],
        "status": status,
    }


def _entity(path: str, path_params: dict[str, Any]) -> tuple[str, int | None]:
    """What was asked for: the route's last `<entity>_id` parameter, or the resource in the path."""
    for name in reversed(list(path_params)):
        if name.endswith("_id"):
            value = str(path_params[name])
            number = int(value) if value.isdigit() and int(value) <= _MAX_ID else None
            return name.removesuffix("_id")[:32], number
    if path.startswith(FAMILY_PREFIX):
        return "family_link", None
    resource = path.removeprefix(API_PREFIX).split("/", 1)[0]
    return _ENTITIES.get(resource, resource)[:32] or "-", None


def _child_of(session: Session, entity: str, entity_id: int | None) -> int | None:
    """The child a refused id belongs to, when it exists: who tried to reach a child is the question."""
    if entity_id is None:
        return None
    if entity == "child":
        return entity_id
    if entity == "case":
        return session.execute(select(col(Case.child_id)).where(col(Case.id) == entity_id)).scalar()
    if entity == "referral":
        return session.execute(select(col(Referral.child_id)).where(col(Referral.id) == entity_id)).scalar()
    return None


def _write(engine: Engine, row: dict[str, Any]) -> None:
    try:
        with Session(engine) as session:
            row["child_id"] = _child_of(session, row["entity"], row["entity_id"])
            session.execute(insert(AuditLog).values(**row))
            session.commit()
    except SQLAlchemyError as error:
        # The refusal stands; the operator learns that its trace is missing.
        log.error("audit row of a refused %s not written: %s", row["path"], db_error_summary(error))


# --- export -----------------------------------------------------------------------------------

COLUMNS = [
    "id",
    "at",
    "user_id",
    "organisation_id",
    "action",
    "entity",
    "entity_id",
    "child_id",
    "client_ip",
    "path",
    "status",
]
FORMATS = ("csv", "jsonl")
_BATCH = 1000


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option}: ожидается дата ГГГГ-ММ-ДД, получено {value!r}") from None


def rows_between(engine: Engine, first: date, last: date) -> Iterator[dict[str, Any]]:
    """Rows from the start of `first` to the end of `last` (UTC days), oldest first, read in
    batches by id (keyset) so that a year of rows never sits in memory."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    columns = [getattr(AuditLog, name) for name in COLUMNS]
    after = 0
    while True:
        with engine.connect() as conn:
            batch = conn.execute(
                select(*columns)
                .where(col(AuditLog.at) >= start, col(AuditLog.at) < end, col(AuditLog.id) > after)
                .order_by(col(AuditLog.id))
                .limit(_BATCH)
            ).all()
        for row in batch:
            yield dict(zip(COLUMNS, row, strict=True))
        if len(batch) < _BATCH:
            return
        after = batch[-1][0]


def export(engine: Engine, first: date, last: date, fmt: str, out: TextIO) -> int:
    """Write the period's rows to `out`; the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"--format: ожидается csv или jsonl, получено {fmt!r}")
    if last < first:
        raise ValueError(f"--to ({last:%Y-%m-%d}) раньше --from ({first:%Y-%m-%d})")
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    for row in rows_between(engine, first, last):
        row["at"] = row["at"].astimezone(UTC).isoformat()
        if writer is not None:
            writer.writerow(row)
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
