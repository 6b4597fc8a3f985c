"""A large booking in parts on a pool of worker processes keeps exactly what the same
booking in one process keeps — every lot, transaction, realised gain, closed lot, cash
balance, mark and ledger entry — on SQLite and PostgreSQL; and a part that fails in its
worker books nothing at all.

The firm: households of two taxable accounts holding lots of a few securities; fills
that buy and sell the same securities in both accounts of a household on one day (so
that sales at a loss wash against the other account's buys), some sales emptying their
lot."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import postgres_schema_url

from poise.domain.errors import ValidationError
from poise.domain.money import cents
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.books import BookedFills, book_fills

AT = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
ZERO = Decimal(0)
SECURITIES = ["S0", "S1", "S2", "S3"]


def build(engine: sa.Engine, *, accounts: int = 40, fills: int = 600) -> None:
    rng = random.Random(7)
    ids = [f"A{i:03d}" for i in range(accounts)]
    lots = {
        a: [{"account_id": a, "lot_id": f"L{k}", "security_id": SECURITIES[k % 4],
             "quantity": Decimal(rng.randrange(20, 200)),
             "cost_basis": Decimal(rng.randrange(1_000, 20_000)),
             "acquired": date(2021 + k % 4, 1 + k, 3), "disallowed_loss": ZERO}
            for k in range(6)]
        for a in ids
    }  # fmt: skip
    left = {(a, str(lot["lot_id"])): Decimal(str(lot["quantity"])) for a in ids for lot in lots[a]}
    blocks, allocations = [], []
    for n in range(fills):
        a = ids[n % accounts]
        price = Decimal(rng.randrange(2_000, 20_000)) / 100
        commission = Decimal(rng.randrange(0, 300)) / 100
        lot = rng.choice(lots[a])
        key = (a, str(lot["lot_id"]))
        sell = rng.random() < 0.45 and left[key] > 0
        if sell:
            security = str(lot["security_id"])
            whole = rng.random() < 0.2  # some sales empty their lot
            quantity = left[key] if whole else Decimal(rng.randrange(1, int(left[key]) + 1))
            left[key] -= quantity
            instructions = f'[{{"lot_id": "{lot["lot_id"]}", "quantity": "{quantity}"}}]'
        else:
            security = rng.choice(SECURITIES)
            quantity = Decimal(rng.randrange(1, 50))
            instructions = "[]"
        gross = cents(quantity * price)
        side = "sell" if sell else "buy"
        blocks.append(
            {"block_id": f"B{n:05d}", "batch_id": "X1", "route": "r", "security_id": security,
             "side": side, "quantity": quantity, "ord_type": "limit", "limit_price": price,
             "reference": price, "status": "filled", "filled": quantity, "allocated_at": AT}
        )  # fmt: skip
        allocations.append(
            {"block_id": f"B{n:05d}", "proposal_id": f"P{n}", "seq": 1, "account_id": a,
             "side": side, "quantity": quantity, "price": price, "gross": gross,
             "commission": commission,
             "net": gross - commission if sell else gross + commission,
             "lots": instructions, "at": AT}
        )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.insert(t.securities), [
            {"security_id": s, "symbol": s, "name": s, "kind": "etf", "asset_class": "equity",
             "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
            for s in SECURITIES
        ])  # fmt: skip
        connection.execute(sa.insert(t.households), [
            {"household_id": f"H{i // 2:03d}", "name": "h"} for i in range(0, accounts, 2)
        ])  # fmt: skip
        connection.execute(sa.insert(t.accounts), [
            {"account_id": a, "household_id": f"H{i // 2:03d}", "registration": "taxable",
             "custodian": "c", "cash": Decimal(100_000), "reserve_amount": ZERO,
             "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO, "state_rate": ZERO,
             "harvest": False}
            for i, a in enumerate(ids)
        ])  # fmt: skip
        connection.execute(sa.insert(t.lots), [lot for a in ids for lot in lots[a]])
        connection.execute(
            sa.insert(t.execution_batches),
            {"batch_id": "X1", "created_at": AT, "created_by": "t", "policy": "{}"},
        )
        connection.execute(sa.insert(t.block_orders), blocks)
        connection.execute(sa.insert(t.allocations), allocations)


def kept(engine: sa.Engine, *, lots: bool = True) -> dict[str, list[tuple[object, ...]]]:
    """Everything a booking writes, each table's rows in key order (the lots too, with
    ``lots``)."""
    e = t.audit_entries
    queries = {
        "lots": sa.select(t.lots).order_by(t.lots.c.account_id, t.lots.c.lot_id),
        "transactions": sa.select(t.transactions).order_by(
            t.transactions.c.account_id, t.transactions.c.txn_id
        ),
        "realised": sa.select(t.realised_gains).order_by(*t.realised_gains.primary_key.columns),
        "closed": sa.select(t.closed_lots).order_by(*t.closed_lots.primary_key.columns),
        "cash": sa.select(t.accounts.c.account_id, t.accounts.c.cash).order_by("account_id"),
        "marks": sa.select(t.booked_allocations).order_by(
            *t.booked_allocations.primary_key.columns
        ),
        "ledger": sa.select(
            e.c.seq, e.c.actor, e.c.action, e.c.subject, e.c.reason, e.c.data_hash
        ).order_by(e.c.seq),
    }
    if not lots:
        del queries["lots"]
    with engine.connect() as connection:
        return {name: [tuple(r) for r in connection.execute(q)] for name, q in queries.items()}


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[sa.Engine]]:
    """Two empty stores on the same database server (or two SQLite files)."""
    if request.param == "sqlite":
        urls: list[Iterator[str]] = [iter([f"sqlite:///{tmp_path / f'{n}.db'}"]) for n in "ab"]
    else:
        urls = [postgres_schema_url(), postgres_schema_url()]
    engines = [make_engine(next(url)) for url in urls]
    for engine in engines:
        upgrade(engine)
    yield engines
    for engine in engines:
        engine.dispose()
    for url in urls:
        for _ in url:  # the schemas dropped
            pass


def test_book_fills_when_booked_in_parts_on_processes_then_it_keeps_what_one_process_keeps(
    two_stores: list[sa.Engine],
) -> None:
    alone, pooled = two_stores
    for engine in two_stores:
        build(engine)
    one = book_fills(alone, at=AT, fan_out_from=10**9)
    parted = book_fills(pooled, at=AT, workers=2, fan_out_from=1)

    assert (one.parts, one.processes) == (1, 1)
    assert parted.parts > 2
    assert parted.processes == 3  # two workers, and the caller books a part itself
    assert _figures(parted) == _figures(one)
    assert one.washed > 0
    assert one.realised > 0
    assert not one.refused
    mine, theirs = kept(pooled), kept(alone)
    assert len(mine["closed"]) > 0
    assert mine == theirs
    assert book_fills(pooled, at=AT, workers=2, fan_out_from=1).transactions == 0


def _figures(done: BookedFills) -> tuple[object, ...]:
    return (done.executions, done.accounts, done.transactions, done.realised, done.gain,
            done.cash, done.lots_written, done.washed, done.refused)  # fmt: skip


@pytest.mark.parametrize("broken", ["A001", "A039"], ids=["in-a-worker", "in-the-caller"])
def test_book_fills_when_a_part_fails_then_nothing_is_booked(tmp_path: Path, broken: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    build(engine)
    with engine.begin() as connection:  # a lot SQLite holds but no booking can read
        connection.execute(
            sa.update(t.lots).where(t.lots.c.account_id == broken).values(quantity=sa.text("'x'"))
        )
    before = kept(engine, lots=False)

    with pytest.raises(ValidationError, match=f"account {broken}, lot L0: it does not read"):
        book_fills(engine, at=AT, workers=2, fan_out_from=1)

    assert kept(engine, lots=False) == before
    assert before["transactions"] == []
    assert book_fills(engine, at=AT, account_ids=["A010"]).transactions > 0  # the rest can
    engine.dispose()
