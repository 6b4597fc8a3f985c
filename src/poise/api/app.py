"""The application: made by :func:`create_app`, served by ``poise serve`` (uvicorn).

The store is opened once, when the application starts (and checked to be at the
current schema), and closed when it stops; every request borrows a connection from
its pool. A request in progress when the server is told to stop (SIGTERM, Ctrl-C) is
finished first — uvicorn's graceful shutdown — and then the pool is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI

from poise.api import auth, problems
from poise.api.logs import RequestLog
from poise.api.routes import book, health
from poise.settings import Settings

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
VERSION = "1"


def create_app(settings: Settings | None = None, *, engine: sa.Engine | None = None) -> FastAPI:
    """The service for ``settings`` (default: from ``POISE_*``), on ``engine`` if given
    (else the store ``POISE_DATABASE_URL`` names, opened at start-up)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from poise.store.migrate import open_store  # noqa: PLC0415 - the store loads late

        owned = engine is None
        app.state.engine = engine if engine is not None else open_store(settings.database_url)
        app.state.settings = settings
        try:
            yield
        finally:
            if owned:
                app.state.engine.dispose()

    app = FastAPI(
        title="poise",
        version=VERSION,
        summary="Tax-aware portfolio rebalancing for advisers: the REST API.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(RequestLog)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(book.router, prefix=API_PREFIX)
    return app
