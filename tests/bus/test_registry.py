"""Buses are chosen by name from one explicit table."""

from __future__ import annotations

import asyncio

import pytest

from poise.bus import open_bus
from poise.bus.inprocess import InProcessBus
from poise.bus.nats import NatsBus
from poise.bus.port import Bus
from poise.domain.errors import ConfigError


def test_open_bus_when_inprocess_then_an_inprocess_bus_even_with_a_url() -> None:
    async def scenario() -> Bus:
        bus = await open_bus("inprocess", url="nats://ignored:4222")
        await bus.close()
        return bus

    assert isinstance(asyncio.run(scenario()), InProcessBus)


def test_open_bus_when_the_name_is_unknown_then_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="inprocess, nats"):
        asyncio.run(open_bus("kafka"))


def test_open_bus_when_nats_has_no_url_then_config_error() -> None:
    with pytest.raises(ConfigError, match="URL"):
        asyncio.run(open_bus("nats"))


def test_open_bus_when_nats_has_a_url_then_it_connects_there_with_the_default_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    async def connect(url: str) -> Bus:
        calls.append(url)
        return InProcessBus()

    monkeypatch.setattr(NatsBus, "connect", connect)

    asyncio.run(open_bus("nats", url="nats://queue.example:4222"))

    assert calls == ["nats://queue.example:4222"]
