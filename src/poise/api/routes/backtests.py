"""Backtests kept: the firm's analysis, of no household — for the firm's people, not
its clients (a client is answered 403 for the list and 404 for one:
:data:`poise.api.scoping.staff_only`) — in the shape ``poise backtests show --json``
prints: what each was asked, and each method's figures and years."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Depends, Request, Response
from pydantic import Field

from poise.api.deps import EngineDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.routes.answers import FORBIDDEN, NOT_FOUND, SIGNED_IN, Document, Moment, answer
from poise.api.scoping import ScopedDep, scoped_router, staff_only
from poise.store import repo
from poise.store.repo import pages
from poise.workflow.documents import backtest_json

__all__ = ["router"]

router = scoped_router(
    tags=["backtests"], dependencies=[Depends(staff_only)], responses={**SIGNED_IN, **FORBIDDEN}
)


class MethodOut(Document):
    summary: dict[str, Any]  # its figures: returns before and after tax, tax alpha, …
    years: list[dict[str, Any]]  # a row per calendar year: tax, gains, losses, …


class BacktestOut(Document):
    backtest_id: str
    created_at: Moment
    prices_file: str  # the name it was given
    prices_digest: str  # sha256 of the file's bytes
    model_id: str
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    inputs: dict[str, Any]  # everything asked, so that it can be run again
    digest: str  # sha256 of the results
    charts: dict[str, str] | None  # where the run that made it drew its charts
    methods: dict[str, MethodOut]


class BacktestsPage(Document):
    items: list[BacktestOut]
    total: int
    limit: int
    offset: int


@router.get("/backtests", response_model=BacktestsPage, summary="Backtests kept")
def list_backtests(
    request: Request, who: ScopedDep, engine: EngineDep,
    model_id: str | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The backtests kept, the newest first."""
    with engine.connect() as connection:
        page = pages.backtests_page(connection, model_id=model_id, limit=limit, offset=offset)
    document = {"items": [backtest_json(b, None) for b in page.items], "total": page.total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, BacktestsPage, document)


@router.get(
    "/backtests/{backtest_id}",
    response_model=BacktestOut,
    summary="A backtest kept",
    responses=NOT_FOUND,
)
def get_backtest(request: Request, backtest_id: str, who: ScopedDep, engine: EngineDep) -> Response:
    """What it was asked, and each method's figures and years."""
    with engine.connect() as connection:
        record = repo.backtest(connection, backtest_id=backtest_id)
    return answer(request, BacktestOut, backtest_json(record, None))
