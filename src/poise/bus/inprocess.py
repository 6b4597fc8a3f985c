"""The embedded bus: asyncio queues in one process, with the same semantics as NATS.

Each family is a stream: an append-only log of events numbered from 1, trimmed to its
``max_messages`` newest (the oldest go first, as in a NATS stream with a message
limit). A durable consumer is a position in that log and lives as long as the bus
object, so a subscription stopped and started again under its name resumes where it
stopped; nothing survives the process — that is what the NATS bus is for.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from poise.bus.delivery import DEFAULT_POLICY, DeliveryPolicy, Outcome, deliver
from poise.bus.events import FAMILIES, Event, check_durable, family_of, subject_matches
from poise.bus.port import BusError, Handler, Subscription
from poise.domain.errors import ConfigError, ValidationError

__all__ = ["InProcessBus"]

log = logging.getLogger("poise.bus")


@dataclass(eq=False)
class _Stream:
    """One family's log, and the ids published to it within the duplicate window."""

    family: str
    messages: dict[int, Event] = field(default_factory=dict)
    first_seq: int = 1
    seen: dict[str, float] = field(default_factory=dict)  # event_id → first published
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.messages) - 1


@dataclass(eq=False)
class _Consumer:
    """A durable consumer: its subject pattern and the next event it has not acked."""

    stream: _Stream
    pattern: str
    next_seq: int = 1
    deliveries: int = 0  # of the event at next_seq, as NATS counts them
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def next_match(self) -> tuple[int, Event] | None:
        """The oldest unacknowledged event this consumer wants, skipping the others."""
        stream = self.stream
        if self.next_seq < stream.first_seq:
            self.next_seq, self.deliveries = stream.first_seq, 0
        while self.next_seq <= stream.last_seq:
            event = stream.messages[self.next_seq]
            if subject_matches(self.pattern, event.subject):
                return self.next_seq, event
            self.next_seq += 1
        return None


class _InProcessSubscription:
    """A task handing one event at a time from a consumer to a handler."""

    def __init__(
        self,
        consumer: _Consumer,
        *,
        durable: str,
        handler: Handler,
        policy: DeliveryPolicy,
        on_stop: Callable[[_InProcessSubscription], None],
    ) -> None:
        self._consumer = consumer
        self._durable = durable
        self._handler = handler
        self._policy = policy
        self._on_stop = on_stop
        self._busy = False
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"poise.bus {durable}")

    async def _run(self) -> None:
        consumer = self._consumer
        changed = consumer.stream.changed
        while not self._stopping:
            async with changed:
                await changed.wait_for(lambda: consumer.next_match() is not None)
            async with consumer.lock:
                found = consumer.next_match()
                if found is None:  # another subscription of this durable took it
                    continue
                seq, event = found
                consumer.deliveries += 1
                self._busy = True
                try:
                    outcome = await deliver(
                        self._handler,
                        event,
                        attempt=consumer.deliveries,
                        durable=self._durable,
                        policy=self._policy,
                    )
                finally:
                    self._busy = False
                if outcome is Outcome.RETRY:
                    if self._stopping:
                        return
                    await asyncio.sleep(self._policy.retry_delay)
                    continue
                consumer.next_seq, consumer.deliveries = seq + 1, 0  # acknowledged

    async def stop(self) -> None:
        if not self._task.done():
            self._stopping = True
            if not self._busy:
                self._task.cancel()
            await asyncio.wait({self._task})
        if not self._task.cancelled() and (error := self._task.exception()) is not None:
            log.error("subscription %s had failed", self._durable, exc_info=error)
        self._on_stop(self)


class _Listener:
    def __init__(self, forget: Callable[[], object]) -> None:
        self._forget = forget

    async def stop(self) -> None:
        self._forget()


class InProcessBus:
    """An event bus inside one asyncio program: the embedded default, and for tests.

    ``duplicate_window`` (seconds) and ``max_messages`` (per family) play the parts of
    the NATS stream's duplicate window and message limit; ``clock`` is monotonic time.
    """

    def __init__(
        self,
        *,
        policy: DeliveryPolicy = DEFAULT_POLICY,
        duplicate_window: float = 120.0,
        max_messages: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if duplicate_window < 0 or max_messages < 1:
            raise ValidationError("duplicate_window must be >= 0 and max_messages >= 1")
        self._policy = policy
        self._duplicate_window = duplicate_window
        self._max_messages = max_messages
        self._clock = clock
        self._streams = {family: _Stream(family) for family in FAMILIES}
        self._consumers: dict[tuple[str, str], _Consumer] = {}
        self._subscriptions: set[_InProcessSubscription] = set()
        self._listeners: dict[int, tuple[str, Handler]] = {}
        self._listener_ids = itertools.count()
        self._closed = False

    async def publish(self, event: Event) -> None:
        if self._closed:
            raise BusError("the in-process bus is closed")
        stream = self._streams[family_of(event.subject)]
        now = self._clock()
        while stream.seen and next(iter(stream.seen.values())) <= now - self._duplicate_window:
            del stream.seen[next(iter(stream.seen))]
        if event.event_id in stream.seen:
            log.debug("dropped a re-publish of %s on %s", event.event_id, event.subject)
            return
        stream.seen[event.event_id] = now
        stream.messages[stream.last_seq + 1] = event
        while len(stream.messages) > self._max_messages:
            del stream.messages[stream.first_seq]
            stream.first_seq += 1
        async with stream.changed:
            stream.changed.notify_all()
        for pattern, handler in list(self._listeners.values()):
            if subject_matches(pattern, event.subject):
                try:
                    await handler(event)
                except Exception:  # a listener keeps nothing: log it and go on
                    log.exception("a listener to %s failed on %s", pattern, event.subject)

    async def listen(self, subject: str, *, handler: Handler) -> Subscription:
        if self._closed:
            raise BusError("the in-process bus is closed")
        family_of(subject, pattern=True)
        key = next(self._listener_ids)
        self._listeners[key] = (subject, handler)
        return _Listener(lambda: self._listeners.pop(key, None))

    async def subscribe(self, subject: str, *, durable: str, handler: Handler) -> Subscription:
        if self._closed:
            raise BusError("the in-process bus is closed")
        family = family_of(subject, pattern=True)
        check_durable(durable)
        stream = self._streams[family]
        consumer = self._consumers.get((family, durable))
        if consumer is None:
            consumer = _Consumer(stream, subject, next_seq=stream.first_seq)
            self._consumers[family, durable] = consumer
        elif consumer.pattern != subject:
            raise ConfigError(
                f"durable {durable!r} already follows {consumer.pattern!r}, not {subject!r}"
            )
        subscription = _InProcessSubscription(
            consumer,
            durable=durable,
            handler=handler,
            policy=self._policy,
            on_stop=self._subscriptions.discard,
        )
        self._subscriptions.add(subscription)
        return subscription

    async def close(self) -> None:
        self._closed = True
        self._listeners.clear()
        for subscription in list(self._subscriptions):
            await subscription.stop()
