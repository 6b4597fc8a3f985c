"""The wash-sale shell: a household's history from the store, its washes found by
:mod:`poise.domain.washhistory`, and its lots written as the washes leave them.

Ingest calls :func:`before_load` and :func:`after_load` around the upsert of a lots or
transactions file, in the file's own transaction, so that a load and the adjustments
it brings are committed together or not at all:

* a **lots** file: the households it touches are washed on the store's lots with the
  file's rows in their place — a row of the file is the custodian's whole lot, so the
  parts an earlier wash split off it (``<lot>.<n>``) are dropped, unless the file holds
  them too. The file's rows are then stored as the washes leave them: loading the same
  file again finds every row unchanged. The rest (new parts, parts dropped, other
  lots of the household) is written after the upsert.
* a **transactions** file: the households it touches are washed on the store once the
  rows are in.

Only households that have both bought and sold are washed: no other can hold a wash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from poise.domain.accounts import Account, Household
from poise.domain.lots import TaxLot
from poise.domain.transactions import Transaction, TxnKind
from poise.domain.washhistory import WashHistory, book_washes, lot_changes, split_parts
from poise.store import repo
from poise.store.repo.fills import closed_lots

if TYPE_CHECKING:
    import polars as pl
    import sqlalchemy as sa

    from poise.domain.securities import Security

__all__ = [
    "HouseholdBooks",
    "HouseholdWashes",
    "LoadPlan",
    "after_load",
    "apply_household_washes",
    "before_load",
    "household_washes",
    "households_books",
    "washed",
]

WASHED_KINDS = frozenset({"lots", "transactions"})  # the loads that bring washes
TRADES = frozenset({TxnKind.BUY, TxnKind.SELL})  # the transactions a wash is made of


@dataclass(frozen=True, slots=True)
class HouseholdWashes:
    """A household's wash sales, and how many lot rows the books still lack to hold
    the lots as its washes leave them (``pending``: 0 once a load has applied them)."""

    household: Household
    accounts: Mapping[str, Account]
    history: WashHistory
    pending: int


def household_washes(connection: sa.Connection, *, household_id: str) -> HouseholdWashes:
    """Raise :class:`~poise.domain.errors.NotFoundError` for a household the store lacks."""
    household = repo.household(connection, household_id=household_id)
    securities = repo.securities(connection)
    accounts, lots, history = _wash(connection, household_id, securities, overlay=())
    return HouseholdWashes(
        household=household,
        accounts={a.account_id: a for a in accounts},
        history=history,
        pending=len(lot_changes(lots, history.lots)),
    )


@dataclass(slots=True)
class HouseholdBooks:
    """A household's books as the wash-sale engine reads them (a booking changes them
    in memory before they are washed and written)."""

    accounts: list[Account]
    lots: list[TaxLot]
    transactions: list[Transaction]
    closed: list[TaxLot]


def households_books(
    connection: sa.Connection, household_ids: Sequence[str]
) -> dict[str, HouseholdBooks]:
    """Each household's accounts, lots, trades and closed lots: four queries for them
    all, not four for each."""
    accounts = repo.accounts(connection, household_ids=household_ids)
    found = {h: HouseholdBooks([], [], [], []) for h in household_ids}
    home = {}
    for account in accounts:
        found[account.household_id].accounts.append(account)
        home[account.account_id] = account.household_id
    ids = sorted(home)
    for lot in repo.lots(connection, account_ids=ids):
        found[home[lot.account_id]].lots.append(lot)
    for txn in repo.transactions_of(connection, account_ids=ids, kinds=TRADES):
        found[home[txn.account_id]].transactions.append(txn)
    for lot in closed_lots(connection, account_ids=ids):
        found[home[lot.account_id]].closed.append(lot)
    return found


def washed(
    books: HouseholdBooks, securities: Mapping[str, Security], *, overlay: Sequence[TaxLot] = ()
) -> WashHistory:
    """The household's washes found on its lots with ``overlay``'s rows in place of
    the stored ones (and of their split parts)."""
    lots = books.lots
    if overlay:
        mine = {a.account_id for a in books.accounts}
        incoming = [lot for lot in overlay if lot.account_id in mine]
        keys = {(lot.account_id, lot.lot_id) for lot in incoming}
        gone = keys | {(part.account_id, part.lot_id) for part in split_parts(lots, keys)}
        lots = [lot for lot in lots if (lot.account_id, lot.lot_id) not in gone] + incoming
    return book_washes(
        accounts=books.accounts,
        lots=lots,
        securities=securities,
        transactions=books.transactions,
        closed=books.closed,
    )


def _wash(
    connection: sa.Connection,
    household_id: str,
    securities: Mapping[str, Security],
    *,
    overlay: Sequence[TaxLot],
) -> tuple[list[Account], list[TaxLot], WashHistory]:
    """The household's accounts, its lots as stored, and its washes found on those lots
    with ``overlay``'s rows in place of the stored ones (and of their split parts)."""
    books = households_books(connection, [household_id])[household_id]
    return books.accounts, books.lots, washed(books, securities, overlay=overlay)


def apply_household_washes(connection: sa.Connection, *, household_ids: Iterable[str]) -> int:
    """Write each household's lots as its washes leave them, in the caller's
    transaction; the number of lot rows written or removed. The households are read
    500 at a time, four queries a time."""
    ids = sorted(set(household_ids))
    if not ids:
        return 0
    repo.lock_lots(connection)
    securities = repo.securities(connection)
    write: list[TaxLot] = []
    remove: list[tuple[str, str]] = []
    for first in range(0, len(ids), _AT_ONCE):
        for books in households_books(connection, ids[first : first + _AT_ONCE]).values():
            changes = lot_changes(books.lots, washed(books, securities).lots)
            write.extend(changes.write)
            remove.extend(changes.remove)
    return repo.write_lots(connection, write=write, remove=remove)


_AT_ONCE = 500


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What the wash-sale engine does around one file's load: the file's ``rows`` as
    they are to be stored, the households to wash, and (for a lots file) each one's
    lots as the washes leave them, worked out before the load."""

    kind: str
    rows: pl.DataFrame
    households: tuple[str, ...] = ()
    desired: Mapping[str, tuple[TaxLot, ...]] = field(default_factory=dict)


def before_load(connection: sa.Connection, *, kind: str, rows: pl.DataFrame) -> LoadPlan:
    """Plan the washes of a load of ``rows`` (validated rows of a file of ``kind``)."""
    if kind not in WASHED_KINDS or rows.is_empty():
        return LoadPlan(kind=kind, rows=rows)
    touched = tuple(sorted(repo.households_of(connection, account_ids=rows["account_id"])))
    if kind != "lots":  # washed once its rows are in
        return LoadPlan(kind=kind, rows=rows, households=touched)
    households = tuple(sorted(set(touched) & repo.trading_households(connection)))
    if not households:
        return LoadPlan(kind=kind, rows=rows)
    repo.lock_lots(connection)  # the lots read here are the ones the load replaces
    securities = repo.securities(connection)
    incoming = repo.frame_lots(rows)
    desired = {}
    for household_id in households:
        _, _, history = _wash(connection, household_id, securities, overlay=incoming)
        desired[household_id] = history.lots
    # The file's rows as the washes leave them: a row the washes change takes its new
    # values (a row split away whole stays as sent, and goes after the load).
    keys = {(lot.account_id, lot.lot_id): lot for lot in incoming}
    changed = [
        lot
        for lots in desired.values()
        for lot in lots
        if (lot.account_id, lot.lot_id) in keys and keys[(lot.account_id, lot.lot_id)] != lot
    ]
    if changed:
        rows = repo.with_lots(rows, changed)
    return LoadPlan(kind=kind, rows=rows, households=households, desired=desired)


def after_load(connection: sa.Connection, plan: LoadPlan) -> int:
    """Write what the load's washes change beyond its own rows; the number of lot rows
    written or removed."""
    if not plan.households:
        return 0
    if plan.kind != "lots":
        trading = repo.trading_households(connection)
        return apply_household_washes(
            connection, household_ids=[h for h in plan.households if h in trading]
        )
    write: list[TaxLot] = []
    remove: list[tuple[str, str]] = []
    for household_id, desired in plan.desired.items():
        accounts = repo.accounts(connection, household_id=household_id)
        stored = repo.lots(connection, account_ids=[a.account_id for a in accounts])
        changes = lot_changes(stored, desired)
        write.extend(changes.write)
        remove.extend(changes.remove)
    return repo.write_lots(connection, write=write, remove=remove)
