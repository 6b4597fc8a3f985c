"""Firm-wide runs on the pages: the runs kept, a form that starts one (in the
background, as ``POST /api/v1/runs`` does), and a run's page, whose progress moves as
households finish — told by the server-sent events of ``/events``, the pages' own
stream of :mod:`poise.api.live` (the API's is ``/api/v1/events``).

A run spans the firm: its pages are the firm-wide roles' (others are answered 404, as
through the API), and starting one is for those who may (:data:`~poise.domain.users.RUNNERS`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from poise.api.deps import EngineDep
from poise.api.jobs import jobs_of
from poise.api.live import Feed
from poise.api.routes.events import MEDIA_TYPE, stream
from poise.domain.errors import ForbiddenError, NotFoundError, ValidationError
from poise.domain.users import FIRM_WIDE, RUNNERS
from poise.optimize.names import METHOD_NAMES
from poise.store import repo
from poise.store.repo import pages
from poise.web.pages import templates
from poise.web.session import WebUser, check_csrf
from poise.web.views import latest_price_time
from poise.workflow.documents import run_json

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SHOWN = 25  # runs the list shows
SELECTIONS = ("all", "model", "requests", "households")


def _firm_wide(who: WebUser, what: str) -> None:
    if who.user.role not in FIRM_WIDE:  # as one that does not exist, as through the API
        raise NotFoundError(f"no page {what}")


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, who: WebUser, engine: EngineDep) -> Response:
    """The latest runs, how far each got, and — for those who may — the form that
    starts one."""
    _firm_wide(who, "/runs")
    with engine.connect() as connection:
        runs = pages.runs_page(connection, limit=SHOWN, offset=0)
        models = repo.model_ids(connection)
        prices_held = latest_price_time(connection).date()
    return templates.TemplateResponse(request, "runs.html", {
        "user": who.user, "runs": [run_json(r) for r in runs.items], "total": runs.total,
        "models": models, "methods": METHOD_NAMES, "may_start": who.user.role in RUNNERS,
        "running": jobs_of(request.app).running(), "prices_held": prices_held,
    })  # fmt: skip


def _as_of(text: str) -> datetime:
    if not text.strip():
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@router.post("/runs")
def start_run(
    request: Request,
    *,
    who: WebUser,
    csrf: Annotated[str, Form()] = "",
    selection: Annotated[str, Form()] = "all",
    model_id: Annotated[str, Form()] = "",
    households: Annotated[str, Form()] = "",
    method: Annotated[str, Form()] = "bands",
    as_of: Annotated[str, Form()] = "",
) -> Response:
    """Start a run of the households chosen; then its page."""
    from poise.workflow.run import RunOptions, Selection  # noqa: PLC0415 - loads late

    check_csrf(request, csrf)
    _firm_wide(who, "/runs")
    if who.user.role not in RUNNERS:
        raise ForbiddenError("only a portfolio manager or operations starts a run")
    if selection not in SELECTIONS or method not in METHOD_NAMES:
        raise ValidationError("choose the households and the method from the form")
    named = tuple(h for h in households.replace(",", " ").split() if h)
    if selection == "households" and not named:
        raise ValidationError("name the households to rebalance")
    if selection == "model" and not model_id:
        raise ValidationError("choose the model")
    chosen = Selection(
        all=selection == "all",
        households=named if selection == "households" else (),
        model_id=model_id if selection == "model" else None,
        requests=selection == "requests",
    )
    run_id = jobs_of(request.app).start(
        as_of=_as_of(as_of),
        selection=chosen,
        options=RunOptions(method=method),
        resume=None,
        prepared_by=who.user.user_id,
    )
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, who: WebUser, engine: EngineDep) -> Response:
    """A run: what it was asked, how far it has got (moving while it runs), and each
    household that failed, with why."""
    _firm_wide(who, f"/runs/{run_id}")
    with engine.connect() as connection:
        try:
            run = repo.rebalance_run(connection, run_id=run_id)
        except NotFoundError:
            raise NotFoundError(f"no run {run_id}") from None
        failed = repo.run_households(connection, run_id=run_id, status="failed")
    document: dict[str, Any] = run_json(run)
    return templates.TemplateResponse(request, "run.html", {
        "user": who.user, "run": document, "failures": failed,
        "progress": _progress(document), "came_to": _came_to(run.summary or {}),
        "asked": _asked(run.selection, run.options),
    })  # fmt: skip


def _asked(selection: dict[str, Any], options: dict[str, Any]) -> list[tuple[str, str]]:
    """What a run was asked, in words: its households, then each option given."""
    from poise.workflow.run import Selection  # noqa: PLC0415 - loads late

    chosen = Selection(**{**selection, "households": tuple(selection.get("households") or ())})
    shown = [("households", chosen.describe())]
    for name, value in options.items():
        if value is None:
            continue
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        shown.append((name.replace("_", " "), text))
    return shown


SUMMARY = ("households", "proposals", "trades", "estimated_tax", "harvested_losses",
           "held_accounts", "requests_answered", "failed")  # fmt: skip
MONEY = frozenset({"estimated_tax", "harvested_losses"})


def _dollars(value: Decimal) -> str:
    return f"−${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _came_to(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """What a run came to, each figure as shown: money in dollars, counts as they are."""
    return [
        (name.replace("_", " "), _dollars(Decimal(summary[name])) if name in MONEY
         else f"{summary[name]:,}")
        for name in SUMMARY
        if name in summary
    ]  # fmt: skip


def _progress(run: dict[str, Any]) -> int:
    """How far, in percent: households finished (done or failed) of those it set out to do."""
    total = run.get("households") or 0
    return 100 if not total else round(100 * (run["done"] + run["failed"]) / total)


@router.get("/events")
async def events(request: Request, who: WebUser) -> StreamingResponse:
    """The pages' stream of what happens: the signed-in user's events, as
    ``/api/v1/events`` sends a caller theirs."""
    feed: Feed = request.app.state.feed
    return StreamingResponse(
        stream(feed, who, seconds=1800, request=request),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
