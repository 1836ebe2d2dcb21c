"""The yearly report (form 1-РП) as a Prefect flow with progress, who runs it, and its schedule.

Who runs a queued run: `earlyhelp worker`'s report job (flows/worker.py), every few seconds, claims
queued ReportRun rows itself with a compare-and-set UPDATE (queued → running, WHERE status is still
queued), so any number of workers each take a run once — simpler than the outbox here, whose relay
runs one flow per kind per batch and would hold every message behind a report of several seconds,
and whose lease (a relay's batch) does not fit a long run. The claim is a lease: each step extends
it; a run whose worker died is queued again when the lease ends (or failed after MAX_ATTEMPTS).

The flow runs in the claiming process (as the relay's flows do: DESIGN §7, never inside an API
request), in the report job's own thread and event loop: building the files is CPU work that must
not stall the relay's loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import get_run_context
from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.services import statistics
from api.services.statistics import Breakdown, Cell, Statistics
from core.config import get_settings
from core.db import reads_engine
from flows.flow_runs import flow_run_client, run_flow
from flows.report_files import AGE_GROUPS, Extras, Form, build_form, form_pdf, form_xlsx
from models.children import Child
from models.common import utcnow
from models.organisations import Organisation, OrgKind, Region
from models.outbox import EffectKind, Outbox, OutboxStatus
from models.programmes import SERVICE_FORM_LABELS
from models.referrals import Referral
from models.reports import ACTIVE, ReportKind, ReportRun, ReportStatus
from models.users import Role, User
from standards import load_standard

log = logging.getLogger("earlyhelp.reports")

# A running run's worker extends its lease at each step; a run not heard of for this long was lost.
LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 3
# How often the worker looks for queued runs (flows/worker.py): a person who pressed «Сформировать»
# sees it start within seconds.
POLL_SECONDS = 3
SCHEDULED_STAGE = "В очереди (по расписанию)"


class LeaseLost(Exception):
    """Another worker took the run over (this one was thought dead): stop without writing."""


@dataclass
class _Runtime:
    engine: Engine
    worker: str
    public_url: str
    # The CLI's `--wait` prints each step: (run id, progress, stage).
    on_progress: Callable[[int, int, str], None] | None = None
    reads: Engine | None = None  # for the statistics' long read (core.db.reads_engine)


_runtime: _Runtime | None = None


def _rt() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("flows.reports: run_report() sets the engine up")
    return _runtime


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


# --- the run's row: claim, progress, lease ----------------------------------------------------


def claim_next(engine: Engine, worker: str, now: datetime | None = None) -> int | None:
    """Take the oldest queued run (compare-and-set: of two workers racing, one wins); its id."""
    with Session(engine) as session:
        candidates = session.exec(
            select(ReportRun.id)
            .where(ReportRun.status == ReportStatus.queued)
            .order_by(col(ReportRun.id))
            .limit(5)
        ).all()
    for run_id in candidates:
        if run_id is not None and claim(engine, run_id, worker, now):
            return run_id
    return None


def claim(engine: Engine, run_id: int, worker: str, now: datetime | None = None) -> bool:
    """Take this queued run, unless another worker took it first."""
    now = now or utcnow()
    with Session(engine) as session:
        taken = session.execute(
            update(ReportRun)
            .where(col(ReportRun.id) == run_id, col(ReportRun.status) == ReportStatus.queued)
            .values(
                status=ReportStatus.running,
                started_at=now,
                lease_until=now + LEASE,
                claimed_by=worker,
                attempts=col(ReportRun.attempts) + 1,
                progress=0,
                stage="Начато формирование",
                error=None,
            )
        )
        session.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def expire_leases(engine: Engine, now: datetime | None = None) -> int:
    """Runs whose worker went silent past the lease: queued again, or failed after MAX_ATTEMPTS."""
    now = now or utcnow()
    stale = [col(ReportRun.status) == ReportStatus.running, col(ReportRun.lease_until) < now]
    with Session(engine) as session:
        again = session.execute(
            update(ReportRun)
            .where(*stale, col(ReportRun.attempts) < MAX_ATTEMPTS)
            .values(
                status=ReportStatus.queued,
                lease_until=None,
                claimed_by=None,
                progress=0,
                stage="В очереди снова: обработчик не завершил формирование",
            )
        )
        failed = session.execute(
            update(ReportRun)
            .where(*stale)
            .values(
                status=ReportStatus.failed,
                lease_until=None,
                finished_at=now,
                stage="Не сформирован",
                error="Формирование не завершилось за отведённое время (несколько попыток)",
            )
        )
        session.commit()
    return int(again.rowcount or 0) + int(failed.rowcount or 0)  # type: ignore[attr-defined]


def _update(run_id: int, **values: Any) -> None:
    """Write to the run this worker holds, extending its lease; LeaseLost if it holds it no more."""
    rt = _rt()
    with Session(rt.engine) as session:
        changed = session.execute(
            update(ReportRun)
            .where(
                col(ReportRun.id) == run_id,
                col(ReportRun.status) == ReportStatus.running,
                col(ReportRun.claimed_by) == rt.worker,
            )
            .values(lease_until=utcnow() + LEASE, **values)
        )
        session.commit()
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"report run {run_id} is no longer held by {rt.worker}")


def _fail(engine: Engine, run_id: int, worker: str, reason: str) -> None:
    with Session(engine) as session:
        session.execute(
            update(ReportRun)
            .where(
                col(ReportRun.id) == run_id,
                col(ReportRun.status) == ReportStatus.running,
                col(ReportRun.claimed_by) == worker,
            )
            .values(
                status=ReportStatus.failed,
                finished_at=utcnow(),
                lease_until=None,
                stage="Не сформирован",
                error=reason[:2000],
            )
        )
        session.commit()


# --- what the statistics do not hold -----------------------------------------------------------


def age_group(birth: date, on: date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return AGE_GROUPS[min(max(years, 0), 3)][0]


def extras(
    session: Session, region_id: int, start: date, end: date, min_cell: int, hide: bool, round_to: int = 1
) -> Extras:
    """Children identified in the period (a referral dated in it, to a provider of the region) by
    age at their first such referral; the region's active providers now."""
    first = session.execute(
        select(col(Referral.child_id), func.min(col(Referral.referral_date)), col(Child.birth_date))
        .join(Child, col(Child.id) == col(Referral.child_id))
        .join(Organisation, col(Organisation.id) == col(Referral.provider_id))
        .where(
            col(Organisation.region_id) == region_id,
            col(Referral.referral_date) >= start,
            col(Referral.referral_date) <= end,
        )
        .group_by(col(Referral.child_id), col(Child.birth_date))
    ).all()
    counts = dict.fromkeys((code for code, _ in AGE_GROUPS), 0)
    for _, referred_on, birth in first:
        counts[age_group(birth, referred_on)] += 1
    ages = Breakdown(
        code="ages",
        title="Дети, выявленные в отчётном году, по возрасту",
        unit="children",
        additive=True,
        total=Cell(code="total", label="Всего", value=sum(counts.values())),
        cells=[Cell(code=code, label=label, value=counts[code]) for code, label in AGE_GROUPS],
    )
    if hide:
        statistics.suppress_table(ages, min_cell, round_to)
    owned: dict[str | None, int] = {}
    forms: dict[str, int] = {}
    for ownership, offered in session.execute(
        select(col(Organisation.ownership), col(Organisation.forms)).where(
            col(Organisation.region_id) == region_id,
            col(Organisation.kind) == OrgKind.provider,
            col(Organisation.is_active).is_(True),
        )
    ):
        key = str(ownership) if ownership else None
        owned[key] = owned.get(key, 0) + 1
        for form in set(offered or []):
            forms[form] = forms.get(form, 0) + 1
    specialists = session.execute(
        select(func.count())
        .select_from(User)
        .join(Organisation, col(Organisation.id) == col(User.organisation_id))
        .where(
            col(Organisation.region_id) == region_id,
            col(Organisation.kind) == OrgKind.provider,
            col(Organisation.is_active).is_(True),
            col(User.is_active).is_(True),
            col(User.role).in_([Role.curator, Role.specialist]),
        )
    ).scalar_one()
    return Extras(
        ages=ages,
        specialists=int(specialists),
        providers_total=sum(owned.values()),
        providers_by_ownership=owned,
        providers_by_form=[(label, forms.get(str(code), 0)) for code, label in SERVICE_FORM_LABELS.items()],
    )


# --- the flow ---------------------------------------------------------------------------------


@dataclass
class Computed:
    full: Form
    suppressed: Form


def _dates(run: ReportRun, region: Region) -> tuple[date, date, date, date]:
    rules = load_standard(region.code).reports.yearly
    start, end = date(run.year, 1, 1), date(run.year, 12, 31)
    month, day = (int(part) for part in rules.due.split("-"))
    made_on = utcnow().astimezone(ZoneInfo(region.timezone)).date()
    return start, end, made_on, date(run.year + 1, month, day)


@task(name="compute_statistics", persist_result=False, cache_policy=NO_CACHE)
async def compute_statistics(run_id: int) -> Computed:
    """C's statistics of the year for the region (exact, and the analyst's suppressed copy), as the form."""
    rt = _rt()
    with Session(rt.reads or rt.engine) as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        region = session.get(Region, run.region_id)
        assert region is not None
        start, end, made_on, due_on = _dates(run, region)
        rules = load_standard(region.code).statistics
        min_cell, round_to = rules.min_cell, rules.round_to
        exact: Statistics = statistics.compute(session, run.region_id, start, end)
        hidden = statistics.suppress(exact, min_cell, round_to)
        counted = extras(session, run.region_id, start, end, min_cell, False)
    return both_forms(exact, hidden, counted, min_cell, run.year, made_on, due_on, round_to)


def both_forms(
    exact: Statistics,
    hidden: Statistics,
    counted: Extras,
    min_cell: int,
    year: int,
    made_on: date,
    due_on: date,
    round_to: int = 1,
) -> Computed:
    """The РРМЦ's form and the analyst's: the latter with the age table suppressed by part C's rule
    (the one table of children the statistics do not hold); the providers are organisations, not
    children, and are the same in both."""
    ages = counted.ages.model_copy(deep=True)
    statistics.suppress_table(ages, min_cell, round_to)
    full = build_form(exact, counted, year, made_on, due_on)
    suppressed = build_form(hidden, replace(counted, ages=ages), year, made_on, due_on)
    return Computed(full=full, suppressed=suppressed)


@task(name="build_xlsx", persist_result=False, cache_policy=NO_CACHE)
async def build_xlsx(computed: Computed) -> tuple[bytes, bytes]:
    return form_xlsx(computed.full), form_xlsx(computed.suppressed)


@task(name="build_pdf", persist_result=False, cache_policy=NO_CACHE)
async def build_pdf(computed: Computed) -> tuple[bytes, bytes]:
    return form_pdf(computed.full), form_pdf(computed.suppressed)


@task(name="store_files", persist_result=False, cache_policy=NO_CACHE)
async def store_files(run_id: int, xlsx: tuple[bytes, bytes], pdf: tuple[bytes, bytes]) -> None:
    _update(
        run_id,
        xlsx=xlsx[0],
        xlsx_suppressed=xlsx[1],
        pdf=pdf[0],
        pdf_suppressed=pdf[1],
        xlsx_size=len(xlsx[0]),
        pdf_size=len(pdf[0]),
        xlsx_sha256=hashlib.sha256(xlsx[0]).hexdigest(),
        pdf_sha256=hashlib.sha256(pdf[0]).hexdigest(),
    )


def notification_rows(session: Session, run: ReportRun, public_url: str) -> list[Outbox]:
    """One message to each active РРМЦ of the region that the report is ready (no personal data)."""
    region = session.get(Region, run.region_id)
    assert region is not None
    _, _, made_on, due_on = _dates(run, region)
    centres = session.exec(
        select(Organisation.id).where(
            Organisation.region_id == run.region_id,
            Organisation.kind == OrgKind.rrmc,
            col(Organisation.is_active).is_(True),
        )
    ).all()
    variables = {
        "report_year": str(run.year),
        "report_made": f"{made_on:%d.%m.%Y}",
        "report_due": f"{due_on:%d.%m.%Y}",
        "report_by": " по расписанию" if run.requested_by is None else "",
        "report_url": f"{public_url}/reports",
    }
    now = utcnow()
    return [
        Outbox(
            case_id=None,
            kind=EffectKind.notify_organisation,
            template="report_ready",
            context={
                "trigger": "report_ready",
                "to": "org",
                "org_id": org_id,
                "report_run_id": run.id,
                "vars": variables,
            },
            status=OutboxStatus.pending,
            available_at=now,
            created_at=now,
        )
        for org_id in centres
    ]


@task(name="tell_rrmc", persist_result=False, cache_policy=NO_CACHE)
async def tell_rrmc(run_id: int) -> int:
    """Done and the РРМЦ's message, in one transaction: a done run has always told the centre once."""
    rt = _rt()
    with Session(rt.engine) as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        if run.status != ReportStatus.running or run.claimed_by != rt.worker:
            raise LeaseLost(f"report run {run_id} is no longer held by {rt.worker}")
        rows = notification_rows(session, run, rt.public_url)
        session.add_all(rows)
        run.status, run.progress, run.stage = ReportStatus.done, 100, "Готов"
        run.finished_at, run.lease_until = utcnow(), None
        session.add(run)
        session.commit()
    return len(rows)


# Nothing is persisted; a result storage of its own spares the server a question (flows/delivery.py).
FLOW_OPTIONS: dict[str, Any] = {
    "persist_result": False,
    "log_prints": False,
    "result_storage": Path(os.environ["PREFECT_HOME"]) / "results",
}
# (progress after the step, the stage shown while the next step runs)
STAGES = {
    "compute": (5, "Расчёт показателей"),
    "xlsx": (40, "Формирование XLSX"),
    "pdf": (60, "Формирование PDF"),
    "store": (80, "Сохранение файлов"),
    "tell": (95, "Уведомление РРМЦ"),
}


@flow(name="yearly_report", **FLOW_OPTIONS)
async def yearly_report(run_id: int) -> int:
    """Form 1-РП for a claimed run: statistics → XLSX → PDF → stored → the РРМЦ told. Progress goes
    to the run's row (the pages and the API read it) and to a Prefect progress artifact."""
    context = get_run_context()
    flow_run_id = str(context.flow_run.id) if getattr(context, "flow_run", None) else None  # type: ignore[union-attr]
    artifact: UUID = await acreate_progress_artifact(
        progress=0.0,
        key=f"form-1rp-run-{run_id}",
        description=f"Форма 1-РП: формирование (запуск № {run_id})",
    )

    async def step(name: str) -> None:
        progress, stage = STAGES[name]
        _update(
            run_id,
            progress=progress,
            stage=stage,
            **({"flow_run_id": flow_run_id} if name == "compute" else {}),
        )
        await aupdate_progress_artifact(artifact, float(progress), description=f"Форма 1-РП: {stage.lower()}")
        if (hook := _rt().on_progress) is not None:
            hook(run_id, progress, stage)

    await step("compute")
    computed = await compute_statistics(run_id)
    await step("xlsx")
    xlsx = await build_xlsx(computed)
    await step("pdf")
    pdf = await build_pdf(computed)
    await step("store")
    await store_files(run_id, xlsx, pdf)
    await step("tell")
    told = await tell_rrmc(run_id)
    await aupdate_progress_artifact(artifact, 100.0, description="Форма 1-РП: готов")
    return told


async def run_report(
    engine: Engine,
    run_id: int,
    worker: str,
    public_url: str | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> ReportStatus:
    """Run the flow on a run this worker claimed; a failure is written to the run (not raised)."""
    global _runtime
    reads = reads_engine(engine)
    _runtime = _Runtime(engine, worker, public_url or get_settings().public_url, on_progress, reads)
    try:
        return await _run_report(engine, run_id, worker)
    finally:
        if reads is not engine:
            reads.dispose()


async def _run_report(engine: Engine, run_id: int, worker: str) -> ReportStatus:
    with Session(engine) as session:
        run = session.get(ReportRun, run_id)
        region = session.get(Region, run.region_id) if run else None
        if run is None or region is None:
            return ReportStatus.failed
        name, tags = (
            f"Форма 1-РП · {region.code} · {run.year} · № {run_id}",
            [f"report:{run_id}", f"region:{region.code}"],
        )
    try:
        async with flow_run_client() as client:
            await run_flow(client, yearly_report, {"run_id": run_id}, name=name, tags=tags)
    except LeaseLost:
        log.warning("report run %s: taken over by another worker", run_id)
    except Exception as error:  # the run says what failed; the worker goes on
        log.exception("report run %s failed", run_id)
        # The kind of error only: a database error's text may quote the data it was given.
        _fail(
            engine,
            run_id,
            worker,
            f"Ошибка формирования ({type(error).__name__}); подробности — в журнале worker",
        )
    with Session(engine) as session:
        found = session.get(ReportRun, run_id)
        return ReportStatus(found.status) if found else ReportStatus.failed


def run_queued(engine: Engine, *, limit: int = 5, worker: str | None = None) -> int:
    """The worker's report job: give up stale leases, then run queued runs one after another."""
    import asyncio

    expire_leases(engine)
    worker = worker or worker_name()
    ran = 0
    while ran < limit and (run_id := claim_next(engine, worker)) is not None:
        asyncio.run(run_report(engine, run_id, worker))
        ran += 1
    return ran


# --- the schedule ------------------------------------------------------------------------------


def _generate_on(code: str, year: int) -> date:
    month, day = (int(part) for part in load_standard(code).reports.yearly.generate_on.split("-"))
    return date(year, month, day)


def queue_scheduled(engine: Engine, now: datetime | None = None) -> list[int]:
    """For each region whose date is on/after the standard's generate_on: last year's form 1-РП,
    unless a run of it is done, queued or running, or a scheduled one failed within a day (it is
    tried again the next day, not every minute). The new runs' ids."""
    now = now or utcnow()
    queued: list[int] = []
    with Session(engine) as session:
        regions = session.exec(select(Region)).all()
    for region in regions:
        today = now.astimezone(ZoneInfo(region.timezone)).date()
        if today < _generate_on(region.code, today.year):
            continue
        year = today.year - 1
        with Session(engine) as session:
            runs = session.exec(
                select(ReportRun.status, ReportRun.requested_by, ReportRun.finished_at).where(
                    ReportRun.region_id == region.id,
                    ReportRun.kind == ReportKind.form_1rp,
                    ReportRun.year == year,
                )
            ).all()
            if any(status in (*ACTIVE, ReportStatus.done) for status, _, _ in runs):
                continue
            if any(
                by is None and finished is not None and finished > now - timedelta(days=1)
                for status, by, finished in runs
            ):
                continue
            run = ReportRun(
                kind=ReportKind.form_1rp,
                region_id=region.id or 0,
                year=year,
                requested_by=None,
                requested_at=now,
                stage=SCHEDULED_STAGE,
            )
            session.add(run)
            try:
                session.commit()
            except IntegrityError:  # another worker queued it at the same moment
                session.rollback()
                continue
            queued.append(run.id or 0)
            log.info("form 1-РП for %s queued by the schedule (region %s)", year, region.code)
    return queued
