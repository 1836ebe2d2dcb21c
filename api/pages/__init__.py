"""The staff pages (DESIGN §9): server-rendered, Russian, everything served by the app itself."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.headers import STATIC_PREFIX
from api.pages import (
    admin,
    auth,
    cases,
    documents,
    enrolments,
    public,
    referrals,
    registry,
    reports,
    routings,
    stats,
    teams,
    transfers,
    worklists,
)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX + "app", StaticFiles(directory=STATIC_DIR), name="app-assets")
    router = APIRouter(include_in_schema=False)
    journeys = (auth, referrals, cases, transfers, routings, teams, enrolments, admin, worklists)
    monitoring = (public, registry, stats, reports, documents)
    for module in (*journeys, *monitoring):
        router.include_router(module.router)
    app.include_router(router)
