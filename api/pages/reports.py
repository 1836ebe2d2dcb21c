"""The reports' pages: start a yearly form 1-РП, watch its progress, download XLSX and PDF.

The same service as the API (api/services/reports.py), so the same people see the same runs and
files. A run's progress: a few lines of script (api/static/reports.js) ask /reports/{id}/progress
every couple of seconds; without script the «Обновить» link does the same.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import Session

from api.deps import Principal, SessionDep
from api.pages.web import PageAudit, PageAuditDep, PageUser, form_id, read_form, redirect, region_zone, render
from api.services import reports as service
from core.errors import Conflict, Unprocessable
from models.common import IdParam
from models.organisations import Region
from models.reports import REPORT_STATUS_LABELS, ReportKind, ReportRunPublic, ReportStart, ReportStatus
from standards import load_standard

router = APIRouter(include_in_schema=False)
DONE = {"started": "Отчёт поставлен в очередь: он сформируется через несколько секунд или минут."}


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    chosen: str = "",
    notice: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    runs = service.list_runs(session, principal)
    told = service.notices(session, [run.id for run in runs if run.status == ReportStatus.done and run.id])
    this_year = principal.today.year
    region = session.get(Region, principal.org.region_id)
    rules = load_standard(region.code if region else None).reports.yearly
    return render(
        request,
        "pages/reports/list.html",
        {
            "title": "Отчёты",
            "runs": [ReportRunPublic.of(run) for run in runs],
            "active": [run.id for run in runs if run.status in (ReportStatus.queued, ReportStatus.running)],
            "may_start": service.may_start(principal),
            "exact": service.sees_exact(principal),
            "years": [(str(y), str(y)) for y in range(this_year, service.FIRST_YEAR - 1, -1)],
            "chosen": chosen or str(this_year - 1),
            "generate_on": ".".join(reversed(rules.generate_on.split("-"))),
            "due": ".".join(reversed(rules.due.split("-"))),
            "zone": region_zone(session, principal),
            "errors": errors or {},
            "notice": notice,
            "statuses": REPORT_STATUS_LABELS,
            "told": told,
        },
        status,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    done: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    return _page(request, session, principal, notice=DONE.get(done or ""))


@router.post("/reports", response_class=HTMLResponse)
async def start_report(
    request: Request, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    form = await read_form(request, principal)
    raw = form.get("year")
    year = form_id(raw)
    if year is None:
        return _page(
            request, session, principal, errors={"year": "Выберите отчётный год"}, chosen=raw, status=422
        )
    savepoint = session.begin_nested()
    try:
        run = service.start(session, principal, ReportStart(kind=ReportKind.form_1rp, year=year))
    except (Conflict, Unprocessable) as refused:
        savepoint.rollback()
        return _page(
            request,
            session,
            principal,
            errors={"year": refused.message},
            chosen=raw,
            status=refused.status_code,
        )
    savepoint.commit()
    audit("create", "report", run.id, None)
    return redirect(f"/reports?done=started#run-{run.id}")


@router.get("/reports/{report_id}/progress")
def report_progress(report_id: IdParam, principal: PageUser, session: SessionDep) -> JSONResponse:
    run = service.get_run(session, principal, report_id)
    return JSONResponse(
        {
            "status": run.status,
            "status_label": REPORT_STATUS_LABELS[ReportStatus(run.status)],
            "progress": run.progress,
            "stage": run.stage,
        }
    )


def _download(session: Session, principal: Principal, audit: PageAudit, report_id: int, fmt: str) -> Response:
    run, found = service.report_file(session, principal, report_id, fmt)
    audit("read", "report", run.id, None)
    return Response(
        found.content,
        media_type=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


@router.get("/reports/{report_id}/file.xlsx")
def report_xlsx(
    report_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep
) -> Response:
    return _download(session, principal, audit, report_id, "xlsx")


@router.get("/reports/{report_id}/file.pdf")
def report_pdf(report_id: IdParam, principal: PageUser, session: SessionDep, audit: PageAuditDep) -> Response:
    return _download(session, principal, audit, report_id, "pdf")
