"""The bus on NATS JetStream, for stages running as separate processes or machines.

:meth:`NatsBus.connect` creates (or brings up to date) one stream per family —
``<prefix>_PRICES`` on ``poise.prices.>`` and ``<prefix>_REQUESTS`` on
``poise.requests.>`` — with file storage and a duplicate window. Events are published
with their ``event_id`` as the ``Nats-Msg-Id`` header, so JetStream itself drops a
re-publish within the window.

A subscription is a durable *pull* consumer with explicit acks, at most one
unacknowledged message (``max_ack_pending=1``: order is kept, across retries too) and
JetStream's own ``max_deliver``; a handler that raises gets a ``NAK`` with
``retry_delay``; one that has used up its deliveries gets a ``TERM``. While a handler
runs the message is kept alive with ``+WPI`` (in progress) every half ``ack_wait``, so
only a consumer that died sees its message delivered again. (If it dies during the
last allowed delivery, JetStream drops the message itself, with a ``MAX_DELIVERIES``
advisory on ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<durable>``.)

``namespace`` puts every subject under one more leading token on the wire (events and
patterns keep their ``poise.…`` names); tests use it, with a unique ``stream_prefix``,
to share one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Callable

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    StorageType,
    StreamConfig,
)

from poise.bus.delivery import DEFAULT_POLICY, DeliveryPolicy, Outcome, deliver
from poise.bus.events import FAMILIES, Event, check_durable, family_of
from poise.bus.port import BusError, Handler, Subscription
from poise.domain.errors import ConfigError, ValidationError

__all__ = ["NatsBus", "stream_name"]

log = logging.getLogger("poise.bus")

_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MSG_ID = "Nats-Msg-Id"


def stream_name(prefix: str, family: str) -> str:
    """The stream holding ``family``: ``POISE_PRICES``, ``POISE_REQUESTS``."""
    return f"{prefix}_{family.rsplit('.', 1)[-1].upper()}"


class _NatsSubscription:
    """A task fetching one message at a time from a durable pull consumer."""

    def __init__(
        self,
        pull: JetStreamContext.PullSubscription,
        *,
        durable: str,
        handler: Handler,
        policy: DeliveryPolicy,
        poll_interval: float,
        on_stop: Callable[[_NatsSubscription], None],
    ) -> None:
        self._pull = pull
        self._durable = durable
        self._handler = handler
        self._policy = policy
        self._poll_interval = poll_interval
        self._on_stop = on_stop
        self._busy = False
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"poise.bus {durable}")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                messages = await self._pull.fetch(1, timeout=self._poll_interval)
            except nats.errors.TimeoutError:
                continue
            except nats.errors.ConnectionClosedError:
                log.error("subscription %s ends: its connection is closed", self._durable)
                return
            except nats.errors.Error as error:  # a reconnect, a server restart, …
                log.warning("subscription %s could not fetch: %r", self._durable, error)
                await asyncio.sleep(self._poll_interval)
                continue
            for message in messages:
                self._busy = True
                try:
                    await self._handle(message)
                except Exception:  # not the handler's (deliver() keeps those): the bus's own
                    log.exception("subscription %s could not settle a message", self._durable)
                finally:
                    self._busy = False

    async def _handle(self, message: Msg) -> None:
        try:
            event = Event.from_bytes(message.data)
        except ValidationError:
            log.exception("terminating an unreadable message on %s", message.subject)
            await message.term()
            return
        keep_alive = asyncio.create_task(self._keep_alive(message))
        try:
            outcome = await deliver(
                self._handler,
                event,
                attempt=message.metadata.num_delivered,
                durable=self._durable,
                policy=self._policy,
            )
        finally:
            keep_alive.cancel()
            await asyncio.wait({keep_alive})
        try:
            if outcome is Outcome.ACK:
                await message.ack_sync(timeout=self._policy.ack_wait)
            elif outcome is Outcome.RETRY:
                await message.nak(delay=self._policy.retry_delay)
            else:
                await message.term()
        except nats.errors.Error as error:  # the server will redeliver after ack_wait
            log.warning("could not settle %s (%s): %r", event.event_id, outcome.value, error)

    async def _keep_alive(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(self._policy.ack_wait / 2)
            with contextlib.suppress(nats.errors.Error):
                await message.in_progress()

    async def stop(self) -> None:
        if not self._task.done():
            self._stopping = True
            if not self._busy:
                self._task.cancel()
            await asyncio.wait({self._task})
        if not self._task.cancelled() and (error := self._task.exception()) is not None:
            log.error("subscription %s had failed", self._durable, exc_info=error)
        with contextlib.suppress(nats.errors.Error):
            await self._pull.unsubscribe()
        self._on_stop(self)


LISTENER_MEMORY = 10_000  # event ids a listener remembers, to hear each once


class _NatsListener:
    """A core NATS subscription: what is published from now on, at most once."""

    def __init__(self, core: CoreSubscription) -> None:
        self._core = core

    async def stop(self) -> None:
        with contextlib.suppress(nats.errors.Error):
            await self._core.unsubscribe()


class NatsBus:
    """An event bus on a NATS JetStream server; make one with :meth:`connect`."""

    def __init__(
        self,
        client: Client,
        *,
        stream_prefix: str,
        namespace: str,
        policy: DeliveryPolicy,
        poll_interval: float,
    ) -> None:
        self._client = client
        self._js = client.jetstream()
        self._stream_prefix = stream_prefix
        self._namespace = namespace
        self._policy = policy
        self._poll_interval = poll_interval
        self._subscriptions: set[_NatsSubscription] = set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        stream_prefix: str = "POISE",
        namespace: str = "",
        policy: DeliveryPolicy = DEFAULT_POLICY,
        duplicate_window: float = 120.0,
        poll_interval: float = 1.0,
        connect_timeout: float = 5.0,
    ) -> NatsBus:
        """Connect to ``url`` and make sure the streams exist with this configuration.

        Safe to call from many processes at once: creating a stream that exists with
        the same configuration is a no-op, and a changed one is updated in place (a
        change JetStream refuses, such as the storage type, is a ``ConfigError``).
        ``poll_interval`` bounds how long one fetch waits for a message;
        ``connect_timeout`` how long to keep trying to reach the server at first
        (once connected, the client reconnects for as long as it takes).
        """
        if not _NAME.fullmatch(stream_prefix):
            raise ValidationError(f"bad stream prefix {stream_prefix!r}: use [A-Za-z0-9_-]")
        if namespace and not _NAME.fullmatch(namespace):
            raise ValidationError(f"bad namespace {namespace!r}: use [A-Za-z0-9_-]")
        if duplicate_window <= 0 or poll_interval <= 0:
            raise ValidationError("duplicate_window and poll_interval must be positive")
        client = await _connect(url, timeout=connect_timeout)
        bus = cls(
            client,
            stream_prefix=stream_prefix,
            namespace=namespace,
            policy=policy,
            poll_interval=poll_interval,
        )
        try:
            for family in FAMILIES:
                await bus._ensure_stream(family, duplicate_window=duplicate_window)
        except BaseException:
            await client.close()
            raise
        return bus

    def _wire(self, subject: str) -> str:
        return f"{self._namespace}.{subject}" if self._namespace else subject

    async def _ensure_stream(self, family: str, *, duplicate_window: float) -> None:
        config = StreamConfig(
            name=stream_name(self._stream_prefix, family),
            subjects=[self._wire(f"{family}.>")],
            storage=StorageType.FILE,
            duplicate_window=duplicate_window,
        )
        try:
            try:
                await self._js.update_stream(config)
            except nats.js.errors.NotFoundError:
                await self._js.add_stream(config)
        except nats.js.errors.APIError as error:
            raise ConfigError(f"cannot set up stream {config.name}: {error.description}") from error
        except nats.errors.Error as error:
            raise BusError(f"cannot set up stream {config.name}: {error!r}") from error

    async def publish(self, event: Event) -> None:
        family = family_of(event.subject)
        try:
            ack = await self._js.publish(
                self._wire(event.subject),
                event.to_bytes(),
                stream=stream_name(self._stream_prefix, family),
                headers={_MSG_ID: event.event_id},
            )
        except nats.errors.Error as error:
            raise BusError(
                f"cannot publish {event.event_id} on {event.subject}: {error!r}"
            ) from error
        if ack.duplicate:
            log.debug("dropped a re-publish of %s on %s", event.event_id, event.subject)

    async def listen(self, subject: str, *, handler: Handler) -> Subscription:
        family_of(subject, pattern=True)
        # A re-publish JetStream drops still reaches core subscribers: drop it here.
        recent: OrderedDict[str, None] = OrderedDict()

        async def heard(message: Msg) -> None:
            try:
                event = Event.from_bytes(message.data)
                if event.event_id in recent:
                    return
                recent[event.event_id] = None
                if len(recent) > LISTENER_MEMORY:
                    recent.popitem(last=False)
                await handler(event)
            except Exception:  # a listener keeps nothing: log it and go on
                log.exception("a listener to %s failed on %s", subject, message.subject)

        try:
            core = await self._client.subscribe(self._wire(subject), cb=heard)
        except nats.errors.Error as error:
            raise BusError(f"cannot listen to {subject!r}: {error!r}") from error
        return _NatsListener(core)

    async def subscribe(self, subject: str, *, durable: str, handler: Handler) -> Subscription:
        family = family_of(subject, pattern=True)
        check_durable(durable)
        stream = stream_name(self._stream_prefix, family)
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=self._wire(subject),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._policy.ack_wait,
            max_deliver=self._policy.max_deliver,
            max_ack_pending=1,
        )
        try:
            await self._check_durable_follows(stream, durable, subject)
            await self._js.add_consumer(stream, config)
            pull = await self._js.pull_subscribe_bind(durable=durable, stream=stream)
        except nats.js.errors.APIError as error:
            raise ConfigError(
                f"cannot subscribe {durable!r} to {subject!r}: {error.description}"
            ) from error
        except nats.errors.Error as error:
            raise BusError(f"cannot subscribe {durable!r} to {subject!r}: {error!r}") from error
        subscription = _NatsSubscription(
            pull,
            durable=durable,
            handler=handler,
            policy=self._policy,
            poll_interval=self._poll_interval,
            on_stop=self._subscriptions.discard,
        )
        self._subscriptions.add(subscription)
        return subscription

    async def _check_durable_follows(self, stream: str, durable: str, subject: str) -> None:
        """JetStream would quietly re-point an existing durable; refuse instead."""
        try:
            info = await self._js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            return
        follows = info.config.filter_subject or ""
        if follows != self._wire(subject):
            follows = follows.removeprefix(self._wire(""))
            raise ConfigError(f"durable {durable!r} already follows {follows!r}, not {subject!r}")

    async def delete_streams(self) -> None:
        """Delete this bus's streams, with every event and consumer in them (for tests)."""
        for family in FAMILIES:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_stream(stream_name(self._stream_prefix, family))

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.stop()
        if not self._client.is_closed:
            with contextlib.suppress(nats.errors.Error):
                await self._client.flush(timeout=2)
            await self._client.close()


async def _connect(url: str, *, timeout: float) -> Client:
    """A client that reconnects for ever once connected, but waits ``timeout`` at first.

    nats-py applies ``max_reconnect_attempts`` to the first connection too, so the
    unlimited reconnects a service wants would make an unreachable URL hang here.
    """
    client = Client()
    errors: list[Exception] = []

    async def note_error(error: Exception) -> None:
        if not client.is_connected:
            errors.append(error)
        log.warning("NATS client: %r", error)

    try:
        await asyncio.wait_for(
            client.connect(
                url,
                connect_timeout=max(1, math.ceil(timeout)),  # nats-py wants whole seconds
                reconnect_time_wait=1,
                max_reconnect_attempts=-1,
                error_cb=note_error,
            ),
            timeout=timeout,
        )
    except (OSError, TimeoutError, nats.errors.Error) as error:
        with contextlib.suppress(Exception):
            await client.close()
        cause = errors[-1] if errors else error
        raise BusError(f"cannot reach NATS at {url} within {timeout}s: {cause!r}") from error
    return client
