"""What the bus tests share: the NATS server they use, a test policy, bounded waits."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from poise.bus.delivery import DeliveryPolicy
from poise.bus.nats import NatsBus
from poise.bus.port import Bus

NATS_URL = os.environ.get("POISE_TEST_NATS_URL", "nats://127.0.0.1:4222")

# Quick enough for tests: a dead consumer's message comes back after a second, a
# failing handler is retried after 50 ms and given up on at the third delivery.
TEST_POLICY = DeliveryPolicy(ack_wait=1.0, max_deliver=3, retry_delay=0.05)
POLL_INTERVAL = 0.2

BusMaker = Callable[[], Awaitable[Bus]]
"""Opens a bus inside the running event loop."""

_nats_ok: bool | None = None


def nats_available() -> bool:
    global _nats_ok  # noqa: PLW0603 - probed once per run
    if _nats_ok is None:
        parts = urlsplit(NATS_URL)
        try:
            with socket.create_connection((parts.hostname, parts.port or 4222), timeout=2):
                _nats_ok = True
        except OSError:
            _nats_ok = False
    return _nats_ok


def require_nats() -> None:
    """Skip without a NATS server — except under CI, which must prove both buses."""
    if not nats_available():
        if os.environ.get("CI"):
            pytest.fail(f"NATS is not reachable at {NATS_URL}")
        pytest.skip(f"NATS is not reachable at {NATS_URL}")


@dataclass(frozen=True)
class NatsSpace:
    """Streams and subjects of one test's own, on the shared server."""

    url: str = NATS_URL
    stream_prefix: str = field(default_factory=lambda: f"T{uuid.uuid4().hex[:12].upper()}")
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:12]}")

    async def connect(self, **options: Any) -> NatsBus:
        settings: dict[str, Any] = {"policy": TEST_POLICY, "poll_interval": POLL_INTERVAL}
        return await NatsBus.connect(
            self.url,
            stream_prefix=self.stream_prefix,
            namespace=self.namespace,
            **(settings | options),
        )

    async def delete(self) -> None:
        bus = await self.connect()
        try:
            await bus.delete_streams()
        finally:
            await bus.close()


async def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout}s")
        await asyncio.sleep(0.01)
