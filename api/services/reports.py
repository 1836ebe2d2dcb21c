"""Report runs through the API and the pages: start one (queued for a worker: never a flow run
inside a request, DESIGN §7), list and read the region's runs, hand out their files.

Who: the region's РРМЦ (a supervisor of the `rrmc` organisation) starts runs and downloads the full
form; the region's administrator starts them too; the analyst reads and downloads the de-personalised
copy only (no count of 1..min_cell-1). Everyone else: 403. A run of another region: 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from api.deps import Principal
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from models.outbox import Outbox, OutboxStatus
from models.reports import ACTIVE, ReportKind, ReportRun, ReportStart, ReportStatus
from models.users import Role

FIRST_YEAR = 2020  # no early-help data in the system before (the federal plan dates from 2022)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_BLOBS = ("xlsx", "pdf", "xlsx_suppressed", "pdf_suppressed")


def may_read(principal: Principal) -> bool:
    return principal.is_regional_supervisor or principal.role in (Role.analyst, Role.admin)


def may_start(principal: Principal) -> bool:
    return principal.is_regional_supervisor or principal.role == Role.admin


def sees_exact(principal: Principal) -> bool:
    """The РРМЦ sends the form to Минтруд: the exact one. Everyone else gets small cells hidden."""
    return principal.is_regional_supervisor


def _require_read(principal: Principal) -> None:
    if not may_read(principal):
        raise Forbidden("Отчёты региона доступны РРМЦ, аналитику и администратору региона")


def check_year(year: int, this_year: int) -> None:
    if year < FIRST_YEAR or year > this_year:
        raise Unprocessable(f"Отчётный год должен быть от {FIRST_YEAR} до {this_year}", field="year")


def start(session: Session, principal: Principal, body: ReportStart) -> ReportRun:
    """Queue a run for the caller's region (a worker runs it); 409 while one of that year runs."""
    if not may_start(principal):
        raise Forbidden("Сформировать отчёт может РРМЦ или администратор региона")
    check_year(body.year, principal.today.year)
    return queue(session, principal.org.region_id, body.kind, body.year, principal.id)


def queue(
    session: Session, region_id: int, kind: ReportKind, year: int, requested_by: int | None
) -> ReportRun:
    """The API's, the pages' and the CLI's way to queue a run (the schedule's: flows/reports.py)."""
    running = session.exec(
        select(ReportRun.id).where(
            ReportRun.region_id == region_id,
            ReportRun.kind == kind,
            ReportRun.year == year,
            col(ReportRun.status).in_(ACTIVE),
        )
    ).first()
    if running is not None:
        raise Conflict(f"Отчёт за {year} год уже формируется (запуск № {running})", field="year")
    run = ReportRun(kind=kind, region_id=region_id, year=year, requested_by=requested_by)
    savepoint = session.begin_nested()
    session.add(run)
    try:
        savepoint.commit()
    except IntegrityError:  # two starts racing: the partial unique index let one through
        raise Conflict(f"Отчёт за {year} год уже формируется", field="year") from None
    return run


def list_runs(session: Session, principal: Principal, limit: int = 100) -> list[ReportRun]:
    _require_read(principal)
    return list(
        session.exec(
            select(ReportRun)
            .options(*(defer(getattr(ReportRun, name)) for name in _BLOBS))
            .where(ReportRun.region_id == principal.org.region_id)
            .order_by(col(ReportRun.id).desc())
            .limit(limit)
        )
    )


def get_run(session: Session, principal: Principal, run_id: int) -> ReportRun:
    _require_read(principal)
    run = session.exec(
        select(ReportRun)
        .options(*(defer(getattr(ReportRun, name)) for name in _BLOBS))
        .where(ReportRun.id == run_id, ReportRun.region_id == principal.org.region_id)
    ).first()
    if run is None:
        raise NotFound("Отчёт не найден")
    return run


@dataclass
class ReportFile:
    content: bytes
    media_type: str
    filename: str


def report_file(
    session: Session, principal: Principal, run_id: int, fmt: str
) -> tuple[ReportRun, ReportFile]:
    """A done run's XLSX or PDF: the exact form for the РРМЦ, the suppressed one for the others."""
    run = get_run(session, principal, run_id)
    if run.status != ReportStatus.done:
        raise Conflict("Отчёт ещё не сформирован")
    name = fmt if sees_exact(principal) else f"{fmt}_suppressed"
    content = session.exec(select(getattr(ReportRun, name)).where(ReportRun.id == run.id)).one()
    if content is None:
        raise Conflict("Файл отчёта не сохранён")
    suffix = "" if sees_exact(principal) else "-obezlichennyj"
    filename = f"forma-1rp-{run.year}-{run.id}{suffix}.{fmt}"
    return run, ReportFile(content, XLSX_TYPE if fmt == "xlsx" else "application/pdf", filename)


NOTICE_LABELS = {
    OutboxStatus.pending: "РРМЦ: уведомление отправляется",
    OutboxStatus.done: "РРМЦ уведомлён",
    OutboxStatus.failed: "РРМЦ: уведомление не отправлено",
    OutboxStatus.undelivered: "РРМЦ: уведомление не доставлено",
}


def notices(session: Session, run_ids: list[int]) -> dict[int, str]:
    """Whether the РРМЦ's message of each done run went out (flows/reports.py writes it to the
    outbox): no case holds it, so the reports page is where a failed one is seen. By run id."""
    if not run_ids:
        return {}
    found: dict[int, str] = {}
    for context, status, error in session.exec(
        select(Outbox.context, Outbox.status, Outbox.last_error).where(
            Outbox.template == "report_ready",
            col(Outbox.case_id).is_(None),
            Outbox.context["report_run_id"].as_integer().in_(run_ids),  # type: ignore[index]
        )
    ):
        label = NOTICE_LABELS[OutboxStatus(status)]
        if status in (OutboxStatus.failed, OutboxStatus.undelivered) and error:
            label += f" ({error[:200]})"
        run_id = int(context["report_run_id"])
        # Several centres: the worst news is shown.
        if run_id not in found or status != OutboxStatus.done:
            found[run_id] = label
    return found
