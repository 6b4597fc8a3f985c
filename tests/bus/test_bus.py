"""The bus's promises, kept by both buses: each test runs on the in-process bus and on NATS.

A recording handler stands for a stage; a test publishes rebalance requests and price
updates and reads what reached the handler, in the order it arrived.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.bus.helpers import TEST_POLICY, BusMaker, wait_until

from poise.bus import Event, price_subject, request_subject, unescape_token
from poise.bus.port import Bus, BusError
from poise.domain.errors import ConfigError, ValidationError


def request(number: int, account: str = "A1") -> Event:
    return Event(request_subject(account), f"rq-{number:04d}", {"account": account, "n": number})


class Recorder:
    """A handler that remembers every delivery and can be told to fail some."""

    def __init__(self, *, failures: dict[str, int] | None = None) -> None:
        self.deliveries: list[Event] = []
        self.failures = dict(failures or {})  # event_id → deliveries to fail

    @property
    def ids(self) -> list[str]:
        return [event.event_id for event in self.deliveries]

    async def __call__(self, event: Event) -> None:
        self.deliveries.append(event)
        if self.failures.get(event.event_id, 0) > 0:
            self.failures[event.event_id] -= 1
            raise RuntimeError(f"the store is busy; {event.event_id} must wait")


async def only_new_events_after_resume(bus: Bus, subject: str, durable: str) -> list[str]:
    """Subscribe ``durable`` again; what arrives up to a fresh marker event."""
    marker = Event(request_subject("marker"), "marker", {})
    await bus.publish(marker)
    again = Recorder()
    subscription = await bus.subscribe(subject, durable=durable, handler=again)
    await wait_until(lambda: "marker" in again.ids)
    await subscription.stop()
    return again.ids


def test_subscribe_when_events_are_published_then_each_arrives_once_in_order(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> list[str]:
        bus = await make_bus()
        try:
            for number in range(40):  # some wait in the stream before anyone listens …
                await bus.publish(request(number, account=f"A{number % 3}"))
            recorder = Recorder()
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=recorder
            )
            for number in range(40, 80):  # … and some arrive while it listens
                await bus.publish(request(number, account=f"A{number % 3}"))
            await wait_until(lambda: len(recorder.deliveries) >= 80)
            await asyncio.sleep(0.1)  # room for a stray duplicate to show itself
            await subscription.stop()
            return recorder.ids
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == [f"rq-{number:04d}" for number in range(80)]


def test_handler_when_it_raises_on_first_delivery_then_the_event_comes_again_and_is_acked(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            recorder = Recorder(failures={"rq-0001": 1})
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=recorder
            )
            for number in range(4):
                await bus.publish(request(number))
            await wait_until(lambda: len(recorder.deliveries) >= 5)
            await subscription.stop()
            return recorder.ids, await only_new_events_after_resume(
                bus, "poise.requests.>", "optimizer"
            )
        finally:
            await bus.close()

    delivered, after_resume = asyncio.run(scenario())
    # the failed request holds back the ones behind it: order survives the retry
    assert delivered == ["rq-0000", "rq-0001", "rq-0001", "rq-0002", "rq-0003"]
    assert after_resume == ["marker"]


def test_handler_when_it_always_raises_then_the_event_is_terminated_and_the_next_arrives(
    make_bus: BusMaker, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            recorder = Recorder(failures={"rq-0000": 99})
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=recorder
            )
            await bus.publish(request(0))
            await bus.publish(request(1))
            await wait_until(lambda: "rq-0001" in recorder.ids)
            await subscription.stop()
            return recorder.ids, await only_new_events_after_resume(
                bus, "poise.requests.>", "optimizer"
            )
        finally:
            await bus.close()

    with caplog.at_level(logging.WARNING, logger="poise.bus"):
        delivered, after_resume = asyncio.run(scenario())

    assert delivered == ["rq-0000"] * TEST_POLICY.max_deliver + ["rq-0001"]
    assert after_resume == ["marker"]
    terminated = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(terminated) == 1
    assert "terminating rq-0000" in terminated[0].getMessage()
    assert terminated[0].exc_info is not None


def test_subscribe_when_stopped_and_resumed_under_the_same_durable_then_nothing_acked_comes_again(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            first = Recorder()
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=first
            )
            for number in range(10):
                await bus.publish(request(number))
            await wait_until(lambda: len(first.deliveries) >= 10)
            await subscription.stop()
            for number in range(10, 15):  # published while nobody listens
                await bus.publish(request(number))
            second = Recorder()
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=second
            )
            await wait_until(lambda: len(second.deliveries) >= 5)
            await asyncio.sleep(0.1)
            await subscription.stop()
            return first.ids, second.ids
        finally:
            await bus.close()

    first, second = asyncio.run(scenario())
    assert first == [f"rq-{number:04d}" for number in range(10)]
    assert second == [f"rq-{number:04d}" for number in range(10, 15)]


def test_publish_when_an_event_id_is_published_again_then_the_copy_is_dropped(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> list[Event]:
        bus = await make_bus()
        try:
            recorder = Recorder()
            await bus.publish(Event(price_subject("MSFT"), "px-1", {"close": "410.12"}))
            await bus.publish(Event(price_subject("MSFT"), "px-1", {"close": "999.99"}))
            await bus.publish(Event(price_subject("MSFT"), "px-2", {"close": "411.00"}))
            subscription = await bus.subscribe(
                "poise.prices.>", durable="monitor", handler=recorder
            )
            await wait_until(lambda: len(recorder.deliveries) >= 2)
            await asyncio.sleep(0.1)
            await subscription.stop()
            return recorder.deliveries
        finally:
            await bus.close()

    delivered = asyncio.run(scenario())
    assert [(event.event_id, event.payload["close"]) for event in delivered] == [
        ("px-1", "410.12"),
        ("px-2", "411.00"),
    ]


def test_subscribe_when_the_subject_is_a_wildcard_then_accounts_and_households_arrive(
    make_bus: BusMaker,
) -> None:
    ids = ["A1", "H.1", "household 7/β"]

    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            everyone, only_a1 = Recorder(), Recorder()
            subscriptions = [
                await bus.subscribe("poise.requests.>", durable="all", handler=everyone),
                await bus.subscribe("poise.requests.A1", durable="a1", handler=only_a1),
            ]
            await bus.publish(Event(price_subject("H.1"), "px-1", {"close": "1"}))
            for number, account in enumerate(ids):
                await bus.publish(request(number, account=account))
            await wait_until(lambda: len(everyone.deliveries) >= 3 and only_a1.deliveries != [])
            await asyncio.sleep(0.1)
            for subscription in subscriptions:
                await subscription.stop()
            return [e.subject for e in everyone.deliveries], [e.subject for e in only_a1.deliveries]
        finally:
            await bus.close()

    every_subject, a1_subjects = asyncio.run(scenario())
    assert every_subject == [
        "poise.requests.A1",
        "poise.requests.H%2E1",
        "poise.requests.household%207%2F%CE%B2",
    ]
    assert [unescape_token(subject.split(".")[-1]) for subject in every_subject] == ids
    assert a1_subjects == ["poise.requests.A1"]


def test_subscribe_when_two_durables_follow_one_subject_then_each_gets_every_event(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            optimizer, auditor = Recorder(), Recorder()
            subscriptions = [
                await bus.subscribe("poise.requests.>", durable="optimizer", handler=optimizer),
                await bus.subscribe("poise.requests.>", durable="auditor", handler=auditor),
            ]
            for number in range(5):
                await bus.publish(request(number))
            await wait_until(lambda: len(optimizer.ids) >= 5 and len(auditor.ids) >= 5)
            for subscription in subscriptions:
                await subscription.stop()
            return optimizer.ids, auditor.ids
        finally:
            await bus.close()

    optimizer, auditor = asyncio.run(scenario())
    assert optimizer == auditor == [f"rq-{number:04d}" for number in range(5)]


def test_subscribe_when_two_subscriptions_share_a_durable_then_they_share_its_events(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> list[str]:
        bus = await make_bus()
        try:
            shared = Recorder()
            subscriptions = [
                await bus.subscribe("poise.requests.>", durable="optimizer", handler=shared)
                for _ in range(2)
            ]
            for number in range(20):
                await bus.publish(request(number))
            await wait_until(lambda: len(shared.ids) >= 20)
            await asyncio.sleep(0.1)
            for subscription in subscriptions:
                await subscription.stop()
            return shared.ids
        finally:
            await bus.close()

    assert asyncio.run(scenario()) == [f"rq-{number:04d}" for number in range(20)]


def test_subscribe_when_a_durable_is_reused_for_another_subject_then_config_error(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> None:
        bus = await make_bus()
        try:
            subscription = await bus.subscribe(
                "poise.requests.>", durable="optimizer", handler=Recorder()
            )
            await subscription.stop()
            await bus.subscribe("poise.requests.A1", durable="optimizer", handler=Recorder())
        finally:
            await bus.close()

    with pytest.raises(ConfigError, match="optimizer"):
        asyncio.run(scenario())


@pytest.mark.parametrize(
    ("subject", "durable"),
    [
        ("poise.>", "optimizer"),  # spans two streams
        ("poise.trades.>", "optimizer"),  # no such family
        ("poise.requests", "optimizer"),  # the family, not a subject in it
        ("poise.requests.>", "the optimizer"),
        ("poise.requests.>", "optimizer.1"),
    ],
)
def test_subscribe_when_subject_or_durable_is_malformed_then_validation_error(
    make_bus: BusMaker, subject: str, durable: str
) -> None:
    async def scenario() -> None:
        bus = await make_bus()
        try:
            await bus.subscribe(subject, durable=durable, handler=Recorder())
        finally:
            await bus.close()

    with pytest.raises(ValidationError):
        asyncio.run(scenario())


def test_publish_when_the_bus_is_closed_then_bus_error(make_bus: BusMaker) -> None:
    async def scenario() -> None:
        bus = await make_bus()
        await bus.close()
        await bus.publish(request(0))

    with pytest.raises(BusError):
        asyncio.run(scenario())


def test_listen_when_events_are_published_then_a_listener_hears_those_after_it_began(
    make_bus: BusMaker,
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = await make_bus()
        try:
            await bus.publish(request(0))  # before anyone listens: not heard
            heard, broken = Recorder(), Recorder(failures={"rq-0002": 1})
            listener = await bus.listen("poise.requests.>", handler=heard)
            failing = await bus.listen("poise.requests.A1", handler=broken)
            await bus.publish(request(1, account="A1"))
            await bus.publish(request(2, account="A1"))  # the second listener fails on it
            await bus.publish(request(2, account="A1"))  # a duplicate: dropped, not heard
            await bus.publish(request(3, account="H.9"))
            await bus.publish(Event(price_subject("AAPL"), "px-1", {"price": "1"}))
            await wait_until(lambda: len(heard.ids) == 3 and len(broken.ids) == 2)
            await listener.stop()
            await bus.publish(request(4, account="A1"))
            await wait_until(lambda: len(broken.ids) == 3)
            await failing.stop()
            await asyncio.sleep(0.2)
            return heard.ids, broken.ids
        finally:
            await bus.close()

    heard, broken = asyncio.run(scenario())
    assert heard == ["rq-0001", "rq-0002", "rq-0003"]
    assert broken == ["rq-0001", "rq-0002", "rq-0004"]  # it went on after failing
