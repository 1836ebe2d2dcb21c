"""Short links for families: a reminder SMS with its link fits in two Cyrillic SMS segments
(UCS-2: 2 × 67 = 134 characters); the link opens the family's page until it expires."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from api.demo import ORGANISATIONS
from core.config import Settings
from core.db import reads_engine
from core.tokens import SHORT_CODE_ALPHABET, SHORT_CODE_LENGTH
from flows.delivery import render
from flows.sweeps import SHORT_LINKS_KEPT, sweep_reminders, sweep_short_links
from flows.targets import resolve_many
from models.audit import AuditLog
from models.links import ShortLink
from models.organisations import Organisation, OrgKind
from models.outbox import EffectKind, Outbox
from models.programmes import ServiceSession
from tests.browser import assert_accessible
from tests.test_journey import to_ipr_implementation
from tests.test_pages_referrals import CONCLUSION
from tests.test_reminders import PLANNED_ON, SESSION_AT, plan
from tests.world import World

TWO_UCS2_SEGMENTS = 134
LONGEST_PROVIDER = max((name for name, kind, _ in ORGANISATIONS if kind == OrgKind.provider), key=len)
DEMO_PUBLIC_URL = Settings.model_fields["public_url"].default  # the setting's own default
CODE = re.compile(rf"/f/([{SHORT_CODE_ALPHABET}]{{{SHORT_CODE_LENGTH}}})$")


def reminder_rows(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.template == "session_reminder")))


def reminder_sms(engine: Engine, settings: Settings) -> list[str]:
    """The reminder SMS as the relay renders them (flows/delivery.py), short links made."""
    rows = reminder_rows(engine)
    with Session(reads_engine(engine)) as session:
        resolved = resolve_many(session, rows, settings, links=engine)
    texts = [render(resolved[row.id or 0], row.template, "sms") for row in rows]
    return [t for t in texts if t is not None]


def reminded(world: World, engine: Engine) -> dict[str, Any]:
    """A session at 11:00 Moscow on 12.03.2026 and its reminder the day before (in the outbox)."""
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        planned = plan(world, case_id)
    with time_machine.travel(SESSION_AT - timedelta(hours=23), tick=False):
        assert sweep_reminders(engine).reminders == 1
    return planned


def longest_provider_name(engine: Engine, world: World) -> None:
    with Session(engine) as session:
        session.execute(
            update(Organisation)
            .where(col(Organisation.id) == world.provider_id)
            .values(name=LONGEST_PROVIDER)
        )
        session.commit()


def test_reminder_sms_with_its_link_fits_in_two_cyrillic_segments(
    world: World,
    engine: Engine,
    settings: Settings,
) -> None:
    planned = reminded(world, engine)
    longest_provider_name(engine, world)
    demo = settings.model_copy(update={"public_url": DEMO_PUBLIC_URL})
    with time_machine.travel(SESSION_AT - timedelta(hours=23), tick=False):
        (text,) = reminder_sms(engine, demo)
    assert text.startswith(LONGEST_PROVIDER) and "12.03.2026 11:00" in text
    assert len(text) <= TWO_UCS2_SEGMENTS, (len(text), text)
    link = text.rsplit(" ", 1)[1]
    assert link.startswith(f"{DEMO_PUBLIC_URL}/f/") and CODE.search(link)
    # No diagnosis and nothing of the child but what a reminder needs.
    assert not any(word in text for word in CONCLUSION.split(", ")) and "Ёжикова" not in text
    with Session(engine) as session:
        row = session.exec(select(ShortLink)).one()
    assert row.session_id == planned["id"]
    # The link lives as the signed one would: the standard's hours after the session starts.
    assert row.expires_at == SESSION_AT + timedelta(hours=12)


def test_the_short_link_is_made_once_per_session_and_follows_a_new_time(
    world: World,
    engine: Engine,
    settings: Settings,
) -> None:
    planned = reminded(world, engine)
    with time_machine.travel(SESSION_AT - timedelta(hours=23), tick=False):
        first = reminder_sms(engine, settings)
        again = reminder_sms(engine, settings)
    assert first == again
    later = SESSION_AT + timedelta(days=1)
    with Session(engine) as session:
        session.execute(
            update(ServiceSession).where(col(ServiceSession.id) == planned["id"]).values(scheduled_at=later)
        )
        session.commit()
    with time_machine.travel(SESSION_AT - timedelta(hours=2), tick=False):
        moved = reminder_sms(engine, settings)
    assert moved[0].rsplit(" ", 1)[1] == first[0].rsplit(" ", 1)[1]  # the same code
    with Session(engine) as session:
        (row,) = session.exec(select(ShortLink)).all()
    assert row.expires_at == later + timedelta(hours=12)


def three_sessions_with_links(
    world: World, engine: Engine, settings: Settings
) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    """Sessions on three days and their reminders resolved as the relay does (short links made), the
    answers keyed 1, 2, 3 in the sessions' order."""
    with time_machine.travel(PLANNED_ON, tick=False):
        case_id = to_ipr_implementation(world)
        sessions = [plan(world, case_id, SESSION_AT + timedelta(days=d)) for d in range(3)]
    rows = [
        Outbox(
            id=n,  # never stored: only the key of its answer
            kind=EffectKind.notify_family,
            case_id=case_id,
            template="session_reminder",
            context={"session_id": s["id"]},
        )
        for n, s in enumerate(sessions, start=1)
    ]
    with Session(reads_engine(engine)) as session, time_machine.travel(PLANNED_ON, tick=False):
        return sessions, dict(resolve_many(session, rows, settings, links=engine))


def test_codes_are_random_and_unguessable_in_shape(
    world: World,
    engine: Engine,
    settings: Settings,
) -> None:
    _, resolved = three_sessions_with_links(world, engine, settings)
    codes = {CODE.search(r.context["response_url"]).group(1) for r in resolved.values()}  # type: ignore[union-attr]
    assert len(codes) == 3


def test_the_short_link_opens_the_page_answers_and_expires(
    world: World,
    engine: Engine,
    settings: Settings,
) -> None:
    planned = reminded(world, engine)
    with time_machine.travel(SESSION_AT - timedelta(hours=23), tick=False):
        (text,) = reminder_sms(engine, settings)
        path = "/f/" + text.rsplit("/f/", 1)[1]
        page = world.client.get(path)
        assert page.status_code == 200 and "12.03.2026 в 11:00" in page.text and "Подтверждаю" in page.text
        assert "/static/app/app.css" in page.text
        done = world.client.post(path, data={"action": "confirm"})
        assert done.status_code == 200 and "Вы подтвердили" in done.text
    with Session(engine) as session:
        stored = session.get(ServiceSession, planned["id"])
        assert stored is not None and stored.family_response == "confirmed"
    with time_machine.travel(SESSION_AT + timedelta(hours=13), tick=False):
        expired = world.client.get(path)
        assert expired.status_code == 410 and "Ссылка устарела" in expired.text
        assert world.client.post(path, data={"action": "reschedule"}).status_code == 410
    unknown = world.client.get("/f/" + "A" * SHORT_CODE_LENGTH)
    assert unknown.status_code == 400 and "Ссылка недействительна" in unknown.text
    with Session(engine) as session:
        refused = session.exec(select(AuditLog).where(AuditLog.action == "refused")).all()
    assert [(r.path, r.status, r.entity) for r in refused] == [
        ("GET /f/[token]", 410, "family_link"),
        ("POST /f/[token]", 410, "family_link"),
        ("GET /f/[token]", 400, "family_link"),
    ]
    with Session(engine) as session:
        assert session.get(ServiceSession, planned["id"]).family_response == "confirmed"  # type: ignore[union-attr]


def test_short_links_expired_a_month_ago_are_deleted_and_then_answer_invalid(
    world: World,
    engine: Engine,
    settings: Settings,
) -> None:
    sessions, resolved = three_sessions_with_links(world, engine, settings)
    paths = [resolved[n].context["response_url"].split(settings.public_url, 1)[1] for n in (1, 2, 3)]
    with Session(engine) as session:
        expiries = dict(session.exec(select(ShortLink.session_id, ShortLink.expires_at)).all())
    first_expiry = expiries[sessions[0]["id"]]
    # A month after the first link expired, to the second: the first goes, the others stay.
    now = first_expiry + SHORT_LINKS_KEPT + timedelta(days=1)
    assert expiries[sessions[1]["id"]] == first_expiry + timedelta(days=1)
    assert sweep_short_links(engine, now) == 1
    assert sweep_short_links(engine, now) == 0
    with Session(engine) as session:
        left = set(session.exec(select(ShortLink.session_id)).all())
    assert left == {sessions[1]["id"], sessions[2]["id"]}
    with time_machine.travel(now, tick=False):
        gone = world.client.get(paths[0])
        kept = world.client.get(paths[1])
    assert gone.status_code == 400 and "Ссылка недействительна" in gone.text
    assert kept.status_code == 410 and "Ссылка устарела" in kept.text


def test_the_family_confirms_from_the_short_link_in_a_browser(
    world: World,
    engine: Engine,
    settings: Settings,
    server_url: str,
    browser: object,
) -> None:
    case_id = to_ipr_implementation(world)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    planned = plan(world, case_id, at)
    row = Outbox(
        kind=EffectKind.notify_family,
        case_id=case_id,
        template="session_reminder",
        context={"session_id": planned["id"]},
    )
    with Session(reads_engine(engine)) as session:
        url = resolve_many(session, [row], settings, links=engine)[0].context["response_url"]
    page = browser.new_page(viewport={"width": 390, "height": 760})  # type: ignore[attr-defined]
    page.goto(server_url + "/f/" + url.rsplit("/f/", 1)[1])
    assert page.title() == "Занятие в службе ранней помощи"
    assert_accessible(page)
    page.get_by_role("button", name="Подтверждаю, придём").click()
    page.wait_for_load_state()
    assert "Вы подтвердили" in page.get_by_role("status").inner_text()
    assert_accessible(page)
    page.goto(server_url + "/f/" + "B" * SHORT_CODE_LENGTH)
    assert "Ссылка недействительна" in page.inner_text("main")
    assert_accessible(page)
    page.close()
