"""The bus port: what every event bus offers, whichever moves the bytes.

Delivery semantics, the same for every implementation:

- **At least once.** A subscription hands each event to its handler and acknowledges
  it only after the handler returns. A consumer that dies before that gets the event
  again (after the bus's ack wait), so a handler must be idempotent: record the
  ``event_id`` it acted on in the same transaction as the effect, and skip ids it has.
- **Retries, bounded.** If the handler raises, the event is negatively acknowledged
  and delivered again after ``DeliveryPolicy.retry_delay``. After
  ``DeliveryPolicy.max_deliver`` deliveries it is *terminated*: logged at ERROR on the
  ``poise.bus`` logger with the handler's traceback, and never delivered again.
- **In order, one at a time.** A durable consumer has at most one event in flight, so
  events reach it in publication order, including across retries: a failing event
  holds back the ones behind it until it succeeds or is terminated.
- **Durable position.** ``durable`` names a consumer; a subscription that stops (or a
  process that dies) and subscribes again under the same name resumes after the last
  acknowledged event. A new name starts at the oldest event the bus still holds.
  Subscriptions sharing one durable name share its events (each goes to one of them).
- **Duplicates dropped on publish.** A re-publish of an ``event_id`` within the bus's
  duplicate window (two minutes by default) is dropped.

**Listening** (:meth:`Bus.listen`) is for watchers that keep nothing — a page showing
what happens as it happens: every event published from then on, at most once, in no
durable position; a listener that raises is logged and goes on listening.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from poise.bus.events import Event
from poise.domain.errors import PoiseError

__all__ = ["Bus", "BusError", "Handler", "Subscription"]

Handler = Callable[[Event], Awaitable[None]]
"""Acts on one event; returning acknowledges it, raising asks for a redelivery."""


class BusError(PoiseError):
    """The event bus cannot be reached, or refused an operation (it is closed, say)."""

    http_status = 503


class Subscription(Protocol):
    """A running subscription: its handler is called until it is stopped."""

    async def stop(self) -> None:
        """Stop delivering; waits for a handler that is running to finish (and be acked)."""
        ...


class Bus(Protocol):
    """Moves events between stages; see the module docstring for the guarantees."""

    async def publish(self, event: Event) -> None:
        """Store ``event`` durably (or drop it as a duplicate) before returning."""
        ...

    async def subscribe(self, subject: str, *, durable: str, handler: Handler) -> Subscription:
        """Deliver every event under ``subject`` (which may use ``*`` and end in ``>``).

        Re-using a ``durable`` name with a different subject is a ``ConfigError``.
        """
        ...

    async def listen(self, subject: str, *, handler: Handler) -> Subscription:
        """Hand ``handler`` every event published under ``subject`` from now on, at most
        once and unacknowledged (see the module: listening)."""
        ...

    async def close(self) -> None:
        """Stop every subscription and release the connection."""
        ...
