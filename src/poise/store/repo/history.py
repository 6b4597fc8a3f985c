"""A household's trading history, the closes it is valued at day by day, and the lots
the wash-sale engine rewrites."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa

from poise.domain.accounts import Household
from poise.domain.errors import NotFoundError
from poise.domain.lots import TaxLot
from poise.domain.money import plain
from poise.domain.transactions import Transaction, TxnKind
from poise.store import tables as t
from poise.store.repo.book import transaction

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "daily_closes",
    "frame_lots",
    "homes",
    "household",
    "household_transactions",
    "households_of",
    "lock_lots",
    "lots_frame",
    "trading_households",
    "transactions_of",
    "with_lots",
    "write_lots",
]


def household(connection: sa.Connection, *, household_id: str) -> Household:
    h = t.households
    row = connection.execute(sa.select(h).where(h.c.household_id == household_id)).first()
    if row is None:
        raise NotFoundError(f"no household {household_id}")
    return Household(
        household_id=row.household_id,
        name=row.name,
        advisor=row.advisor or "",
        model_id=row.model_id or None,
    )


def household_transactions(
    connection: sa.Connection,
    *,
    household_id: str,
    since: date | None = None,
    until: date | None = None,
    kinds: Collection[TxnKind] | None = None,
) -> list[Transaction]:
    """Every transaction of the household's accounts traded from ``since`` to ``until``
    (both included; open where None), of ``kinds`` (all where None), in order of trade
    date, account and id; a sale with the lots it relieved."""
    x, a = t.transactions, t.accounts
    query = (
        sa.select(x)
        .join(a, a.c.account_id == x.c.account_id)
        .where(a.c.household_id == household_id)
        .order_by(x.c.trade_date, x.c.account_id, x.c.txn_id)
    )
    if since is not None:
        query = query.where(x.c.trade_date >= since)
    if until is not None:
        query = query.where(x.c.trade_date <= until)
    if kinds is not None:
        query = query.where(x.c.kind.in_(sorted(kind.value for kind in kinds)))
    return [transaction(row) for row in connection.execute(query)]


def transactions_of(
    connection: sa.Connection,
    *,
    account_ids: Collection[str],
    kinds: Collection[TxnKind] | None = None,
) -> list[Transaction]:
    """Every transaction of ``account_ids`` (of ``kinds``; all where None), in order of
    trade date, account and id."""
    x = t.transactions
    ids = sorted(set(account_ids))
    found: list[Transaction] = []
    for first in range(0, len(ids), 500):
        query = sa.select(x).where(x.c.account_id.in_(ids[first : first + 500]))
        if kinds is not None:
            query = query.where(x.c.kind.in_(sorted(kind.value for kind in kinds)))
        found += [transaction(row) for row in connection.execute(query)]
    found.sort(key=lambda txn: (txn.trade_date, txn.account_id, txn.txn_id))
    return found


def daily_closes(
    connection: sa.Connection, *, security_ids: Collection[str], since: date, until: date
) -> dict[date, dict[str, Decimal]]:
    """Each day's last price of each of ``security_ids`` from ``since`` to ``until``
    (both included; a day is a UTC date), exact: day → security → close."""
    p = t.prices
    start = datetime.combine(since, time(), tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)
    names = sorted(set(security_ids))
    found: dict[date, dict[str, Decimal]] = {}
    for first in range(0, len(names), 500):
        query = (
            sa.select(p.c.security_id, p.c.as_of, p.c.price)
            .where(p.c.security_id.in_(names[first : first + 500]))
            .where((p.c.as_of >= start) & (p.c.as_of < end))
            .order_by(p.c.as_of, p.c.source)  # the day's last row wins
        )
        for row in connection.execute(query):
            found.setdefault(row.as_of.date(), {})[row.security_id] = row.price
    return found


def trading_households(connection: sa.Connection) -> set[str]:
    """Households whose accounts have both bought and sold: the only ones whose
    history can hold a wash sale."""
    x, a = t.transactions, t.accounts
    query = (
        sa.select(a.c.household_id)
        .join(x, x.c.account_id == a.c.account_id)
        .where(x.c.kind.in_([TxnKind.BUY.value, TxnKind.SELL.value]))
        .group_by(a.c.household_id)
        .having(sa.func.count(sa.distinct(x.c.kind)) == 2)
    )
    return set(connection.execute(query).scalars())


def households_of(connection: sa.Connection, *, account_ids: Iterable[str]) -> set[str]:
    """The households the accounts belong to (an account the store does not hold has none)."""
    return set(homes(connection, account_ids=account_ids).values())


def homes(connection: sa.Connection, *, account_ids: Iterable[str]) -> dict[str, str]:
    """Each account's household (an account the store does not hold is left out)."""
    wanted = set(account_ids)
    a = t.accounts
    rows = connection.execute(sa.select(a.c.account_id, a.c.household_id)).all()
    return {account_id: home for account_id, home in rows if account_id in wanted}


def lock_lots(connection: sa.Connection) -> None:
    """Hold the lots against other writers until the caller's transaction ends, as a
    load of lots does (on SQLite a writing transaction holds the whole file already)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE lots IN SHARE ROW EXCLUSIVE MODE")


def write_lots(
    connection: sa.Connection, *, write: Sequence[TaxLot], remove: Iterable[tuple[str, str]]
) -> int:
    """Store ``write`` (replacing lots of the same account and id) and delete the lots
    keyed (account, lot id) in ``remove``, in the caller's transaction; the number of
    rows written or deleted. Values are stored as a load of a lots file stores them."""
    from poise.store.bulk import upsert

    lt = t.lots
    gone = [{"a": account_id, "l": lot_id} for account_id, lot_id in remove]
    if gone:
        connection.execute(
            lt.delete().where(
                (lt.c.account_id == sa.bindparam("a")) & (lt.c.lot_id == sa.bindparam("l"))
            ),
            gone,
        )
    if write:
        upsert(connection, table=lt, rows=lots_frame(write), key=("account_id", "lot_id"))
    return len(write) + len(gone)


def lots_frame(lots: Sequence[TaxLot]) -> pl.DataFrame:
    """Lots as the rows of a validated lots file: decimals as canonical text."""
    import polars as pl

    return pl.DataFrame(
        [
            {
                "account_id": lot.account_id,
                "lot_id": lot.lot_id,
                "security_id": lot.security_id,
                "quantity": plain(lot.quantity),
                "cost_basis": plain(lot.cost_basis),
                "acquired": lot.acquired,
                "adjusted_basis": None if lot.adjusted_basis is None else plain(lot.adjusted_basis),
                "holding_start": lot.holding_start,
                "disallowed_loss": plain(lot.disallowed_loss),
            }
            for lot in lots
        ],
        schema={
            "account_id": pl.String,
            "lot_id": pl.String,
            "security_id": pl.String,
            "quantity": pl.String,
            "cost_basis": pl.String,
            "acquired": pl.Date,
            "adjusted_basis": pl.String,
            "holding_start": pl.Date,
            "disallowed_loss": pl.String,
        },
    )


def with_lots(rows: pl.DataFrame, lots: Sequence[TaxLot]) -> pl.DataFrame:
    """Rows of a validated lots file with ``lots`` in place of the rows of their keys."""
    import polars as pl

    replaced = lots_frame(lots).select(rows.columns)
    key = ["account_id", "lot_id"]
    return pl.concat([rows.join(replaced.select(key), on=key, how="anti"), replaced])


def frame_lots(rows: pl.DataFrame) -> list[TaxLot]:
    """The rows of a validated lots file as lots."""

    def amount(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return [
        TaxLot(
            lot_id=row["lot_id"],
            account_id=row["account_id"],
            security_id=row["security_id"],
            quantity=Decimal(row["quantity"]),
            cost_basis=Decimal(row["cost_basis"]),
            acquired=row["acquired"],
            adjusted_basis=amount(row["adjusted_basis"]),
            holding_start=row["holding_start"],
            disallowed_loss=Decimal(row["disallowed_loss"] or "0"),
        )
        for row in rows.iter_rows(named=True)
    ]
