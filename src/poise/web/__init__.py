"""The web pages: server-rendered (Jinja2), made lively with htmx, charted with plotly.

Owns: the pages people read — signing in and out, the firm at a glance, a household,
an account, the client's own view, the firm-wide runs (:mod:`poise.web.runs`), the
backtests kept (:mod:`poise.web.backtests`), the files loaded
(:mod:`poise.web.ingest`), approvals — the inbox, the compliance queue and a
proposal's approval panel (:mod:`poise.web.approvals`), the audit ledger
(:mod:`poise.web.audit`), the execution blotter and its kill switch
(:mod:`poise.web.execution`) — their templates and their static files. The JavaScript
comes from installed packages (htmx from ``django-js-lib-htmx``, plotly.js from
``plotly``), served by poise itself: nothing is fetched from a network at run time.
May not hold finance rules or touch the store but through its repositories and the
workflow shells; who may see what is :mod:`poise.domain.users`' one rule, as for the API.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from itsdangerous import TimestampSigner
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    import sqlalchemy as sa
    from fastapi import FastAPI

    from poise.settings import Settings

__all__ = ["SESSION_COOKIE", "install"]

SESSION_COOKIE = "poise_session"
API = "/api/"


class _Sessions(SessionMiddleware):
    """Starlette's signed-cookie sessions, for the pages only (the API signs nothing in
    with cookies), with the key read from the store at the first page — so that a store
    behind its schema still starts, and says so at /api/v1/ready."""

    def __init__(
        self, app: ASGIApp, key: Callable[[], str], session_cookie: str, max_age: int,
        https_only: bool,
    ) -> None:  # fmt: skip
        super().__init__(
            app, secret_key="-", session_cookie=session_cookie, max_age=max_age,
            same_site="strict", https_only=https_only,
        )  # fmt: skip
        self._key = key
        self._ready = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(API):
            await self.app(scope, receive, send)
            return
        if not self._ready:
            self.signer = TimestampSigner(self._key())
            self._ready = True
        await super().__call__(scope, receive, send)


def install(app: FastAPI, engine: sa.Engine, settings: Settings) -> None:
    """The pages, their session cookie and their error pages, on ``app``."""
    from poise.store import repo  # noqa: PLC0415
    from poise.web import (  # noqa: PLC0415
        approvals,
        audit,
        backtests,
        books,
        execution,
        ingest,
        oidc,
        pages,
        runs,
    )
    from poise.web.errors import install as install_errors  # noqa: PLC0415

    def key() -> str:
        with engine.execution_options(writes=True).begin() as connection:
            return repo.service_secret(
                connection, name="session", make=lambda: secrets.token_urlsafe(48)
            )

    app.add_middleware(
        _Sessions,
        key=key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_hours * 3600,
        https_only=settings.cookie_secure,
    )
    install_errors(app)
    app.include_router(pages.router)
    app.include_router(ingest.router)
    app.include_router(backtests.router)
    app.include_router(runs.router)
    app.include_router(approvals.router)
    app.include_router(audit.router)
    app.include_router(execution.router)
    app.include_router(books.router)
    oidc.install(app, engine, settings)
