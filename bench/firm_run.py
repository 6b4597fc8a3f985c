"""Benchmark: a firm-wide ``optimize`` run, end to end, store included.

    .venv/bin/python bench/firm_run.py [--households 4040] [--backends sqlite postgres]
        [--fanouts pool dask1 dask2] [--sample 40] [--replay] [--keep]

Builds the demo firm at ``--households`` households (about 2.5 accounts each; 4,040
make just over 10,000 accounts) once — its files and a SQLite database under
``bench/out/firm/<households>/``, a PostgreSQL database ``poise_bench_firm_<households>``
on the server at ``POISE_BENCH_POSTGRES`` (127.0.0.1:5432 by default) — and for each
backend and fan-out runs :func:`poise.workflow.run.rebalance_run` with ``optimize``
over every household, as ``poise rebalance --all --method optimize`` does, on a
fresh copy of the firm (a SQLite backup; a PostgreSQL database made from the built
one as its template). Fan-outs: ``pool`` — the local process pool of 2 workers;
``dask1`` and ``dask2`` — a ``distributed.LocalCluster`` of 1 and 2 single-threaded
worker processes, started by the benchmark before the run (as ``poise cluster``
would be) and not timed.

Timed, from the run's own process:

- **total** — :func:`rebalance_run`, from its call to its return;
- **read** — :func:`poise.workflow.households.load_firm`, the firm read once;
- **plan** — the run waiting for the workers' plans (the pool's or the cluster's
  start included): the part the engine decides;
- **save** — the rest: the run's record started and ended, and every plan kept with
  its household's record as it came back (while the workers plan the next ones).

``--sample`` households (evenly spaced) are then planned one after another in this
process, timed each, with the time inside the solvers (Clarabel's set-up, updates
and solves; HiGHS's runs) counted apart: where the plan time goes.

``--replay`` times the store alone, at any size: every household's plan (made once by
an untimed run on the pool and kept in ``bench/out/firm/<households>/plans.pickle``)
is handed back to the run at once by a stand-in for the fan-out, so that what is
timed is the read and the keeping (in batches as large as the run allows) — then
kept a second time on the same copy, superseding the first run's proposals, as the
next day's run would. Each run's stored proposals are digested (ids, statuses, figures, trades and
their lots, the run's records) so that runs of the same plans can be compared.

Each run's CPU is counted too, process by process (the run's own, and every process
under it — the pool's workers and forkserver, a local Dask cluster's — sampled twice a
second): where its seconds go, and how busy it kept the machine's cores.

Prints Markdown rows for ``bench/RESULTS.md``. The PostgreSQL databases are dropped
at the end (``--keep`` keeps the built firm's for the next invocation).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import pickle
import shutil
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import clarabel
import highspy
import psutil
import sqlalchemy as sa
from distributed import LocalCluster

import poise.workflow.run as run_module
from poise.demo import generate_firm, write_firm
from poise.settings import Settings
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.fanout import DaskCluster, Done, Fanout, Outcome, ProcessPool
from poise.workflow.households import HouseholdBook, HouseholdPlan, load_firm, plan_household
from poise.workflow.ingest import ingest_paths
from poise.workflow.monitor import price_check
from poise.workflow.run import RunOptions, RunReport, Selection, plan_options, rebalance_run

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "firm"
AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)  # the demo's last day
OPTIMIZE = RunOptions(method="optimize")
POSTGRES = os.environ.get("POISE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
WORKERS = 2  # the machine's cores

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


# ── the firm, built once ──────────────────────────────────────────────────────


def firm_files(households: int) -> list[Path]:
    """The demo firm's files at ``households`` households, written once."""
    folder = OUT / str(households) / "files"
    done = folder / ".written"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        paths = write_firm(generate_firm(households=households, seed=7), folder)
        done.write_text("\n".join(p.name for p in paths))
        print(f"generated the firm's files in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return [folder / name for name in done.read_text().split()]


def ingest(engine: sa.Engine, paths: Sequence[Path]) -> None:
    start = time.perf_counter()
    upgrade(engine)
    refused = [r for r in ingest_paths(engine, paths, today=date(2026, 1, 1)) if r.refused]
    if refused:
        raise SystemExit(f"the demo firm did not load: {refused}")
    print(f"ingested into {engine.url.get_backend_name()} in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)  # fmt: skip


def sqlite_firm(households: int) -> Path:
    """The firm's SQLite database, ingested once (its schema brought up to date)."""
    path = OUT / str(households) / "poise.db"
    done = path.with_suffix(".loaded")
    if not done.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob("poise.db*"):
            stale.unlink()
        engine = make_engine(f"sqlite:///{path}")
        ingest(engine, firm_files(households))
        engine.dispose()
        done.touch()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _server(database: str) -> str:
    return sa.make_url(POSTGRES).set(database=database).render_as_string(hide_password=False)


def _admin() -> sa.Engine:
    return sa.create_engine(make_engine(POSTGRES).url, isolation_level="AUTOCOMMIT")


def _exists(admin: sa.Engine, database: str) -> bool:
    with admin.connect() as connection:
        found = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
        ).first()
    return found is not None


def _drop(admin: sa.Engine, database: str) -> None:
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def analyse_loaded(engine: sa.Engine) -> None:
    """ANALYZE the tables the load wrote, as autovacuum does soon after a load. A table
    nothing was written to is left as autovacuum leaves it, never analysed: analysed
    empty, PostgreSQL would plan its lookups for an empty table all through a run
    that fills it (a sequential scan for every key it looks up)."""
    with engine.begin() as connection:
        for table in t.metadata.sorted_tables:
            if connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first():
                connection.exec_driver_sql(f"ANALYZE {table.name}")


def postgres_firm(households: int) -> str:
    """The firm's PostgreSQL database, ingested unless an earlier ``--keep`` left it."""
    name = f"poise_bench_firm_{households}"
    admin = _admin()
    if not _exists(admin, name):
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine = make_engine(_server(name))
        try:
            ingest(engine, firm_files(households))
            analyse_loaded(engine)
        except BaseException:
            engine.dispose()
            _drop(admin, name)
            raise
        engine.dispose()
    engine = make_engine(_server(name))
    upgrade(engine)
    engine.dispose()
    admin.dispose()
    return name


@contextlib.contextmanager
def fresh_copy(backend: str, households: int) -> Iterator[sa.Engine]:
    """An engine on a copy of the built firm of its own, removed afterwards."""
    if backend == "sqlite":
        source = sqlite_firm(households)
        path = source.with_name("run.db")
        with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine
        finally:
            engine.dispose()
            for made in path.parent.glob("run.db*"):
                made.unlink()
        return
    template = postgres_firm(households)
    name = f"poise_bench_run_{households}"
    admin = _admin()
    _drop(admin, name)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    engine = make_engine(_server(name))
    try:
        yield engine
    finally:
        engine.dispose()
        _drop(admin, name)
        admin.dispose()


def households_and_accounts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        households = connection.execute(sa.select(sa.func.count()).select_from(t.households))
        accounts = connection.execute(sa.select(sa.func.count()).select_from(t.accounts))
        return households.scalar_one(), accounts.scalar_one()


# ── a run, timed from inside ──────────────────────────────────────────────────


@dataclass(slots=True)
class Clock:
    """What the run's own process spent where."""

    read: float = 0.0
    waiting: float = 0.0  # for the workers' outcomes
    plans: dict[str, HouseholdPlan] | None = None  # kept here when asked (not when timed:
    # thousands of plans held would be walked by every garbage collection of the run)


class TimedOutcomes:
    """The fan-out's outcomes, with the time spent waiting for each counted."""

    def __init__(self, outcomes: Any, clock: Clock) -> None:
        self.outcomes = outcomes
        self.fanout = outcomes.fanout
        self.clock = clock

    def __iter__(self) -> TimedOutcomes:
        return self

    def __next__(self) -> Outcome[HouseholdBook, HouseholdPlan]:
        start = time.perf_counter()
        try:
            found: Outcome[HouseholdBook, HouseholdPlan] = next(self.outcomes)
        finally:
            self.clock.waiting += time.perf_counter() - start
        if isinstance(found, Done) and self.clock.plans is not None:
            self.clock.plans[found.task.household_id] = found.value
        return found

    def __enter__(self) -> TimedOutcomes:
        start = time.perf_counter()
        self.outcomes.__enter__()
        self.clock.waiting += time.perf_counter() - start
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        start = time.perf_counter()
        self.outcomes.__exit__(kind, exc, tb)
        self.clock.waiting += time.perf_counter() - start  # workers stopped


@contextlib.contextmanager
def timed(clock: Clock) -> Iterator[None]:
    """``rebalance_run`` with its read and its fan-out timed."""
    names = vars(run_module)  # the names the run looks up when it is called
    real_load, real_fan_out = names["load_firm"], names["fan_out"]

    def load(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return real_load(*args, **kwargs)
        finally:
            clock.read += time.perf_counter() - start

    def fan_out(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return TimedOutcomes(real_fan_out(*args, **kwargs), clock)
        finally:
            clock.waiting += time.perf_counter() - start

    names.update(load_firm=load, fan_out=fan_out)
    try:
        yield
    finally:
        names.update(load_firm=real_load, fan_out=real_fan_out)


@dataclass(frozen=True, slots=True)
class Replay:
    """A stand-in for the fan-out: each household's plan, from an earlier run, at once."""

    plans: dict[str, HouseholdPlan]
    name: str = "replay"
    workers: int | None = 1

    def run(
        self, function: Callable[[S, T], R], tasks: Sequence[T], *, shared: S
    ) -> Iterator[Outcome[T, R]]:
        for index, task in enumerate(tasks):
            book = cast("HouseholdBook", task)
            yield Done(index, task, cast("R", self.plans[book.household_id]))


class CpuMeter:
    """CPU seconds used while inside: by this process (all its threads) and by every
    process under it, each sampled twice a second — a worker that exits is counted to
    its last sample, at most half a second short."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.before: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.own = 0.0

    def _children(self) -> dict[int, float]:
        found = {}
        for child in self.me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                used = child.cpu_times()
                found[child.pid] = used.user + used.system
        return found

    def _watch(self) -> None:
        while not self.done.wait(0.5):
            self.seen.update(self._children())

    def __enter__(self) -> CpuMeter:
        self.before = self._children()  # a cluster started beforehand: only what it adds
        self.seen = dict(self.before)
        self.own = time.process_time()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        self.seen.update(self._children())
        self.own = time.process_time() - self.own

    @property
    def others(self) -> dict[int, float]:
        """CPU seconds each process under this one used while inside."""
        return {pid: used - self.before.get(pid, 0.0) for pid, used in self.seen.items()}


@dataclass(frozen=True, slots=True)
class Row:
    backend: str
    fanout: str
    households: int
    accounts: int
    total: float
    read: float
    plan: float
    save: float
    digest: str
    report: RunReport
    cpu_own: float = 0.0  # CPU seconds of the run's own process
    cpu_others: tuple[float, ...] = ()  # of each process under it, the busiest first

    def cpu(self) -> str:
        """Where the run's CPU went, in words."""
        busy = [c for c in self.cpu_others if c >= 0.5]
        used = self.cpu_own + sum(self.cpu_others)
        return (
            f"{self.backend}, {self.fanout}: CPU {used:.1f} s in {self.total:.1f} s"
            f" ({used / (self.total * WORKERS):.0%} of {WORKERS} cores) — the run's own"
            f" process {self.cpu_own:.1f} s, the processes under it"
            f" {', '.join(f'{c:.1f}' for c in busy) or 'none'} s"
        )

    def markdown(self) -> str:
        rate = self.accounts / self.total
        return (
            f"| {datetime.now(UTC).date()} | {self.accounts:,} | {self.households:,}"
            f" | {self.backend}"
            f" | {self.fanout} | {self.total:.1f} | {self.read:.1f} | {self.plan:.1f}"
            f" | {self.save:.1f} | {rate:,.0f} | {self.digest} |"
        )


HEADER = (
    "| date | accounts | households | database | fan-out | total s | read s | plan s"
    " | save s | accounts/s | proposals (digest) |\n"
    "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|"
)


def one_run(
    engine: sa.Engine, backend: str, fanout: Fanout, label: str, clock: Clock | None = None
) -> Row:
    clock = clock or Clock()
    households, accounts = households_and_accounts(engine)
    settings = Settings(workers=WORKERS)
    with timed(clock), CpuMeter() as cpu:
        start = time.perf_counter()
        report = rebalance_run(
            engine,
            as_of=AS_OF,
            selection=Selection(all=True),
            options=OPTIMIZE,
            settings=settings,
            fanout=fanout,
        )
        total = time.perf_counter() - start
    if report.failed or report.done != households:
        raise SystemExit(f"{label} on {backend}: {report.done} done, failed {report.failed}")
    return Row(
        backend=backend,
        fanout=label,
        households=households,
        accounts=accounts,
        total=total,
        read=clock.read,
        plan=clock.waiting,
        save=total - clock.read - clock.waiting,
        digest=digest(engine, report.run_id),
        report=report,
        cpu_own=cpu.own,
        cpu_others=tuple(sorted(cpu.others.values(), reverse=True)),
    )


def digest(engine: sa.Engine, run_id: str) -> str:
    """A short digest of what the run kept: its households' records, their proposals
    and their accounts' (ids, statuses, figures), every trade with its lots — not the
    times they were made."""
    hp, p, pt, rh = t.household_proposals, t.proposals, t.proposal_trades, t.run_households
    ours = sa.select(hp.c.proposal_id).where(hp.c.run_id == run_id)
    queries = [
        sa.select(rh.c.household_id, rh.c.status, rh.c.household_proposal_id, rh.c.reason)
        .where(rh.c.run_id == run_id)
        .order_by(rh.c.household_id),
        sa.select(*(c for c in hp.c if c.name not in ("created_at", "run_id")))
        .where(hp.c.run_id == run_id)
        .order_by(hp.c.proposal_id),
        sa.select(*(c for c in p.c if c.name != "created_at"))
        .where(p.c.household_proposal_id.in_(ours))
        .order_by(p.c.proposal_id),
        sa.select(pt)
        .join(p, p.c.proposal_id == pt.c.proposal_id)
        .where(p.c.household_proposal_id.in_(ours))
        .order_by(pt.c.proposal_id, pt.c.seq),
    ]
    sha = hashlib.sha256()
    with engine.connect() as connection:
        for query in queries:
            for row in connection.execute(query):
                sha.update(repr(tuple(_plain(v) for v in row)).encode())
    return sha.hexdigest()[:12]


def _plain(value: Any) -> Any:
    """A value as both databases give it back: PostgreSQL's NUMERIC keeps the scale
    and has no negative zero (SQLite's text keeps a -0 the engine wrote)."""
    if isinstance(value, Decimal):
        return str((value + 0).normalize())
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


# ── fan-outs ──────────────────────────────────────────────────────────────────


@contextlib.contextmanager
def fanout_of(label: str) -> Iterator[Fanout]:
    if label == "pool":
        yield ProcessPool(WORKERS)
        return
    if label not in ("dask1", "dask2"):
        raise SystemExit(f"no fan-out {label!r}: pool, dask1 or dask2")
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=int(label[-1]),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    try:
        yield DaskCluster(cluster.scheduler_address)
    finally:
        cluster.close()


# ── where the plan time goes ──────────────────────────────────────────────────


@dataclass(slots=True)
class SolverClock:
    seconds: float = 0.0
    calls: int = 0


@contextlib.contextmanager
def solvers_timed(clock: SolverClock) -> Iterator[None]:
    """Clarabel's set-up, updates and solves and HiGHS's runs, timed wherever the
    engine calls them (it looks both up on their modules when it calls)."""
    real_clarabel, real_highs = clarabel.DefaultSolver, highspy.Highs

    def counted(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            clock.seconds += time.perf_counter() - start
            clock.calls += 1

    class Clarabel:
        def __init__(self, *args: Any) -> None:
            self._solver = counted(real_clarabel, *args)

        def solve(self) -> Any:
            return counted(self._solver.solve)

        def update(self, **kwargs: Any) -> Any:
            return counted(self._solver.update, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._solver, name)

    class Highs(real_highs):  # type: ignore[misc, valid-type]
        def run(self) -> Any:
            return counted(super().run)

    clarabel.DefaultSolver, highspy.Highs = Clarabel, Highs
    try:
        yield
    finally:
        clarabel.DefaultSolver, highspy.Highs = real_clarabel, real_highs


def plan_sample(engine: sa.Engine, count: int) -> str:
    """``count`` households planned here, one after another: the time per household and
    per account, and the solvers' share."""
    settings = Settings()
    firm = load_firm(
        engine,
        as_of=AS_OF,
        lookback=timedelta(days=settings.risk_lookback_days),
        check=price_check(settings),
    )
    options = plan_options(OPTIMIZE, settings)
    books = list(firm.books.values())
    step = max(1, len(books) // count)
    chosen = books[::step][:count]
    plan_household(firm.reference, chosen[0], options)  # warm: the solvers' first import
    seconds, accounts = [], 0
    clock = SolverClock()
    with solvers_timed(clock):
        for book in chosen:
            start = time.perf_counter()
            plan = plan_household(firm.reference, book, options)
            seconds.append(time.perf_counter() - start)
            accounts += 0 if plan.proposal is None else len(plan.proposal.accounts)
    total = sum(seconds)
    cuts = statistics.quantiles(seconds, n=20) if len(seconds) > 1 else seconds * 19
    return (
        f"{len(chosen)} households ({accounts} accounts planned) one after another: "
        f"{statistics.median(seconds) * 1000:.0f} ms median, {cuts[18] * 1000:.0f} ms p95 a "
        f"household, {total / max(accounts, 1) * 1000:.0f} ms an account; in the solvers "
        f"{clock.seconds:.2f} s of {total:.2f} s ({clock.seconds / total:.0%}, "
        f"{clock.calls} calls)"
    )


# ── replaying plans: the store alone ──────────────────────────────────────────


def kept_plans(households: int) -> dict[str, HouseholdPlan]:
    """The plans of an earlier run at this size, or a run on the pool to make them."""
    path = OUT / str(households) / "plans.pickle"
    if path.exists():
        with contextlib.suppress(Exception), path.open("rb") as f:  # the engine changed
            plans: dict[str, HouseholdPlan] = pickle.load(f)
            return plans
    print("planning every household once, on the pool (untimed) ...", file=sys.stderr)
    clock = Clock(plans={})
    with fresh_copy("sqlite", households) as engine:
        one_run(engine, "sqlite", ProcessPool(WORKERS), "pool", clock)
    assert clock.plans is not None
    with path.open("wb") as f:
        pickle.dump(clock.plans, f, protocol=pickle.HIGHEST_PROTOCOL)
    return clock.plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=4040)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--fanouts", nargs="+", default=["pool", "dask1", "dask2"])
    parser.add_argument("--sample", type=int, default=40, help="households planned here, timed")
    parser.add_argument("--replay", action="store_true", help="time the store alone")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL firm")
    args = parser.parse_args()

    rows: list[Row] = []
    try:
        if args.replay:
            plans = kept_plans(args.households)
            for backend in args.backends:
                with fresh_copy(backend, args.households) as engine:
                    first = one_run(engine, backend, Replay(plans), "replay")
                    again = one_run(engine, backend, Replay(plans), "replay, again")
                rows += [first, again]
                print(first.markdown(), again.markdown(), sep="\n", file=sys.stderr)
        else:
            for backend in args.backends:
                for label in args.fanouts:
                    with fanout_of(label) as fanout, fresh_copy(backend, args.households) as e:
                        rows.append(one_run(e, backend, fanout, label))
                    print(rows[-1].markdown(), file=sys.stderr)
        print(HEADER)
        for row in rows:
            print(row.markdown())
        print()
        for row in rows:
            print(row.cpu())
        if args.sample and not args.replay:
            print()
            engine = make_engine(f"sqlite:///{sqlite_firm(args.households)}")
            print(plan_sample(engine, args.sample))
    finally:
        if not args.keep and "postgres" in args.backends:
            admin = _admin()
            _drop(admin, f"poise_bench_firm_{args.households}")
            admin.dispose()


if __name__ == "__main__":
    main()
