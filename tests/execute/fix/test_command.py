"""``poise broker`` as a real process: it reads its prices from the store, listens, fills
an order over FIX, rejects an unpriced one, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.execute.fix.broker_scene import CLIENT, Inbox
from tests.processes import finish, free_port, start_poise

from poise.execute.fix.app import ExecType, NewOrderSingle, Side
from poise.execute.fix.connection import Initiator, Session
from poise.execute.fix.store import FileStore
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade


def priced_store(folder: Path) -> str:
    """A store with Apple priced (twice: the latest counts) and Tesla not at all."""
    url = f"sqlite:///{folder / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    security = {
        "name": "",
        "kind": "stock",
        "asset_class": "us_equity",
        "currency": "USD",
        "trade_unit": "whole",
        "trade_step": Decimal(1),
    }
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.securities),
            [
                {**security, "security_id": "US0378331005", "symbol": "AAPL"},
                {**security, "security_id": "US88160R1014", "symbol": "TSLA"},
            ],
        )
        connection.execute(
            sa.insert(t.prices),
            [
                {
                    "security_id": "US0378331005",
                    "as_of": datetime(2026, 12, day, 21, tzinfo=UTC),
                    "source": "close",
                    "price": Decimal(price),
                }
                for day, price in ((3, "188.00"), (4, "191.25"))
            ],
        )
    engine.dispose()
    return url


def wait_listening(port: int, process: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert process.poll() is None, "poise broker exited"  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "poise broker did not start listening"
            time.sleep(0.1)


@pytest.mark.slow
def test_poise_broker_when_run_then_it_fills_at_the_store_price_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    url = priced_store(tmp_path)
    port = free_port()
    process = start_poise(
        "broker", "--port", str(port), "--state-dir", str(tmp_path / "state"),
        "--partial", "0.5", "--rest-delay", "0.05",
        database_url=url, cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_listening(port, process)

        async def client() -> list[tuple[str, str, ExecType, Decimal | None]]:
            store = FileStore(tmp_path / "client", CLIENT.key)
            inbox = Inbox()
            session = Session(CLIENT, store, inbox)
            initiator = Initiator(session, "127.0.0.1", port)
            initiator.start()
            try:
                await session.wait_logged_on(10)
                for cl_ord_id, symbol in (("B-1", "AAPL"), ("B-2", "TSLA")):
                    order = NewOrderSingle(
                        cl_ord_id=cl_ord_id,
                        account="FIRM-1",
                        symbol=symbol,
                        side=Side.BUY,
                        order_qty=Decimal(10),
                        transact_time=datetime.now(UTC),
                    )
                    await session.send(order.to_fix())
                reports = [await inbox.next(10) for _ in range(4)]
            finally:
                await initiator.stop("done")
                store.close()
            return sorted((r.cl_ord_id, r.exec_type.value, r.exec_type, r.last_px) for r in reports)

        reports = asyncio.run(client())
    finally:
        process.send_signal(signal.SIGTERM)
        run = finish(process, timeout=30)

    assert [(cl_ord_id, kind, px) for cl_ord_id, _, kind, px in reports] == [
        ("B-1", ExecType.NEW, None),
        ("B-1", ExecType.TRADE, Decimal("191.25")),
        ("B-1", ExecType.TRADE, Decimal("191.25")),
        ("B-2", ExecType.REJECTED, None),
    ]
    assert run.code == 0, run.stderr
    assert f"poise broker listening on 127.0.0.1:{port} as BROKER for POISE" in run.stderr
    assert (tmp_path / "state" / "FIX.4.4-BROKER-POISE.log").exists()
