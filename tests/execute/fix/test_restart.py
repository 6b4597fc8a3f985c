"""Both sides stopped and started again from their stores: the sequence numbers go on
where they stood (no resend, no reset), and the broker remembers its orders."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from tests.execute.fix.broker_scene import BROKER, CLIENT, NOW, PRICES, Inbox

from poise.execute.broker import BrokerServer
from poise.execute.fix.app import ExecType, ExecutionReport, NewOrderSingle, Side
from poise.execute.fix.connection import Initiator, Session
from poise.execute.fix.session import Event, EventKind
from poise.execute.fix.store import FileStore


def test_restart_when_broker_and_client_start_again_from_their_stores_then_numbers_continue(
    tmp_path: Path,
) -> None:
    events: list[Event] = []

    async def day(cl_ord_id: str) -> tuple[list[ExecutionReport], tuple[int, int], tuple[int, int]]:
        broker_store = FileStore(tmp_path / "broker", BROKER.key)
        client_store = FileStore(tmp_path / "client", CLIENT.key)
        server = BrokerServer(BROKER, broker_store, PRICES.get)
        inbox = Inbox()
        session = Session(CLIENT, client_store, inbox, observer=events.append)
        initiator = Initiator(session, "127.0.0.1", await server.start())
        initiator.start()
        try:
            await session.wait_logged_on(5)
            order = NewOrderSingle(
                cl_ord_id=cl_ord_id,
                account="FIRM-1",
                symbol="AAPL",
                side=Side.BUY,
                order_qty=Decimal(100),
                transact_time=NOW,
            )
            await session.send(order.to_fix())
            reports = [await inbox.next()]
            if reports[0].exec_type is ExecType.NEW:
                reports.append(await inbox.next())
        finally:
            await initiator.stop("end of day")
            await server.stop()
        numbers = client_store.load(), broker_store.load()
        client_store.close()
        broker_store.close()
        return reports, *numbers

    first, client_after_first, broker_after_first = asyncio.run(day("B-1"))
    again, client_after_again, broker_after_again = asyncio.run(day("B-1"))

    # Day one: the client sent Logon, the order, Logout (1-3) and the broker Logon, New,
    # the fill, Logout (1-4); each expects the other's next.
    assert client_after_first == (4, 5)
    assert broker_after_first == (5, 4)
    assert [r.exec_type for r in first] == [ExecType.NEW, ExecType.TRADE]
    # Day two goes on from there: three more each way, and nobody asked for a resend.
    assert client_after_again == (7, 8)
    assert broker_after_again == (8, 7)
    assert not [e for e in events if e.kind in (EventKind.RESEND_REQUESTED, EventKind.RESENT)]
    # The broker's book came back from its store: the same ClOrdID is not filled twice.
    (status,) = again
    assert (status.exec_type, status.cum_qty, status.order_id) == (
        ExecType.ORDER_STATUS,
        Decimal(100),
        first[0].order_id,
    )
