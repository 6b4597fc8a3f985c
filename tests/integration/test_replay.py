"""Replaying the demo firm's price history through the monitor.

Requests are raised where bands are breached, and none where they are not: after a
month of real prices streamed as events, every account out of band at the end of a
day (and not held) has an open band-breach request raised by then, and every
band-breach request shows, in its own figures, a position past its band when it was
raised. Run again, the replay stores nothing new. And the same monitor runs over the
real NATS server.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.bus.helpers import NatsSpace, require_nats
from typer.testing import CliRunner

from poise.bus.nats import NatsBus
from poise.cli import app
from poise.demo import generate_firm, write_firm
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths
from poise.workflow.monitor import evaluate, load_state, watch_settings
from poise.workflow.watching import MonitorService, price_event, read_price_history

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
FIRST, LAST = date(2022, 12, 1), date(2022, 12, 28)
# The real closes beside the repository (CI has them; a user's clone need not).
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="the shared market data is absent")
runner = CliRunner()


def load_demo(engine: sa.Engine, folder: Path) -> Path:
    paths = write_firm(generate_firm(households=12, seed=5, data_dir=DATA), folder)
    reports = ingest_paths(engine, paths, today=date(2026, 1, 1))
    assert all(not r.refused and r.quarantined == 0 for r in reports)
    return folder / "prices.csv"


def replay(database_url: str, prices: Path) -> dict[str, object]:
    result = runner.invoke(
        app,
        [
            "monitor",
            "--replay",
            str(prices),
            "--from",
            FIRST.isoformat(),
            "--to",
            LAST.isoformat(),
            "--json",
            "--database-url",
            database_url,
        ],
    )
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def breached_in_figures(figures: dict[str, object]) -> bool:
    positions = figures["positions"]
    assert isinstance(positions, dict)
    past = any(abs(p["drift"]) > p["band"] for p in positions.values())
    outside = float(str(figures["outside_model"])) > 0
    return past or bool(figures["classes"]) or outside


@pytest.mark.slow
def test_replay_when_a_month_of_prices_streams_then_requests_match_the_bands(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    prices = load_demo(engine, tmp_path / "firm")
    report = replay(database_url, prices)
    assert report["ticks"] == 26 * 19  # 26 securities, 19 trading days to 28 December 2022
    with engine.connect() as connection:
        stored = repo.list_requests(connection)
    band = [r for r in stored if "band_breach" in r["reasons"]]
    assert band, "a month of prices breached no band at all"
    # None where bands are not breached: each request shows the breach it was raised for.
    for request in band:
        assert breached_in_figures(request["figures"]), request

    # Requests where they are: out of band at a day's close (and not held) means an
    # open band-breach request raised by then.
    settings = watch_settings(Settings(), bands="5/25")
    never = None  # accounts never asked to rebalance for drift
    day = FIRST
    while day <= LAST:
        found = evaluate(load_state(engine, as_of=end_of(day)), at=end_of(day), settings=settings)
        outside = {
            account
            for drift in found.drifts
            for account, out in zip(drift.block.account_ids, drift.out_of_band, strict=True)
            if out
        } - found.holds.held
        raised = {r["account_id"] for r in band if r["as_of"].date() <= day}
        assert outside <= raised, (day, sorted(outside - raised))
        if never is None:
            every = {a for drift in found.drifts for a in drift.block.account_ids}
            never = every - {r["account_id"] for r in band} - found.holds.held
        day += timedelta(days=1)
    # Some accounts stayed in band all month and were never asked: the checks above
    # would prove nothing if every account were out of band every day.
    assert never

    # The same month again: every request is already in the store.
    again = replay(database_url, prices)
    assert again["stored"] == 0
    with engine.connect() as connection:
        assert len(repo.list_requests(connection)) == len(stored)


@pytest.mark.slow
def test_monitor_when_the_bus_is_nats_then_price_events_become_stored_requests(
    tmp_path: Path,
) -> None:
    require_nats()
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    prices = load_demo(engine, tmp_path / "firm")
    with engine.connect() as connection:
        known = repo.key_series(connection, kind="securities")
    ticks = read_price_history(prices, securities=known, start=FIRST, end=date(2022, 12, 6))
    start = end_of(FIRST - timedelta(days=1))
    found = evaluate(
        load_state(engine, as_of=start),
        at=start,
        settings=watch_settings(Settings(), bands="5/25"),
    )
    space = NatsSpace()

    async def run() -> MonitorService:
        bus = await NatsBus.connect(
            space.url, stream_prefix=space.stream_prefix, namespace=space.namespace
        )
        service = MonitorService(engine, bus, found.watch)
        try:
            await service.start(initial=found.requests)
            for tick in ticks:
                await bus.publish(price_event(tick))
                await bus.publish(price_event(tick))  # a duplicate publish is dropped
            await service.wait_for(len(ticks), timeout=120)
        finally:
            await service.stop()
            await bus.close()
        return service

    try:
        service = asyncio.run(run())
    finally:
        asyncio.run(space.delete())
    assert service.ticks == len(ticks)
    with engine.connect() as connection:
        stored = {r["request_id"] for r in repo.list_requests(connection)}
    assert stored == service.published
    assert service.stored == len(stored)
