"""The family's reminder page in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from core.tokens import session_link_token
from models.programmes import ServiceSession
from tests.test_journey import to_ipr_implementation
from tests.world import API, World


def test_family_confirms_in_a_browser(
    world: World, engine: Engine, server_url: str, browser: object, tmp_path: Path
) -> None:
    case_id = to_ipr_implementation(world)
    at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)
    planned = world.client.post(
        f"{API}/cases/{case_id}/sessions",
        json={"service_code": "motor_development", "scheduled_at": at.isoformat()},
        headers=world.h("curator"),
    ).json()
    token = session_link_token(planned["id"], at + timedelta(hours=12), world.client.app.state.keys)  # type: ignore[attr-defined]

    page = browser.new_page(viewport={"width": 390, "height": 760})  # type: ignore[attr-defined]
    page.goto(f"{server_url}/f/{token}")
    assert page.title() == "Занятие в службе ранней помощи"
    assert f"{at:%d.%m.%Y} в 11:00" in page.inner_text("main")  # Moscow time
    page.screenshot(path=str(tmp_path / "before.png"))
    page.get_by_role("button", name="Подтверждаю, придём").click()
    page.wait_for_load_state()
    assert "Вы подтвердили" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button").count() == 0
    page.screenshot(path=str(tmp_path / "after.png"))
    with Session(engine) as session:
        stored = session.get(ServiceSession, planned["id"])
        assert stored is not None and stored.family_response == "confirmed"

    page.goto(f"{server_url}/f/{token[:-3]}abc")
    assert "Ссылка недействительна" in page.inner_text("main")
    page.close()
