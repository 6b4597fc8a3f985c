"""The long-running monitor: price events in, rebalance requests out, over the bus.

Two durable consumers run side by side:

- ``poise-monitor`` takes each price event, lets the :class:`~poise.monitor.watch.Watch`
  re-evaluate the accounts that hold the security, and publishes the requests that
  are new today (and, on a calendar boundary, one request per account);
- ``poise-requests`` stores each request in the system of record, keyed by its id, in
  one transaction — a request delivered twice is stored once.

Both are at-least-once consumers made idempotent by ids: a redelivered price event
re-evaluates to the same requests (same ids), which the bus and the store drop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from poise.bus.events import PRICES, REQUESTS, Event, price_subject, request_subject
from poise.bus.port import Bus, Subscription
from poise.ingest.formats import FORMATS
from poise.ingest.parse import read_table
from poise.ingest.validate import validate
from poise.monitor.triggers import RebalanceRequest, calendar_due, calendar_requests
from poise.monitor.watch import Watch
from poise.store import repo

__all__ = [
    "MonitorService",
    "PriceTick",
    "ask_for_rebalance",
    "price_event",
    "read_price_history",
    "request_event",
]

PRICE_CONSUMER = "poise-monitor"
REQUEST_CONSUMER = "poise-requests"


@dataclass(frozen=True, slots=True)
class PriceTick:
    security_id: str
    price: Decimal
    at: datetime
    source: str = ""


def price_event(tick: PriceTick) -> Event:
    return Event(
        subject=price_subject(tick.security_id),
        event_id=f"price/{tick.security_id}/{tick.at.isoformat()}/{tick.source}",
        payload={
            "security_id": tick.security_id,
            "price": str(tick.price),
            "as_of": tick.at.isoformat(),
            "source": tick.source,
        },
    )


def request_event(request: RebalanceRequest) -> Event:
    return Event(
        subject=request_subject(request.scope),
        event_id=request.request_id,
        payload=request.to_payload(),
    )


def ask_for_rebalance(
    engine: sa.Engine, *, account_id: str, note: str, at: datetime
) -> tuple[RebalanceRequest, bool]:
    """A manual request to rebalance ``account_id``, stored (once a day: asked again the
    same day, it is the same request) — ``poise requests add`` and ``POST
    /api/v1/accounts/{id}/requests``. The request, and whether it is new; publish
    :func:`request_event` of it for a worker to answer."""
    from poise.monitor.triggers import manual_request  # noqa: PLC0415

    with engine.execution_options(writes=True).begin() as connection:
        account = repo.account(connection, account_id=account_id)
        request = manual_request(
            account_id=account.account_id, household_id=account.household_id, as_of=at,
            note=note,
        )  # fmt: skip
        new = repo.save_requests(connection, requests=[request.to_payload()], received_at=at)
    return request, bool(new)


def read_price_history(
    path: Path, *, securities: pl.Series, start: date | None, end: date | None
) -> list[PriceTick]:
    """A prices file (the canonical format) as ticks in time order, between two days.

    Rows that are not valid prices are left out, as ingest would quarantine them.
    """
    table = read_table(path.read_bytes(), name=path.name)
    batch = validate(table, FORMATS["prices"], known={"securities": securities}, today=date.max)
    rows = batch.rows
    if start is not None:
        rows = rows.filter(pl.col("as_of").dt.date() >= start)
    if end is not None:
        rows = rows.filter(pl.col("as_of").dt.date() <= end)
    rows = rows.sort("as_of", "security_id")
    return [
        PriceTick(security_id, Decimal(price), at.replace(tzinfo=UTC), source or "")
        for security_id, at, price, source in rows.select(
            "security_id", "as_of", "price", "source"
        ).iter_rows()
    ]


@dataclass
class MonitorService:
    """Runs the two consumers on a bus for one firm under watch."""

    engine: sa.Engine
    bus: Bus
    watch: Watch
    calendar: str | None = None
    on_request: Callable[[RebalanceRequest], None] | None = None
    ticks: int = 0
    stored: int = 0
    published: set[str] = field(default_factory=set)
    handled: set[str] = field(default_factory=set)
    _last_day: date | None = None
    _subscriptions: list[Subscription] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *, initial: Sequence[RebalanceRequest] = ()) -> None:
        self._subscriptions.append(
            await self.bus.subscribe(f"{REQUESTS}.>", durable=REQUEST_CONSUMER, handler=self._store)
        )
        self._subscriptions.append(
            await self.bus.subscribe(f"{PRICES}.>", durable=PRICE_CONSUMER, handler=self._price)
        )
        await self.publish(initial)

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            await subscription.stop()
        self._subscriptions.clear()

    async def publish(self, requests: Sequence[RebalanceRequest]) -> None:
        """Publish requests the store does not already hold."""
        if not requests:
            return
        with self.engine.connect() as connection:
            known = repo.stored_request_ids(connection, ids=[r.request_id for r in requests])
        for request in requests:
            if request.request_id in known:
                continue
            await self.bus.publish(request_event(request))
            self.published.add(request.request_id)
            if self.on_request is not None:
                self.on_request(request)
        self._changed.set()

    async def _price(self, event: Event) -> None:
        payload = event.payload
        at = datetime.fromisoformat(payload["as_of"])
        found = self.watch.tick(payload["security_id"], Decimal(payload["price"]), at)
        if self.calendar is not None and calendar_due(
            self._last_day, at.date(), every=self.calendar
        ):
            found += self.watch.only_new(
                calendar_requests(
                    [a for b in self.watch.book.blocks for a in b.account_ids],
                    household_of=self.watch.household_of,
                    held=self.watch.held(at),
                    as_of=at,
                    every=self.calendar,
                ),
                at,
            )
        self._last_day = at.date()
        await self.publish(found)
        self.ticks += 1
        self._changed.set()

    async def _store(self, event: Event) -> None:
        with self.engine.execution_options(writes=True).begin() as connection:
            self.stored += repo.save_requests(
                connection, requests=[dict(event.payload)], received_at=datetime.now(UTC)
            )
        self.handled.add(event.event_id)
        self._changed.set()

    async def wait_for(self, ticks: int, *, timeout: float) -> None:
        """Until ``ticks`` price events are handled and every request published is stored."""
        async with asyncio.timeout(timeout):
            while self.ticks < ticks or not self.published <= self.handled:
                self._changed.clear()
                await self._changed.wait()
