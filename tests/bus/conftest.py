"""Fixtures of the bus tests: each behavioural test runs on both buses.

NATS runs use the server at ``POISE_TEST_NATS_URL`` (default 127.0.0.1:4222), each in
streams and subjects of its own that are deleted afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tests.bus.helpers import TEST_POLICY, BusMaker, NatsSpace, require_nats

from poise.bus.inprocess import InProcessBus
from poise.bus.port import Bus


@pytest.fixture
def nats_space() -> Iterator[NatsSpace]:
    require_nats()
    space = NatsSpace()
    try:
        yield space
    finally:
        asyncio.run(space.delete())


@pytest.fixture(params=["inprocess", "nats"])
def make_bus(request: pytest.FixtureRequest) -> BusMaker:
    """Opens the bus under test inside the running event loop."""
    if request.param == "inprocess":

        async def open_inprocess() -> Bus:
            return InProcessBus(policy=TEST_POLICY)

        return open_inprocess
    space: NatsSpace = request.getfixturevalue("nats_space")
    return space.connect
