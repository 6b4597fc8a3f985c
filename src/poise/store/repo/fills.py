"""The books' side of execution: allocations and cross legs not yet booked, read as
executions; and what booking them keeps — transactions, realised gains, closed lots,
cash — with each marked booked in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.calendar import settlement_date, trade_date
from poise.domain.errors import StoreError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents, plain
from poise.domain.orders import LotInstruction, Side, order_id
from poise.domain.transactions import Transaction
from poise.reconcile.fills import Execution, Realised
from poise.store import tables as t
from poise.store.rows import (
    add_amounts,
    among,
    as_stored,
    delete_where,
    insert_plain,
    plain_columns,
    set_where,
)
from poise.store.types import UTCDateTime

__all__ = [
    "Rows",
    "Source",
    "booked_rows",
    "closed_lots",
    "keep_booked",
    "pending_fills",
    "unbooked",
]


@dataclass(frozen=True, slots=True)
class Source:
    """The row an execution came from, to be marked booked: an allocation (block,
    proposal, seq) or a cross leg (cross, number)."""

    table: str  # allocations, cross_legs
    key: tuple[str, ...]


def _lots(text: str) -> tuple[LotInstruction, ...]:
    return tuple(LotInstruction(x["lot_id"], Decimal(x["quantity"])) for x in json.loads(text))


def allocation_txn_id(block_id: str, proposal_id: str, seq: int) -> str:
    return order_id("fill", block_id, proposal_id, str(seq))


def cross_txn_id(cross_id: str, number: int) -> str:
    return order_id("cross", cross_id, str(number))


def pending_fills(
    connection: sa.Connection, *, account_ids: Collection[str] | None = None
) -> dict[str, int]:
    """How many allocations and cross legs each account (of ``account_ids``; None: of
    all) has not yet booked; an account with none is left out."""
    found: dict[str, int] = {}
    a, x = t.allocations, t.cross_legs
    for table, unbooked_only in ((a, _not_booked(a)), (x, x.c.booked_at.is_(None))):
        query = (
            sa.select(table.c.account_id, sa.func.count())
            .where(unbooked_only)
            .group_by(table.c.account_id)
        )
        if account_ids is not None:
            query = query.where(among(connection, table.c.account_id, sorted(account_ids)))
        for account_id, count in connection.execute(query).all():
            found[account_id] = found.get(account_id, 0) + count
    return found


def _not_booked(a: sa.Table) -> sa.ColumnElement[bool]:
    """The allocation (of ``a``) is not yet in the books: no booked mark names it."""
    k = t.booked_allocations
    return ~sa.exists().where(
        (k.c.block_id == a.c.block_id) & (k.c.proposal_id == a.c.proposal_id) & (k.c.seq == a.c.seq)
    )


def unbooked(
    connection: sa.Connection, *, account_ids: Collection[str] | None = None
) -> list[tuple[Execution, Source]]:
    """Allocations and cross legs not yet in the books (of ``account_ids``; None:
    every account's), as executions, in the order they were made.

    Amounts and times are read as the driver gives them and converted here, each
    distinct time once (a batch's rows share a few): a booking reads every row it
    books, and SQLAlchemy's conversion of each value was most of the reading."""
    a, b, x, c, eb = (
        t.allocations,
        t.block_orders,
        t.cross_legs,
        t.crosses,
        t.execution_batches,
    )
    found: list[tuple[datetime, Execution, Source]] = []
    dates: dict[Any, tuple[datetime, date, date]] = {}  # a batch's rows share a few times
    stamp = UTCDateTime()

    def dated(value: Any) -> tuple[datetime, date, date]:
        known = dates.get(value)
        if known is None:
            at = stamp.process_result_value(value, connection.dialect)
            if at is None:  # the column is not null
                raise StoreError("an allocation without its time")
            traded = trade_date(at)
            known = dates[value] = (at, traded, settlement_date(traded))
        return known

    query = (
        sa.select(
            a.c.block_id,
            a.c.proposal_id,
            a.c.seq,
            a.c.account_id,
            a.c.side,
            as_stored(a.c.quantity),
            as_stored(a.c.price),
            as_stored(a.c.gross),
            as_stored(a.c.commission),
            as_stored(a.c.net),
            a.c.lots,
            as_stored(a.c.at),
            b.c.security_id,
        )
        .join(b, b.c.block_id == a.c.block_id)
        .where(_not_booked(a))
    )
    if account_ids is not None:
        query = query.where(among(connection, a.c.account_id, sorted(account_ids)))
    for (
        block_id,
        proposal_id,
        seq,
        account_id,
        side_text,
        quantity,
        price,
        gross,
        commission,
        net,
        lots,
        at_value,
        security_id,
    ) in connection.execute(query).all():  # fetched whole: row by row costs more
        at, traded, settles = dated(at_value)
        side = _SIDES[side_text]
        shares, average = _decimal(quantity), _decimal(price)
        execution = Execution(
            txn_id=allocation_txn_id(block_id, proposal_id, seq),
            account_id=account_id,
            security_id=security_id,
            side=side,
            quantity=shares,
            price=average,
            gross=_decimal(gross),
            commission=_decimal(commission),
            net=_decimal(net),
            trade_date=traded,
            settle_date=settles,
            lots=_lots(lots) if side is Side.SELL else (),
            description=f"{shares} at {average} (average), block {block_id}"
            f" proposal {proposal_id} trade {seq}",
        )
        found.append((at, execution, Source("allocations", (block_id, proposal_id, str(seq)))))
    query = (
        sa.select(x, c.c.security_id, c.c.price, c.c.source, eb.c.created_at)
        .join(c, c.c.cross_id == x.c.cross_id)
        .join(eb, eb.c.batch_id == c.c.batch_id)
        .where(x.c.booked_at.is_(None))
    )
    if account_ids is not None:
        query = query.where(among(connection, x.c.account_id, sorted(account_ids)))
    for row in connection.execute(query).all():
        traded = trade_date(row.created_at)
        settles = settlement_date(traded)
        side = Side(row.side)
        gross = cents(row.quantity * row.price)
        execution = Execution(
            txn_id=cross_txn_id(row.cross_id, row.number),
            account_id=row.account_id,
            security_id=row.security_id,
            side=side,
            quantity=row.quantity,
            price=row.price,
            gross=gross,
            commission=ZERO,
            net=gross,
            trade_date=traded,
            settle_date=settles,
            lots=_lots(row.lots) if side is Side.SELL else (),
            description=f"{row.quantity} at {row.price} ({row.source}), crossed internally,"
            f" cross {row.cross_id}, proposal {row.proposal_id} trade {row.seq}",
        )
        found.append(
            (row.created_at, execution, Source("cross_legs", (row.cross_id, str(row.number))))
        )
    found.sort(key=lambda item: (item[0], item[1].account_id, item[1].txn_id))
    return [(execution, source) for _, execution, source in found]


_SIDES = {side.value: side for side in Side}


def _decimal(value: Any) -> Decimal:
    """An amount as the driver gave it (text on SQLite, a Decimal on PostgreSQL)."""
    return value if type(value) is Decimal else Decimal(value)


def closed_lots(connection: sa.Connection, *, account_ids: Iterable[str]) -> list[TaxLot]:
    """The lots sales emptied, as they stood before, of these accounts."""
    c = t.closed_lots
    ids = sorted(set(account_ids))
    found = []
    for start in range(0, len(ids), 500):
        for row in connection.execute(
            sa.select(c).where(c.c.account_id.in_(ids[start : start + 500]))
        ):
            found.append(
                TaxLot(
                    lot_id=row.lot_id,
                    account_id=row.account_id,
                    security_id=row.security_id,
                    quantity=row.quantity,
                    cost_basis=row.cost_basis,
                    acquired=row.acquired,
                    adjusted_basis=row.adjusted_basis,
                    holding_start=row.holding_start,
                    disallowed_loss=row.disallowed_loss,
                )
            )
    return found


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows for one table as the driver takes them (:func:`poise.store.rows.plain_columns`):
    what booking a part of the firm in another process hands back."""

    table: str
    names: tuple[str, ...]
    values: list[tuple[Any, ...]]


def _plain(table: sa.Table, columns: dict[str, list[Any]], dialect: str) -> Rows:
    return Rows(str(table.name), tuple(columns), plain_columns(table, columns, dialect=dialect))


def _lot_columns(lots: Sequence[TaxLot]) -> dict[str, list[Any]]:
    return {
        "account_id": [lot.account_id for lot in lots],
        "lot_id": [lot.lot_id for lot in lots],
        "security_id": [lot.security_id for lot in lots],
        "quantity": [lot.quantity for lot in lots],
        "cost_basis": [lot.cost_basis for lot in lots],
        "acquired": [lot.acquired for lot in lots],
        "adjusted_basis": [lot.adjusted_basis for lot in lots],
        "holding_start": [lot.holding_start for lot in lots],
        "disallowed_loss": [lot.disallowed_loss for lot in lots],
    }


def booked_rows(
    dialect: str,
    *,
    transactions: Sequence[Transaction],
    realised: Sequence[Realised],
    closed: Sequence[tuple[TaxLot, date, str]],
    lots: Sequence[TaxLot],
) -> tuple[Rows, ...]:
    """What a booking keeps, as rows for ``dialect``'s driver: the transactions,
    realised gains, closed lots and the lots to write (:func:`keep_booked` writes them),
    made column by column."""
    xs, rs = transactions, realised
    return (
        _plain(
            t.transactions,
            {
                "account_id": [x.account_id for x in xs],
                "txn_id": [x.txn_id for x in xs],
                "kind": [x.kind.value for x in xs],
                "trade_date": [x.trade_date for x in xs],
                "settle_date": [x.settle_date for x in xs],
                "security_id": [x.security_id for x in xs],
                "quantity": [x.quantity for x in xs],
                "amount": [x.amount for x in xs],
                "lots": [
                    ";".join(f"{r.lot_id}:{plain(r.quantity)}" for r in x.lots) or None for x in xs
                ],
                "description": [x.description or None for x in xs],
            },
            dialect,
        ),
        _plain(
            t.realised_gains,
            {
                "account_id": [r.account_id for r in rs],
                "txn_id": [r.txn_id for r in rs],
                "lot_id": [r.lot_id for r in rs],
                "security_id": [r.security_id for r in rs],
                "quantity": [r.quantity for r in rs],
                "proceeds": [r.proceeds for r in rs],
                "basis": [r.basis for r in rs],
                "cost": [r.cost for r in rs],
                "acquired": [r.acquired for r in rs],
                "held_since": [r.held_since for r in rs],
                "sold": [r.sold for r in rs],
                "term": [r.term.value for r in rs],
            },
            dialect,
        ),
        _plain(
            t.closed_lots,
            {
                **_lot_columns([lot for lot, _, _ in closed]),
                "closed": [day for _, day, _ in closed],
                "closed_by": [by for _, _, by in closed],
            },
            dialect,
        ),
        _plain(t.lots, _lot_columns(lots), dialect),
    )


def keep_booked(
    connection: sa.Connection,
    *,
    rows: Sequence[Rows],
    gone: Collection[tuple[str, str]],
    cash: Mapping[str, Decimal],
    allocations: Sequence[tuple[str, str, int]],
    legs: Sequence[tuple[str, int]],
    at: datetime,
) -> None:
    """Keep what booking made, in the caller's transaction: the lots keyed (account,
    lot id) in ``gone`` deleted (those written again and those sales emptied); then
    ``rows`` (:func:`booked_rows`: transactions — one already kept is refused by its
    key, never doubled — realised gains, closed lots, the lots); each account's cash
    moved by ``cash``; and the allocations (block, proposal, seq) and cross legs
    (cross, number) booked marked so: an allocation by a row of its own in
    ``booked_allocations`` (a booked allocation is never booked again: its mark's key
    refuses a second), a cross leg by its ``booked_at``."""
    delete_where(connection, t.lots, sorted(gone), ("account_id", "lot_id"))
    for kept in rows:
        insert_plain(connection, t.metadata.tables[kept.table], kept.names, kept.values)
    moved = {k: v for k, v in cash.items() if v != ZERO}
    add_amounts(connection, t.accounts, "cash", moved, "account_id")
    k = t.booked_allocations
    dialect = connection.dialect.name
    marks: dict[str, list[Any]] = {
        "block_id": [b for b, _, _ in allocations],
        "proposal_id": [p for _, p, _ in allocations],
        "seq": [n for _, _, n in allocations],
        "booked_at": [at] * len(allocations),
    }
    insert_plain(connection, k, list(marks), plain_columns(k, marks, dialect=dialect))
    set_where(connection, t.cross_legs, {"booked_at": at}, legs, ("cross_id", "number"))
