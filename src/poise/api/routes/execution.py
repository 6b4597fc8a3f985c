"""Execution through the API: the blotter's reads — the orders sent to the brokers (and
waiting in the outbox), one order with its block, the block's written allocation
statement, its executions and what was allocated of them, the fills, the crosses with
their legs, the breaks — where trading stands (the kill switch, what is working, the
fills today, the routes), and the kill switch itself, pulled and lifted.

The reads answer what ``poise orders`` and ``poise crosses`` list, from the same
tables; the kill switch is the gateway's own (:func:`poise.workflow.gateway.halt`,
:func:`~poise.workflow.gateway.resume`), a ledger entry read before each send. Sending
is ``poise execute``'s: the API plans and sends nothing.

Who: a block order pools many households' trades, and its statement, its allocations
and a cross's legs name every account in them, so the blotter is the firm-wide roles'
(:data:`poise.api.scoping.firm_only`): an adviser or a client is answered 403 for a
list and 404 for an order. Pulling or lifting the kill switch is a trader's act —
operations and admins, as for ``poise execute`` (:data:`TRADERS`): 403 to the others.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.idempotency import OnceDep
from poise.api.routes.answers import (
    FORBIDDEN,
    NOT_FOUND,
    SIGNED_IN,
    WRITTEN,
    Document,
    Exact,
    Moment,
    answer,
    created,
)
from poise.api.scoping import ScopedDep, firm_only, only, scoped_router
from poise.domain.errors import NotFoundError, ValidationError
from poise.domain.money import ZERO
from poise.domain.orders import Fill
from poise.domain.users import Role
from poise.execute.allocation import average_price
from poise.execute.book import TRADE_TYPES, OrderState
from poise.execute.routes import Route
from poise.settings import Settings
from poise.store import tables as t
from poise.store.repo.execution import OPEN
from poise.workflow.execute import policy_of
from poise.workflow.gateway import halt, halted, resume

__all__ = [
    "RATE_SECONDS",
    "TRADERS",
    "WORKING_KINDS",
    "breaks_page",
    "crosses_page",
    "fills_page",
    "order_detail",
    "orders_page",
    "router",
    "status_json",
    "switch_entry",
]

TRADERS = frozenset({Role.OPERATIONS, Role.ADMIN})  # as `poise execute --as` allows
WORKING_KINDS = ("new", "replace")  # orders that work at a broker; a cancel only ends one
SWITCH = ("execute.halt", "execute.resume")  # the kill switch's entries in the ledger
FILLS = sorted(TRADE_TYPES)  # ExecTypes (150) of a fill
REJECTED = "8"  # ExecType (150) of a report rejecting an order
RATE_SECONDS = 60  # the rate figure: execution reports received in the last minute

router = scoped_router(
    tags=["execution"], dependencies=[Depends(firm_only)], responses={**SIGNED_IN, **FORBIDDEN}
)


# ── what is answered ──────────────────────────────────────────────────────────


class OrderOut(Document):
    cl_ord_id: str  # the ClOrdID the broker knows it by
    kind: str  # new, cancel, replace
    orig_cl_ord_id: str | None  # the order a cancel or a replace is of
    block_id: str
    batch_id: str
    route: str
    security_id: str
    side: str  # buy, sell
    ord_type: str  # limit, market
    quantity: Exact
    limit_price: Exact | None  # None: a market order
    status: OrderState
    filled: Exact
    broker_order_id: str | None
    created_at: Moment  # decided, and put in the outbox
    sent_at: Moment | None
    acked_at: Moment | None
    text: str | None  # the broker's words on a reject


class OrdersPage(Document):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class LotOut(Document):
    lot_id: str
    quantity: Exact


class BlockOut(Document):
    block_id: str
    batch_id: str
    route: str
    security_id: str
    side: str
    quantity: Exact
    ord_type: str
    limit_price: Exact | None
    reference: Exact  # the independent reference price its limit stands against
    status: str  # open, filled, cancelled, rejected, halted
    filled: Exact  # by its fills so far
    average_price: Exact | None  # of its fills, to six places (None: none yet)
    allocated_at: Moment | None  # when its fills were shared out to the accounts


class LineOut(Document):
    number: int
    account_id: str
    proposal_id: str
    seq: int  # the proposal's trade
    quantity: Exact
    lots: list[LotOut]


class ExecutionOut(Document):
    route: str
    exec_id: str
    cl_ord_id: str
    exec_type: str  # FIX ExecType (150): 0 new, F trade, 4 cancelled, 8 rejected, …
    ord_status: str  # FIX OrdStatus (39)
    last_qty: Exact
    last_px: Exact
    cum_qty: Exact
    leaves_qty: Exact
    received_at: Moment
    text: str | None


class AllocationOut(Document):
    account_id: str
    proposal_id: str
    seq: int
    side: str
    quantity: Exact
    price: Exact  # the block's average price
    gross: Exact
    commission: Exact
    net: Exact
    lots: list[LotOut]
    at: Moment


class OrderDetail(Document):
    order: OrderOut
    block: BlockOut
    orders: list[OrderOut]  # every order of the block: its new order, cancels, replaces
    statement: list[LineOut]  # the allocation statement, written before the order went
    executions: list[ExecutionOut]  # every report booked of the block's orders, in order
    allocations: list[AllocationOut]


class FillOut(Document):
    route: str
    exec_id: str
    cl_ord_id: str
    security_id: str
    side: str
    last_qty: Exact
    last_px: Exact
    cum_qty: Exact
    leaves_qty: Exact
    received_at: Moment


class FillsPage(Document):
    items: list[FillOut]
    total: int
    limit: int
    offset: int


class LegOut(Document):
    number: int
    account_id: str
    proposal_id: str
    seq: int
    side: str
    quantity: Exact


class CrossOut(Document):
    cross_id: str
    batch_id: str
    security_id: str
    quantity: Exact
    price: Exact  # the independent reference price, no fee
    source: str  # where that price came from
    price_at: Moment  # and as of when
    created_at: Moment  # when its batch was decided
    legs: list[LegOut]


class CrossesPage(Document):
    items: list[CrossOut]
    total: int
    limit: int
    offset: int


class BreakOut(Document):
    break_id: int
    route: str
    kind: str  # unknown_order, bad_report, bad_message, unexpected_message
    detail: str
    raw: str  # the message as it came, | for SOH
    at: Moment


class BreaksPage(Document):
    items: list[BreakOut]
    total: int
    limit: int
    offset: int


class SwitchOut(Document):
    """The kill switch's latest entry in the audit ledger."""

    seq: int
    action: str  # execute.halt, execute.resume
    at: Moment
    actor: str  # a user's id
    reason: str


class RouteOut(Document):
    name: str
    host: str
    port: int
    sender: str  # our SenderCompID
    target: str  # theirs
    custodians: list[str]  # the custodians whose accounts trade here
    takes_the_rest: bool  # it takes every custodian no other route names
    working: int  # its orders working or waiting to be sent


class StatusOut(Document):
    as_of: Moment
    halted: bool  # the kill switch stands: nothing new goes out
    switch: SwitchOut | None  # who pulled (or lifted) it last, when, why
    working: int  # orders working at a broker or waiting in the outbox
    unsent: int  # orders and cancels waiting in the outbox to be sent
    fills_today: int  # fills of poise's orders received since midnight UTC
    reports_last_minute: int  # execution reports received in the last minute: the rate
    rejects_today: int  # orders the brokers rejected since midnight UTC
    breaks: int  # reports kept as breaks, ever
    routes: list[RouteOut]


class SwitchedOut(Document):
    halted: bool
    cancels: list[str]  # the cancels queued by a halt, for `poise execute` to send
    entry: SwitchOut  # the ledger entry written


# ── what is asked ─────────────────────────────────────────────────────────────


class Why(BaseModel):
    """Why the kill switch is pulled or lifted: kept in the ledger entry."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=2000, pattern=r"^[^\x00]*$", description="Why, in words."
    )

    @field_validator("reason")
    @classmethod
    def _said(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("say why, in words")
        return reason


# ── reads: one query each, the pages' too ─────────────────────────────────────


def _lots(text: str) -> list[dict[str, Any]]:
    return [{"lot_id": x["lot_id"], "quantity": x["quantity"]} for x in json.loads(text)]


def _count(connection: sa.Connection, query: sa.Select[Any]) -> int:
    found = connection.execute(sa.select(sa.func.count()).select_from(query.subquery()))
    return int(found.scalar() or 0)


def _orders() -> sa.Select[Any]:
    o, b = t.orders, t.block_orders
    return sa.select(
        o.c.cl_ord_id, o.c.kind, o.c.orig_cl_ord_id, o.c.block_id, b.c.batch_id, o.c.route,
        b.c.security_id, b.c.side, b.c.ord_type, o.c.quantity, o.c.limit_price, o.c.status,
        o.c.filled, o.c.broker_order_id, o.c.created_at, o.c.sent_at, o.c.acked_at, o.c.text,
    ).select_from(o.join(b, b.c.block_id == o.c.block_id))  # fmt: skip


def _working() -> sa.ColumnElement[bool]:
    o = t.orders
    return o.c.status.in_(OPEN) & o.c.kind.in_(WORKING_KINDS)


def orders_page(
    connection: sa.Connection, *, working: bool = False, route: str | None = None,
    status: str | None = None, limit: int, offset: int,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """The orders, the newest first (a batch's in their order), as ``poise orders``
    lists them; ``working``: only those working or waiting to be sent; and the total."""
    o = t.orders
    query = _orders().order_by(o.c.created_at.desc(), o.c.cl_ord_id)
    if working:
        query = query.where(_working())
    if route is not None:
        query = query.where(o.c.route == route)
    if status is not None:
        query = query.where(o.c.status == status)
    total = _count(connection, query)
    rows = connection.execute(query.limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], total


def _fill(execution: dict[str, Any]) -> Fill | None:
    """An execution report as a fill of its block, if it is one a block can take."""
    if execution["exec_type"] not in TRADE_TYPES:
        return None
    try:
        return Fill(execution["exec_id"], execution["last_qty"], execution["last_px"])
    except ValidationError:  # no shares, no price, or finer than a millionth of a share
        return None


def order_detail(connection: sa.Connection, *, cl_ord_id: str) -> dict[str, Any]:
    """An order with its block: the block's orders, its statement, every execution
    booked of them, its allocations, and the average price of its fills."""
    o, b, s, e, a = t.orders, t.block_orders, t.statement_lines, t.executions, t.allocations
    order = connection.execute(_orders().where(o.c.cl_ord_id == cl_ord_id)).first()
    if order is None:
        raise NotFoundError(f"no order {cl_ord_id}")
    block_id = order.block_id
    block = dict(connection.execute(sa.select(b).where(b.c.block_id == block_id)).one()._mapping)
    siblings = [
        dict(r._mapping)
        for r in connection.execute(
            _orders().where(o.c.block_id == block_id).order_by(o.c.created_at, o.c.cl_ord_id)
        )
    ]
    ids = [r["cl_ord_id"] for r in siblings]
    executions = [
        dict(r._mapping)
        for r in connection.execute(
            sa.select(e).where(e.c.cl_ord_id.in_(ids)).order_by(e.c.received_at, e.c.exec_id)
        )
    ]
    fills = [f for f in map(_fill, executions) if f is not None]
    statement = [
        {**dict(r._mapping), "lots": _lots(r.lots)}
        for r in connection.execute(
            sa.select(s.c.number, s.c.account_id, s.c.proposal_id, s.c.seq, s.c.quantity, s.c.lots)
            .where(s.c.block_id == block_id)
            .order_by(s.c.number)
        )
    ]
    allocations = [
        {**dict(r._mapping), "lots": _lots(r.lots)}
        for r in connection.execute(
            sa.select(a.c.account_id, a.c.proposal_id, a.c.seq, a.c.side, a.c.quantity,
                      a.c.price, a.c.gross, a.c.commission, a.c.net, a.c.lots, a.c.at)
            .where(a.c.block_id == block_id)
            .order_by(a.c.account_id, a.c.proposal_id, a.c.seq)
        )
    ]  # fmt: skip
    shown = ("block_id", "batch_id", "route", "security_id", "side", "quantity", "ord_type",
             "limit_price", "reference", "status", "allocated_at")  # fmt: skip
    return {
        "order": dict(order._mapping),
        "block": {
            **{name: block[name] for name in shown},
            "filled": sum((f.quantity for f in fills), ZERO),
            "average_price": average_price(fills) if fills else None,
        },
        "orders": siblings,
        "statement": statement,
        "executions": executions,
        "allocations": allocations,
    }


def fills_page(
    connection: sa.Connection, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The fills received, the latest first, each with its order's security and side;
    and the total."""
    e, o, b = t.executions, t.orders, t.block_orders
    query = (
        sa.select(e.c.route, e.c.exec_id, e.c.cl_ord_id, b.c.security_id, b.c.side,
                  e.c.last_qty, e.c.last_px, e.c.cum_qty, e.c.leaves_qty, e.c.received_at)
        .select_from(e.join(o, o.c.cl_ord_id == e.c.cl_ord_id)
                     .join(b, b.c.block_id == o.c.block_id))
        .where(e.c.exec_type.in_(FILLS))
        .order_by(e.c.received_at.desc(), e.c.exec_id.desc())
    )  # fmt: skip
    total = _count(connection, query)
    return [dict(r._mapping) for r in connection.execute(query.limit(limit).offset(offset))], total


def crosses_page(
    connection: sa.Connection, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """The crosses, the latest batch's first, each with its legs; and the total."""
    c, leg, x = t.crosses, t.cross_legs, t.execution_batches
    query = (
        sa.select(c.c.cross_id, c.c.batch_id, c.c.security_id, c.c.quantity, c.c.price,
                  c.c.source, c.c.price_at, x.c.created_at)
        .select_from(c.join(x, x.c.batch_id == c.c.batch_id))
        .order_by(x.c.created_at.desc(), c.c.cross_id)
    )  # fmt: skip
    total = _count(connection, query)
    crosses = [
        {**dict(r._mapping), "legs": []}
        for r in connection.execute(query.limit(limit).offset(offset))
    ]
    named = {item["cross_id"]: item for item in crosses}
    if named:
        for r in connection.execute(
            sa.select(leg.c.cross_id, leg.c.number, leg.c.account_id, leg.c.proposal_id,
                      leg.c.seq, leg.c.side, leg.c.quantity)
            .where(leg.c.cross_id.in_(sorted(named)))
            .order_by(leg.c.cross_id, leg.c.number)
        ):  # fmt: skip
            legs = named[r.cross_id]["legs"]
            legs.append({k: v for k, v in r._mapping.items() if k != "cross_id"})
    return crosses, total


def breaks_page(
    connection: sa.Connection, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """What came back and matched nothing, the latest first; and the total."""
    k = t.execution_breaks
    query = sa.select(k).order_by(k.c.break_id.desc())
    total = _count(connection, query)
    return [dict(r._mapping) for r in connection.execute(query.limit(limit).offset(offset))], total


def switch_entry(connection: sa.Connection) -> dict[str, Any] | None:
    """The kill switch's latest entry in the ledger: who pulled or lifted it, when, why."""
    e = t.audit_entries
    found = connection.execute(
        sa.select(e.c.seq, e.c.action, e.c.at, e.c.actor, e.c.reason)
        .where(e.c.action.in_(SWITCH))
        .order_by(e.c.seq.desc())
        .limit(1)
    ).first()
    return None if found is None else dict(found._mapping)


def _route_json(route: Route, working: int) -> dict[str, Any]:
    """A route as the blotter shows it: where it goes, not how it signs in."""
    return {
        "name": route.name, "host": route.host, "port": route.port, "sender": route.sender,
        "target": route.target, "custodians": sorted(route.custodians),
        "takes_the_rest": not route.custodians, "working": working,
    }  # fmt: skip


def status_json(
    connection: sa.Connection, settings: Settings, *, now: datetime | None = None
) -> dict[str, Any]:
    """Where trading stands: the kill switch, what is working and waiting, the fills
    and rejects today, the rate of reports, the breaks kept, and the firm's routes."""
    now = now or datetime.now(UTC)
    midnight = datetime.combine(now.date(), time.min, tzinfo=UTC)
    o, e, k = t.orders, t.executions, t.execution_breaks
    working = {
        r.route: int(r.n)
        for r in connection.execute(
            sa.select(o.c.route, sa.func.count().label("n")).where(_working()).group_by(o.c.route)
        )
    }

    def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table).where(*where))
                   .scalar() or 0)  # fmt: skip

    mine = e.c.cl_ord_id.in_(sa.select(o.c.cl_ord_id))  # a report of no order is a break
    routes = policy_of(settings).routes
    return {
        "as_of": now,
        "halted": halted(connection),
        "switch": switch_entry(connection),
        "working": sum(working.values()),
        "unsent": count(o, o.c.status == OrderState.PENDING.value),
        "fills_today": count(e, mine, e.c.exec_type.in_(FILLS), e.c.received_at >= midnight),
        "reports_last_minute": count(
            e, e.c.received_at > now - timedelta(seconds=RATE_SECONDS), e.c.received_at <= now
        ),
        "rejects_today": count(e, mine, e.c.exec_type == REJECTED, e.c.received_at >= midnight),
        "breaks": count(k),
        "routes": [_route_json(r, working.get(r.name, 0)) for r in routes],
    }


def _page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


# ── the routes ────────────────────────────────────────────────────────────────


@router.get("/execution/orders", response_model=OrdersPage, summary="The orders sent to brokers")
def list_orders(
    request: Request, who: ScopedDep, engine: EngineDep,
    working: Annotated[bool, Query(
        alias="open", description="Only orders still working, or waiting in the outbox."
    )] = False,
    route: Annotated[str | None, Query(max_length=64, description="Only this route's.")] = None,
    status: Annotated[OrderState | None, Query(description="Only orders in this state.")] = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The orders sent to the brokers and waiting in the outbox — new orders, cancels and
    replaces — the newest first, as ``poise orders --json`` lists them, each with its
    block's security, side and order type."""
    with engine.connect() as connection:
        items, total = orders_page(
            connection, working=working, route=route or None,
            status=None if status is None else status.value, limit=limit, offset=offset,
        )  # fmt: skip
    return answer(request, OrdersPage, _page(items, total, limit, offset))


@router.get(
    "/execution/orders/{cl_ord_id}",
    response_model=OrderDetail,
    summary="An order, with its block, statement, executions and allocations",
    responses=NOT_FOUND,
)
def get_order(request: Request, cl_ord_id: str, who: ScopedDep, engine: EngineDep) -> Response:
    """The order; its block order — its reference price, what it filled and the average
    price of its fills, to six places — every order of the block (its cancels and
    replaces); the allocation statement written before it went; every execution report
    booked of the block's orders, in the order they came; and what was allocated to
    each account, at the block's average price."""
    with engine.connect() as connection:
        document = order_detail(connection, cl_ord_id=cl_ord_id)
    return answer(request, OrderDetail, document)


@router.get("/execution/fills", response_model=FillsPage, summary="The fills received")
def list_fills(
    request: Request, who: ScopedDep, engine: EngineDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """Every fill the brokers reported, the latest first, with its order's security and
    side."""
    with engine.connect() as connection:
        items, total = fills_page(connection, limit=limit, offset=offset)
    return answer(request, FillsPage, _page(items, total, limit, offset))


@router.get(
    "/execution/crosses", response_model=CrossesPage, summary="The trades crossed internally"
)
def list_crosses(
    request: Request, who: ScopedDep, engine: EngineDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The trades crossed between the firm's accounts, the latest batch's first, as
    ``poise crosses --json`` lists them: the security, the shares, the price and where it
    came from, and each leg — the account, its proposal's trade, the side and shares."""
    with engine.connect() as connection:
        items, total = crosses_page(connection, limit=limit, offset=offset)
    return answer(request, CrossesPage, _page(items, total, limit, offset))


@router.get("/execution/breaks", response_model=BreaksPage, summary="What matched nothing")
def list_breaks(
    request: Request, who: ScopedDep, engine: EngineDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """What came back from a broker and matched nothing — a report of no order poise
    sent, one that overfills, a message that could not be read — kept, never dropped,
    the latest first, with the message as it came."""
    with engine.connect() as connection:
        items, total = breaks_page(connection, limit=limit, offset=offset)
    return answer(request, BreaksPage, _page(items, total, limit, offset))


@router.get("/execution/status", response_model=StatusOut, summary="Where trading stands")
def get_status(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The kill switch — whether it stands, and who pulled or lifted it last, when and
    why — the orders working and those still in the outbox, the fills and rejects
    since midnight UTC, the execution reports of the last minute, the breaks kept, and
    the firm's routes (where each goes and which custodians it takes)."""
    with engine.connect() as connection:
        document = status_json(connection, settings)
    return answer(request, StatusOut, document)


SWITCHED = {
    **WRITTEN,
    403: FORBIDDEN[403] | {"description": "Only operations and admins trade."},
    409: WRITTEN[409]
    | {
        "description": "Resuming when the kill switch is not pulled; or a request with this"
        " Idempotency-Key is still being answered."
    },
}


def _switched(engine: sa.Engine, *, cancels: list[str]) -> Response:
    with engine.connect() as connection:
        document = {
            "halted": halted(connection),
            "cancels": cancels,
            "entry": switch_entry(connection),
        }
    return created(SwitchedOut, document, "execution/status", status=200)


@router.post(
    "/execution/halt",
    response_model=SwitchedOut,
    summary="Pull the kill switch",
    responses=SWITCHED,
    dependencies=[Depends(only(TRADERS, verb="trade"))],
)
def post_halt(body: Why, who: ScopedDep, engine: EngineDep, once: OnceDep) -> Response:
    """Stop trading, as ``poise execute --halt``: in one transaction, the ledger's
    ``execute.halt`` (which every gateway reads before it sends), the orders never sent
    withdrawn from the outbox, and a cancel queued for every order working at a broker —
    sent by the next ``poise execute``. Halting again queues cancels for what still works.
    Operations and admins."""

    def make() -> Response:
        cancels = halt(engine, actor=who.user.user_id, reason=body.reason)
        return _switched(engine, cancels=cancels)

    return once(make)


@router.post(
    "/execution/resume",
    response_model=SwitchedOut,
    summary="Lift the kill switch",
    responses=SWITCHED,
    dependencies=[Depends(only(TRADERS, verb="trade"))],
)
def post_resume(body: Why, who: ScopedDep, engine: EngineDep, once: OnceDep) -> Response:
    """Let new orders go out again, as ``poise execute --resume`` (the ledger's
    ``execute.resume``); a ``409`` when the kill switch is not pulled. Orders withdrawn or
    cancelled by the halt stay so. Operations and admins."""

    def make() -> Response:
        resume(engine, actor=who.user.user_id, reason=body.reason)
        return _switched(engine, cancels=[])

    return once(make)
