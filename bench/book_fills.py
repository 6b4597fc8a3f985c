"""Benchmark: booking fills into the books (``poise reconcile``).

    .venv/bin/python bench/book_fills.py [--accounts 10000] [--fills 100000]
        [--sells 0.4] [--lots 10] [--backends sqlite postgres] [--postgres URL]

A firm of ``--accounts`` accounts (households of two), each holding ``--lots`` lots of
20 securities; ``--fills`` allocations of filled block orders written as ``poise
execute`` leaves them — a share ``--sells`` of them sales naming the lots they relieve,
the rest buys — none yet booked. Then ``book_fills`` is timed: every allocation read,
booked per account (lots, transactions, realised gains, closed lots, cash), kept, and
the households with both buys and sales washed again, in one transaction. Checked after:
every allocation booked, each once; shares and cash moved as the allocations say.

Target (issue 15): booking fills ≥ 20,000 fills/s.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from poise.domain.money import cents
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.books import book_fills

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ZERO = Decimal(0)
AT = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def build(engine: sa.Engine, args: argparse.Namespace) -> tuple[Decimal, dict[str, Decimal]]:
    """The firm and its allocations; the cash they move, and the shares by security."""
    rng = random.Random(11)
    securities = [f"S{i:02d}" for i in range(20)]
    accounts = [f"A{i:06d}" for i in range(args.accounts)]
    lots: dict[str, list[dict[str, object]]] = {}
    for a in accounts:
        lots[a] = [
            {"account_id": a, "lot_id": f"L{k}", "security_id": rng.choice(securities),
             "quantity": Decimal(rng.randrange(50, 500)),
             "cost_basis": Decimal(rng.randrange(1_000, 50_000)),
             "acquired": date(2020 + rng.randrange(6), 1 + rng.randrange(12), 1),
             "disallowed_loss": ZERO}
            for k in range(args.lots)
        ]  # fmt: skip
    blocks, allocations = [], []
    cash = ZERO
    moved: dict[str, Decimal] = {}
    left = {(a, str(lot["lot_id"])): Decimal(str(lot["quantity"])) for a in accounts
            for lot in lots[a]}  # fmt: skip
    for n in range(args.fills):
        a = accounts[n % len(accounts)]
        price = Decimal(rng.randrange(2_000, 40_000)) / 100
        commission = Decimal(rng.randrange(0, 500)) / 100
        sell = rng.random() < args.sells
        block = f"B{n:07d}"
        if sell:
            lot = rng.choice(lots[a])
            key = (a, str(lot["lot_id"]))
            if left[key] < 2:
                sell = False
        if sell:
            security = str(lot["security_id"])
            quantity = Decimal(rng.randrange(1, int(left[key] // 2) + 1))
            left[key] -= quantity
            instructions = f'[{{"lot_id": "{lot["lot_id"]}", "quantity": "{quantity}"}}]'
        else:
            security = rng.choice(securities)
            quantity = Decimal(rng.randrange(1, 100))
            instructions = "[]"
        gross = cents(quantity * price)
        net = gross - commission if sell else gross + commission
        cash += net if sell else -net
        moved[security] = moved.get(security, ZERO) + (-quantity if sell else quantity)
        side = "sell" if sell else "buy"
        blocks.append(
            {"block_id": block, "batch_id": "X1", "route": "bench", "security_id": security,
             "side": side, "quantity": quantity, "ord_type": "limit", "limit_price": price,
             "reference": price, "status": "filled", "filled": quantity, "allocated_at": AT}
        )  # fmt: skip
        allocations.append(
            {"block_id": block, "proposal_id": f"P{n}", "seq": 1, "account_id": a, "side": side,
             "quantity": quantity, "price": price, "gross": gross, "commission": commission,
             "net": net, "lots": instructions, "at": AT}
        )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(t.securities), [
            {"security_id": s, "symbol": s, "name": s, "kind": "etf", "asset_class": "equity",
             "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
            for s in securities
        ])  # fmt: skip
        connection.execute(sa.insert(t.households), [
            {"household_id": f"H{i // 2:06d}", "name": "h"} for i in range(0, len(accounts), 2)
        ])  # fmt: skip
        connection.execute(sa.insert(t.accounts), [
            {"account_id": a, "household_id": f"H{i // 2:06d}", "registration": "taxable",
             "custodian": "Schwab", "cash": Decimal(1_000_000), "reserve_amount": ZERO,
             "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO, "state_rate": ZERO,
             "harvest": False}
            for i, a in enumerate(accounts)
        ])  # fmt: skip
        connection.execute(sa.insert(t.lots), [lot for a in accounts for lot in lots[a]])
        connection.execute(
            sa.insert(t.execution_batches),
            {"batch_id": "X1", "created_at": AT, "created_by": "bench", "policy": "{}"},
        )
        connection.execute(sa.insert(t.block_orders), blocks)
        connection.execute(sa.insert(t.allocations), allocations)
    return cash, moved


def totals(engine: sa.Engine) -> tuple[Decimal, dict[str, Decimal], int]:
    with engine.connect() as connection:
        cash = sum(connection.execute(sa.select(t.accounts.c.cash)).scalars(), ZERO)
        held: dict[str, Decimal] = {}
        for security, quantity in connection.execute(
            sa.select(t.lots.c.security_id, t.lots.c.quantity)
        ):
            held[security] = held.get(security, ZERO) + quantity
        unbooked = (
            connection.execute(sa.select(sa.func.count()).select_from(t.allocations)).scalar_one()
            - connection.execute(
                sa.select(sa.func.count()).select_from(t.booked_allocations)
            ).scalar_one()
        )
    return cash, held, unbooked


def run(backend: str, args: argparse.Namespace, folder: Path) -> str:
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
    else:
        admin = make_engine(args.postgres)
        with admin.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS bench_books CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA bench_books")
        admin.dispose()
        separator = "&" if "?" in args.postgres else "?"
        engine = make_engine(f"{args.postgres}{separator}options=-csearch_path%3Dbench_books")
    upgrade(engine)
    cash, moved = build(engine, args)
    before_cash, before_held, _ = totals(engine)
    started = time.perf_counter()
    done = book_fills(engine, at=AT)
    seconds = time.perf_counter() - started
    after_cash, after_held, unbooked = totals(engine)
    assert unbooked == 0, unbooked
    assert not done.refused, done.refused[:3]
    assert after_cash - before_cash == cash
    for security, shares in moved.items():
        assert after_held.get(security, ZERO) - before_held.get(security, ZERO) == shares
    again = book_fills(engine, at=AT)
    assert again.transactions == 0
    rate = args.fills / seconds
    mark = "✓" if rate >= 20_000 else "✗"
    return (
        f"| {datetime.now(UTC).date()} | {'SQLite' if backend == 'sqlite' else 'PostgreSQL'} |"
        f" {args.accounts:,} | {args.fills:,} | {done.realised:,} | {done.washed:,} |"
        f" {seconds:.2f} | {rate:,.0f} | ≥ 20,000 {mark} | {os.getloadavg()[0]:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--fills", type=int, default=100_000)
    parser.add_argument("--sells", type=float, default=0.4)
    parser.add_argument("--lots", type=int, default=10)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args()
    print("| date | database | accounts | fills | lots sold | lot rows washed | seconds |"
          " fills/s | target | load |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as folder:
            print(run(backend, args, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
