"""The whole loop on the demo firm (``poise demo``, after the firm is loaded): the
monitor's view, a firm-wide rebalance, the demo's portfolio managers approving and
operations releasing, execution — crosses, block orders, FIX to the simulated broker
started in this process — the fills booked, the custodian's file made from the broker's
side and reconciled, and the reports. Each stage is timed; the same functions the
commands call do the work."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from poise.demo.custodian import Instruction, broker_filled, custodian_positions, write_positions
from poise.domain.approvals import Act
from poise.domain.calendar import TRADING_ZONE, is_settlement_day, trade_date
from poise.domain.errors import PoiseError
from poise.domain.money import ZERO
from poise.domain.relief import Method
from poise.execute.broker import Behaviour, BrokerServer
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.store import FileStore
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.repo.prices import prices_by_name
from poise.workflow import approvals
from poise.workflow.books import book_fills
from poise.workflow.custodian import reconcile_custodian
from poise.workflow.execute import plan_batch
from poise.workflow.execute import policy_of as execution_policy
from poise.workflow.gateway import run_routes
from poise.workflow.ingest import ingest_paths
from poise.workflow.monitor import evaluate, load_state, watch_settings
from poise.workflow.performance import load_book, performance
from poise.workflow.run import RunOptions, Selection, rebalance_run
from poise.workflow.statements import latest_quarter, write_statements

__all__ = ["STAGES", "StageDone", "run_loop"]

STAGES = ("monitor", "rebalance", "approve", "execute", "reconcile", "report", "statements")
STATEMENTS = 5  # households the demo prints a statement for: the demo adviser's
APPROVERS = ("pm", "cio")  # the demo's portfolio managers (poise.workflow.demo_users)


@dataclass(frozen=True, slots=True)
class StageDone:
    name: str
    seconds: float
    said: str
    figures: dict[str, object]


def _monitor(engine: sa.Engine, as_of: datetime, settings: Settings) -> StageDone:
    state = load_state(engine, as_of=as_of)
    found = evaluate(state, at=as_of, settings=watch_settings(settings))
    held = len({h.account_id for h in found.holds.holds})
    figures: dict[str, object] = {"accounts_held": held, "requests": len(found.requests)}
    return StageDone("monitor", 0, f"{held} account(s) held, {len(found.requests)} rebalance"
                     " request(s) raised", figures)  # fmt: skip


def _rebalance(engine: sa.Engine, as_of: datetime, settings: Settings) -> tuple[StageDone, str]:
    report = rebalance_run(
        engine, as_of=as_of, selection=Selection(all=True), settings=settings,
        options=RunOptions(method="optimize"),
    )  # fmt: skip
    said = (
        f"{report.done} household(s), {report.proposals} proposal(s), {report.trades} trade(s);"
        f" estimated tax {report.estimated_tax:,.2f}, losses harvested {report.harvested:,.2f}"
    )
    figures: dict[str, object] = {
        "households": report.done, "trades": report.trades,
        "estimated_tax": str(report.estimated_tax), "harvested": str(report.harvested),
    }  # fmt: skip
    return StageDone("rebalance", 0, said, figures), report.run_id


def _approve(engine: sa.Engine, run_id: str, as_of: datetime, settings: Settings) -> StageDone:
    with engine.connect() as connection:
        people = {u.username: u for u in repo.users(connection)}
        units = [
            row.proposal_id
            for row in connection.execute(
                sa.select(
                    t.household_proposals.c.proposal_id, t.household_proposals.c.status
                ).where(t.household_proposals.c.run_id == run_id)
            )
            if row.status == "pending"
        ]
    missing = [name for name in (*APPROVERS, "ops") if name not in people]
    if missing:
        raise PoiseError(
            f"the demo's users {', '.join(missing)} are missing: run poise demo --reset"
        )
    policy = approvals.policy_of(settings)
    soon = as_of + timedelta(hours=1)
    released = 0
    for unit in units:
        for name in APPROVERS:
            outcome = approvals.act(engine, proposal_id=unit, what=Act.APPROVE, user=people[name],
                          policy=policy, at=soon)  # fmt: skip
            if outcome.status.value == "approved":
                break
        outcome = approvals.act(engine, proposal_id=unit, what=Act.RELEASE, user=people["ops"],
                      policy=policy, at=soon)  # fmt: skip
        released += outcome.status.value == "released"
    said = (
        f"{released} of {len(units)} household proposal(s) approved by pm and cio, released by ops"
    )
    return StageDone("approve", 0, said, {"pending": len(units), "released": released})


def _holdings(engine: sa.Engine) -> dict[tuple[str, str], Decimal]:
    with engine.connect() as connection:
        held: dict[tuple[str, str], Decimal] = {}
        for lot in repo.lots(connection):
            key = (lot.account_id, lot.security_id)
            held[key] = held.get(key, ZERO) + lot.quantity
    return held


def trading_time(as_of: datetime) -> datetime:
    """When the demo trades: 10:00 in New York on the first trading day after its last
    close — so that its fills, lots and statements fall on a day of its own history."""
    day = as_of.astimezone(TRADING_ZONE).date() + timedelta(days=1)
    while not is_settlement_day(day):
        day += timedelta(days=1)
    return datetime.combine(day, clock_time(10), tzinfo=TRADING_ZONE).astimezone(UTC)


def _execute(engine: sa.Engine, settings: Settings, folder: Path, at: datetime) -> StageDone:
    with engine.connect() as connection:
        ops = repo.user_by_username(connection, username="ops")
        prices = prices_by_name(connection)
    shutil.rmtree(folder / "broker", ignore_errors=True)  # a fresh session for a fresh firm
    policy = execution_policy(settings)
    batch = plan_batch(engine, policy=policy, actor=ops.user_id if ops else "system", at=at)

    async def trade() -> int:
        config = SessionConfig(sender_comp_id="BROKER", target_comp_id="POISE",
                               role=Role.ACCEPTOR, logout_timeout=2)  # fmt: skip
        store = FileStore(folder / "broker", config.key)
        server = BrokerServer(config, store, prices.get, Behaviour())
        try:
            port = await server.start()
            routes = [replace(r, host="127.0.0.1", port=port) for r in policy.routes]
            done = await run_routes(engine, routes, wait=300, ack=settings.ack_seconds,
                                    booked=lambda: at)  # fmt: skip
            return sum(s.fills for s in done.values())
        finally:
            await server.stop("the demo is done")
            store.close()

    fills = asyncio.run(trade()) if batch.blocks else 0
    said = (
        f"{len(batch.crosses)} internal cross(es), {len(batch.blocks)} block order(s) to the"
        f" simulated broker over FIX, {fills} fill(s) back and allocated"
    )
    return StageDone("execute", 0, said, {"crosses": len(batch.crosses),
                                          "blocks": len(batch.blocks), "fills": fills})  # fmt: skip


def _reconcile(
    engine: sa.Engine,
    settings: Settings,
    folder: Path,
    before: dict[tuple[str, str], Decimal],
    at: datetime,
) -> StageDone:
    booked = book_fills(
        engine, default_method=Method(settings.relief_method), at=at, workers=settings.workers
    )
    blobs = [p.read_bytes() for p in sorted((folder / "broker").glob("*")) if p.is_file()]
    filled = broker_filled(blobs)
    with engine.connect() as connection:
        orders = dict(
            connection.execute(sa.select(t.orders.c.cl_ord_id, t.orders.c.block_id)).all()
        )
        b, s = t.block_orders, t.statement_lines
        instructions = [
            Instruction(
                r.block_id, r.security_id, r.side, r.block_quantity, r.account_id, r.quantity
            )
            for r in connection.execute(
                sa.select(s.c.block_id, b.c.security_id, b.c.side,
                          b.c.quantity.label("block_quantity"), s.c.account_id, s.c.quantity)
                .join(b, b.c.block_id == s.c.block_id)
            )
        ]  # fmt: skip
        crosses = [
            (r.account_id, r.security_id, r.side, r.quantity)
            for r in connection.execute(
                sa.select(t.cross_legs, t.crosses.c.security_id).join(
                    t.crosses, t.crosses.c.cross_id == t.cross_legs.c.cross_id
                )
            )
        ]
    blocks: dict[str, Decimal] = {}
    for order, shares in filled.items():
        if order in orders:
            blocks[orders[order]] = blocks.get(orders[order], ZERO) + shares
    day = trade_date(at)
    path = write_positions(custodian_positions(before, blocks, instructions, crosses), day,
                           folder / "custodian")  # fmt: skip
    reports = ingest_paths(engine, [path], today=day)
    if any(r.refused or r.failed for r in reports):
        raise PoiseError(
            f"the custodian's file did not load: {reports[0].refused or reports[0].failed}"
        )
    found = reconcile_custodian(engine, as_of=day, tolerance=settings.price_tolerance)
    said = (
        f"{booked.executions} fill(s) booked into {booked.accounts} account(s), realised"
        f" {booked.gain:,.2f}; the custodian's file ({path.name}): {found.accounts} account(s)"
        f" compared, {len(found.breaks)} break(s)"
    )
    return StageDone("reconcile", 0, said, {"booked": booked.executions,
                                            "breaks": len(found.breaks)})  # fmt: skip


def _report(engine: sa.Engine, as_of: datetime) -> StageDone:
    end = as_of.date()
    with engine.connect() as connection:
        book, groups = load_book(connection, start=end.replace(year=end.year - 3), end=end)
        realised = connection.execute(sa.select(sa.func.count()).select_from(t.realised_gains))
        sold = realised.scalar_one()
    firm = performance(book, groups, level="firm")
    households = performance(book, groups, level="household")
    said = (
        f"the firm's time-weighted return over three years {float(firm.twr[0]):.2%};"
        f" {len(households.names)} household(s) measured; {sold} lot sale(s) for the tax reports"
    )
    return StageDone("report", 0, said, {"firm_twr": round(float(firm.twr[0]), 6),
                                         "lots_sold": sold})  # fmt: skip


def _statements(engine: sa.Engine, settings: Settings, folder: Path) -> StageDone:
    with engine.connect() as connection:
        start, end = latest_quarter(connection)
        chosen = [h.household_id for h in repo.households(connection)][:STATEMENTS]
    url = engine.url.render_as_string(hide_password=False)
    written = write_statements(url, chosen, start=start, end=end, folder=folder,
                               benchmark=settings.benchmark)  # fmt: skip
    made = [w for w in written if w.path]
    said = f"{len(made)} quarterly statement(s) of {start} to {end}, PDF, in {folder}" + (
        f"; {len(written) - len(made)} failed: {written[0].error}"
        if len(made) < len(written)
        else ""
    )
    return StageDone(
        "statements", 0, said, {"written": len(made), "failed": len(written) - len(made)}
    )


def run_loop(
    engine: sa.Engine,
    *,
    as_of: datetime,
    settings: Settings,
    folder: Path,
    stage: Callable[[str], None] | None = None,
) -> list[StageDone]:
    """Run every stage after loading, in order, on the firm in ``engine`` as of
    ``as_of``; what each did and how long it took. ``folder``: where the broker's state
    and the custodian's files go."""
    done: list[StageDone] = []

    def timed(name: str, work: Callable[[], StageDone]) -> None:
        if stage is not None:
            stage(name)
        started = time.perf_counter()
        made = work()
        done.append(replace(made, seconds=time.perf_counter() - started))

    timed("monitor", lambda: _monitor(engine, as_of, settings))
    run: list[str] = []

    def rebalance() -> StageDone:
        made, run_id = _rebalance(engine, as_of, settings)
        run.append(run_id)
        return made

    timed("rebalance", rebalance)
    timed("approve", lambda: _approve(engine, run[0], as_of, settings))
    before = _holdings(engine)
    at = trading_time(as_of)
    timed("execute", lambda: _execute(engine, settings, folder, at))
    timed("reconcile", lambda: _reconcile(engine, settings, folder, before, at))
    timed("report", lambda: _report(engine, as_of))
    timed("statements", lambda: _statements(engine, settings, folder / "statements"))
    return done
