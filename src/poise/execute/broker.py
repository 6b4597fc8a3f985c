"""The simulated broker: a FIX 4.4 acceptor on poise's session layer that answers
orders as a broker would, for the embedded set-up, demos and tests.

A NewOrderSingle is acknowledged (ExecutionReport New) and then filled at the price
source's price — in one fill, or a part first and the rest later (``partial``); a limit
order fills only when its limit is marketable against that price (a buy at or above
it, a sell at or below) and rests until it is. Rejected: a symbol without a price, a
symbol on the reject list, and a share of orders drawn by ``reject_rate`` from a
generator seeded with ``seed``, so a run is the same every time. Cancels (F) cancel
what is left, cancel/replace (G) changes quantity and price, status requests (H) are
answered with ExecType I, and a cancel or replace of an order unknown or done is
refused with an OrderCancelReject. An order whose ClOrdID was seen before (a resent
order) is never filled twice: the answer is where it stands. ``drop_after`` drops the
connection once, after that many application messages, to try a client's recovery.

What was sent is in the session's store; the broker's book is rebuilt from the
ExecutionReports there when it starts again (``restore``).

May import: ``poise.domain`` and ``poise.execute.fix``. May not touch: the store or the
bus — prices come in through ``PriceSource``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from poise.domain.errors import ConfigError
from poise.execute.fix.app import (
    ApplicationMessage,
    BusinessMessageReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Side,
    parse_application,
)
from poise.execute.fix.codec import MsgType, Tag, decode
from poise.execute.fix.codec import field as fix_field
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.connection import Acceptor, Clock, Session, utc_now
from poise.execute.fix.errors import FieldError, NotLoggedOnError
from poise.execute.fix.store import SessionStore

__all__ = ["Behaviour", "BrokerServer", "PriceSource", "SimulatedBroker", "price_table"]

log = logging.getLogger("poise.broker")

PriceSource = Callable[[str], Decimal | None]
"""A symbol's price now; None: not priced (its orders are rejected)."""

_PX = Decimal("0.000001")  # AvgPx to a millionth
_UNKNOWN_SYMBOL = 1  # OrdRejReason(103)
_BROKER_OPTION = 0
_UNKNOWN_ORDER = 5
_TOO_LATE = 0  # CxlRejReason(102)
_UNKNOWN = 1
_OTHER = 99


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the broker answers. Delays are in seconds."""

    partial: Decimal | None = None  # the fraction of an order filled first, 0 < p < 1
    reject_rate: Decimal = Decimal(0)  # the share of orders rejected, drawn with ``seed``
    reject_symbols: frozenset[str] = frozenset()
    fill_delay: float = 0.0  # from the acknowledgement to the first fill
    rest_delay: float = 0.5  # from a partial fill to the rest
    reprice_interval: float = 1.0  # how often resting orders are looked at again
    drop_after: int | None = None  # drop the connection once, after this many messages
    seed: int = 0
    id_prefix: str = ""  # before each OrderID and ExecID (a run's, so ids stay unique)

    def __post_init__(self) -> None:
        if self.partial is not None and not Decimal(0) < self.partial < Decimal(1):
            raise ConfigError(f"partial {self.partial}: a fraction between 0 and 1")
        if not Decimal(0) <= self.reject_rate <= Decimal(1):
            raise ConfigError(f"reject rate {self.reject_rate}: between 0 and 1")
        if min(self.fill_delay, self.rest_delay) < 0 or self.reprice_interval <= 0:
            raise ConfigError("delays are not negative, and the reprice interval is positive")
        if self.drop_after is not None and self.drop_after < 1:
            raise ConfigError(f"drop after {self.drop_after}: at least 1 message")


@dataclass(slots=True)
class _Order:
    """An order in the broker's book, as it stands (changed in place as it fills)."""

    order_id: str
    cl_ord_id: str
    account: str | None
    symbol: str
    side: Side
    ord_type: OrdType
    price: Decimal | None
    order_qty: Decimal
    cum_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: OrdStatus = OrdStatus.NEW
    names: set[str] = field(default_factory=set)  # every ClOrdID it has gone by

    @property
    def leaves_qty(self) -> Decimal:
        return Decimal(0) if self.status.is_done else self.order_qty - self.cum_qty

    @property
    def avg_px(self) -> Decimal:
        if not self.cum_qty:
            return Decimal(0)
        return (self.notional / self.cum_qty).quantize(_PX).normalize()

    def marketable(self, price: Decimal) -> bool:
        if self.ord_type is OrdType.MARKET or self.price is None:
            return True
        return self.price >= price if self.side is Side.BUY else self.price <= price


Outgoing = ExecutionReport | OrderCancelReject | BusinessMessageReject


class SimulatedBroker:
    """The broker's application: the session calls it, it answers through the session
    (``attach``). Reports made while no session is logged on wait for the next logon."""

    def __init__(
        self, prices: PriceSource, behaviour: Behaviour | None = None, *, clock: Clock = utc_now
    ) -> None:
        self.prices = prices
        self.behaviour = behaviour or Behaviour()
        self._clock = clock
        self.session: Session | None = None
        self._orders: dict[str, _Order] = {}  # by OrderID
        self._named: dict[str, _Order] = {}  # by each ClOrdID
        self._waiting: list[Outgoing] = []
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._reprice: asyncio.Task[None] | None = None
        self._rng = random.Random(self.behaviour.seed)
        self._numbers = {"O": 0, "E": 0}
        self._received = 0
        self._dropped = False
        self._lock = asyncio.Lock()
        self._flush_due = False
        self._flushes: set[asyncio.Task[None]] = set()
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            NewOrderSingle: self._new,
            OrderCancelRequest: self._cancel,
            OrderCancelReplaceRequest: self._replace,
            OrderStatusRequest: self._status,
        }

    def attach(self, session: Session) -> None:
        self.session = session

    def order(self, cl_ord_id: str) -> ExecutionReport | None:
        """Where the order once or now named ``cl_ord_id`` stands (ExecType I), or None."""
        found = self._named.get(cl_ord_id)
        return None if found is None else self._report(found, ExecType.ORDER_STATUS)

    # --- the session's callbacks ----------------------------------------------------

    async def on_logon(self) -> None:
        await self._emit(None)
        if self._reprice is None:
            self._reprice = asyncio.create_task(self._look_again(), name="broker reprice")

    async def on_logout(self, reason: str) -> None:
        log.info("broker session ended: %s", reason)

    async def on_message(self, message: Any, *, possdup: bool) -> None:
        self._received += 1
        try:
            typed = parse_application(message)
        except FieldError as exc:
            await self._refuse(message, exc)
        else:
            handler = self._handlers.get(type(typed))
            if handler is None:
                await self._unsupported(message, typed)
            else:
                await handler(typed)
        drop = self.behaviour.drop_after
        if drop is not None and self._received >= drop and not self._dropped:
            self._dropped = True
            if self.session is not None:
                self.session.disconnect(f"dropped after {drop} messages, as asked (drop_after)")

    async def close(self) -> None:
        """Stop the timers (orders still open stay so)."""
        tasks = [
            *self._timers.values(),
            *self._flushes,
            *([self._reprice] if self._reprice else []),
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
        self._reprice = None

    # --- orders ---------------------------------------------------------------------

    async def _new(self, request: NewOrderSingle) -> None:
        known = self._named.get(request.cl_ord_id)
        if known is not None:  # a resent order: never filled twice
            text = "duplicate ClOrdID: the order as it stands"
            await self._emit(self._report(known, ExecType.ORDER_STATUS, text=text))
            return
        order = _Order(
            order_id=self._id("O"),
            cl_ord_id=request.cl_ord_id,
            account=request.account,
            symbol=request.symbol,
            side=request.side,
            ord_type=request.ord_type,
            price=request.price,
            order_qty=request.order_qty,
        )
        self._keep(order, request.cl_ord_id)
        refusal = self._refusal(request.symbol)
        if refusal is not None:
            reason, text = refusal
            order.status = OrdStatus.REJECTED
            report = self._report(order, ExecType.REJECTED, text=text, ord_rej_reason=reason)
            await self._emit(report)
            return
        await self._emit(self._report(order, ExecType.NEW))
        if self.behaviour.fill_delay > 0:
            self._fill_in(order, self.behaviour.fill_delay)
        else:  # at once: the fill goes out with the acknowledgement
            await self._fill(order)

    def _refusal(self, symbol: str) -> tuple[int, str] | None:
        drawn = self._rng.random() if self.behaviour.reject_rate else 1.0
        if symbol in self.behaviour.reject_symbols:
            return _BROKER_OPTION, f"{symbol} is not traded here (reject list)"
        if self.prices(symbol) is None:
            return _UNKNOWN_SYMBOL, f"no price for {symbol}"
        if drawn < self.behaviour.reject_rate:
            return _BROKER_OPTION, "rejected by the simulated broker (reject rate)"
        return None

    async def _cancel(self, request: OrderCancelRequest) -> None:
        if await self._seen(request.cl_ord_id):
            return
        order = self._named.get(request.orig_cl_ord_id)
        refused = self._cannot_change(order, request.orig_cl_ord_id)
        if order is None or refused is not None:
            reason, text = refused or (_UNKNOWN, "unknown order")
            await self._refuse_change(order, request, CxlRejResponseTo.CANCEL, reason, text)
            return
        self._stop_timer(order)
        before = order.cl_ord_id
        order.status = OrdStatus.CANCELED
        self._keep(order, request.cl_ord_id)
        await self._emit(self._report(order, ExecType.CANCELED, orig_cl_ord_id=before))

    async def _replace(self, request: OrderCancelReplaceRequest) -> None:
        if await self._seen(request.cl_ord_id):
            return
        order = self._named.get(request.orig_cl_ord_id)
        refused = self._cannot_change(order, request.orig_cl_ord_id)
        if order is not None and refused is None:
            if (request.symbol, request.side) != (order.symbol, order.side):
                refused = (_OTHER, "a replace cannot change the symbol or the side")
            elif request.order_qty <= order.cum_qty:
                refused = (
                    _OTHER,
                    f"OrderQty {request.order_qty} is not above {order.cum_qty} filled",
                )
        if order is None or refused is not None:
            reason, text = refused or (_UNKNOWN, "unknown order")
            await self._refuse_change(order, request, CxlRejResponseTo.REPLACE, reason, text)
            return
        before = order.cl_ord_id
        order.order_qty = request.order_qty
        order.ord_type = request.ord_type
        order.price = request.price
        order.status = OrdStatus.PARTIALLY_FILLED if order.cum_qty else OrdStatus.NEW
        self._keep(order, request.cl_ord_id)
        await self._emit(self._report(order, ExecType.REPLACED, orig_cl_ord_id=before))
        self._stop_timer(order)  # the order as replaced is looked at afresh
        self._fill_in(order, self.behaviour.fill_delay)

    async def _status(self, request: OrderStatusRequest) -> None:
        order = self._named.get(request.cl_ord_id)
        if order is not None:
            await self._emit(self._report(order, ExecType.ORDER_STATUS))
            return
        zero = Decimal(0)
        unknown = ExecutionReport(
            order_id="NONE",
            exec_id=self._id("E"),
            exec_type=ExecType.ORDER_STATUS,
            ord_status=OrdStatus.REJECTED,
            cl_ord_id=request.cl_ord_id,
            symbol=request.symbol,
            side=request.side,
            leaves_qty=zero,
            cum_qty=zero,
            avg_px=zero,
            ord_rej_reason=_UNKNOWN_ORDER,
            transact_time=self._clock(),
            text="unknown order",
        )
        await self._emit(unknown)

    async def _seen(self, cl_ord_id: str) -> bool:
        """A request under a ClOrdID already used: answered with where its order stands."""
        order = self._named.get(cl_ord_id)
        if order is None:
            return False
        text = "duplicate ClOrdID: the order as it stands"
        await self._emit(self._report(order, ExecType.ORDER_STATUS, text=text))
        return True

    @staticmethod
    def _cannot_change(order: _Order | None, name: str) -> tuple[int, str] | None:
        if order is None:
            return _UNKNOWN, f"unknown order {name}"
        if order.status.is_done:
            return _TOO_LATE, f"too late: the order is {order.status.name.lower()}"
        if order.cl_ord_id != name:
            return _OTHER, f"{name} is not the order's current ClOrdID ({order.cl_ord_id})"
        return None

    async def _refuse_change(
        self,
        order: _Order | None,
        request: OrderCancelRequest | OrderCancelReplaceRequest,
        response_to: CxlRejResponseTo,
        reason: int,
        text: str,
    ) -> None:
        refusal = OrderCancelReject(
            order_id=order.order_id if order else "NONE",
            cl_ord_id=request.cl_ord_id,
            orig_cl_ord_id=request.orig_cl_ord_id,
            ord_status=order.status if order else OrdStatus.REJECTED,
            response_to=response_to,
            cxl_rej_reason=reason,
            text=text,
        )
        await self._emit(refusal)

    # --- fills ----------------------------------------------------------------------

    def _fill_in(self, order: _Order, delay: float) -> None:
        """Fill ``order`` (as far as the price allows) after ``delay`` seconds."""
        running = self._timers.get(order.order_id)
        if running is not None and not running.done():
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            self._timers.pop(order.order_id, None)
            await self._fill(order)

        self._timers[order.order_id] = asyncio.create_task(later(), name=f"fill {order.order_id}")

    def _stop_timer(self, order: _Order) -> None:
        timer = self._timers.pop(order.order_id, None)
        if timer is not None:
            timer.cancel()

    async def _fill(self, order: _Order) -> None:
        if order.status.is_done or order.leaves_qty <= 0:
            return
        price = self.prices(order.symbol)
        if price is None or not order.marketable(price):
            return  # it rests; looked at again every reprice interval
        quantity = order.leaves_qty
        partial = self.behaviour.partial
        if partial is not None and not order.cum_qty:
            first = (quantity * partial).to_integral_value(rounding=ROUND_DOWN)
            if 0 < first < quantity:
                quantity = first
        order.cum_qty += quantity
        order.notional += quantity * price
        done = order.cum_qty >= order.order_qty
        order.status = OrdStatus.FILLED if done else OrdStatus.PARTIALLY_FILLED
        await self._emit(self._report(order, ExecType.TRADE, last_qty=quantity, last_px=price))
        if not done:
            self._fill_in(order, self.behaviour.rest_delay)

    async def _look_again(self) -> None:
        """Resting orders, every reprice interval: fill what has become marketable."""
        while True:
            await asyncio.sleep(self.behaviour.reprice_interval)
            for order in list(self._orders.values()):
                if not order.status.is_done and order.order_id not in self._timers:
                    self._fill_in(order, 0)

    # --- answers --------------------------------------------------------------------

    def _report(self, order: _Order, exec_type: ExecType, **extra: Any) -> ExecutionReport:
        return ExecutionReport(
            order_id=order.order_id,
            exec_id=self._id("E"),
            exec_type=exec_type,
            ord_status=order.status,
            cl_ord_id=order.cl_ord_id,
            symbol=order.symbol,
            side=order.side,
            leaves_qty=order.leaves_qty,
            cum_qty=order.cum_qty,
            avg_px=order.avg_px,
            account=order.account,
            order_qty=order.order_qty,
            ord_type=order.ord_type,
            price=order.price,
            transact_time=self._clock(),
            **extra,
        )

    async def _emit(self, message: Outgoing | None) -> None:
        """Send ``message`` as soon as this turn of the event loop is over, or at the
        next logon — after whatever waits for it, in order either way (None: send what
        waits). What is emitted in one turn (the answers to every order one read
        brought) goes out together: one durable write of the session's store, one
        write to the socket."""
        if message is not None:
            self._waiting.append(message)
        if not self._flush_due:
            self._flush_due = True
            self._flushes.add(flush := asyncio.create_task(self._flush(), name="broker flush"))
            flush.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the rest of this turn's reports join in
        async with self._lock:
            self._flush_due = False
            session = self.session
            while self._waiting and session is not None and session.logged_on:
                batch = list(self._waiting)
                try:
                    await session.send_many([(message.to_fix(), None) for message in batch])
                except NotLoggedOnError:
                    break
                del self._waiting[: len(batch)]

    async def _refuse(self, message: Any, error: FieldError) -> None:
        """An application message that does not read: a BusinessMessageReject, or for an
        order with a ClOrdID, a rejection of that order."""
        msg_type = fix_field(message, Tag.MsgType) or ""
        reason = 3 if error.tag == Tag.MsgType else 5 if "missing" in error.text else 0
        refusal = BusinessMessageReject(
            ref_msg_type=msg_type,
            reason=reason,
            ref_seq_num=_int(fix_field(message, Tag.MsgSeqNum)),
            business_reject_ref_id=fix_field(message, Tag.ClOrdID),
            text=str(error),
        )
        await self._emit(refusal)

    async def _unsupported(self, message: Any, typed: ApplicationMessage) -> None:
        await self._refuse(
            message, FieldError(Tag.MsgType, f"{type(typed).__name__} is not taken here")
        )

    # --- the book -------------------------------------------------------------------

    def _id(self, kind: str) -> str:
        self._numbers[kind] += 1
        return f"{self.behaviour.id_prefix}{kind}{self._numbers[kind]}"

    def _keep(self, order: _Order, cl_ord_id: str) -> None:
        order.cl_ord_id = cl_ord_id
        order.names.add(cl_ord_id)
        self._orders[order.order_id] = order
        self._named[cl_ord_id] = order

    def restore(self, stored: Iterable[tuple[int, bytes]]) -> int:
        """The book as the ExecutionReports sent say it stood (a store's
        ``outbound(1, 0)``); how many reports were read."""
        count = 0
        for _, raw in stored:
            try:
                message = decode(raw)
                if fix_field(message, Tag.MsgType) != MsgType.ExecutionReport:
                    continue
                report = ExecutionReport.from_fix(message)
            except (ValueError, FieldError):
                continue
            count += 1
            self._restore_one(report)
        return count

    def _restore_one(self, report: ExecutionReport) -> None:
        for kind, name in (("E", report.exec_id), ("O", report.order_id)):
            number = re.search(r"(\d+)$", name)
            if name.startswith(f"{self.behaviour.id_prefix}{kind}") and number:
                self._numbers[kind] = max(self._numbers[kind], int(number.group(1)))
        if report.order_id == "NONE":
            return
        order = self._orders.get(report.order_id)
        if order is None:
            order = _Order(
                order_id=report.order_id,
                cl_ord_id=report.cl_ord_id,
                account=report.account,
                symbol=report.symbol,
                side=report.side,
                ord_type=report.ord_type or OrdType.MARKET,
                price=report.price,
                order_qty=report.order_qty or report.cum_qty + report.leaves_qty,
            )
        if report.orig_cl_ord_id:
            order.names.add(report.orig_cl_ord_id)
            self._named[report.orig_cl_ord_id] = order
        order.order_qty = report.order_qty or order.order_qty
        order.ord_type = report.ord_type or order.ord_type
        order.price = report.price if report.ord_type else order.price
        order.cum_qty = report.cum_qty
        order.notional = report.avg_px * report.cum_qty
        order.status = report.ord_status
        self._keep(order, report.cl_ord_id)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


class BrokerServer:
    """The simulated broker listening for its one counterparty: the session, its store
    (the book restored from it), the acceptor. ``start`` returns the port."""

    def __init__(
        self,
        config: SessionConfig,
        store: SessionStore,
        prices: PriceSource,
        behaviour: Behaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        if config.role is not Role.ACCEPTOR:
            raise ConfigError("the simulated broker is the acceptor of its session")
        self.broker = SimulatedBroker(prices, behaviour, clock=clock)
        restored = self.broker.restore(store.outbound(1, 0))
        if restored:
            log.info("broker book restored from %d execution reports", restored)
        self.session = Session(config, store, self.broker, clock=clock)
        self.broker.attach(self.session)
        self.acceptor = Acceptor(self.session, host, port)

    @property
    def port(self) -> int:
        return self.acceptor.port

    async def start(self) -> int:
        return await self.acceptor.start()

    async def stop(self, text: str = "") -> None:
        """Log out (if logged on), stop listening and stop the broker's timers."""
        await self.acceptor.stop(text)
        await self.broker.close()

    async def __aenter__(self) -> BrokerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def price_table(prices: dict[str, Decimal]) -> PriceSource:
    """A price source from a table of symbol -> price."""
    return prices.get
