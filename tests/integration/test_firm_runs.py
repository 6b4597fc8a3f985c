"""Firm-wide runs on the demo firm: the same proposals on a process pool and on a real
Dask cluster, a run killed half-way resumed without redoing a household, a household
whose books are broken failing alone, and requests answered by the run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.workflow.fanout import DaskCluster, Inline, ProcessPool
from poise.workflow.run import RunOptions, Selection, plan_options, rebalance_run

AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
OPTIMIZE = RunOptions(method="optimize")


def copy_of(engine: sa.Engine, folder: Path) -> tuple[sa.Engine, Path]:
    """A copy of the demo firm's database of its own, to run on."""
    source = engine.url.database
    assert source is not None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "poise.db"
    with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
        src.backup(dst)  # the write-ahead log's pages too
    return make_engine(f"sqlite:///{path}"), path


def households(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return [h.household_id for h in repo.households(connection)]


def proposed(engine: sa.Engine, run_id: str) -> dict[str, list[tuple[str, str, str, Decimal]]]:
    """Each account's trades in the run's proposals: (security, side, lots, quantity)."""
    hp, p, pt = t.household_proposals, t.proposals, t.proposal_trades
    query = (
        sa.select(p.c.account_id, pt.c.security_id, pt.c.side, pt.c.lots, pt.c.quantity)
        .select_from(
            hp.join(p, p.c.household_proposal_id == hp.c.proposal_id).outerjoin(
                pt, pt.c.proposal_id == p.c.proposal_id
            )
        )
        .where(hp.c.run_id == run_id)
        .order_by(p.c.account_id, pt.c.seq)
    )
    found: dict[str, list[tuple[str, str, str, Decimal]]] = {}
    with engine.connect() as connection:
        for account, security, side, lots, quantity in connection.execute(query):
            found.setdefault(account, [])
            if security is not None:
                found[account].append((security, side, lots, quantity))
    return found


def test_run_when_planned_on_a_pool_and_on_a_dask_cluster_then_the_proposals_are_the_same(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    some = Selection(households=tuple(households(demo_firm)[:8]))
    on_pool, _ = copy_of(demo_firm, tmp_path / "pool")
    pooled = rebalance_run(
        on_pool, as_of=AS_OF, selection=some, options=OPTIMIZE, fanout=ProcessPool(2)
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        on_dask, _ = copy_of(demo_firm, tmp_path / "dask")
        dasked = rebalance_run(
            on_dask,
            as_of=AS_OF,
            selection=some,
            options=OPTIMIZE,
            fanout=DaskCluster(cluster.scheduler_address),
        )
    assert (pooled.fanout, dasked.fanout) == ("pool", "dask")
    assert pooled.failed == dasked.failed == {}
    assert pooled.done == dasked.done == 8
    assert pooled.trades > 0
    assert proposed(on_pool, pooled.run_id) == proposed(on_dask, dasked.run_id)


def test_run_when_a_households_books_are_broken_then_it_fails_alone(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    engine, _ = copy_of(demo_firm, tmp_path)
    first, *rest = households(engine)
    with engine.begin() as connection:  # a lot the custodian never sent: negative shares
        account = (
            connection.execute(
                sa.select(t.accounts.c.account_id).where(t.accounts.c.household_id == first)
            )
            .scalars()
            .first()
        )
        lot = (
            connection.execute(sa.select(t.lots.c.lot_id).where(t.lots.c.account_id == account))
            .scalars()
            .first()
        )
        connection.execute(
            sa.update(t.lots)
            .where((t.lots.c.account_id == account) & (t.lots.c.lot_id == lot))
            .values(quantity=-5)
        )
    report = rebalance_run(engine, as_of=AS_OF, selection=Selection(all=True), fanout=Inline())
    assert list(report.failed) == [first], report.failed
    assert f"account {account}: lot {lot}: quantity cannot be negative" in report.failed[first]
    assert "broken" in report.failed[first]
    assert report.done == len(rest)
    with engine.connect() as connection:
        run = repo.rebalance_run(connection, run_id=report.run_id)
        failed = repo.run_households(connection, run_id=report.run_id, status="failed")
    assert run.status == "finished"
    assert run.summary is not None
    assert run.summary["failed"] == 1
    assert [(h.household_id, h.reason) for h in failed] == [(first, report.failed[first])]


def done_rows(path: Path, run_id: str) -> dict[str, str]:
    """The run's households done, with when each finished (sqlite3: no poise code)."""
    with sqlite3.connect(path) as db:
        return dict(
            db.execute(
                "SELECT household_id, finished_at FROM run_households"
                " WHERE run_id = ? AND status = 'done'",
                (run_id,),
            ).fetchall()
        )


def test_run_when_killed_half_way_then_resume_finishes_the_rest_without_redoing_any(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    engine, path = copy_of(demo_firm, tmp_path)
    every = households(engine)
    env = {
        **os.environ,
        "POISE_DATABASE_URL": f"sqlite:///{path}",
        "POISE_WORKERS": "1",  # in the process killed: nothing of it outlives the kill
        # Whole shares searched exactly: each household takes long enough that the kill
        # lands between the first keep and the last (plans are kept a second apart).
        "POISE_EXACT_SHARES": "true",
        "PYTHONPATH": str(ROOT / "src"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "poise", "rebalance", "--all", "--method", "optimize",
         "--as-of", AS_OF.isoformat(), "--json"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    run_id, before = "", {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT run_id FROM rebalance_runs").fetchone()
        if row is not None:
            run_id = row[0]
            before = done_rows(path, run_id)
            if before:
                break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr and process.stderr.read()
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = done_rows(path, run_id)
    assert 1 <= len(before) < len(every)
    with engine.connect() as connection:
        assert repo.rebalance_run(connection, run_id=run_id).status == "running"

    report = rebalance_run(engine, as_of=AS_OF, resume=run_id, fanout=Inline())
    assert report.resumed == len(before)
    assert report.done == len(every) - len(before)
    after = done_rows(path, run_id)
    assert set(after) == set(every)
    assert {h: after[h] for h in before} == before  # the done ones were not done again
    with engine.connect() as connection:
        counts = dict(
            connection.execute(
                sa.select(t.household_proposals.c.household_id, sa.func.count())
                .where(t.household_proposals.c.run_id == run_id)
                .group_by(t.household_proposals.c.household_id)
            ).all()
        )
        run = repo.rebalance_run(connection, run_id=run_id)
    assert counts == dict.fromkeys(every, 1)  # one proposal each, none twice
    assert run.status == "finished"


@pytest.mark.parametrize("exact", [False, True])
def test_run_when_started_then_it_keeps_whether_whole_shares_are_searched_exactly(
    demo_firm: sa.Engine, tmp_path: Path, exact: bool
) -> None:
    # POISE_EXACT_SHARES is read when a run starts and kept with it, so that a resumed
    # run plans the rest the same way whatever the settings are by then.
    engine, _ = copy_of(demo_firm, tmp_path)
    one = Selection(households=tuple(households(engine)[:1]))
    settings = Settings(exact_shares=exact)
    report = rebalance_run(
        engine, as_of=AS_OF, selection=one, options=OPTIMIZE, settings=settings, fanout=Inline()
    )
    with engine.connect() as connection:
        kept = RunOptions.of_json(
            json.dumps(repo.rebalance_run(connection, run_id=report.run_id).options)
        )
    assert kept.exact is exact
    assert plan_options(kept, Settings(exact_shares=not exact)).scenario.settings.exact is exact
