"""Screenshots of every staff page (issue 10), at 1366×768 and at a tablet width (820×1180).

The app runs on a fresh SQLite demo database in a temporary directory (``api.demo.load_demo``, what
``earlyhelp demo`` loads: a region with users of every role, password ``demo``, and a child in
every state of the journey), plus a few sessions for the case in ``ipr_implementation`` planned
through the app's own ``api.services.attendance.plan_session`` (today if the day is not over,
tomorrow, next week) and two past ones held and missed, so «Сегодня» and the case page have them;
and the open deadlines of four cases moved to a few days ago (one to three days ahead), so the
dashboard and «Сегодня» show what is late and what is due soon.
It is served by uvicorn on a free loopback port in a thread and driven by Debian's Chromium with
Playwright (``tests/browser.py``: the same Chromium, arguments and sign-in through the form).

Pages come from ``bench/pagelist.py`` (one table), plus the case page in several states and the 404
page. A page whose path no route matches is reported as missing and skipped. Full-page PNGs go to
``docs/screenshots/<name>.png`` and ``docs/screenshots/tablet/<name>.png``.

Run::

    .venv/bin/python bench/screenshots.py
    .venv/bin/python bench/screenshots.py --pages today,case --out /tmp/shots
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds transitions.py, which would shadow the pytransitions package: move it to the end.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.browser

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import uvicorn
from pagelist import PAGES, Page, family_code, route_exists
from playwright.sync_api import sync_playwright
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.deps import Principal
from api.main import create_app
from api.services import attendance
from core.config import Settings
from core.db import make_engine, session_scope
from core.migrate import upgrade
from models.cases import Case
from models.children import Child
from models.common import utcnow
from models.deadlines import Deadline, DeadlineStatus
from models.organisations import Organisation, Region
from models.outbox import Outbox
from models.programmes import Ipr, PlannedService, ServiceForm, ServiceSession, SessionIn, SessionStatus
from models.transfers import Transfer
from models.users import User
from tests.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, TABLET, login
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
SECRET = "screenshots-secret-key-of-sufficient-length-for-hs256"

# The case page in the states worth a picture: (name, state, who opens it).
CASES: list[tuple[str, str, str]] = [
    ("case-referred", "referred", "coordinator"),
    ("case-need-determination", "need_determination", "coordinator"),
    ("case-ipr-development", "ipr_development", "curator"),
    ("case-suspended", "suspended", "curator"),
    ("case-completed", "completed", "curator"),
    ("case-adaptation", "adaptation", "curator"),
    ("case-in-transfer", "ipr_assessment", "coordinator"),  # the demo's pending transfer: the banner
    # Another organisation's case: the 404 page (`social` is in the team of ipr_implementation's).
    ("case-referrer-404", "ipr_assessment", "social"),
]
# The inter-agency pages (issue 11), on the demo's agreement, team, routing and pending transfer.
INTER_AGENCY: list[Page] = [
    Page("transfers", "/transfers", "coordinator2", "«Передачи»: a transfer request to answer"),
    Page("transfer", "/transfers/{transfer_id}", "coordinator2", "one transfer request, accept or refuse"),
    Page("routings-incoming", "/routings", "referrer", "«Направленные к нам семьи», a clinic's"),
    Page("teams", "/teams", "social", "«Мои команды», an invited specialist's"),
    Page("enrolments", "/enrolments", "kindergarten", "«Поступающие дети», a ДОО's"),
    Page("admin-agreements", "/admin/agreements", "admin", "agreements on inter-agency interaction"),
]

# Issue 12: the public registry (no login), the target-group registry, statistics and reports.
MONITORING: list[Page] = [
    Page("public-region", "/public/{region_code}", None, "the public registry: a region's page for parents"),
    Page("public-provider", "/public/{region_code}/providers/{provider_id}", None, "a provider page"),
    Page("my-organisation", "/my-organisation", "head", "«Наша организация»: free places and forms"),
    Page("registry", "/registry", "rrmc", "the target-group registry, the РРМЦ's"),
    Page("registry-duplicates", "/registry/duplicates", "rrmc", "likely duplicates to review"),
    Page("stats-region", "/stats", "rrmc", "statistics of the region over a period, with charts"),
    Page("reports", "/reports", "rrmc", "the yearly form 1-РП: start, progress, files"),
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def principal(session: Session, login_name: str) -> Principal:
    user = session.exec(select(User).where(User.login == login_name)).one()
    org = session.get(Organisation, user.organisation_id)
    assert org is not None
    return Principal(user=user, org=org)


def add_sessions(engine: Engine) -> None:
    """Sessions for the demo's ipr_implementation case: future ones planned by the service, two past."""
    with session_scope(engine) as session:
        case = session.exec(select(Case).where(Case.state == "ipr_implementation")).one()
        zone = ZoneInfo(session.exec(select(Region)).one().timezone)
        curator = principal(session, "curator")
        service = session.exec(
            select(PlannedService)
            .join(Ipr)
            .where(Ipr.case_id == case.id, PlannedService.service_code == "communication_development")
        ).first()
        now = utcnow().astimezone(zone)
        soon = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        tomorrow = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
        times = [soon] if soon.date() == now.date() else []
        times += [tomorrow, tomorrow + timedelta(days=7, hours=4)]
        for at in times:
            attendance.plan_session(
                session,
                curator,
                case,
                SessionIn(
                    service_code="communication_development",
                    planned_service_id=service.id if service else None,
                    scheduled_at=at,
                    duration_minutes=45,
                ),
            )
        for days_ago, status in ((7, SessionStatus.held), (14, SessionStatus.missed)):
            at = (now - timedelta(days=days_ago)).replace(hour=10, minute=0, second=0, microsecond=0)
            session.add(
                ServiceSession(
                    case_id=case.id or 0,
                    planned_service_id=service.id if service else None,
                    service_code="communication_development",
                    form=service.form if service else ServiceForm.in_person,
                    scheduled_at=at,
                    duration_minutes=45,
                    status=status,
                    created_at=at - timedelta(days=7),
                    updated_at=at,
                )
            )


# Days from now to the due time of the open deadlines of the demo's cases in these states: the
# demo's cases are all made today, so nothing would be late on the dashboard or «Сегодня».
DUE_IN_DAYS = {"referred": -2, "need_determination": -6, "ipr_development": -13, "ipr_assessment": 3}


def age_deadlines(engine: Engine) -> None:
    """Move some open deadlines into the past (and one to the coming days), as weeks of work would."""
    now = utcnow()
    with session_scope(engine) as session:
        rows = session.exec(
            select(Deadline, Case)
            .join(Case, col(Case.id) == col(Deadline.case_id))
            .where(
                Deadline.status == DeadlineStatus.open,
                col(Deadline.paused_at).is_(None),
                Deadline.timer != "transition_start",
            )
        ).all()
        for deadline, case in rows:
            if case.state in DUE_IN_DAYS:
                deadline.due_at = now + timedelta(days=DUE_IN_DAYS[case.state])
                deadline.warn_at = deadline.due_at - timedelta(days=3)
                session.add(deadline)


def deliver(engine: Engine, settings: Settings) -> int:
    """Deliver the demo's messages once, as the relay's flows do (``flows.delivery.deliver_chunk``,
    without Prefect): no channel is configured here, so each is recorded as skipped with the text it
    would have sent, and the case page shows it. Family messages in the region's quiet hours wait."""
    from flows import delivery

    delivery.configure(engine, settings)
    with Session(engine) as session:
        ids = [row.id or 0 for row in session.exec(select(Outbox).order_by(col(Outbox.id))).all()]
    asyncio.run(delivery.deliver_chunk(ids, {}))
    return len(ids)


def values_for(engine: Engine, app: Any) -> dict[str, Any]:
    with Session(engine) as session:
        by_state = {case.state: case for case in session.exec(select(Case)).all()}
        case = by_state["ipr_implementation"]
        planned = session.exec(
            select(ServiceSession)
            .where(ServiceSession.case_id == case.id, ServiceSession.status == SessionStatus.planned)
            .order_by(col(ServiceSession.scheduled_at))
        ).first()
        assert planned is not None
        child = session.get(Child, case.child_id)
        assert child is not None
        values: dict[str, Any] = {
            "case_id": case.id,
            "referral_id": case.referral_id,
            "q": child.last_name[:4],
        }
        for name, state, _who in CASES:
            values[name] = by_state[state].id
        planned_id, planned_at = planned.id or 0, planned.scheduled_at
        values["transfer_id"] = session.exec(select(Transfer.id)).first()
        provider = session.get(Organisation, case.provider_id)
        assert provider is not None
        region = session.get(Region, provider.region_id)
        assert region is not None
        values["region_code"], values["provider_id"] = region.code, provider.id
    # After the read: the short link is written in a transaction of its own (SQLite: one writer).
    values["code"] = family_code(engine, planned_id, planned_at, app.state.keys, "demo")
    return values


def pages_to_take() -> list[Page]:
    extra = [Page(name, f"/cases/{{{name}}}", who, f"case page, {state}") for name, state, who in CASES]
    return [*PAGES, *extra, *INTER_AGENCY, *MONITORING]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def take(
    browser: Any, base: str, app: Any, pages: list[Page], values: dict[str, Any], out: Path
) -> dict[str, str]:
    """Every page at both sizes; returns name -> "ok" / "missing" / "HTTP nnn"."""
    outcome: dict[str, str] = {}
    for viewport, folder in ((DESKTOP, out), (TABLET, out / "tablet")):
        folder.mkdir(parents=True, exist_ok=True)
        signed_in: dict[str, Any] = {}
        anonymous = browser.new_context(viewport=viewport, locale="ru-RU", base_url=base)
        try:
            for page_def in pages:
                url = page_def.url(values)
                if not route_exists(app, url):
                    outcome[page_def.name] = "missing"
                    continue
                if page_def.binary:
                    outcome[page_def.name] = "download (no picture)"
                    continue
                if page_def.login is None:
                    tab = anonymous.new_page()
                else:
                    if page_def.login not in signed_in:
                        signed_in[page_def.login] = login(browser, base, page_def.login, viewport=viewport)
                    tab = signed_in[page_def.login]
                response = tab.goto(url)
                status = response.status if response else 0
                expected_error = page_def.name.endswith("-404")
                outcome[page_def.name] = "ok" if status == 200 or expected_error else f"HTTP {status}"
                tab.screenshot(path=str(folder / f"{page_def.name}.png"), full_page=True)
                if page_def.login is None:
                    tab.close()
        finally:
            for tab in signed_in.values():
                tab.context.close()
            anonymous.close()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    parser.add_argument("--pages", default="", help="comma-separated page names (default: all)")
    args = parser.parse_args(argv)
    pages = pages_to_take()
    if args.pages:
        wanted = {name.strip() for name in args.pages.split(",")}
        pages = [page for page in pages if page.name in wanted]
    with tempfile.TemporaryDirectory(prefix="earlyhelp-screenshots-") as tmp:
        url = f"sqlite:///{tmp}/demo.db"
        upgrade(url)
        engine = make_engine(url)
        from api.demo import load_demo

        with session_scope(engine) as session:
            load_demo(session)
        add_sessions(engine)
        age_deadlines(engine)
        settings = Settings(database_url=url, var_dir=Path(tmp), secret_key=SECRET, relay_in_serve=False)
        app = create_app(settings, engine)
        log(f"delivered {deliver(engine, settings)} messages (no channel configured: kept with their text)")
        values = values_for(engine, app)
        started = datetime.now()
        with serving(app) as base, sync_playwright() as playwright:
            # Russian UI language, so date inputs show ДД.ММ.ГГГГ as on the staff's computers (needs Debian's
            # chromium-l10n; with only en-US.pak installed they show mm/dd/yyyy).
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--lang=ru-RU"]
            )
            try:
                outcome = take(browser, base, app, pages, values, args.out)
            finally:
                browser.close()
        engine.dispose()
    for page in pages:
        print(f"{page.name:28} {page.login or '—':12} {outcome.get(page.name, '?')}")
    log(f"screenshots in {args.out} ({(datetime.now() - started).total_seconds():.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
