"""The execution blotter's pages: ``/execution`` — where trading stands (the kill
switch, what is working and waiting, the fills today and the rate of reports), the
working orders, the latest fills, the rejects and breaks, the crosses and the routes —
drawn again every few seconds as a fragment fetched by htmx (``/execution/live``), and
an order's page (``/execution/orders/{cl_ord_id}``): its block, the statement written
before it went, the fills and their average price, and what each account was given.

What they show is what the API answers (:mod:`poise.api.routes.execution`), by the same
queries. The blotter is the firm-wide roles' (anyone else is answered 404, as through
the API); its kill switch — **Halt**, **Resume**, each with a reason — is the traders'
(operations and admins), by the gateway's own :func:`~poise.workflow.gateway.halt` and
:func:`~poise.workflow.gateway.resume`: the others see where it stands, not the buttons.

Refreshing is a courtesy the page can do without: it is paused by a box the reader
unticks (WCAG 2.2.2), and while the keyboard's focus is inside what would be redrawn,
so that a table being read is not pulled from under the reader. The kill switch's
section asks every few seconds too, but is drawn again only when the switch has moved
(``204`` otherwise), so that a reason being typed is never wiped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from poise.api.auth import Principal
from poise.api.deps import EngineDep, SettingsDep
from poise.api.routes.execution import (
    TRADERS,
    breaks_page,
    crosses_page,
    fills_page,
    order_detail,
    orders_page,
    status_json,
    switch_entry,
)
from poise.domain.errors import ConflictError, ForbiddenError, NotFoundError
from poise.domain.money import ZERO
from poise.domain.users import FIRM_WIDE
from poise.execute.book import TRADE_TYPES, OrderState
from poise.settings import Settings
from poise.store import repo
from poise.web.pages import templates
from poise.web.session import SignInRequiredError, WebUser, check_csrf, flash, web_user
from poise.web.views import script_json
from poise.workflow.gateway import halt, halted, resume

__all__ = ["REFRESH_SECONDS", "router"]

router = APIRouter(include_in_schema=False)

# ExecType (150) in words.
EXEC_TYPES = {"0": "acknowledged", "1": "partial fill", "2": "fill", "4": "cancelled",
              "5": "replaced", "6": "pending cancel", "8": "rejected", "A": "pending new",
              "E": "pending replace", "F": "trade", "I": "status"}  # fmt: skip
SHOWN = 25  # rows each table of the blotter lists, the latest first
REFRESH_SECONDS = 5
HOME = "/execution"


def _firm_wide(who: Principal, what: str) -> None:
    if who.user.role not in FIRM_WIDE:  # as one that does not exist, as through the API
        raise NotFoundError(f"no page {what}")


def _people(connection: sa.Connection) -> dict[str, str]:
    """Each user's id → how the pages name them: their name, else their username."""
    return {u.user_id: u.name or u.username for u in repo.users(connection)}


@dataclass(frozen=True, slots=True)
class Blotter:
    """What the live part of the page shows: each list its first rows and its total."""

    status: dict[str, Any]  # status_json: the switch, the counts, the routes
    working: list[dict[str, Any]]
    working_total: int
    fills: list[dict[str, Any]]
    fills_total: int
    rejects: list[dict[str, Any]]
    rejects_total: int
    breaks: list[dict[str, Any]]
    breaks_total: int
    crosses: list[dict[str, Any]]
    crosses_total: int


def blotter_of(connection: sa.Connection, settings: Settings) -> Blotter:
    working, working_total = orders_page(connection, working=True, limit=SHOWN, offset=0)
    fills, fills_total = fills_page(connection, limit=SHOWN, offset=0)
    rejects, rejects_total = orders_page(
        connection, status=OrderState.REJECTED.value, limit=SHOWN, offset=0
    )
    breaks, breaks_total = breaks_page(connection, limit=SHOWN, offset=0)
    crosses, crosses_total = crosses_page(connection, limit=SHOWN, offset=0)
    return Blotter(
        status_json(connection, settings), working, working_total, fills, fills_total,
        rejects, rejects_total, breaks, breaks_total, crosses, crosses_total,
    )  # fmt: skip


def _seen(entry: dict[str, Any] | None) -> int:
    """The kill switch's latest entry, as the page holds it (0: never moved)."""
    return 0 if entry is None else int(entry["seq"])


def _switch(connection: sa.Connection, who: Principal, halted: bool) -> dict[str, Any]:
    entry = switch_entry(connection)
    return {
        "halted": halted,
        "switch": entry,
        "seen": _seen(entry),
        "people": _people(connection),
        "may_trade": who.user.role in TRADERS,
        "refresh": REFRESH_SECONDS,
    }


@router.get(HOME, response_class=HTMLResponse)
def blotter_page(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The blotter: the kill switch, and what is live, drawn again as it moves."""
    _firm_wide(who, HOME)
    with engine.connect() as connection:
        blotter = blotter_of(connection, settings)
        switch = _switch(connection, who, blotter.status["halted"])
    return templates.TemplateResponse(request, "execution.html", {
        "user": who.user, "blotter": blotter, "refresh": REFRESH_SECONDS, **switch,
    })  # fmt: skip


def _polled(request: Request, engine: sa.Engine) -> Principal | Response:
    """Who is polling — or, once their session has ended, an answer that sends the
    browser to sign in (htmx follows ``HX-Redirect``), not the sign-in page drawn
    inside the blotter."""
    try:
        return web_user(request, engine)
    except SignInRequiredError:
        return Response(status_code=200, headers={"HX-Redirect": f"/sign-in?next={HOME}"})


@router.get(f"{HOME}/live", response_class=HTMLResponse)
def blotter_fragment(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """The live part of the blotter alone, for htmx to put in place of the last."""
    who = _polled(request, engine)
    if isinstance(who, Response):
        return who
    _firm_wide(who, HOME)
    with engine.connect() as connection:
        blotter = blotter_of(connection, settings)
    return templates.TemplateResponse(request, "execution_blotter.html", {
        "user": who.user, "blotter": blotter, "refresh": REFRESH_SECONDS,
    })  # fmt: skip


@router.get(f"{HOME}/switch", response_class=HTMLResponse)
def switch_fragment(request: Request, engine: EngineDep, seen: int = 0) -> Response:
    """The kill switch's section — or ``204``, nothing to draw, while its latest entry
    is still the one the page shows (``seen``)."""
    who = _polled(request, engine)
    if isinstance(who, Response):
        return who
    _firm_wide(who, HOME)
    with engine.connect() as connection:
        if _seen(switch_entry(connection)) == seen:
            return Response(status_code=204)
        switch = _switch(connection, who, halted(connection))
    return templates.TemplateResponse(request, "execution_switch.html", {
        "user": who.user, **switch,
    })  # fmt: skip


def _trader(who: Principal) -> None:
    _firm_wide(who, HOME)
    if who.user.role not in TRADERS:
        raise ForbiddenError("only operations and admins may halt or resume trading")


@router.post(f"{HOME}/halt")
def halt_form(
    request: Request, who: WebUser, engine: EngineDep, *,
    csrf: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Pull the kill switch, as ``poise execute --halt``; the blotter again, saying what
    came of it."""
    check_csrf(request, csrf)
    _trader(who)
    if not reason.strip():
        flash(request, "Not halted: say why, in words.", ok=False)
        return RedirectResponse(HOME, status_code=303)
    cancels = halt(engine, actor=who.user.user_id, reason=reason)
    queued = f"{len(cancels)} cancel{'' if len(cancels) == 1 else 's'}"
    flash(request, f"Halted: nothing new goes to the brokers; orders not yet sent are"
                   f" withdrawn, and {queued} of orders working at a broker queued for"
                   " poise execute to send.")  # fmt: skip
    return RedirectResponse(HOME, status_code=303)


@router.post(f"{HOME}/resume")
def resume_form(
    request: Request, who: WebUser, engine: EngineDep, *,
    csrf: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Lift the kill switch, as ``poise execute --resume``; the blotter again, saying
    what came of it (not pulled: nothing to lift)."""
    check_csrf(request, csrf)
    _trader(who)
    if not reason.strip():
        flash(request, "Not resumed: say why, in words.", ok=False)
        return RedirectResponse(HOME, status_code=303)
    try:
        resume(engine, actor=who.user.user_id, reason=reason)
    except ConflictError as refused:
        flash(request, f"Not resumed: {refused}.", ok=False)
    else:
        flash(request, "Resumed: new orders may go out again.")
    return RedirectResponse(HOME, status_code=303)


def _fills_chart(found: dict[str, Any]) -> str:
    """The block's fills, each one's price in the order they came, across its average
    price, its limit and its reference: a plotly figure, as JSON."""
    block = found["block"]
    fills = [x for x in found["executions"] if x["exec_type"] in TRADE_TYPES and x["last_qty"] > 0]
    numbers = list(range(1, len(fills) + 1))
    across = [0.5, len(fills) + 0.5]

    def level(name: str, value: Decimal | None, dash: str) -> list[dict[str, Any]]:
        if value is None:
            return []
        return [{"type": "scatter", "mode": "lines", "name": name, "x": across,
                 "y": [float(value)] * 2, "line": {"dash": dash, "color": "#4a5a66"},
                 "hovertemplate": f"{name} {value}<extra></extra>"}]  # fmt: skip

    figure = {
        "data": [
            {"type": "scatter", "mode": "markers", "name": "fills", "x": numbers,
             "y": [float(x["last_px"]) for x in fills],
             "text": [f"{x['last_qty']} shares, {x['received_at']:%H:%M:%S} UTC" for x in fills],
             "marker": {"size": 10, "color": "#1f5f8b"},
             "hovertemplate": "%{text}: %{y}<extra></extra>"},
            *level("average", block["average_price"], "solid"),
            *level("limit", block["limit_price"], "dot"),
            *level("reference", block["reference"], "dash"),
        ],
        "layout": {"height": 280, "margin": {"t": 30, "r": 10, "b": 45, "l": 60},
                   "xaxis": {"title": {"text": "fill, in the order they came"}, "dtick": 1,
                             "range": across},
                   "yaxis": {"title": {"text": "price"}},
                   "legend": {"orientation": "h", "x": 0, "y": 1.15}},
    }  # fmt: skip
    return script_json(figure)


@router.get(f"{HOME}/orders/{{cl_ord_id}}", response_class=HTMLResponse)
def order_page(request: Request, cl_ord_id: str, who: WebUser, engine: EngineDep) -> Response:
    """An order and its block: the block's orders, its statement, its fills with their
    average price, and what each account was allocated."""
    _firm_wide(who, f"{HOME}/orders/{cl_ord_id}")
    with engine.connect() as connection:
        found = order_detail(connection, cl_ord_id=cl_ord_id)
    allocations = found["allocations"]
    totals = {
        name: sum((a[name] for a in allocations), ZERO)
        for name in ("quantity", "gross", "commission", "net")
    }
    return templates.TemplateResponse(request, "execution_order.html", {
        "user": who.user, "found": found, "totals": totals, "exec_types": EXEC_TYPES,
        "stated": sum((line["quantity"] for line in found["statement"]), ZERO),
        "chart": _fills_chart(found) if found["block"]["average_price"] is not None else None,
    })  # fmt: skip
