"""How a delivery ends: the retry policy shared by every bus, and the one place it is applied."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from poise.bus.events import Event
from poise.bus.port import Handler
from poise.domain.errors import ValidationError

__all__ = ["DEFAULT_POLICY", "DeliveryPolicy", "Outcome", "deliver"]

log = logging.getLogger("poise.bus")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How patiently a subscription retries, in seconds and deliveries.

    ``ack_wait``: how long a delivery may stay unacknowledged before the bus assumes
    its consumer died and delivers it again (a running handler keeps extending it).
    ``max_deliver``: deliveries of one event before it is terminated.
    ``retry_delay``: the pause before redelivering an event whose handler raised.
    """

    ack_wait: float = 30.0
    max_deliver: int = 5
    retry_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.ack_wait <= 0:
            raise ValidationError(f"ack_wait must be positive, not {self.ack_wait}")
        if self.max_deliver < 1:
            raise ValidationError(f"max_deliver must be at least 1, not {self.max_deliver}")
        if self.retry_delay < 0:
            raise ValidationError(f"retry_delay may not be negative, not {self.retry_delay}")


DEFAULT_POLICY = DeliveryPolicy()


class Outcome(enum.Enum):
    """What the bus does with a delivery after its handler has run."""

    ACK = "ack"
    RETRY = "retry"
    TERMINATE = "terminate"


async def deliver(
    handler: Handler, event: Event, *, attempt: int, durable: str, policy: DeliveryPolicy
) -> Outcome:
    """Run ``handler`` on delivery number ``attempt`` of ``event``; say how it ended.

    A handler's exception is logged here (WARNING while retries remain, ERROR with the
    traceback when the event is terminated) and not raised further: it belongs to this
    event, and the subscription goes on with the next one.
    """
    try:
        await handler(event)
    except Exception:
        if attempt >= policy.max_deliver:
            log.exception(
                "terminating %s on %s after %d deliveries to %s: its handler kept failing",
                event.event_id,
                event.subject,
                attempt,
                durable,
            )
            return Outcome.TERMINATE
        log.warning(
            "handler of %s failed on %s (delivery %d of %d); retrying in %.3gs",
            durable,
            event.event_id,
            attempt,
            policy.max_deliver,
            policy.retry_delay,
            exc_info=True,
        )
        return Outcome.RETRY
    return Outcome.ACK
