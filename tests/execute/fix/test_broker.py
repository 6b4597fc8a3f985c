"""The simulated broker as poise's gateway meets it: a client session (poise's own
initiator) sends orders, cancels, replaces and status requests, and reads back what a
broker would answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.execute.fix.broker_scene import CLIENT, NOW, PRICES, Inbox, with_broker

from poise.execute.broker import Behaviour, BrokerServer
from poise.execute.fix.app import (
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
)
from poise.execute.fix.connection import Initiator, Session
from poise.execute.fix.errors import NotLoggedOnError
from poise.execute.fix.store import MemoryStore

Client = Callable[[Session, Inbox], Awaitable[None]]


def order(cl_ord_id: str, quantity: str = "100", symbol: str = "AAPL", **more: Any) -> Any:
    return NewOrderSingle(
        cl_ord_id=cl_ord_id,
        account="FIRM-1",
        symbol=symbol,
        side=more.pop("side", Side.BUY),
        order_qty=Decimal(quantity),
        transact_time=NOW,
        **more,
    ).to_fix()


def status_of(cl_ord_id: str) -> Any:
    return OrderStatusRequest(cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY).to_fix()


def trading(
    folder: Path,
    client: Client,
    *,
    behaviour: Behaviour | None = None,
    prices: dict[str, Decimal] | None = None,
) -> None:
    """``client`` logged on to a broker, through poise's own initiator."""

    async def steps(server: BrokerServer) -> None:
        inbox = Inbox()
        session = Session(CLIENT, MemoryStore(), inbox)
        initiator = Initiator(session, "127.0.0.1", server.port)
        initiator.start()
        try:
            await session.wait_logged_on(5)
            await client(session, inbox)
        finally:
            await initiator.stop()

    with_broker(folder, steps, behaviour=behaviour, prices=prices)


def test_order_when_the_symbol_is_priced_then_acknowledged_and_filled_at_the_price(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1"))

        new: ExecutionReport = await inbox.next()
        fill: ExecutionReport = await inbox.next()

        assert (new.exec_type, new.ord_status, new.leaves_qty) == (
            ExecType.NEW,
            OrdStatus.NEW,
            Decimal(100),
        )
        assert (fill.exec_type, fill.ord_status) == (ExecType.TRADE, OrdStatus.FILLED)
        assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (
            Decimal(100),
            Decimal("190.50"),
            Decimal(100),
            Decimal(0),
        )
        assert fill.avg_px == Decimal("190.5")
        assert fill.account == "FIRM-1"
        assert new.order_id == fill.order_id
        assert new.exec_id != fill.exec_id

    trading(tmp_path, client)


def test_order_when_partial_fills_are_asked_then_half_first_and_the_rest_later(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", "101"))

        _, first, rest = [await inbox.next() for _ in range(3)]

        assert (first.last_qty, first.ord_status, first.leaves_qty) == (
            Decimal(50),
            OrdStatus.PARTIALLY_FILLED,
            Decimal(51),
        )
        assert (rest.last_qty, rest.ord_status, rest.cum_qty) == (
            Decimal(51),
            OrdStatus.FILLED,
            Decimal(101),
        )

    trading(tmp_path, client, behaviour=Behaviour(partial=Decimal("0.5"), rest_delay=0.05))


def test_order_when_the_symbol_has_no_price_then_rejected(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", symbol="NOPRICE"))

        rejected: ExecutionReport = await inbox.next()

        assert (rejected.exec_type, rejected.ord_status) == (ExecType.REJECTED, OrdStatus.REJECTED)
        assert (rejected.text, rejected.ord_rej_reason) == ("no price for NOPRICE", 1)
        assert rejected.leaves_qty == 0

    trading(tmp_path, client)


def test_order_when_its_symbol_is_on_the_reject_list_then_rejected(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", symbol="MSFT"))
        await session.send(order("B-2", symbol="AAPL"))

        first = await inbox.next()
        assert (first.cl_ord_id, first.exec_type) == ("B-1", ExecType.REJECTED)
        assert (await inbox.next()).exec_type is ExecType.NEW

    trading(tmp_path, client, behaviour=Behaviour(reject_symbols=frozenset({"MSFT"})))


def test_order_when_a_reject_rate_is_set_then_the_same_seed_rejects_the_same_orders(
    tmp_path: Path,
) -> None:
    def rejected_with(seed: int, folder: Path) -> list[str]:
        found: list[str] = []

        async def client(session: Session, inbox: Inbox) -> None:
            for number in range(12):
                await session.send(order(f"B-{number}"))
            while len({r.cl_ord_id for r in found_reports}) < 12:
                found_reports.append(await inbox.next())
            found.extend(r.cl_ord_id for r in found_reports if r.exec_type is ExecType.REJECTED)

        found_reports: list[ExecutionReport] = []
        behaviour = Behaviour(reject_rate=Decimal("0.5"), seed=seed, fill_delay=60)
        trading(folder, client, behaviour=behaviour)
        return found

    first = rejected_with(7, tmp_path / "first")
    again = rejected_with(7, tmp_path / "again")
    other = rejected_with(8, tmp_path / "other")

    assert first == again
    assert 0 < len(first) < 12
    assert other != first


def test_limit_order_when_not_marketable_then_it_rests_until_the_price_comes_to_it(
    tmp_path: Path,
) -> None:
    prices = dict(PRICES)

    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", ord_type=OrdType.LIMIT, price=Decimal("180")))
        assert (await inbox.next()).exec_type is ExecType.NEW

        await session.send(
            OrderStatusRequest(cl_ord_id="B-1", symbol="AAPL", side=Side.BUY).to_fix()
        )
        status: ExecutionReport = await inbox.next()
        assert (status.exec_type, status.ord_status, status.cum_qty) == (
            ExecType.ORDER_STATUS,
            OrdStatus.NEW,
            Decimal(0),
        )

        prices["AAPL"] = Decimal("179.95")
        fill: ExecutionReport = await inbox.next()
        assert (fill.exec_type, fill.last_px) == (ExecType.TRADE, Decimal("179.95"))

    trading(tmp_path, client, behaviour=Behaviour(reprice_interval=0.05), prices=prices)


def test_limit_sell_when_the_limit_is_at_or_below_the_price_then_it_fills(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        limit = order("S-1", side=Side.SELL, ord_type=OrdType.LIMIT, price=Decimal("190.50"))
        await session.send(limit)

        _, fill = await inbox.next(), await inbox.next()
        assert (fill.exec_type, fill.side, fill.last_px) == (
            ExecType.TRADE,
            Side.SELL,
            Decimal("190.50"),
        )

    trading(tmp_path, client)


def test_cancel_when_the_order_is_open_then_what_is_left_is_cancelled(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", ord_type=OrdType.LIMIT, price=Decimal("100")))
        await inbox.next()

        cancel = OrderCancelRequest(
            orig_cl_ord_id="B-1",
            cl_ord_id="C-1",
            symbol="AAPL",
            side=Side.BUY,
            order_qty=Decimal(100),
            transact_time=NOW,
        )
        await session.send(cancel.to_fix())

        done: ExecutionReport = await inbox.next()
        assert (done.exec_type, done.ord_status) == (ExecType.CANCELED, OrdStatus.CANCELED)
        assert (done.cl_ord_id, done.orig_cl_ord_id, done.leaves_qty) == ("C-1", "B-1", 0)

    trading(tmp_path, client)


def test_cancel_when_the_order_is_unknown_then_refused_with_a_cancel_reject(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        cancel = OrderCancelRequest(
            orig_cl_ord_id="NEVER-SENT",
            cl_ord_id="C-1",
            symbol="AAPL",
            side=Side.BUY,
            order_qty=Decimal(100),
            transact_time=NOW,
        )
        await session.send(cancel.to_fix())

        refused: OrderCancelReject = await inbox.next()
        assert isinstance(refused, OrderCancelReject)
        assert (refused.response_to, refused.cxl_rej_reason) == (CxlRejResponseTo.CANCEL, 1)
        assert (refused.cl_ord_id, refused.orig_cl_ord_id) == ("C-1", "NEVER-SENT")

    trading(tmp_path, client)


def test_cancel_when_the_order_is_filled_then_it_is_too_late(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1"))
        await inbox.next()
        await inbox.next()

        cancel = OrderCancelRequest(
            orig_cl_ord_id="B-1",
            cl_ord_id="C-1",
            symbol="AAPL",
            side=Side.BUY,
            order_qty=Decimal(100),
            transact_time=NOW,
        )
        await session.send(cancel.to_fix())

        refused: OrderCancelReject = await inbox.next()
        assert (refused.ord_status, refused.cxl_rej_reason) == (OrdStatus.FILLED, 0)

    trading(tmp_path, client)


def test_replace_when_the_limit_is_raised_to_the_price_then_replaced_and_filled(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1", ord_type=OrdType.LIMIT, price=Decimal("150")))
        await inbox.next()

        change = OrderCancelReplaceRequest(
            orig_cl_ord_id="B-1",
            cl_ord_id="B-1a",
            account="FIRM-1",
            symbol="AAPL",
            side=Side.BUY,
            order_qty=Decimal(80),
            transact_time=NOW,
            ord_type=OrdType.LIMIT,
            price=Decimal("191"),
        )
        await session.send(change.to_fix())

        replaced: ExecutionReport = await inbox.next()
        fill: ExecutionReport = await inbox.next()
        assert (replaced.exec_type, replaced.order_qty, replaced.price) == (
            ExecType.REPLACED,
            Decimal(80),
            Decimal(191),
        )
        assert (replaced.cl_ord_id, replaced.orig_cl_ord_id) == ("B-1a", "B-1")
        assert (fill.cl_ord_id, fill.cum_qty, fill.last_px) == ("B-1a", 80, Decimal("190.50"))

    trading(tmp_path, client)


def test_status_when_the_order_is_unknown_then_the_answer_says_so(tmp_path: Path) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(status_of("WHO"))

        status: ExecutionReport = await inbox.next()
        assert (status.exec_type, status.ord_status, status.text) == (
            ExecType.ORDER_STATUS,
            OrdStatus.REJECTED,
            "unknown order",
        )

    trading(tmp_path, client)


def test_order_when_its_cl_ord_id_comes_again_then_it_is_not_filled_twice(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1"))
        await inbox.next()
        await inbox.next()

        await session.send(order("B-1"))

        again: ExecutionReport = await inbox.next()
        assert (again.exec_type, again.cum_qty) == (ExecType.ORDER_STATUS, Decimal(100))
        assert again.text == "duplicate ClOrdID: the order as it stands"
        await session.send(
            OrderStatusRequest(cl_ord_id="B-1", symbol="AAPL", side=Side.BUY).to_fix()
        )
        assert (await inbox.next()).cum_qty == 100  # and no other fill came before it

    trading(tmp_path, client)


def test_drop_after_when_reached_then_the_client_reconnects_and_gets_its_fills(
    tmp_path: Path,
) -> None:
    async def client(session: Session, inbox: Inbox) -> None:
        await session.send(order("B-1"))

        reports = [await inbox.next() for _ in range(2)]

        assert [r.exec_type for r in reports] == [ExecType.NEW, ExecType.TRADE]
        assert inbox.logons == 2
        assert inbox.logouts[0] == "connection closed by the counterparty"

    trading(tmp_path, client, behaviour=Behaviour(drop_after=1, fill_delay=0.3))


def test_send_when_not_logged_on_then_refused_and_nothing_is_stored() -> None:
    async def main() -> None:
        store = MemoryStore()
        session = Session(CLIENT, store, Inbox())

        with pytest.raises(NotLoggedOnError):
            await session.send(order("B-1"))

        assert store.load() == (1, 1)

    asyncio.run(main())


def test_on_message_when_the_application_fails_then_the_message_comes_again_after_reconnecting(
    tmp_path: Path,
) -> None:
    class Failing(Inbox):
        failed = False

        async def on_message(self, message: Any, *, possdup: bool) -> None:
            if not self.failed:
                self.failed = True
                raise RuntimeError("the database is away")
            await super().on_message(message, possdup=possdup)

    async def steps(server: BrokerServer) -> None:
        inbox = Failing()
        session = Session(replace(CLIENT, reconnect_interval=0.1), MemoryStore(), inbox)
        initiator = Initiator(session, "127.0.0.1", server.port)
        initiator.start()
        try:
            await session.wait_logged_on(5)
            await session.send(order("B-1"))

            new, fill = await inbox.next(), await inbox.next()

            assert (new.cl_ord_id, new.exec_type) == ("B-1", ExecType.NEW)
            assert fill.exec_type is ExecType.TRADE
            assert inbox.possdups[0] is True  # the acknowledgement, sent again
            assert inbox.logouts[0].startswith("the application failed on MsgSeqNum 2")
        finally:
            await initiator.stop()

    with_broker(tmp_path, steps)
