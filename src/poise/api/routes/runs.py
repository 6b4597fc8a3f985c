"""Firm-wide rebalancing runs: objects of no household that span the firm, for the
firm-wide roles only — an adviser or a client is answered 403 for the list and 404 for
one (:data:`poise.api.scoping.firm_only`) — in the shapes ``poise runs list --json``
and ``poise runs show --json`` print."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, Request, Response

from poise.api.deps import EngineDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.routes.answers import FORBIDDEN, NOT_FOUND, SIGNED_IN, Document, Moment, answer
from poise.api.scoping import ScopedDep, firm_only, scoped_router
from poise.store import repo
from poise.store.repo import pages
from poise.workflow.documents import run_json

__all__ = ["router"]

router = scoped_router(
    tags=["runs"], dependencies=[Depends(firm_only)], responses={**SIGNED_IN, **FORBIDDEN}
)

RunStatus = Literal["running", "finished", "interrupted"]  # repo.RUN_STATUSES


class RunOut(Document):
    run_id: str
    status: RunStatus
    method: str
    as_of: Moment  # prices as of
    started_at: Moment
    finished_at: Moment | None
    selection: dict[str, Any]  # which households were asked for
    options: dict[str, Any]  # what the run was asked
    households: int | None  # how many it set out to do (None: a run kept before this was)
    done: int  # households whose proposal is kept
    failed: int
    summary: dict[str, Any] | None  # what it came to, once it ended


class FailureOut(Document):
    household_id: str
    reason: str | None


class RunDetail(RunOut):
    failures: list[FailureOut]  # each household that failed, with why


class RunsPage(Document):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


@router.get("/runs", response_model=RunsPage, summary="Firm-wide rebalancing runs")
def list_runs(
    request: Request, who: ScopedDep, engine: EngineDep,
    status: RunStatus | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The runs, the latest started first: when, what was asked, how far each got."""
    with engine.connect() as connection:
        page = pages.runs_page(connection, status=status, limit=limit, offset=offset)
    document = {"items": [run_json(r) for r in page.items], "total": page.total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, RunsPage, document)


@router.get(
    "/runs/{run_id}", response_model=RunDetail, summary="A firm-wide run", responses=NOT_FOUND
)
def get_run(request: Request, run_id: str, who: ScopedDep, engine: EngineDep) -> Response:
    """What was asked, its summary, and each household that failed, with why."""
    with engine.connect() as connection:
        run = repo.rebalance_run(connection, run_id=run_id)
        failed = repo.run_households(connection, run_id=run_id, status="failed")
    failures = [{"household_id": h.household_id, "reason": h.reason} for h in failed]
    return answer(request, RunDetail, {**run_json(run), "failures": failures})
