"""Form 1-РП through real Prefect flow runs: a run goes queued → running → done with its progress,
its files hold the statistics' numbers, the РРМЦ is told by e-mail (a real SMTP server); started
from the API, the pages, the worker's job and the CLI (a real process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.settings import PREFECT_API_URL
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from api.services import statistics
from api.services.reports import queue
from core.config import Settings
from flows.relay import Relay
from flows.report_files import AGE_GROUPS
from flows.reports import age_group, claim, run_queued, run_report
from models.audit import AuditLog
from models.organisations import Organisation
from models.outbox import Delivery, DeliveryStatus, Outbox
from models.reports import ReportKind, ReportRun, ReportStatus
from tests.region_gen import generate
from tests.reports_support import REFERRED, WITH_IPR, demo_statistics, journeys, pdf_text, xlsx_rows, year
from tests.servers import SmtpServer
from tests.test_pages_auth import csrf_of, sign_in
from tests.world import API, World

EARLYHELP = str(Path(sys.executable).parent / "earlyhelp")
RRMC_EMAIL = "rrmc@region.example"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    smtp.inbox.clear()
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "channel_timeout_seconds": 2.0,
            "delivery_retry_delays": [0.05],
            "relay_backoff_seconds": 0.0,
        }
    )


@pytest.fixture
def rrmc_email(world: World, engine: Engine) -> str:
    with Session(engine) as session:
        session.execute(
            update(Organisation).where(col(Organisation.id) == world.org_ids["rrmc"]).values(email=RRMC_EMAIL)
        )
        session.commit()
    return RRMC_EMAIL


def run_status(engine: Engine, run_id: int) -> ReportRun:
    with Session(engine) as session:
        run = session.get(ReportRun, run_id)
        assert run is not None
        return run


def test_a_run_goes_from_queued_to_done_with_progress_and_the_rrmc_is_told(
    world: World,
    engine: Engine,
    settings: Settings,
    runner: asyncio.Runner,
    smtp: SmtpServer,
    rrmc_email: str,
) -> None:
    journeys(world)
    started = world.client.post(
        f"{API}/reports", json={"kind": "form_1rp", "year": year()}, headers=world.h("rrmc")
    )
    assert started.status_code == 202
    run_id = started.json()["id"]
    assert run_status(engine, run_id).status == ReportStatus.queued

    assert claim(engine, run_id, "test-worker")
    assert run_status(engine, run_id).status == ReportStatus.running
    seen: list[tuple[int, str, str]] = []

    def watch(_: int, progress: int, stage: str) -> None:
        seen.append((progress, stage, run_status(engine, run_id).stage))

    status = runner.run(run_report(engine, run_id, "test-worker", settings.public_url, on_progress=watch))
    assert status == ReportStatus.done
    # Each step was on the run's row (what the API and the page show) while it ran.
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen) and len(seen) == 5
    assert all(stage == on_row for _, stage, on_row in seen)
    run = run_status(engine, run_id)
    assert (run.progress, run.stage, run.lease_until) == (100, "Готов", None)
    assert run.flow_run_id and run.xlsx and run.pdf and run.xlsx_suppressed and run.pdf_suppressed
    assert run.xlsx_size == len(run.xlsx)

    async def prefect_view() -> tuple[str, float | None]:
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(run.flow_run_id))
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"form-1rp-run-{run_id}"]))
            )
            return str(flow_run.state_name), (float(artifacts[0].data) if artifacts else None)  # type: ignore[arg-type]

    state, artifact_progress = runner.run(prefect_view())
    assert state == "Completed" and artifact_progress == 100.0

    # The API: status and the РРМЦ's exact files.
    body = world.client.get(f"{API}/reports/{run_id}", headers=world.h("rrmc")).json()
    assert body["status"] == "done" and body["progress"] == 100
    xlsx = world.client.get(body["xlsx_url"], headers=world.h("rrmc"))
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    rows, stats = xlsx_rows(xlsx.content), demo_statistics(engine)
    assert rows["2.01"] == stats.outcomes.value("identified") == REFERRED
    assert rows["2.03"] == stats.outcomes.value("with_ipr") == WITH_IPR
    pdf = world.client.get(body["pdf_url"], headers=world.h("rrmc"))
    assert pdf.headers["content-type"] == "application/pdf" and "Форма 1-РП" in pdf_text(pdf.content)
    # The analyst's copy: no count of 1..4 about children (section 8 counts organisations).
    analyst_file = world.client.get(body["xlsx_url"], headers=world.h("analyst")).content
    analyst = xlsx_rows(analyst_file)
    assert world.client.get(body["xlsx_url"], headers=world.h("admin")).content == analyst_file
    assert not [c for c, v in analyst.items() if isinstance(v, int) and 0 < v < 5 and not c.startswith("8.")]
    assert analyst["2.03"] == "<5"
    with Session(engine) as session:
        audited = session.exec(
            select(AuditLog.action, AuditLog.user_id).where(AuditLog.entity == "report")
        ).all()
    # The start and each download, by whom (no child in them: child_id stays empty).
    assert sorted(audited) == sorted(
        [
            ("create", world.user_ids["rrmc"]),
            ("read", world.user_ids["rrmc"]),
            ("read", world.user_ids["rrmc"]),
            ("read", world.user_ids["analyst"]),
            ("read", world.user_ids["admin"]),
        ]
    )

    # The РРМЦ is told once, by e-mail, with no child's data: through the outbox and the relay.
    with Session(engine) as session:
        told = session.exec(select(Outbox).where(Outbox.template == "report_ready")).all()
    assert [(r.case_id, r.context["org_id"]) for r in told] == [(None, world.org_ids["rrmc"])]
    relay = Relay(engine, settings, name="test-relay")
    for _ in range(5):
        if runner.run(relay.run_once()) == 0:
            break
    (letter,) = smtp.to(rrmc_email)
    assert str(letter["Subject"]) == f"Отчёт по форме 1-РП за {year()} год сформирован"
    text = letter.get_body().get_content()  # type: ignore[union-attr]
    assert f"{settings.public_url}/reports" in text and "Демонстрационная область" in text
    assert "Ёжиков" not in text and "Алён" not in text
    with Session(engine) as session:
        delivery = session.exec(select(Delivery).where(Delivery.outbox_id == told[0].id)).one()
    assert delivery.status == DeliveryStatus.sent
    sign_in(world.client, "rrmc")
    assert "РРМЦ уведомлён" in world.client.get("/reports").text


def test_the_page_starts_a_run_that_the_worker_job_makes(
    world: World, engine: Engine, settings: Settings, prefect_server: None, rrmc_email: str
) -> None:
    sign_in(world.client, "rrmc")
    page = world.client.get("/reports")
    assert page.status_code == 200 and "Сформировать отчёт по форме 1-РП" in page.text
    answer = world.client.post(
        "/reports", data={"csrf": csrf_of(page.text), "year": str(year())}, follow_redirects=False
    )
    assert answer.status_code == 303
    listed = world.client.get("/reports")
    assert "В очереди" in listed.text and "<progress" in listed.text
    again = world.client.post("/reports", data={"csrf": csrf_of(listed.text), "year": str(year())})
    assert again.status_code == 409 and "уже формируется" in again.text

    assert run_queued(engine, worker="page-test-worker") == 1
    with Session(engine) as session:
        (run,) = session.exec(select(ReportRun)).all()
    assert run.status == ReportStatus.done, run.error
    progress = world.client.get(f"/reports/{run.id}/progress").json()
    assert progress == {"status": "done", "status_label": "Готов", "progress": 100, "stage": "Готов"}
    done = world.client.get("/reports")
    assert f"/reports/{run.id}/file.xlsx" in done.text
    assert "РРМЦ: уведомление отправляется" in done.text  # in the outbox; no relay runs here
    download = world.client.get(f"/reports/{run.id}/file.pdf")
    assert download.status_code == 200 and download.content.startswith(b"%PDF")


def test_the_cli_queues_a_report_and_makes_it_here_with_progress(
    world: World, engine: Engine, prefect_server: None, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "EARLYHELP_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "EARLYHELP_VAR_DIR": str(tmp_path),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
    }
    made = subprocess.run(
        [EARLYHELP, "report", "--year", str(year()), "--region", "demo", "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0].startswith("запуск № ") and "в очереди" in lines[0]
    assert "Расчёт показателей" in made.stdout and lines[-1].startswith("100 %  Готов")
    with Session(engine) as session:
        (run,) = session.exec(select(ReportRun)).all()
    assert run.status == ReportStatus.done and run.requested_by is None

    for bad in (["--year", "2019", "--region", "demo"], ["--year", str(year()), "--region", "nowhere"]):
        refused = subprocess.run(
            [EARLYHELP, "report", *bad], env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 1
        assert len(refused.stderr.strip().splitlines()) == 1 and refused.stderr.startswith("ошибка: ")


def test_on_a_generated_region_the_files_hold_the_statistics_and_the_plans_own_counts(
    engine: Engine, settings: Settings, runner: asyncio.Runner, smtp: SmtpServer
) -> None:
    plan = generate(engine, n=400, seed=7)
    with Session(engine) as session:
        run_id = queue(session, plan.region_id, ReportKind.form_1rp, 2025, None).id or 0
        session.commit()
    assert claim(engine, run_id, "gen-worker")
    assert runner.run(run_report(engine, run_id, "gen-worker", settings.public_url)) == ReportStatus.done
    run = run_status(engine, run_id)
    assert run.xlsx and run.pdf and run.xlsx_suppressed
    rows, hidden = xlsx_rows(run.xlsx), xlsx_rows(run.xlsx_suppressed)
    with Session(engine) as session:
        stats = statistics.compute(session, plan.region_id, date(2025, 1, 1), date(2025, 12, 31))

    # Against the plan, counted without SQL.
    in_year = [j for j in plan.journeys if j.referral_date.year == 2025]
    assert rows["1.01"] == stats.referrals_by_source.total.value == len(in_year)  # type: ignore[union-attr]
    assert rows["2.01"] == stats.outcomes.value("identified") == len({j.child_id for j in in_year})
    ages = [
        sum(1 for j in in_year if age_group(j.birth_date, j.referral_date) == code) for code, _ in AGE_GROUPS
    ]
    assert [rows[f"3.0{n}"] for n in range(2, 6)] == ages and rows["3.01"] == len(in_year)
    # Against the statistics: every outcome row of section 2 and 4 as C computes it.
    for code, key in (
        ("2.02", "in_need"),
        ("2.03", "with_ipr"),
        ("2.04", "consultation_only"),
        ("2.05", "no_need"),
    ):
        assert rows[code] == stats.outcomes.value(key), code
    assert rows["4.01"] == stats.outcomes.value("completed")
    assert round(rows["2.07"], 1) == round((stats.coverage.share or 0) * 100, 1)
    assert str(len(in_year)) in pdf_text(run.pdf)
    # The analyst's copy: no count of 1..4 about children anywhere.
    assert not [c for c, v in hidden.items() if isinstance(v, int) and 0 < v < 5 and not c.startswith("8.")]
