"""The FIX gateway: one initiator session a route, sending the outbox and booking what
comes back.

Sending is at most once: an order's message is stored and its outbox row marked sent
in one commit (:class:`poise.store.repo.execution.SessionRows`), before a byte is
written. Killed before that commit, the order is still in the outbox and goes out on
the next run under a new sequence number; killed after it, the order is the session's
already, and the broker asks for it again by a ResendRequest when the session
resumes — it comes back PossDup, under its own number and ClOrdID, never as a new
order. What comes back is booked once (by ExecID, in :mod:`poise.workflow.execute`):
a report heard again after a resend changes nothing.

The kill switch is the ledger's own: ``execute.halt`` stops every gateway sending new
orders (it is read before each send) and cancels every open order;
``execute.resume`` lifts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.audit.ledger import append
from poise.bus.events import Event, execution_subject
from poise.bus.port import Bus, BusError
from poise.domain.errors import ConflictError
from poise.domain.money import ZERO
from poise.execute.book import Report
from poise.execute.fix.app import (
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdType,
    Side,
    parse_application,
)
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.connection import Initiator, Session
from poise.execute.fix.errors import FieldError
from poise.execute.routes import Route
from poise.execute.safety import child_allowed
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo.execution import (
    OPEN,
    Marked,
    OrderRow,
    SessionRows,
    count_open,
    keep_break,
    open_orders,
    orders_of,
    unsent,
)
from poise.workflow.execute import book_reports, close_block, finish_executed

__all__ = [
    "Gateway",
    "Sent",
    "cancel_order",
    "halt",
    "halted",
    "replace_order",
    "resume",
    "run_routes",
]

log = logging.getLogger("poise.gateway")

_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
_ORD_TYPE = {"limit": OrdType.LIMIT, "market": OrdType.MARKET}


def halted(connection: sa.Connection) -> bool:
    """The kill switch stands: the ledger's latest ``execute.halt`` is later than its
    latest ``execute.resume``."""
    e = t.audit_entries
    latest = connection.execute(
        sa.select(e.c.action)
        .where(e.c.action.in_(("execute.halt", "execute.resume")))
        .order_by(e.c.seq.desc())
        .limit(1)
    ).scalar()
    return latest == "execute.halt"


def _raw(message: Any) -> str:
    return b"|".join([b"=".join(pair) for pair in message.pairs]).decode(errors="replace")


def _report(typed: ExecutionReport) -> Report:
    return Report(
        exec_id=typed.exec_id,
        cl_ord_id=typed.cl_ord_id,
        exec_type=typed.exec_type.value,
        ord_status=typed.ord_status.value,
        last_qty=typed.last_qty or Decimal(0),
        last_px=typed.last_px or Decimal(0),
        cum_qty=typed.cum_qty,
        leaves_qty=typed.leaves_qty,
        order_id=typed.order_id,
        orig_cl_ord_id=typed.orig_cl_ord_id or "",
        text=typed.text or "",
    )


@dataclass
class Sent:
    """What a gateway did in a run: orders and cancels sent, reports booked (and heard
    again), fills, breaks, orders chased for want of an acknowledgement."""

    orders: int = 0
    cancels: int = 0
    reports: int = 0
    duplicates: int = 0
    fills: int = 0
    breaks: int = 0
    chased: list[str] = field(default_factory=list)


class Gateway:
    """One route's session and what it does with its messages (the session's
    ``Application``)."""

    def __init__(
        self,
        engine: sa.Engine,
        route: Route,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        bus: Bus | None = None,
        booked: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.route = route
        self.clock = clock
        # when what comes back is booked as done (its trade date): the session's clock,
        # unless a replay of another day asks for that day's (the demo's trades, made as
        # of its last close)
        self.booked = booked or clock
        self.done = Sent()
        config = SessionConfig(
            sender_comp_id=route.sender,
            target_comp_id=route.target,
            role=Role.INITIATOR,
            heartbeat_interval=route.heartbeat,
            reset_on_logon=route.reset_on_logon,
            reconnect_interval=route.reconnect,
        )
        # the reports one read brings are booked in one transaction: a busy route's
        # reports are taken a megabyte at a time, not the default 64 KiB
        self.session = Session(
            config, SessionRows(engine, config.key), self, clock=clock, read_size=1 << 20
        )
        self.initiator = Initiator(self.session, route.host, route.port)
        self.changed = asyncio.Event()

    # ── the session's application ──

    async def on_logon(self) -> None:
        log.info("route %s logged on", self.route.name)
        self.changed.set()

    async def on_logout(self, reason: str) -> None:
        log.info("route %s logged out: %s", self.route.name, reason)
        self.changed.set()

    async def on_message(self, message: Any, *, possdup: bool) -> None:
        await self.on_messages([(message, possdup)])

    async def on_messages(self, messages: Sequence[tuple[Any, bool]]) -> None:
        """Messages that arrived together: the execution reports among them booked in
        one transaction, the rest one by one, in their turn."""
        at = self.booked()
        reports: list[tuple[ExecutionReport, str]] = []
        for message, _ in messages:
            raw = _raw(message)
            try:
                typed = parse_application(message)
            except FieldError as exc:
                self._break("bad_message", str(exc), raw, at)
                continue
            if isinstance(typed, ExecutionReport):
                reports.append((typed, raw))
                continue
            await self._book(reports, at)
            reports = []
            if isinstance(typed, OrderCancelReject):
                o = t.orders
                with self.engine.begin() as connection:
                    connection.execute(
                        sa.update(o)
                        .where(o.c.cl_ord_id == typed.cl_ord_id)
                        .values(status="rejected", text=typed.text or "cancel refused")
                    )
            else:
                self._break(
                    "unexpected_message", f"{type(typed).__name__} from the broker", raw, at
                )
        await self._book(reports, at)
        self.changed.set()

    async def _book(self, reports: Sequence[tuple[ExecutionReport, str]], at: datetime) -> None:
        if not reports:
            return
        booked = book_reports(
            self.engine,
            route=self.route.name,
            reports=[(_report(typed), raw) for typed, raw in reports],
            at=at,
        )
        for (typed, _), one in zip(reports, booked, strict=True):
            self.done.reports += 1
            self.done.duplicates += 0 if one.new else 1
            self.done.fills += 1 if one.fill else 0
            self.done.breaks += 1 if one.problem else 0
            if one.new:
                await self._publish(
                    f"{self.route.name}:{typed.exec_id}",
                    {
                        "kind": "report",
                        "cl_ord_id": typed.cl_ord_id,
                        "exec_id": typed.exec_id,
                        "exec_type": typed.exec_type.value,
                        "ord_status": typed.ord_status.value,
                        "symbol": typed.symbol,
                        "last_qty": str(typed.last_qty or 0),
                        "last_px": str(typed.last_px or 0),
                        "cum_qty": str(typed.cum_qty),
                        "state": None if one.state is None else one.state.value,
                        "break": one.problem or None,
                    },
                )

    async def _publish(self, event_id: str, payload: dict[str, object]) -> None:
        """Tell the bus (when there is one); the store is the record, so a bus that
        fails is logged, not fatal."""
        if self.bus is None:
            return
        event = Event(execution_subject(self.route.name), event_id, payload)
        try:
            await self.bus.publish(event)
        except BusError as exc:
            log.warning("route %s: event %s not published: %s", self.route.name, event_id, exc)

    def _break(self, kind: str, detail: str, raw: str, at: datetime) -> None:
        self.done.breaks += 1
        with self.engine.begin() as connection:
            keep_break(connection, route=self.route.name, kind=kind, detail=detail, raw=raw, at=at)

    # ── sending ──

    def _message(self, row: OrderRow, at: datetime) -> Any:
        side = _SIDE[row.side.value]
        if row.kind == "cancel":
            assert row.orig_cl_ord_id is not None
            return OrderCancelRequest(
                orig_cl_ord_id=row.orig_cl_ord_id,
                cl_ord_id=row.cl_ord_id,
                symbol=row.security_id,
                side=side,
                order_qty=row.quantity,
                transact_time=at,
            ).to_fix()
        ord_type = _ORD_TYPE[row.ord_type]
        if row.kind == "replace":
            assert row.orig_cl_ord_id is not None
            return OrderCancelReplaceRequest(
                orig_cl_ord_id=row.orig_cl_ord_id,
                cl_ord_id=row.cl_ord_id,
                account=self.route.account,
                symbol=row.security_id,
                side=side,
                order_qty=row.quantity,
                transact_time=at,
                ord_type=ord_type,
                price=row.limit_price if ord_type is OrdType.LIMIT else None,
            ).to_fix()
        return NewOrderSingle(
            cl_ord_id=row.cl_ord_id,
            account=self.route.account,
            symbol=row.security_id,
            side=side,
            order_qty=row.quantity,
            transact_time=at,
            ord_type=ord_type,
            price=row.limit_price if ord_type is OrdType.LIMIT else None,
        ).to_fix()

    async def send_outbox(self) -> int:
        """Send the route's unsent orders in the order they were decided (while the kill
        switch stands, cancels only), stored together and written together; how many
        went."""
        with self.engine.connect() as connection:
            rows = unsent(connection, route=self.route.name)
            stopped = halted(connection)
        at = self.clock()
        going = [
            row
            for row in rows
            if row.status == "pending" and not (stopped and row.kind != "cancel")
        ]  # the rest: withdrawn; or, while the kill switch stands, anything but a cancel
        if not going:
            return 0
        seqs = await self.session.send_many(
            [(self._message(row, at), Marked(row.cl_ord_id, at)) for row in going]
        )
        for row, seq in zip(going, seqs, strict=True):
            await self._publish(
                f"{self.route.name}:sent:{row.cl_ord_id}",
                {
                    "kind": "sent",
                    "order": row.kind,
                    "cl_ord_id": row.cl_ord_id,
                    "symbol": row.security_id,
                    "side": row.side.value,
                    "quantity": str(row.quantity),
                    "limit": None if row.limit_price is None else str(row.limit_price),
                    "seq": seq,
                },
            )
            if row.kind == "cancel":
                self.done.cancels += 1
            else:
                self.done.orders += 1
        return len(going)

    async def chase(self, older_than: timedelta) -> list[str]:
        """Ask the broker where each order sent longer ago than ``older_than`` and never
        acknowledged stands (OrderStatusRequest); their ClOrdIDs."""
        cutoff = self.clock() - older_than
        o = t.orders
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(o.c.cl_ord_id, o.c.block_id)
                .where((o.c.route == self.route.name) & (o.c.status == "sent"))
                .where(o.c.acked_at.is_(None) & (o.c.sent_at <= cutoff))
            ).all()
            blocks = {
                b.block_id: b
                for b in connection.execute(
                    sa.select(t.block_orders).where(
                        t.block_orders.c.block_id.in_([r.block_id for r in rows])
                    )
                )
            }
        chased = []
        for row in rows:
            if row.cl_ord_id in self.done.chased:
                continue
            block = blocks[row.block_id]
            await self.session.send(
                OrderStatusRequest(
                    cl_ord_id=row.cl_ord_id, symbol=block.security_id, side=_SIDE[block.side]
                ).to_fix()
            )
            chased.append(row.cl_ord_id)
        self.done.chased += chased
        return chased

    def working(self) -> int:
        """The route's orders not yet done (or not yet sent)."""
        with self.engine.connect() as connection:
            return count_open(connection, route=self.route.name)


def _cancel_id(cl_ord_id: str) -> str:
    return f"{cl_ord_id[:-1]}C" if cl_ord_id.endswith("-N") else f"{cl_ord_id}-C"


def _queue_cancel(connection: sa.Connection, order: OrderRow, at: datetime, why: str) -> str | None:
    """Cancel ``order``: one never sent is withdrawn (cancelled here, its block closed
    with nothing filled); one sent gets a cancel in the outbox, once. The cancel's id."""
    o = t.orders
    if order.status == "pending":
        connection.execute(
            sa.update(o)
            .where(o.c.cl_ord_id == order.cl_ord_id)
            .values(status="cancelled", text=why)
        )
        if order.kind == "new":
            close_block(connection, order.block_id, "cancelled", at)
        return None
    cancel = _cancel_id(order.cl_ord_id)
    if connection.execute(sa.select(o.c.cl_ord_id).where(o.c.cl_ord_id == cancel)).first():
        return None
    connection.execute(
        sa.insert(o).values(
            cl_ord_id=cancel,
            block_id=order.block_id,
            route=order.route,
            kind="cancel",
            orig_cl_ord_id=order.cl_ord_id,
            quantity=order.quantity,
            status="pending",
            filled=ZERO,
            created_at=at,
        )
    )
    connection.execute(sa.insert(t.outbox).values(cl_ord_id=cancel, route=order.route))
    return cancel


def halt(engine: sa.Engine, *, actor: str, reason: str, at: datetime | None = None) -> list[str]:
    """Pull the kill switch, in one transaction: the ledger's ``execute.halt`` (read by
    every gateway before it sends), orders never sent withdrawn from the outbox, and a
    cancel queued for every order sent and still working. The cancels' ids."""
    at = at or datetime.now(UTC)
    if not reason.strip():
        raise ConflictError("pulling the kill switch needs a reason")
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        working = open_orders(connection)
        cancels = [
            made
            for order in working
            if (made := _queue_cancel(connection, order, at, "withdrawn by the kill switch"))
        ]
        append(
            connection,
            actor=actor,
            action="execute.halt",
            subject="execution",
            data={"cancels": cancels, "working": [w.cl_ord_id for w in working]},
            reason=reason,
            at=at,
        )
    return cancels


def cancel_order(
    engine: sa.Engine, *, cl_ord_id: str, actor: str, reason: str, at: datetime | None = None
) -> str | None:
    """Cancel one working order (what is left of it): withdrawn if never sent, else a
    cancel queued (an ``execute.cancel`` entry either way). The cancel's id, or None
    for a withdrawal."""
    at = at or datetime.now(UTC)
    if not reason.strip():
        raise ConflictError("cancelling an order needs a reason")
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        order = orders_of(connection, cl_ord_ids={cl_ord_id}).get(cl_ord_id)
        if order is None or order.kind == "cancel" or order.status not in OPEN:
            raise ConflictError(f"{cl_ord_id} is not a working order")
        made = _queue_cancel(connection, order, at, f"withdrawn: {reason}")
        append(
            connection,
            actor=actor,
            action="execute.cancel",
            subject=cl_ord_id,
            data={"cancel": made},
            reason=reason,
            at=at,
        )
    return made


def replace_order(
    engine: sa.Engine,
    *,
    cl_ord_id: str,
    quantity: Decimal,
    limit: Decimal | None,
    actor: str,
    reason: str,
    at: datetime | None = None,
) -> str:
    """Queue a cancel/replace of the working order ``cl_ord_id``: ``quantity`` its new
    total (filled shares included), ``limit`` its new limit price. Refused for an order
    not working, and for one that would ask more than its block has left — a child order
    never larger than what its parent has left. The replacement's id."""
    at = at or datetime.now(UTC)
    o, b, x = t.orders, t.block_orders, t.outbox
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        if halted(connection):
            raise ConflictError("the kill switch stands: nothing is sent, replaces neither")
        found = orders_of(connection, cl_ord_ids={cl_ord_id}).get(cl_ord_id)
        if found is None or found.kind == "cancel" or found.status not in ("new", "partial"):
            raise ConflictError(f"{cl_ord_id} is not a working order")
        block = connection.execute(sa.select(b).where(b.c.block_id == found.block_id)).one()
        if not child_allowed(block.quantity, found.filled, ZERO, quantity - found.filled):
            raise ConflictError(
                f"{cl_ord_id}: {quantity} would ask more than block {block.block_id} has left"
                f" ({block.quantity - found.filled} after {found.filled} filled)"
            )
        count = connection.execute(
            sa.select(sa.func.count()).where(
                (o.c.block_id == found.block_id) & (o.c.kind == "replace")
            )
        ).scalar_one()
        new_id = f"{found.cl_ord_id.rsplit('-', 1)[0]}-R{count + 1}"
        connection.execute(
            sa.insert(o).values(
                cl_ord_id=new_id,
                block_id=found.block_id,
                route=found.route,
                kind="replace",
                orig_cl_ord_id=found.cl_ord_id,
                quantity=quantity,
                limit_price=limit,
                status="pending",
                filled=found.filled,
                created_at=at,
            )
        )
        connection.execute(sa.insert(x).values(cl_ord_id=new_id, route=found.route))
        append(
            connection,
            actor=actor,
            action="execute.replace",
            subject=new_id,
            data={"replaces": cl_ord_id, "quantity": str(quantity), "limit": str(limit)},
            reason=reason,
            at=at,
        )
    return new_id


def resume(engine: sa.Engine, *, actor: str, reason: str, at: datetime | None = None) -> None:
    """Lift the kill switch (the ledger's ``execute.resume``)."""
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        if not halted(connection):
            raise ConflictError("the kill switch is not pulled")
        append(
            connection,
            actor=actor,
            action="execute.resume",
            subject="execution",
            data={},
            reason=reason,
            at=at or datetime.now(UTC),
        )


async def run_routes(
    engine: sa.Engine,
    routes: Sequence[Route],
    *,
    wait: float,
    ack: float,
    logon: float = 10.0,
    tick: Callable[[dict[str, Sent]], None] | None = None,
    bus: Bus | None = None,
    booked: Callable[[], datetime] | None = None,
) -> dict[str, Sent]:
    """Send every route's outbox and book what comes back until nothing is working or
    ``wait`` seconds have passed; orders unacknowledged after ``ack`` seconds are
    chased. Routes with nothing to do are not connected; ``bus``: where each order sent
    and each report booked is told (``poise.executions.<route>``). What each route did."""
    gateways = [Gateway(engine, route, bus=bus, booked=booked) for route in routes]
    gateways = [g for g in gateways if g.working()]
    for gateway in gateways:
        gateway.initiator.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        for gateway in gateways:
            try:
                await gateway.session.wait_logged_on(timeout=logon)
            except TimeoutError:
                raise ConflictError(
                    f"route {gateway.route.name}: no logon from"
                    f" {gateway.route.host}:{gateway.route.port} within {logon:g} s;"
                    " the orders stay in the outbox"
                ) from None
        while loop.time() < deadline:
            for gateway in gateways:
                if gateway.session.logged_on:
                    await gateway.send_outbox()
                    await gateway.chase(timedelta(seconds=ack))
            if tick is not None:
                tick({g.route.name: g.done for g in gateways})
            if all(g.working() == 0 for g in gateways):
                break
            for gateway in gateways:
                gateway.changed.clear()
            waits = [asyncio.create_task(g.changed.wait()) for g in gateways]
            _, pending = await asyncio.wait(waits, timeout=0.2, return_when="FIRST_COMPLETED")
            for task in pending:
                task.cancel()
    finally:
        for gateway in gateways:
            await gateway.initiator.stop("done")
    # proposals allocated in full by an earlier run killed before it marked them
    finish_executed(engine)
    return {g.route.name: g.done for g in gateways}
