"""What only the NATS bus has to show: its streams, its server, its ack wait."""

from __future__ import annotations

import asyncio
import socket

import pytest
from nats.js.api import StorageType
from tests.bus.helpers import NatsSpace, wait_until

from poise.bus import Event, request_subject
from poise.bus.nats import NatsBus, stream_name
from poise.bus.port import BusError


def test_connect_when_the_streams_exist_then_they_are_updated_in_place(
    nats_space: NatsSpace,
) -> None:
    async def scenario() -> list[tuple[str, list[str] | None, StorageType | None, float]]:
        first = await nats_space.connect(duplicate_window=60.0)
        await first.publish(Event(request_subject("A1"), "rq-1", {}))
        await first.close()
        again = await nats_space.connect()  # the default window: two minutes
        try:
            seen = []
            for family in ("poise.prices", "poise.requests"):
                info = await again._js.stream_info(stream_name(nats_space.stream_prefix, family))
                config = info.config
                assert config.name is not None
                seen.append((config.name, config.subjects, config.storage, config.duplicate_window))
            kept = await again._js.stream_info(
                stream_name(nats_space.stream_prefix, "poise.requests")
            )
            assert kept.state.messages == 1, "updating a stream must keep its events"
            return seen
        finally:
            await again.close()

    prefix, namespace = nats_space.stream_prefix, nats_space.namespace
    assert asyncio.run(scenario()) == [
        (f"{prefix}_PRICES", [f"{namespace}.poise.prices.>"], StorageType.FILE, 120.0),
        (f"{prefix}_REQUESTS", [f"{namespace}.poise.requests.>"], StorageType.FILE, 120.0),
    ]


def test_connect_when_nothing_listens_at_the_url_then_bus_error_within_the_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connecting = NatsBus.connect(f"nats://127.0.0.1:{port}", connect_timeout=0.5)

    with pytest.raises(BusError, match="cannot reach NATS"):
        # A bound far above the timeout, so that retrying for ever fails, not hangs.
        asyncio.run(asyncio.wait_for(connecting, timeout=30))


def test_handler_when_it_runs_longer_than_the_ack_wait_then_the_event_is_not_redelivered(
    nats_space: NatsSpace,
) -> None:
    async def scenario() -> list[str]:
        bus = await nats_space.connect()  # ack_wait is one second
        delivered: list[str] = []

        async def slow(event: Event) -> None:
            delivered.append(event.event_id)
            if event.event_id == "rq-slow":
                await asyncio.sleep(1.8)

        try:
            # a second subscription of the durable stands ready to take a redelivery
            subscriptions = [
                await bus.subscribe("poise.requests.>", durable="slow", handler=slow)
                for _ in range(2)
            ]
            await bus.publish(Event(request_subject("A1"), "rq-slow", {}))
            await bus.publish(Event(request_subject("A1"), "rq-next", {}))
            await wait_until(lambda: "rq-next" in delivered)
            await asyncio.sleep(1.2)  # past another ack wait: a redelivery would show
            for subscription in subscriptions:
                await subscription.stop()
            return delivered
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == ["rq-slow", "rq-next"]
