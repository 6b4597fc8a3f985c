"""The simulated broker as the conformance tests meet it: started for real on an
ephemeral port, its store in the test's folder, the prices a table."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.execute.fix.rawclient import WAIT

from poise.execute.broker import Behaviour, BrokerServer
from poise.execute.fix.app import parse_application
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.store import FileStore

NOW = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
PRICES = {"AAPL": Decimal("190.50"), "MSFT": Decimal("410.25")}
BROKER = SessionConfig(
    sender_comp_id="BROKER",
    target_comp_id="POISE",
    role=Role.ACCEPTOR,
    logon_timeout=2,
    logout_timeout=1,
)
CLIENT = SessionConfig(
    sender_comp_id="POISE",
    target_comp_id="BROKER",
    role=Role.INITIATOR,
    heartbeat_interval=30,
    logout_timeout=1,
    reconnect_interval=0.2,
)

Steps = Callable[[BrokerServer], Awaitable[None]]


def with_broker(
    folder: Path,
    steps: Steps,
    *,
    behaviour: Behaviour | None = None,
    prices: dict[str, Decimal] | None = None,
) -> None:
    """Run ``steps`` against a broker listening on a free port, then stop it."""

    async def main() -> None:
        store = FileStore(folder / "broker", BROKER.key)
        try:
            server = BrokerServer(BROKER, store, (prices or PRICES).get, behaviour)
            await server.start()
            try:
                await steps(server)
                if server.session.connected and not server.session.logged_on:
                    await server.session.wait_disconnected(WAIT)
            finally:
                await server.stop()
        finally:
            store.close()

    asyncio.run(main())


class Inbox:
    """A client application that keeps what the broker sends, typed, in order."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.possdups: list[bool] = []
        self.logons = 0
        self.logouts: list[str] = []

    async def on_logon(self) -> None:
        self.logons += 1

    async def on_logout(self, reason: str) -> None:
        self.logouts.append(reason)

    async def on_message(self, message: Any, *, possdup: bool) -> None:
        self.possdups.append(possdup)
        await self.messages.put(parse_application(message))

    async def next(self, wait: float = WAIT) -> Any:
        return await asyncio.wait_for(self.messages.get(), wait)

    def pending(self) -> list[Any]:
        found = []
        while not self.messages.empty():
            found.append(self.messages.get_nowait())
        return found
