"""Two coordinators fire at the same moment through a real server: one wins, one gets 409."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from models.cases import CaseHistory
from tests.world import API, World


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_transitions_one_wins_one_gets_409(
    world: World, engine: Engine, server_url: str, round_: int
) -> None:
    case_id = world.refer()["case_id"]
    world.advance(case_id, "accept", who="coordinator")
    barrier = threading.Barrier(2)

    def fire(who: str, event: str, reason: str) -> int:
        with httpx.Client(base_url=server_url, headers=world.h(who), timeout=30) as client:
            barrier.wait()
            response = client.post(
                f"{API}/cases/{case_id}/events/{event}", json={"version": 2, "reason": reason}
            )
            return response.status_code

    with ThreadPoolExecutor(2) as pool:
        results = sorted(
            pool.map(
                lambda args: fire(*args),
                [("coordinator", "suspend", "Болезнь"), ("curator", "decline", "Отказ")],
            )
        )
    assert results == [200, 409]
    with Session(engine) as session:
        rows = session.exec(select(func.count()).where(CaseHistory.case_id == case_id)).one()
    assert rows == 3  # refer, accept, and exactly one of the two
    assert world.case(case_id)["version"] == 3
