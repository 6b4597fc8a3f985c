"""Events and subjects: what travels on the bus, and under which name.

An :class:`Event` is a subject, an idempotency key (``event_id``) and a JSON payload.
Money in a payload travels as a string (``str(Decimal)``): JSON has no decimal type.

Subjects are dot-separated tokens. Every event belongs to one *family* (``PRICES``,
``REQUESTS``, ``EXECUTIONS``), each stored in its own stream; the last token names the
security, the account or the household, or the route. Ids come from source systems and
may contain dots, spaces or anything else, so :func:`escape_token` percent-encodes every
character outside ``[A-Za-z0-9_-]`` (``"H.1"`` → ``"H%2E1"``) and :func:`unescape_token`
reverses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from poise.domain.errors import ValidationError

__all__ = [
    "EXECUTIONS",
    "FAMILIES",
    "PRICES",
    "REQUESTS",
    "Event",
    "check_durable",
    "escape_token",
    "execution_subject",
    "family_of",
    "price_subject",
    "request_subject",
    "subject_matches",
    "unescape_token",
]

PRICES = "poise.prices"
"""Price updates, one subject per security: ``poise.prices.<security_id>``."""

REQUESTS = "poise.requests"
"""Rebalance requests: ``poise.requests.<account_or_household_id>``."""

EXECUTIONS = "poise.executions"
"""Orders sent and what brokers answer: ``poise.executions.<route>``."""

FAMILIES = (PRICES, REQUESTS, EXECUTIONS)
"""Every subject family the bus carries; each is one stream."""

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPED_TOKEN = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")
_TOKEN = re.compile(r"[A-Za-z0-9_%-]+")
_DURABLE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def escape_token(text: str) -> str:
    """``text`` as one subject token: UTF-8 percent-encoding of all but ``[A-Za-z0-9_-]``."""
    if not text:
        raise ValidationError("an id in a subject may not be empty")
    return "".join(
        char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    )


def unescape_token(token: str) -> str:
    """The id that :func:`escape_token` turned into ``token``."""
    if not _ESCAPED_TOKEN.fullmatch(token):
        raise ValidationError(f"not an escaped subject token: {token!r}")
    try:
        return unquote(token, errors="strict")
    except UnicodeDecodeError as error:
        raise ValidationError(f"not an escaped subject token: {token!r}") from error


def price_subject(security_id: str) -> str:
    """The subject of a price update for one security."""
    return f"{PRICES}.{escape_token(security_id)}"


def execution_subject(route: str) -> str:
    """The subject of a route's order and fill events."""
    return f"{EXECUTIONS}.{escape_token(route)}"


def request_subject(account_or_household_id: str) -> str:
    """The subject of a rebalance request for one account or household."""
    return f"{REQUESTS}.{escape_token(account_or_household_id)}"


def _check_subject(subject: str, *, wildcards: bool) -> list[str]:
    tokens = subject.split(".")
    for position, token in enumerate(tokens):
        if wildcards and token == "*":
            continue
        if wildcards and token == ">" and position == len(tokens) - 1:
            continue
        if not _TOKEN.fullmatch(token):
            kind = "subject pattern" if wildcards else "subject"
            raise ValidationError(f"bad {kind} {subject!r}: token {token!r}")
    return tokens


def family_of(subject: str, *, pattern: bool = False) -> str:
    """The family (stream) a subject, or a subscription pattern, belongs to.

    A subject must have at least one token after its family; a pattern may use ``*``
    for one token and end in ``>`` for one or more, but may not span families.
    """
    tokens = _check_subject(subject, wildcards=pattern)
    for family in FAMILIES:
        head = family.split(".")
        if tokens[: len(head)] == head and len(tokens) > len(head):
            return family
    raise ValidationError(
        f"subject {subject!r} is not under one of {', '.join(f + '.' for f in FAMILIES)}"
    )


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` is one that the NATS-style ``pattern`` selects."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > position
        if position >= len(tokens) or (token not in ("*", tokens[position])):
            return False
    return len(tokens) == len(wanted)


def check_durable(durable: str) -> str:
    """A durable consumer name: 1–64 of ``[A-Za-z0-9_-]`` (NATS forbids dots and spaces)."""
    if not _DURABLE.fullmatch(durable):
        raise ValidationError(f"bad durable name {durable!r}: use 1-64 of [A-Za-z0-9_-]")
    return durable


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, addressed to a subject.

    ``event_id`` is the idempotency key: unique per logical event, the same on every
    re-publish of it. Buses drop a re-publish within their duplicate window, and a
    consumer that must not act twice records the ids it has acted on.

    ``payload`` must be JSON-serialisable; it is stored as a read-only copy of its JSON
    form (tuples become lists), so an event equals itself after a round trip through
    :meth:`to_bytes` and :meth:`from_bytes`.
    """

    subject: str
    event_id: str
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        family_of(self.subject)
        if not self.event_id or len(self.event_id) > 256:
            raise ValidationError("an event id must have 1 to 256 characters")
        try:
            text = json.dumps(dict(self.payload), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValidationError(f"payload of {self.event_id!r} is not JSON: {error}") from error
        object.__setattr__(self, "payload", MappingProxyType(json.loads(text)))

    def to_bytes(self) -> bytes:
        """JSON with sorted keys: the same event always gives the same bytes."""
        document = {"subject": self.subject, "event_id": self.event_id, "payload": self.payload}
        return json.dumps(document, sort_keys=True, default=dict, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Event:
        """The event that :meth:`to_bytes` wrote; anything else is a ``ValidationError``."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValidationError(f"an event is not JSON: {error}") from error
        if not isinstance(document, dict) or set(document) != {"subject", "event_id", "payload"}:
            raise ValidationError("an event has exactly subject, event_id and payload")
        subject, event_id, payload = document["subject"], document["event_id"], document["payload"]
        if not (isinstance(subject, str) and isinstance(event_id, str)):
            raise ValidationError("an event's subject and event_id are strings")
        if not isinstance(payload, dict):
            raise ValidationError("an event's payload is a JSON object")
        return cls(subject=subject, event_id=event_id, payload=payload)
