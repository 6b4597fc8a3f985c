"""What the monitor finds — drift and holds — and the rebalance requests raised, each
within the caller's scope, in the shapes ``poise drift``, ``poise holds`` and
``poise requests list`` print with ``--json``.

Drift and holds are computed when asked, as the commands compute them: the firm is read
(prices as they stood at ``as_of``), narrowed to the caller's households
(:func:`poise.workflow.drift.within`) and evaluated — what is out of scope is never
evaluated, so never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Query, Request, Response

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.routes.answers import NOT_FOUND, SIGNED_IN, Document, Moment, answer
from poise.api.scoping import ScopedDep, scoped_router
from poise.domain.errors import ValidationError
from poise.domain.users import Scope
from poise.monitor.triggers import Reason
from poise.settings import Settings
from poise.store.repo import pages
from poise.workflow.documents import request_json
from poise.workflow.drift import drift_rows, holds_json, within
from poise.workflow.monitor import Evaluation, evaluate, load_state, watch_settings

__all__ = ["router"]

router = scoped_router(tags=["monitoring"], responses=SIGNED_IN)

RequestStatus = Literal["open", "answered", "failed"]  # repo.REQUEST_STATUSES

AsOfQuery = Annotated[
    str | None,
    Query(
        description="Prices as they stood at this time (ISO 8601; a bare date is the end of"
        " that day, UTC). Default: now.",
        examples=["2022-12-28"],
    ),
]


def _as_of(text: str | None) -> datetime:
    """``text`` as ``--as-of`` reads it; a 422 when it is no time."""
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(23, 59, 59), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"as_of: {text!r} is not a date or an ISO 8601 time") from None
    if not 1900 <= moment.year <= 9000:  # a year the price history can reach back from
        raise ValidationError(f"as_of: {text!r} is outside the years 1900 to 9000")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _evaluated(
    engine: sa.Engine, scope: Scope, settings: Settings, as_of: str | None
) -> tuple[Evaluation, Mapping[str, frozenset[Reason]]]:
    """The firm in ``scope`` evaluated at ``as_of``, and its accounts' open requests."""
    at = _as_of(as_of)
    state = within(load_state(engine, as_of=at), scope)
    return evaluate(state, at=at, settings=watch_settings(settings)), state.requested


class OutOfBandOut(Document):
    security_id: str
    drift: float | None  # weight − target
    band: float | None  # the band's half-width; None for a holding outside the model


class DriftOut(Document):
    account_id: str
    household_id: str | None
    model_id: str
    value: str  # dollars, to the cent
    max_drift: float | None
    out_of_band: bool
    positions: list[OutOfBandOut]  # those out of band, the largest drift first
    cash_status: Literal["short", "excess"] | None
    held: str | None  # the hold's cause
    hold: str | None  # the hold, in words
    reasons: list[str]  # of a request raised now
    open_request: list[str]  # the reasons of the account's requests already open


class DriftPage(Document):
    as_of: Moment
    accounts_total: int  # every account in scope evaluated
    unmodelled: list[str]  # accounts in scope with no model that resolves
    items: list[DriftOut]
    total: int  # those listed: needing attention, or every one (``all``)
    limit: int
    offset: int


class HoldOut(Document):
    account_id: str
    cause: str
    detail: str


class HoldsPage(Document):
    as_of: Moment
    flagged: dict[str, str]  # securities whose price cannot be used, and why
    items: list[HoldOut]
    total: int
    limit: int
    offset: int


class RequestOut(Document):
    request_id: str
    account_id: str | None
    household_id: str | None
    reasons: list[str]
    figures: dict[str, Any]  # as the monitor found them: money exact, ratios rounded
    as_of: Moment
    status: RequestStatus
    answered_by: str | None  # the proposal that answers it
    failure: str | None  # why the worker could not answer it


class RequestsPage(Document):
    items: list[RequestOut]
    total: int
    limit: int
    offset: int


@router.get("/drift", response_model=DriftPage, summary="The most drifted accounts")
def get_drift(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep,
    as_of: AsOfQuery = None, model_id: str | None = None, household_id: str | None = None,
    every: Annotated[
        bool, Query(alias="all", description="Every account, not only those needing attention.")
    ] = False,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The accounts in scope, the largest drift first: positions out of band, cash
    short or to invest, holds — and why (``poise drift``)."""
    found, requested = _evaluated(engine, who.scope, settings, as_of)
    rows = drift_rows(found, requested, model=model_id, household=household_id)
    listed = rows if every else [r for r in rows if r.attention]
    document = {
        "as_of": found.at,
        "accounts_total": len(rows),
        "unmodelled": list(found.book.unmodelled),
        "items": [r.json() for r in listed[offset : offset + limit]],
        "total": len(listed),
        "limit": limit,
        "offset": offset,
    }
    return answer(request, DriftPage, document)


@router.get("/holds", response_model=HoldsPage, summary="Accounts held, and why")
def get_holds(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep,
    as_of: AsOfQuery = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """Accounts in scope that will not be traded because their data is wrong, and why
    (``poise holds``)."""
    found, _ = _evaluated(engine, who.scope, settings, as_of)
    shown = holds_json(found)
    document = {
        "as_of": shown["as_of"],
        "flagged": shown["flagged"],
        "items": shown["holds"][offset : offset + limit],
        "total": len(shown["holds"]),
        "limit": limit,
        "offset": offset,
    }
    return answer(request, HoldsPage, document)


@router.get("/requests", response_model=RequestsPage, summary="Rebalance requests")
def list_requests(
    request: Request, who: ScopedDep, engine: EngineDep,
    status: RequestStatus | None = None, household_id: str | None = None,
    account_id: str | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The requests of households in scope, newest first, and the proposal that
    answered each (or, for one the worker could not answer, why)."""
    with engine.connect() as connection:
        page = pages.requests_page(
            connection, scope=who.scope, status=status, household_id=household_id,
            account_id=account_id, limit=limit, offset=offset,
        )  # fmt: skip
    document = {"items": [request_json(r) for r in page.items], "total": page.total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, RequestsPage, document)


@router.get(
    "/requests/{request_id:path}",
    response_model=RequestOut,
    summary="A rebalance request",
    responses=NOT_FOUND,
)
def get_request(request: Request, request_id: str, who: ScopedDep, engine: EngineDep) -> Response:

    with engine.connect() as connection:
        found = pages.rebalance_request(connection, request_id=request_id)
    return answer(request, RequestOut, request_json(found))
