"""Benchmark: execution — orders out to a broker and their fills booked back, and the
crossing of a firm-wide run's trades.

    .venv/bin/python bench/execute_roundtrip.py [--orders 1000]
        [--backends sqlite postgres] [--counterparties inprocess process quickfix]
        [--per-block 2] [--floor 2000] [--profile 500] [--wait 300] [--households 4040]
        [--no-crossing]

**Round trip.** A firm of ``--orders`` securities, each bought by ``--per-block``
accounts that have not consented to cross (so every trade goes to market): one block
order a security, ``--per-block`` statement lines a block. Every proposal released,
then

- **plan** — :func:`poise.workflow.execute.plan_batch`, timed alone: the released
  trades read, crossed (nothing crosses), blocked, checked against the run's limits
  and kept with an order for each block in the outbox and the ledger's entries, in
  one transaction;
- **round trip** — :func:`poise.workflow.gateway.run_routes` over one route, from the
  first order stored as sent (the session layer stores an order's message and marks
  it sent in one commit before a byte is written) to the end of the last booking: the
  execution report kept by its ExecID, the order's state moved, the block allocated to
  its accounts with the ledger's entry, and the proposals it completes marked
  executed — durably, the reports one read brings in one commit, as ``poise execute``
  does (the *executed* column timed ``finish_executed`` when it was a commit of its
  own; it is now part of *booking*). Then checked: every block filled and allocated
  in full, every proposal executed, each fill booked once.

Counterparties: ``inprocess`` — the simulated broker (:class:`BrokerServer`, its
session store a file, as ``poise broker`` keeps it) in the gateway's own event loop
and process; ``process`` — ``poise broker`` started as a command of its own;
``quickfix`` — QuickFIX's example executor (Debian's ``libquickfix-doc``), a FIX
engine nobody here wrote, which fills every limit order at once at its limit.
Databases: SQLite (WAL) in a temporary folder, and a schema of its own on PostgreSQL
(``--postgres``), dropped after.

**The floor**: ``--floor`` orders sent and their fills heard over the same session
layer and counterparty with nothing stored — the session's store in memory, each report
read into its type and counted, no booking: what the wire, the counterparty and the
FIX layer cost, which no change to the store can take below.

Each run also counts, without a profiler, the time spent in the gateway's calls to
the store — storing an order's message and marking it sent, the session's next
expected sequence number stored at each message in, booking a report, marking
proposals executed — and the commits made. ``--profile N`` runs the round trip once
more on each database at N orders under cProfile (against QuickFIX's executor when
it is installed, so that what is profiled is poise's side alone) and prints where
the time went.

**Crossing.** The demo firm at ``--households`` households (4,040: 10,012 accounts),
rebalanced firm-wide with ``optimize`` as ``bench/firm_run.py`` runs it — the plans
made once and kept in ``bench/out/firm/<households>/plans.pickle``, replayed into a
fresh copy of the firm's SQLite database — and every account proposal with trades
released. Timed: :func:`poise.execute.crossing.cross` and
:func:`poise.execute.blocks.blocks` over all the released trades (best of
``--repeat``), and ``plan_batch`` over the whole firm.

Prints Markdown rows for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import gzip
import logging
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import poise.workflow.execute as execute_module
import poise.workflow.gateway as gateway_module
from poise.domain.users import Role
from poise.execute.blocks import blocks
from poise.execute.broker import BrokerServer
from poise.execute.crossing import cross
from poise.execute.fix.app import ExecutionReport, NewOrderSingle, OrdStatus, parse_application
from poise.execute.fix.app import OrdType as FixOrdType
from poise.execute.fix.app import Side as FixSide
from poise.execute.fix.config import Role as SessionRole
from poise.execute.fix.config import SessionConfig
from poise.execute.fix.connection import Initiator, Session
from poise.execute.fix.store import FileStore, MemoryStore
from poise.execute.routes import Route, route_names
from poise.execute.safety import Limits
from poise.optimize.trades import Proposal, Side, Trade, TradeReason
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.store.repo.execution import references, released_trades
from poise.store.repo.proposals import ProposalToKeep, save_proposals
from poise.workflow.execute import Policy, plan_batch, policy_of

ROOT = Path(__file__).resolve().parents[1]
POISE = ROOT / ".venv" / "bin" / "poise"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_execute"
MADE = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
PRICE = Decimal(25)
ZERO = Decimal(0)
TODAY = datetime.now(UTC).date().isoformat()

EXECUTOR = Path("/usr/share/doc/libquickfix-doc/examples/executor/C++/.libs/executor.gz")
EXECUTOR_CONFIG = """\
[DEFAULT]
ConnectionType=acceptor
FileStorePath={root}/store
FileLogPath={root}/log
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=N
SocketAcceptPort={port}
ResetOnLogon=N

[SESSION]
BeginString=FIX.4.4
SenderCompID=EXECUTOR
TargetCompID=POISE
HeartBtInt=30
"""
BROKER = SessionConfig(sender_comp_id="BROKER", target_comp_id="POISE", role=SessionRole.ACCEPTOR)


# ── a firm of many released orders ────────────────────────────────────────────


ZEROS = (ZERO,) * 8  # a proposal's figures: cash, gains, tax, cost, drift


def buy(security_id: str, n: int) -> Trade:
    return Trade(security_id, Side.BUY, Decimal(10 + n % 90), PRICE, TradeReason.DRIFT)


def order_firm(engine: sa.Engine, orders: int, per_block: int) -> str:
    """``orders`` securities, each bought by ``per_block`` accounts (no consent to
    cross, one custodian), every proposal released; the operations user's id."""
    securities = [f"S{n:05d}" for n in range(orders)]
    accounts = [f"A{n:06d}" for n in range(orders * per_block)]
    with engine.begin() as connection:
        connection.execute(sa.insert(t.households).values(household_id="H1", name="H1"))
        user = repo.add_user(connection, username="olu", role=Role.OPERATIONS)
        connection.execute(
            sa.insert(t.securities),
            [
                {"security_id": s, "symbol": s, "name": s, "kind": "stock", "asset_class": "equity",
                 "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
                for s in securities
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.accounts),
            [
                {"account_id": a, "household_id": "H1", "registration": "taxable",
                 "cross_consent": False, "custodian": "Schwab", "cash": Decimal(100_000),
                 "reserve_amount": ZERO, "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO,
                 "state_rate": ZERO, "harvest": False}
                for a in accounts
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.prices),
            [{"security_id": s, "as_of": MADE, "source": "close", "price": PRICE}
             for s in securities],
        )  # fmt: skip
        kept = [
            ProposalToKeep(Proposal(account, "bands", (buy(securities[n % orders], n),), *ZEROS))
            for n, account in enumerate(accounts)
        ]
        for start in range(0, len(kept), 2_000):
            save_proposals(
                connection, proposals=kept[start : start + 2_000], as_of=MADE, created_at=MADE
            )
        connection.execute(sa.update(t.proposals).values(status="released"))
    return user.user_id


@contextlib.contextmanager
def database(backend: str, folder: Path, postgres: str) -> Iterator[tuple[sa.Engine, str]]:
    """A fresh, empty poise database (its engine and URL), removed afterwards."""
    if backend == "sqlite":
        path = folder / "poise.db"
        for made in folder.glob("poise.db*"):
            made.unlink()
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield engine, url
        finally:
            engine.dispose()
        return
    admin = make_engine(postgres)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    separator = "&" if "?" in postgres else "?"
    url = f"{postgres}{separator}options=-csearch_path%3D{SCHEMA}"
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield engine, url
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
        admin.dispose()


def analyse(engine: sa.Engine) -> None:
    """ANALYZE what the firm's load wrote, as autovacuum would soon after (PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in (t.securities, t.accounts, t.prices, t.proposals, t.proposal_trades):
            connection.exec_driver_sql(f"ANALYZE {table.name}")


# ── counterparties ────────────────────────────────────────────────────────────


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not listen on {port}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.asynccontextmanager
async def counterparty(kind: str, folder: Path, url: str, orders: int) -> AsyncIterator[Route]:
    """The route to a counterparty listening (started here), stopped afterwards."""
    if kind == "inprocess":
        prices = {f"S{n:05d}": PRICE for n in range(orders)}
        store = FileStore(folder / "broker", BROKER.key)
        try:
            async with BrokerServer(BROKER, store, prices.get) as server:
                yield Route(name="bench", host="127.0.0.1", port=server.port, reconnect=0.2)
        finally:
            store.close()
        return
    port = free_port()
    if kind == "process":
        command = [str(POISE), "broker", "--port", str(port), "--database-url", url,
                   "--state-dir", str(folder / "broker"), "--log-level", "warning"]  # fmt: skip
        environment = {k: v for k, v in os.environ.items() if not k.startswith("POISE_")}
        process = subprocess.Popen(
            command, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        try:
            wait_listening(process, port, "poise broker")
            yield Route(name="bench", host="127.0.0.1", port=port, reconnect=0.2)
        finally:
            stop(process)
        return
    if kind != "quickfix":
        raise SystemExit(f"no counterparty {kind!r}: inprocess, process or quickfix")
    binary = folder / "executor"
    with gzip.open(EXECUTOR) as packed, binary.open("wb") as out:
        shutil.copyfileobj(packed, out)
    binary.chmod(0o755)
    for name in ("store", "log"):
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir()
    config = folder / "executor.cfg"
    config.write_text(EXECUTOR_CONFIG.format(root=folder, port=port))
    process = subprocess.Popen(
        [str(binary), str(config)],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(process, port, "QuickFIX's executor")
        yield Route(name="bench", host="127.0.0.1", port=port, target="EXECUTOR", reconnect=0.2)
    finally:
        stop(process)


# ── the round trip, timed from inside ────────────────────────────────────────


@dataclass(slots=True)
class Watch:
    """When the first order went and the last booking ended, and what the gateway's
    calls to the store took (perf_counter seconds)."""

    first_sent: float | None = None
    last_booked: float = 0.0
    storing: float = 0.0  # an order's message stored and the order marked sent
    advancing: float = 0.0  # the next expected sequence number stored, a message in
    booking: float = 0.0  # book_report
    finishing: float = 0.0  # finish_executed after a block's allocation
    sweep: float = 0.0  # the last finish_executed of the run, over everything
    reports: int = 0
    commits: int = 0


@contextlib.contextmanager
def watched(engine: sa.Engine, watch: Watch) -> Iterator[None]:
    """The gateway's calls to the store timed (the names it looks up when it calls)."""
    names = vars(gateway_module)
    real = {name: names[name] for name in ("SessionRows", "book_reports", "finish_executed")}

    class Rows(real["SessionRows"]):  # type: ignore[misc, name-defined]
        def save_outbound(self, seq: int, raw: bytes, extra: object = None) -> None:
            start = time.perf_counter()
            if watch.first_sent is None and callable(extra):
                watch.first_sent = start
            super().save_outbound(seq, raw, extra)
            watch.storing += time.perf_counter() - start

        def save_outbound_many(self, items: Any) -> None:
            start = time.perf_counter()
            if watch.first_sent is None and items:
                watch.first_sent = start
            super().save_outbound_many(items)
            watch.storing += time.perf_counter() - start

        def set_next_target(self, seq: int) -> None:
            start = time.perf_counter()
            super().set_next_target(seq)
            watch.advancing += time.perf_counter() - start

    def book(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        booked = real["book_reports"](*args, **kwargs)
        watch.last_booked = time.perf_counter()
        watch.booking += watch.last_booked - start
        watch.reports += len(booked)
        return booked

    def finish(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        done = real["finish_executed"](*args, **kwargs)
        end = time.perf_counter()
        if kwargs.get("block_ids") is None:
            watch.sweep += end - start
        else:
            watch.last_booked = end
            watch.finishing += end - start
        return done

    def committed(_connection: Any) -> None:
        watch.commits += 1

    sa.event.listen(engine, "commit", committed)
    names.update(SessionRows=Rows, book_reports=book, finish_executed=finish)
    try:
        yield
    finally:
        names.update(real)
        sa.event.remove(engine, "commit", committed)


@dataclass(frozen=True, slots=True)
class Trip:
    backend: str
    counterparty: str
    orders: int
    lines: int
    plan: float
    span: float  # first order stored as sent to the last booking's end
    total: float  # run_routes, from its call to its return (logon and logout included)
    watch: Watch
    load: str
    done: int  # blocks filled
    complete: bool  # every block filled and allocated, every proposal executed, fills once
    logons: int
    warnings: tuple[str, ...]

    @property
    def session(self) -> str:
        said = f"{self.logons} logon{'s' if self.logons != 1 else ''}"
        stale = sum("SendingTime accuracy" in w for w in self.warnings)
        if stale:
            said += f", {stale} report{'s' if stale != 1 else ''} rejected as stale"
        others = len(self.warnings) - stale
        return said + (f", {others} other warnings" if others else "")

    def markdown(self) -> str:
        w = self.watch
        if not self.complete:
            return (
                f"| {TODAY} | {NAMES[self.backend]} | {NAMES[self.counterparty]}"
                f" | {self.orders:,} | {self.lines:,} | {self.plan:.2f} | cut at"
                f" {self.total:.0f} s: {self.done:,} blocks filled, the last booked at"
                f" {self.span:.2f} s | ({self.done / self.span:,.0f}) | | | | | | |"
                f" | {self.session} | {self.load} |"
            )
        rest = self.span - w.storing - w.advancing - w.booking - w.finishing
        rate = self.orders / self.span
        return (
            f"| {TODAY} | {NAMES[self.backend]} | {NAMES[self.counterparty]} | {self.orders:,}"
            f" | {self.lines:,} | {self.plan:.2f} | {self.span:.2f} | {rate:,.0f}"
            f" | {w.storing:.2f} | {w.advancing:.2f} | {w.booking:.2f} | {w.finishing:.2f}"
            f" | {rest:.2f} | {w.reports / self.orders:.0f} | {w.commits / self.orders:.1f}"
            f" | {self.session} | {self.load} |"
        )


NAMES = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "inprocess": "simulated, in-process",
    "process": "`poise broker` process",
    "quickfix": "QuickFIX executor",
}
HEADER = (
    "| date | database | counterparty | orders | lines | plan s | round trip s | orders/s"
    " | storing s | seq in s | booking s | executed s | rest s | reports/order | commits/order"
    " | session | load |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


def code() -> str:
    """Which poise was measured: its folder, and in a checkout its commit and whether
    execution's code differed from it (uncommitted changes)."""
    import poise  # noqa: PLC0415

    src = Path(poise.__file__).resolve().parents[1]

    def git(*args: str) -> str:
        found = subprocess.run(
            ["git", "-C", str(src), *args], capture_output=True, text=True, check=False
        )
        return found.stdout.strip() if found.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"poise from {src}"
    changed = git("status", "--porcelain", "--", "poise/workflow", "poise/execute", "poise/store")
    dirty = f", with uncommitted changes to {len(changed.splitlines())} file(s)" if changed else ""
    return f"poise from {src} at {commit}{dirty}"


def load() -> str:
    """The machine's load average over the last minute."""
    return f"{os.getloadavg()[0]:.1f}"


def bench_policy(orders: int) -> Policy:
    base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    limits = Limits(
        max_orders=orders, max_notional=Decimal(10_000_000_000), collar=base.limits.collar
    )
    route = Route(name="bench", host="127.0.0.1", port=9878)  # the port is the run's
    return Policy(crossing=base.crossing, blocks=base.blocks, limits=limits, routes=(route,))


def booked(engine: sa.Engine) -> tuple[int, int, int, int, int]:
    """(blocks filled, orders with a fill, fills, allocations, proposals executed)."""
    e, b, p = t.executions, t.block_orders, t.proposals
    queries = [
        sa.select(sa.func.count()).select_from(b).where(b.c.status == "filled"),
        sa.select(sa.func.count(sa.distinct(e.c.cl_ord_id))).where(e.c.exec_type == "F"),
        sa.select(sa.func.count()).select_from(e).where(e.c.exec_type == "F"),
        sa.select(sa.func.count()).select_from(t.allocations),
        sa.select(sa.func.count()).select_from(p).where(p.c.status == "executed"),
    ]
    with engine.connect() as connection:
        filled, orders, fills, allocated, executed = (
            int(connection.execute(query).scalar_one()) for query in queries
        )
    return filled, orders, fills, allocated, executed


class Heard(logging.Handler):
    """The session's and the gateway's warnings (rejects, logouts), and its logons."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.warnings: list[str] = []
        self.logons = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())
        elif record.getMessage().endswith("logged on"):
            self.logons += 1


@contextlib.contextmanager
def heard(handler: Heard) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("poise.fix", "poise.gateway")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = True


def round_trip(
    backend: str,
    kind: str,
    orders: int,
    per_block: int,
    *,
    postgres: str,
    wait: float,
    profile: cProfile.Profile | None = None,
) -> Trip:
    started = load()
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp), postgres) as (e, url):
        actor = order_firm(e, orders, per_block)
        analyse(e)
        start = time.perf_counter()
        batch = plan_batch(e, policy=bench_policy(orders), actor=actor, at=MADE)
        plan = time.perf_counter() - start
        assert len(batch.blocks) == orders, len(batch.blocks)
        watch, handler = Watch(), Heard()

        async def trip() -> float:
            async with counterparty(kind, Path(tmp), url, orders) as route:
                begun = time.perf_counter()
                if profile is not None:
                    profile.enable()
                try:
                    await gateway_module.run_routes(e, [route], wait=wait, ack=wait)
                finally:
                    if profile is not None:
                        profile.disable()
                return time.perf_counter() - begun

        with watched(e, watch), heard(handler):
            total = asyncio.run(trip())
        found = booked(e)
        lines = orders * per_block
        assert watch.first_sent is not None
        return Trip(
            backend=backend,
            counterparty=kind,
            orders=orders,
            lines=lines,
            plan=plan,
            span=watch.last_booked - watch.first_sent,
            total=total,
            watch=watch,
            load=f"{started}–{load()}",
            done=found[0],
            complete=found == (orders, orders, orders, lines, lines),
            logons=handler.logons,
            warnings=tuple(handler.warnings),
        )


# ── the floor: the session layer alone ────────────────────────────────────────


class Counted:
    """A session's application that only reads each report into its type and counts the
    orders filled."""

    def __init__(self, orders: int) -> None:
        self.left = orders
        self.filled = asyncio.Event()

    async def on_logon(self) -> None:
        return None

    async def on_logout(self, reason: str) -> None:
        return None

    async def on_message(self, message: Any, *, possdup: bool) -> None:
        typed = parse_application(message)
        if isinstance(typed, ExecutionReport) and typed.ord_status is OrdStatus.FILLED:
            self.left -= 1
            if not self.left:
                self.filled.set()


def floor(kind: str, orders: int, folder: Path, url: str) -> str:
    """``orders`` NewOrderSingles sent and their fills heard over the same session layer
    and counterparty, with nothing stored (the session's store in memory, no booking):
    what the wire, the counterparty and the session layer cost without the database."""
    folder.mkdir()
    counted = Counted(orders)

    async def trip() -> tuple[float, float]:
        async with counterparty(kind, folder, url, orders) as route:
            config = SessionConfig(
                sender_comp_id=route.sender,
                target_comp_id=route.target,
                role=SessionRole.INITIATOR,
                reconnect_interval=0.2,
            )
            session = Session(config, MemoryStore(), counted)
            initiator = Initiator(session, route.host, route.port)
            initiator.start()
            try:
                await session.wait_logged_on(timeout=10)
                start, busy = time.perf_counter(), time.process_time()
                for n in range(orders):
                    await session.send(
                        NewOrderSingle(
                            cl_ord_id=f"F{n:06d}",
                            account="POISE",
                            symbol=f"S{n:05d}",
                            side=FixSide.BUY,
                            order_qty=Decimal(10 + n % 90),
                            transact_time=datetime.now(UTC),
                            ord_type=FixOrdType.LIMIT,
                            price=Decimal("25.50"),
                        ).to_fix()
                    )
                await asyncio.wait_for(counted.filled.wait(), 600)
                return time.perf_counter() - start, time.process_time() - busy
            finally:
                await initiator.stop("done")

    seconds, busy = asyncio.run(trip())
    return (
        f"| {TODAY} | — | {NAMES[kind]} | {orders:,} | — | — | {seconds:.2f}"
        f" | {orders / seconds:,.0f} | the session layer alone: nothing stored, nothing"
        f" booked; this process busy {busy:.2f} s | | | | | | | | {load()} |"
    )


# ── where the time goes ───────────────────────────────────────────────────────

# (what, file the function is in, its name): cumulative time, including what it calls
PLACES = [
    ("booking reports, all of it (book_reports)", "workflow/execute.py", "book_reports"),
    ("  the orders read", "repo/execution.py", "orders_of"),
    ("  blocks allocated (read, shared out, kept, ledger)", "workflow/execute.py", "close_blocks"),
    ("    the blocks and their statements read", "workflow/execute.py", "_blocks"),
    ("    the allocations kept", "repo/execution.py", "keep_allocations"),
    ("marking proposals executed (finish_executed)", "workflow/execute.py", "finish_executed"),
    ("  the proposals marked (executed_many)", "workflow/approvals.py", "executed_many"),
    ("the audit ledger's appends (anywhere)", "audit/ledger.py", "append"),
    ("orders' messages stored, marked sent", "repo/execution.py", "save_outbound_many"),
    ("the next expected sequence number stored", "repo/execution.py", "set_next_target"),
    ("the open orders counted, at each wake (working)", "workflow/gateway.py", "working"),
    ("the outbox read and sent (send_outbox)", "workflow/gateway.py", "send_outbox"),
    ("  NewOrderSingle built (to_fix)", "fix/app.py", "to_fix"),
    ("  sealed: header, length, checksum", "fix/session.py", "seal"),
    ("messages framed as they arrive (Framer.feed)", "fix/codec.py", "feed"),
    ("the session's checks of each message (receive)", "fix/session.py", "receive"),
    ("the report read into its type (parse_application)", "fix/app.py", "parse_application"),
    ("the simulated broker (its on_message, in-process only)", "execute/broker.py", "on_message"),
]
DRIVER = [  # (what, file or builtin marker, name): time inside, all calls
    ("the database's commits", ("sqlite3.Connection", "psycopg/connection.py"), "commit"),
    ("statements run by the driver", ("sqlite3.Cursor", "psycopg/cursor.py"), "execute"),
    ("statements run by the driver, many rows", ("sqlite3.Cursor", "psycopg/cursor.py"),
     "executemany"),
    ("fsync (the broker's session file)", ("posix",), "fsync"),
]  # fmt: skip


def places(profile: cProfile.Profile, span: float) -> list[str]:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())

    def cumulative(where: tuple[str, ...], name: str) -> tuple[float, int]:
        seconds, calls = 0.0, 0
        builtin = (
            f"<method '{name}'",
            f"<built-in method {name}>",
            f"<built-in method posix.{name}>",
        )
        for (path, _, function), (_, ncalls, _, ct, _) in stats.items():
            if any(w in path or w in function for w in where) and (
                function == name or function.startswith(builtin)
            ):
                seconds += ct
                calls += ncalls
        return seconds, calls

    rows = [
        f"profiled: {total:.2f} s in the run's process, by the wall clock as cProfile counts"
        f" it (waits for the database and the network included; the round trip took"
        f" {span:.2f} s under the profiler)",
        "",
        "| where | calls | seconds | share |",
        "|---|---:|---:|---:|",
    ]
    for what, path, name in PLACES:
        seconds, calls = cumulative((path,), name)
        if calls:
            rows.append(f"| {what} | {calls:,} | {seconds:.2f} | {seconds / total:.0%} |")
    for what, where, name in DRIVER:
        seconds, calls = cumulative(where, name)
        if calls:
            rows.append(f"| {what} | {calls:,} | {seconds:.2f} | {seconds / total:.0%} |")
    rows += ["", "Most time in the function itself:", "", TOP, "|---|---:|---:|---:|"]
    return rows + top(profile, 15)


# ── crossing a firm-wide run's trades ─────────────────────────────────────────


PARTS = {
    "released_trades": "the released trades read",
    "references": "their prices read",
    "cross": "crossed",
    "blocks": "blocked",
    "keep_batch": "the batch kept (crosses, legs, blocks, statements, orders, outbox)",
    "append_many": "the ledger's entries appended",
}


@contextlib.contextmanager
def parts_timed(parts: dict[str, float]) -> Iterator[None]:
    """``plan_batch``'s steps timed (the names it looks up when it is called)."""
    names = vars(execute_module)
    real = {name: names[name] for name in PARTS}

    def timing(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return real[name](*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - start

        return call

    names.update({name: timing(name) for name in PARTS})
    try:
        yield
    finally:
        names.update(real)


def crossing(households: int, repeat: int) -> list[str]:
    """The demo firm's run replayed into a fresh copy, released, crossed and blocked."""
    from firm_run import Replay, fresh_copy, kept_plans, one_run  # noqa: PLC0415

    with fresh_copy("sqlite", households) as engine:
        row = one_run(engine, "sqlite", Replay(kept_plans(households)), "replay")
        gc.collect()  # the plans let go: poise execute's process never holds them
        p = t.proposals
        with engine.begin() as connection:
            has_trades = sa.select(t.proposal_trades.c.proposal_id).distinct()
            connection.execute(
                sa.update(p)
                .where(p.c.status.in_(("proposed", "pending")))
                .where(p.c.proposal_id.in_(has_trades))
                .values(status="released")
            )
            operator = repo.add_user(connection, username="olu", role=Role.OPERATIONS)
        with engine.connect() as connection:
            start = time.perf_counter()
            trades = released_trades(connection)
            read = time.perf_counter() - start
            prices = references(
                connection, security_ids={trade.security_id for trade in trades}, as_of=None
            )
        policy = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
        routes = route_names(policy.routes, sorted({trade.custodian for trade in trades}))
        crossed: list[float] = []
        blocked: list[float] = []

        def one_pass() -> tuple[Any, ...]:
            gc.collect()
            start = time.perf_counter()
            crosses, rest, skipped = cross(trades, prices, policy.crossing, batch_id="X1")
            middle = time.perf_counter()
            made, _ = blocks(rest, prices, routes, policy.blocks, batch_id="X1")
            crossed.append(middle - start)
            blocked.append(time.perf_counter() - middle)
            return crosses, rest, skipped, made

        last: tuple[Any, ...] = ()
        for _ in range(repeat):
            last = ()  # the last pass's crosses and blocks let go before the next is timed
            last = one_pass()
        crosses, rest, skipped, made = last
        profile = cProfile.Profile()
        profile.runcall(cross, trades, prices, policy.crossing, batch_id="X1")
        legs = sum(len(c.legs) for c in crosses)
        shares = sum((c.quantity for c in crosses), ZERO)
        notional = sum((c.quantity * c.price for c in crosses), ZERO)
        market = sum((trade.quantity for trade in rest), ZERO)
        limits = Limits(
            max_orders=len(made) + 1, max_notional=Decimal(10**12), collar=policy.limits.collar
        )
        wide = Policy(crossing=policy.crossing, blocks=policy.blocks, limits=limits,
                      routes=policy.routes)  # fmt: skip
        parts: dict[str, float] = {}
        with parts_timed(parts):
            start = time.perf_counter()
            batch = plan_batch(engine, policy=wide, actor=operator.user_id, at=MADE)
            planned = time.perf_counter() - start
    assert len(batch.crosses) == len(crosses)
    assert len(batch.blocks) == len(made)
    proposals = len({trade.proposal_id for trade in trades})
    return [
        "| date | accounts | released proposals | trades in | read s | crosses | legs"
        " | shares crossed | notional crossed | trades skipped | shares to market"
        " | blocks | cross s | blocks s | plan_batch s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {TODAY} | {row.accounts:,} | {proposals:,} | {len(trades):,} | {read:.2f}"
        f" | {len(crosses)} | {legs:,} | {shares:,.0f} | ${notional:,.0f} | {len(skipped):,}"
        f" | {market:,.0f} | {len(made)} | {min(crossed):.3f} | {min(blocked):.3f}"
        f" | {planned:.2f} |",
        "",
        f"plan_batch {planned:.2f} s: "
        + ", ".join(f"{PARTS[name]} {seconds:.2f} s" for name, seconds in parts.items())
        + f"; the rest (the limits checked, the transaction's commit)"
        f" {planned - sum(parts.values()):.2f} s.",
        "",
        "Where cross spends its time (cProfile, one call; own time):",
        "",
        TOP,
        "|---|---:|---:|---:|",
        *top(profile, 10),
    ]


TOP = "| function | calls | own s | with what it calls s |"


def top(profile: cProfile.Profile, count: int) -> list[str]:
    """The ``count`` functions with the most time in themselves, as Markdown rows."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    rows = []
    for (path, line, function), (_, ncalls, tt, ct, _) in ranked:
        short = "/".join(Path(path).parts[-2:]) if path != "~" else ""
        rows.append(f"| `{short}:{line} {function}` | {ncalls:,} | {tt:.2f} | {ct:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--orders", type=int, nargs="*", default=[1_000], help="blocks (none: no round trips)"
    )
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--counterparties",
        nargs="+",
        default=["inprocess", "process", "quickfix"],
        choices=["inprocess", "process", "quickfix"],
    )
    parser.add_argument(
        "--floor", type=int, default=2_000, help="orders for the session layer alone (0: none)"
    )
    parser.add_argument("--per-block", type=int, default=2, help="accounts in each block")
    parser.add_argument("--profile", type=int, default=500, help="orders profiled (0: none)")
    parser.add_argument(
        "--wait", type=float, default=300, help="seconds a round trip may take before it is cut"
    )
    parser.add_argument("--households", type=int, default=4040, help="the crossing's firm")
    parser.add_argument("--repeat", type=int, default=3, help="crossings timed (best kept)")
    parser.add_argument("--no-crossing", action="store_true")
    parser.add_argument("--postgres", default=POSTGRES, help="URL")
    args = parser.parse_args()
    if "quickfix" in args.counterparties and not EXECUTOR.exists():
        print(f"{EXECUTOR} is missing (apt install libquickfix-doc): not run", file=sys.stderr)
        args.counterparties.remove("quickfix")

    floors = []
    if args.floor:
        with tempfile.TemporaryDirectory() as tmp, database("sqlite", Path(tmp), "") as (e, url):
            order_firm(e, args.floor, 1)  # the prices poise broker answers at
            for kind in args.counterparties:
                floors.append(floor(kind, args.floor, Path(tmp) / kind, url))
                print(floors[-1], file=sys.stderr, flush=True)
    trips = []
    for orders in args.orders:
        for backend in args.backends:
            for kind in args.counterparties:
                trip = round_trip(
                    backend, kind, orders, args.per_block, postgres=args.postgres, wait=args.wait
                )
                trips.append(trip)
                print(trip.markdown(), file=sys.stderr, flush=True)
                for warning in trip.warnings:
                    print(f"  {warning}", file=sys.stderr)
    print(code())
    print(HEADER)
    for trip in trips:
        print(trip.markdown())
    for row in floors:
        print(row)
    if args.profile:
        kind = "quickfix" if EXECUTOR.exists() else "inprocess"
        for backend in args.backends:
            profile = cProfile.Profile()
            trip = round_trip(
                backend, kind, args.profile, args.per_block, postgres=args.postgres,
                wait=args.wait, profile=profile,
            )  # fmt: skip
            print(f"\n{NAMES[backend]}, {NAMES[kind]}, {args.profile:,} orders, profiled:\n")
            print("\n".join(places(profile, trip.span)))
    if not args.no_crossing:
        print()
        print("\n".join(crossing(args.households, args.repeat)))


if __name__ == "__main__":
    main()
