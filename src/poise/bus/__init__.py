"""The event bus: moving events between the pipeline's stages.

Owns: the ``Event`` type and its subjects (``events``), the ``Bus`` port and its
delivery guarantees (``port``, ``delivery``), the embedded in-process bus
(``inprocess``), the NATS JetStream adapter (``nats``) and the table that picks one
by name (``registry``).
May not touch: finance rules, the store, or any stage's decisions — it carries events
and never reads them beyond their subject and id.
"""

from poise.bus.delivery import DeliveryPolicy
from poise.bus.events import (
    PRICES,
    REQUESTS,
    Event,
    escape_token,
    price_subject,
    request_subject,
    unescape_token,
)
from poise.bus.port import Bus, BusError, Handler, Subscription
from poise.bus.registry import open_bus

__all__ = [
    "PRICES",
    "REQUESTS",
    "Bus",
    "BusError",
    "DeliveryPolicy",
    "Event",
    "Handler",
    "Subscription",
    "escape_token",
    "open_bus",
    "price_subject",
    "request_subject",
    "unescape_token",
]
