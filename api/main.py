"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import standards
from api import docs, errors, openapi, pages
from api.audit import RefusalAudit
from api.headers import SecurityHeaders
from api.limits import BodySizeLimit, check_input
from api.routes import (
    auth,
    cases,
    children,
    documents,
    enrolments,
    family,
    journey,
    organisations,
    overdue,
    public,
    referrals,
    registry,
    reports,
    routings,
    sessions,
    stats,
    teams,
    transfers,
    users,
)
from api.security import LoginThrottle
from core.config import Settings, get_settings, make_private_dir
from core.db import make_engine
from core.tokens import Purpose, key_store

API_PREFIX = "/api/v1"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.settings.freeze_gc_on_start:  # core/config.py says why
        gc.collect()
        gc.freeze()
    yield


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="earlyhelp — ранняя помощь детям и их семьям",
        description=(
            "Маршрут ребёнка от направления до перехода в ДОО. Вход: POST /api/v1/auth/login, "
            "затем заголовок Authorization: Bearer <токен>."
        ),
        version="0.1.0",
        openapi_url="/openapi.json",
        # /docs and /redoc from the app's own files (api/docs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
        # Control characters and non-JSON bodies refused on every route (api/limits.py).
        dependencies=[Depends(check_input)],
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url, echo=settings.echo_sql)
    make_private_dir(settings.var_dir)
    app.state.keys = key_store(settings)
    for purpose in Purpose:
        app.state.keys.ensure(purpose)
    app.state.login_throttle = LoginThrottle(settings)
    standards.configure(settings.standards_dir)
    standards.load_all()  # a broken standard file stops the start, not the first request
    errors.install(app)
    openapi.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added last is outermost: refusals are audited with the client's address (a trusted proxy's
    # X-Forwarded-For, else the peer), and every answer gets the security headers.
    app.add_middleware(RefusalAudit)
    if settings.trusted_proxy_hosts:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_hosts)
    app.add_middleware(SecurityHeaders)
    docs.install(app)

    api = APIRouter(prefix=API_PREFIX)
    routers = (auth, users, journey, organisations, referrals, children, cases, sessions, overdue, stats)
    workflows = (transfers, routings, teams, enrolments)
    monitoring = (public, registry, reports, documents)
    for module in (*routers, *workflows, *monitoring):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(family.router)
    pages.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
