"""Shared by the report tests: a handful of journeys, and reading the form back from its files."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session, select

from api.services import statistics
from api.services.statistics import Statistics
from models.organisations import Region
from tests.test_journey import ipr_payload, need_payload
from tests.world import World, region_today

# The handful of journeys: (referrals, of which accepted, of which with an ИПРП).
REFERRED, ACCEPTED, WITH_IPR = 7, 4, 2


def journeys(world: World) -> None:
    """Seven children referred this year; four accepted; two of them with an approved ИПРП."""
    for n in range(REFERRED):
        case_id = world.refer()["case_id"]
        if n >= ACCEPTED:
            continue
        world.advance(case_id, "accept", {"curator_id": world.user_ids["curator"]}, who="coordinator")
        if n < WITH_IPR:
            world.advance(case_id, "determine_need", need_payload("ipr", "Нужна ИПРП"), who="coordinator")
            world.advance(case_id, "approve_ipr", ipr_payload())


def year() -> int:
    return region_today().year


def demo_statistics(engine: Engine, suppressed: bool = False) -> Statistics:
    from datetime import date

    with Session(engine) as session:
        region = session.exec(select(Region).where(Region.code == "demo")).one()
        stats = statistics.compute(session, region.id or 0, date(year(), 1, 1), date(year(), 12, 31))
    return statistics.suppress(stats, 5) if suppressed else stats


def xlsx_rows(content: bytes) -> dict[str, Any]:
    """Row code → value (a number, or the text shown) from the form's XLSX."""
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet is not None
    rows: dict[str, Any] = {}
    for code, _label, _unit, value in sheet.iter_rows(min_col=1, max_col=4, values_only=True):
        if isinstance(code, str) and "." in code and code[0].isdigit():
            rows[code] = value
    return rows


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
