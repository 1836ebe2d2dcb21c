"""Rows of the authorisation matrix (tests/test_authz_matrix.py) for the reports' routes.

REQUESTS: how to call each operation on an object (see Builder there); MATRIX: the expected cells.
Report runs are the region's, not a case's: x and y (both of the first region) read the same run,
a done form 1-РП of the first region made once for the matrix (`_done_run`). Starting one answers
202 to the first caller who may, 409 (a run of that year waits) to the next: both "ok".
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.organisations import Region
from models.reports import ReportKind, ReportRun, ReportStatus
from tests.world import region_today


def _done_run(m: Any) -> int:
    with Session(m.engine) as session:
        found = session.exec(select(ReportRun.id).where(ReportRun.status == ReportStatus.done)).first()
        if found is not None:
            return found
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        run = ReportRun(
            kind=ReportKind.form_1rp,
            region_id=region.id or 0,
            year=region_today().year - 1,
            status=ReportStatus.done,
            progress=100,
            stage="Готов",
            xlsx=b"x",
            pdf=b"%PDF",
            xlsx_suppressed=b"x",
            pdf_suppressed=b"%PDF",
        )
        session.add(run)
        session.commit()
        return run.id or 0


REQUESTS: dict[str, Any] = {
    "POST /api/v1/reports": lambda o, m: (
        "POST",
        "/reports",
        {"kind": "form_1rp", "year": region_today().year},
        None,
    ),
    "GET /api/v1/reports": lambda o, m: ("GET", "/reports", None, None),
    "GET /api/v1/reports/{report_id}": lambda o, m: ("GET", f"/reports/{_done_run(m)}", None, None),
    "GET /api/v1/reports/{report_id}/file.xlsx": lambda o, m: (
        "GET",
        f"/reports/{_done_run(m)}/file.xlsx",
        None,
        None,
    ),
    "GET /api/v1/reports/{report_id}/file.pdf": lambda o, m: (
        "GET",
        f"/reports/{_done_run(m)}/file.pdf",
        None,
        None,
    ),
}
# Columns: anon referrer social coordinator curator specialist head coordinator2 rrmc analyst admin
# b_rrmc b_coordinator b_admin.
MATRIX: dict[str, str] = {
    # The РРМЦ and the region's administrator start the region's report (another region: its own).
    "POST /api/v1/reports": "401 403 403 403 403 403 403 403 ok 403 ok ok 403 ok",
    # The РРМЦ, the analyst (suppressed files) and the administrator read the region's runs; providers not.
    "GET /api/v1/reports": "401 403 403 403 403 403 403 403 ok ok ok ok 403 ok",
    "GET /api/v1/reports/{report_id}": "401 403 403 403 403 403 403 403 ok ok ok 404 403 404",
    "GET /api/v1/reports/{report_id}/file.xlsx": "401 403 403 403 403 403 403 403 ok ok ok 404 403 404",
    "GET /api/v1/reports/{report_id}/file.pdf": "401 403 403 403 403 403 403 403 ok ok ok 404 403 404",
}
NOT_IN_MATRIX: dict[str, str] = {}
