"""The application: made by :func:`create_app`, served by ``poise serve`` (uvicorn,
through :func:`serve_app`).

The store is opened once, when the application starts (and checked to be at the
current schema), and closed when it stops; every request borrows a connection from
its pool. A request in progress when the server is told to stop (SIGTERM, Ctrl-C) is
finished first — uvicorn's graceful shutdown — and then the pool is closed.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from anyio import to_thread
from fastapi import Depends, FastAPI

from poise import web
from poise.api import auth, problems
from poise.api.jobs import Jobs
from poise.api.live import Feed, end_streams_on_exit
from poise.api.logs import RequestLog
from poise.api.routes import (
    approvals,
    audit,
    backtests,
    book,
    books,
    events,
    execution,
    health,
    ingest,
    monitoring,
    proposals,
    rebalancing,
    reference,
    runs,
    transactions,
)
from poise.api.uploads import BoundedBodies
from poise.settings import Settings

__all__ = ["API_PREFIX", "create_app", "serve_app"]

API_PREFIX = "/api/v1"
VERSION = "1"


def create_app(settings: Settings | None = None, *, engine: sa.Engine | None = None) -> FastAPI:
    """The service for ``settings`` (default: from ``POISE_*``), on ``engine`` if given
    (else the store ``POISE_DATABASE_URL`` names, opened here and closed when the
    application stops)."""
    from poise.store.migrate import open_store  # noqa: PLC0415 - the store loads late

    settings = settings or Settings()
    owned = engine is None
    store = engine if engine is not None else open_store(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The routes and dependencies written as plain functions run on AnyIO's thread
        # pool, and hold Python's one lock nearly throughout (SQLite answers from
        # memory): more threads only take turns at it. With AnyIO's 40, sixteen callers
        # at once cost each account read 3.1 ms of processor; with 4, 1.5.
        to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        app.state.engine = store
        app.state.settings = settings
        app.state.jobs = jobs = Jobs(store, settings)
        app.state.feed = feed = Feed(store, settings)
        end_streams_on_exit(feed, asyncio.get_running_loop())
        try:
            yield
        finally:
            await feed.close()
            jobs.close()
            if owned:
                store.dispose()

    app = FastAPI(
        title="poise",
        version=VERSION,
        summary="Tax-aware portfolio rebalancing for advisers: the REST API.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        responses=problems.RESPONSES,
        dependencies=[Depends(problems.plain_text)],
    )
    problems.install(app)
    web.install(app, store, settings)
    app.add_middleware(BoundedBodies, prefix=API_PREFIX)
    app.add_middleware(RequestLog)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(book.router, prefix=API_PREFIX)
    app.include_router(transactions.router, prefix=API_PREFIX)
    app.include_router(reference.router, prefix=API_PREFIX)
    app.include_router(monitoring.router, prefix=API_PREFIX)
    # Before the proposals' own: their reads take the rest of the path as the id, and
    # would read /proposals/{id}/approval as a proposal of that id.
    app.include_router(approvals.router, prefix=API_PREFIX)
    app.include_router(proposals.router, prefix=API_PREFIX)
    app.include_router(runs.router, prefix=API_PREFIX)
    app.include_router(rebalancing.router, prefix=API_PREFIX)
    app.include_router(rebalancing.runs_router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(backtests.router, prefix=API_PREFIX)
    app.include_router(ingest.router, prefix=API_PREFIX)
    app.include_router(audit.router, prefix=API_PREFIX)
    app.include_router(execution.router, prefix=API_PREFIX)
    app.include_router(books.router, prefix=API_PREFIX)
    return app


def serve_app() -> FastAPI:
    """The application as ``poise serve`` runs it, in each worker: :func:`create_app`,
    and then everything made so far — the modules, the routes and their models, some
    170,000 objects that live as long as the process — left out of the garbage
    collector's full passes (:func:`gc.freeze`). Under load a full pass came every
    several seconds, walked them all to free nothing, and held every request in
    progress up for 50–170 ms: the slowest answers of all."""
    app = create_app()
    gc.collect()  # what importing left for the collector goes first, not frozen with it
    gc.freeze()
    return app
