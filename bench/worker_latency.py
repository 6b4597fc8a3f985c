"""Benchmark: a price tick to the stored household proposal that answers its request.

    .venv/bin/python bench/worker_latency.py [--households 60] [--from 2022-09-01]
        [--to 2022-12-28] [--day-gap 0.5] [--bus inprocess|nats|both]

The demo firm (60 households, real closes) is built in a SQLite file and evaluated the
evening before ``--from``; the monitor (``MonitorService``) and the worker
(``WorkerService``, method ``optimize``, following the bus only) then run side by side
on one bus — in-process, or the NATS JetStream server at ``POISE_NATS_URL`` in streams
of the benchmark's own. The requests of the first evaluation are answered first and
not timed. Then the price history is replayed a day at a time: each day's closes are
published together (as a feed delivers them at the close), then ``--day-gap`` seconds
pass before the next day's.

For each request a tick raised: from the publication of that tick to the commit of the
household proposal that answered it (or of the failure recorded for it), and — of
that — from the request's publication to the commit. Figures: median, 95th percentile
and the largest. Target: ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import sqlalchemy as sa

from poise.bus.inprocess import InProcessBus
from poise.bus.nats import NatsBus
from poise.bus.port import Bus
from poise.demo import generate_firm, write_firm
from poise.monitor.triggers import RebalanceRequest
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths
from poise.workflow.monitor import evaluate, load_state, watch_settings
from poise.workflow.run import RunOptions
from poise.workflow.watching import MonitorService, PriceTick, price_event, read_price_history
from poise.workflow.worker import Handled, WorkerService, worker_options

TARGET = 1.0  # seconds


def build(folder: Path, households: int) -> tuple[sa.Engine, Path]:
    engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(generate_firm(households=households, seed=5), folder / "firm")
    reports = ingest_paths(engine, paths, today=date(2026, 1, 1))
    assert all(not r.refused for r in reports)
    return engine, folder / "firm" / "prices.csv"


@dataclass
class Clock:
    """When each tick and request was published, and when each request was closed."""

    ticks: list[float] = field(default_factory=list)  # by tick number
    raised_by: dict[str, int] = field(default_factory=dict)  # request → its tick's number
    published: dict[str, float] = field(default_factory=dict)  # request → when
    closed: dict[str, float] = field(default_factory=dict)  # request → its commit
    failed: set[str] = field(default_factory=set)


async def open_bus(name: str, prefix: str) -> Bus:
    if name == "inprocess":
        return InProcessBus()
    return await NatsBus.connect(
        Settings().nats_url, stream_prefix=prefix, namespace=prefix.lower(), poll_interval=0.2
    )


async def replay(
    engine: sa.Engine, ticks: list[PriceTick], start: datetime, bus_name: str, day_gap: float
) -> tuple[Clock, WorkerService]:
    found = evaluate(load_state(engine, as_of=start), at=start, settings=watch_settings(Settings()))
    clock = Clock()
    initial = {r.request_id for r in found.requests}
    monitor: MonitorService | None = None

    def raised(request: RebalanceRequest) -> None:
        clock.published[request.request_id] = time.perf_counter()
        if request.request_id not in initial and monitor is not None:
            clock.raised_by[request.request_id] = monitor.ticks  # the tick being handled

    def done(handled: Handled) -> None:
        now = time.perf_counter()
        for request_id in (*handled.answered, *handled.failed):
            clock.closed.setdefault(request_id, now)
        clock.failed.update(handled.failed)

    prefix = f"BENCH{uuid.uuid4().hex[:8].upper()}"
    bus = await open_bus(bus_name, prefix)
    monitor = MonitorService(engine, bus, found.watch, on_request=raised)
    worker = WorkerService(
        engine, bus, worker_options(RunOptions(method="optimize"), Settings()), on_handled=done
    )
    by_day: dict[date, list[PriceTick]] = defaultdict(list)
    for tick in ticks:
        by_day[tick.at.date()].append(tick)
    try:
        await worker.start(sweep=False)
        await monitor.start(initial=found.requests)
        await _closed(clock, monitor.published, timeout=600)  # the evening's, not timed
        sent = 0
        for day in sorted(by_day):
            for tick in by_day[day]:
                clock.ticks.append(time.perf_counter())
                await bus.publish(price_event(tick))
            sent += len(by_day[day])
            await monitor.wait_for(sent, timeout=60)
            await asyncio.sleep(day_gap)
        await _closed(clock, monitor.published, timeout=600)
    finally:
        await worker.stop()
        await monitor.stop()
        if isinstance(bus, NatsBus):
            await bus.delete_streams()
        await bus.close()
    return clock, worker


async def _closed(clock: Clock, published: set[str], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not published <= clock.closed.keys():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(published - clock.closed.keys())} requests never closed")
        await asyncio.sleep(0.05)


def _figures(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (
        f"median {statistics.median(ordered) * 1000:5.0f} ms, p95 {p95 * 1000:5.0f} ms, "
        f"max {ordered[-1] * 1000:5.0f} ms"
    )


def report(bus_name: str, clock: Clock, worker: WorkerService, elapsed: float) -> None:
    timed = sorted(clock.raised_by)
    from_tick = [clock.closed[r] - clock.ticks[clock.raised_by[r]] for r in timed]
    from_request = [clock.closed[r] - clock.published[r] for r in timed]
    failed = len(clock.failed & set(timed))
    print(
        f"{bus_name}: {len(clock.ticks):,} ticks in {elapsed:.0f} s; {len(timed)} requests "
        f"raised by ticks ({failed} failed); {worker.plans} household proposals in all"
    )
    if not timed:
        return
    met = sum(s <= TARGET for s in from_tick)
    print(f"  tick → stored proposal     {_figures(from_tick)}  ({met} of {len(timed)} ≤ 1 s)")
    print(f"  request → stored proposal  {_figures(from_request)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=60)
    parser.add_argument("--from", dest="first", type=date.fromisoformat, default=date(2022, 9, 1))
    parser.add_argument("--to", dest="last", type=date.fromisoformat, default=date(2022, 12, 28))
    parser.add_argument("--day-gap", type=float, default=0.5)
    parser.add_argument("--bus", choices=("inprocess", "nats", "both"), default="both")
    args = parser.parse_args()
    buses = ("inprocess", "nats") if args.bus == "both" else (args.bus,)
    start = datetime.combine(args.first, clock_time(0), tzinfo=UTC) - timedelta(microseconds=1)
    for bus_name in buses:
        with tempfile.TemporaryDirectory(prefix="poise-worker-bench-") as folder:
            engine, prices = build(Path(folder), args.households)
            with engine.connect() as connection:
                known = repo.key_series(connection, kind="securities")
            ticks = read_price_history(prices, securities=known, start=args.first, end=args.last)
            began = time.perf_counter()
            clock, worker = asyncio.run(replay(engine, ticks, start, bus_name, args.day_gap))
            report(bus_name, clock, worker, time.perf_counter() - began)
            engine.dispose()


if __name__ == "__main__":
    main()
