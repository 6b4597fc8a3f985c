"""What the worker's tests share: a demo firm of 12 households with real prices, the month
of December 2022 to replay, and readings of the store made without the worker's code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poise.demo import generate_firm, write_firm
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.workflow.ingest import ingest_paths
from poise.workflow.monitor import Evaluation, evaluate, load_state, watch_settings
from poise.workflow.run import RunOptions
from poise.workflow.watching import PriceTick, read_price_history
from poise.workflow.worker import WorkerOptions, worker_options

FIRST, LAST = date(2022, 12, 1), date(2022, 12, 28)
START = datetime(2022, 11, 30, 23, 59, 59, tzinfo=UTC)  # the evening before the replay


def load_demo(engine: sa.Engine, folder: Path) -> Path:
    """The demo firm of 12 households (seed 5) in the store; its prices file."""
    paths = write_firm(generate_firm(households=12, seed=5), folder)
    reports = ingest_paths(engine, paths, today=date(2026, 1, 1))
    assert all(not r.refused and r.quarantined == 0 for r in reports)
    return folder / "prices.csv"


def december(engine: sa.Engine, prices: Path, *, last: date = LAST) -> list[PriceTick]:
    with engine.connect() as connection:
        known = repo.key_series(connection, kind="securities")
    return read_price_history(prices, securities=known, start=FIRST, end=last)


def evening_before(engine: sa.Engine) -> Evaluation:
    """The firm as it stood the evening before the replay: where the monitor starts."""
    return evaluate(
        load_state(engine, as_of=START), at=START, settings=watch_settings(Settings(), bands="5/25")
    )


def optimize() -> WorkerOptions:
    return worker_options(RunOptions(method="optimize"), Settings())


def requests(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every stored request by id, with the account and household of the proposal that
    answered it (``None`` where none did)."""
    r, p, hp = t.rebalance_requests, t.proposals, t.household_proposals
    query = sa.select(
        r.c.request_id,
        r.c.account_id,
        r.c.household_id,
        r.c.as_of,
        r.c.status,
        r.c.failure,
        p.c.account_id.label("proposal_account"),
        hp.c.household_id.label("proposal_household"),
        hp.c.as_of.label("proposal_as_of"),
    ).select_from(
        r.outerjoin(p, p.c.proposal_id == r.c.answered_by).outerjoin(
            hp, hp.c.proposal_id == p.c.household_proposal_id
        )
    )
    with engine.connect() as connection:
        return {row.request_id: row._asdict() for row in connection.execute(query)}


def household_proposals(engine: sa.Engine) -> dict[str, int]:
    """How many household proposals each household has (superseded ones too)."""
    hp = t.household_proposals
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(hp.c.household_id, sa.func.count()).group_by(hp.c.household_id)
        ).all()
    return {str(household): int(count) for household, count in rows}


def break_books(engine: sa.Engine, household_id: str) -> str:
    """Give one lot of the household a negative quantity, as a bad load could; the
    account whose lot it is."""
    a, lots = t.accounts, t.lots
    with engine.begin() as connection:
        account = (
            connection.execute(sa.select(a.c.account_id).where(a.c.household_id == household_id))
            .scalars()
            .first()
        )
        lot = (
            connection.execute(sa.select(lots.c.lot_id).where(lots.c.account_id == account))
            .scalars()
            .first()
        )
        connection.execute(
            sa.update(lots)
            .where((lots.c.account_id == account) & (lots.c.lot_id == lot))
            .values(quantity=-5)
        )
    assert account is not None
    return account


async def until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still waiting after {timeout}s")
        await asyncio.sleep(0.05)


def open_ids(engine: sa.Engine) -> set[str]:
    return {i for i, r in requests(engine).items() if r["status"] == "open"}
