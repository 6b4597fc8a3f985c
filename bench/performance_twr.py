"""Benchmark: daily time-weighted returns of a firm's accounts over three years.

    .venv/bin/python bench/performance_twr.py [--accounts 10000] [--years 3]
        [--securities 40] [--lots 20] [--trades 15] [--repeat 3]

A synthetic firm is written to a fresh SQLite store: ``--accounts`` accounts in
households of two or three, each holding ``--lots`` lots of ``--securities`` securities
and cash; every weekday of ``--years`` years priced (a random walk each); and per
account ``--trades`` buys and sells over the span plus a deposit or withdrawal each
quarter for one account in four. Then, timed (best of ``--repeat``):

1. **read**: ``load_book`` — every account's lots and cash, the span's transactions,
   the daily closes — read once, as arrays;
2. **accounts**: ``performance`` at the account level — every account valued on every
   day (the books walked back through the transactions), daily returns, the span's TWR,
   MTD/QTD/YTD/1y/3y and since inception, volatility, drawdown;
3. **households, models, the firm**: the same for the accounts added up by group (the
   accounts' daily values reused).

Target (issue 15): daily TWR of 10,000 accounts over 3 years in ≤ 5 s. The check: one
account's TWR from the arrays equals the same account's, valued day by day in exact
decimals by the household page's own history (``poise.report.client``), linked.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from poise.report.client import shares_of, value_over_time
from poise.report.performance import link
from poise.report.valuation import value_book
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.store.repo.history import daily_closes
from poise.workflow.performance import load_book, performance

ZERO = Decimal(0)


def weekdays(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)
            if (start + timedelta(days=i)).weekday() < 5]  # fmt: skip


def build(engine: sa.Engine, args: argparse.Namespace) -> tuple[date, date]:
    """The synthetic firm; the span's first and last day."""
    rng = random.Random(7)
    end = date(2026, 11, 30)
    start = end - timedelta(days=round(365.25 * args.years))
    days = weekdays(start - timedelta(days=7), end)
    securities = [f"S{i:03d}" for i in range(args.securities)]
    walk = np.random.default_rng(7).normal(0.0003, 0.012, (len(securities), len(days)))
    closes = 50 * np.exp(np.cumsum(walk, axis=1))
    prices = [
        {"security_id": s, "as_of": datetime.combine(d, clock(21), tzinfo=UTC), "source": "close",
         "price": Decimal(f"{closes[i, j]:.2f}")}
        for i, s in enumerate(securities) for j, d in enumerate(days)
    ]  # fmt: skip
    households, accounts, lots, moves = [], [], [], []
    n = 0
    while n < args.accounts:
        h = f"H{len(households):05d}"
        households.append({"household_id": h, "name": h})
        for _ in range(min(rng.choice((2, 3)), args.accounts - n)):
            a = f"A{n:06d}"
            n += 1
            accounts.append(
                {"account_id": a, "household_id": h, "registration": "taxable",
                 "custodian": "Schwab", "model_id": f"M{n % 5}",
                 "cash": Decimal(rng.randrange(1_000, 50_000)), "reserve_amount": ZERO,
                 "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO, "state_rate": ZERO,
                 "harvest": False}
            )  # fmt: skip
            for k in range(args.lots):
                lots.append(
                    {"account_id": a, "lot_id": f"L{k}", "security_id": rng.choice(securities),
                     "quantity": Decimal(rng.randrange(10, 400)),
                     "cost_basis": Decimal(rng.randrange(500, 20_000)),
                     "acquired": start - timedelta(days=rng.randrange(1, 2_000)),
                     "disallowed_loss": ZERO}
                )  # fmt: skip
            for k in range(args.trades):
                day = rng.choice(days[5:])
                kind = rng.choice(("buy", "sell"))
                moves.append(
                    {"account_id": a, "txn_id": f"T{k}", "kind": kind, "trade_date": day,
                     "settle_date": day, "security_id": rng.choice(securities),
                     "quantity": Decimal(rng.randrange(1, 20)),
                     "amount": Decimal(rng.randrange(100, 2_000))}
                )  # fmt: skip
            if n % 4 == 0:
                for q, day in enumerate(days[5::63]):
                    kind = "deposit" if q % 2 == 0 else "withdrawal"
                    moves.append(
                        {"account_id": a, "txn_id": f"C{q}", "kind": kind, "trade_date": day,
                         "settle_date": day, "security_id": None, "quantity": ZERO,
                         "amount": Decimal(rng.randrange(500, 5_000))}
                    )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(t.securities), [
            {"security_id": s, "symbol": s, "name": s, "kind": "etf", "asset_class": "equity",
             "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
            for s in securities
        ])  # fmt: skip
        connection.execute(sa.insert(t.households), households)
        connection.execute(sa.insert(t.accounts), accounts)
        connection.execute(sa.insert(t.lots), lots)
        connection.execute(sa.insert(t.transactions), moves)
        connection.execute(sa.insert(t.prices), prices)
    return start, end


def exact_twr(engine: sa.Engine, account_id: str, start: date, end: date) -> float:
    """One account's TWR valued day by day in decimals by the household page's
    history, linked: each day's value over the day before's plus the money added."""
    with engine.connect() as connection:
        lots = repo.lots(connection, account_ids=[account_id])
        account = repo.account(connection, account_id=account_id)
        household = repo.household_transactions(
            connection, household_id=account.household_id, since=start
        )
        moves = [x for x in household if x.account_id == account_id]
        names = {lot.security_id for lot in lots} | {x.security_id for x in moves if x.security_id}
        closes = daily_closes(connection, security_ids=names, since=start, until=end)
    days = sorted(closes)
    history = value_over_time(held=shares_of(lots), cash=account.cash, transactions=moves,
                              closes=closes, days=days)  # fmt: skip
    points = history.points
    returns = [
        float(now.value / (before.value + now.added)) - 1
        for before, now in itertools.pairwise(points)
    ]
    return float(link(np.array(returns)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--years", type=float, default=3)
    parser.add_argument("--securities", type=int, default=40)
    parser.add_argument("--lots", type=int, default=20)
    parser.add_argument("--trades", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'poise.db'}")
        upgrade(engine)
        began = time.perf_counter()
        start, end = build(engine, args)
        print(f"firm written in {time.perf_counter() - began:.1f} s")
        timings: dict[str, float] = {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            with engine.connect() as connection:
                book, groups = load_book(connection, start=start, end=end)
            t1 = time.perf_counter()
            valued = value_book(book)
            accounts = performance(book, groups, valued=valued)
            t2 = time.perf_counter()
            for level in ("household", "model", "firm"):
                performance(book, groups, level=level, valued=valued)
            t3 = time.perf_counter()
            for name, seconds in (("read", t1 - t0), ("accounts", t2 - t1), ("groups", t3 - t2)):
                timings[name] = min(timings.get(name, float("inf")), seconds)
        sample = book.accounts[len(book.accounts) // 2]
        exact = exact_twr(engine, sample, start, end)
        ours = float(accounts.twr[book.accounts.index(sample)])
        total = timings["read"] + timings["accounts"]
        days = len(accounts.days) + 1
        moves = len(book.moves)
        print(
            "| date | accounts | days | transactions | read s | accounts s | households, models,"
            " firm s | read + accounts s | target | load |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        mark = "✓" if total <= 5 else "✗"
        print(
            f"| {datetime.now(UTC).date()} | {len(book.accounts):,} | {days:,} | {moves:,} |"
            f" {timings['read']:.2f} | {timings['accounts']:.2f} | {timings['groups']:.2f} |"
            f" {total:.2f} | ≤ 5 s {mark} | {os.getloadavg()[0]:.1f} |"
        )
        print(
            f"\ncheck: account {sample} TWR {ours:.10f} from the arrays, {exact:.10f} in"
            f" decimals by the household page's history (difference {abs(ours - exact):.1e})"
        )


if __name__ == "__main__":
    main()
