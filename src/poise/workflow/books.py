"""Fills into the books (``poise reconcile``): every allocation and cross leg not yet
booked becomes a transaction, lots, realised gains and cash, by
:func:`poise.reconcile.fills.book`; the households it touches are washed again
(:mod:`poise.workflow.washsales`); and each account's booking lands in the audit
ledger — all in one transaction, so that a crash books nothing and a re-run books
everything once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from poise.audit.ledger import Record, append_many
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO
from poise.domain.relief import Method
from poise.domain.transactions import Transaction, TxnKind
from poise.domain.washhistory import lot_changes
from poise.reconcile.fills import Execution, Realised, Refused, book
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo.fills import Source, keep_booked, replace_lots, unbooked
from poise.workflow.washsales import HouseholdBooks, households_books, washed

__all__ = ["BookedFills", "book_fills", "relief_methods"]

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class BookedFills:
    """What one booking did."""

    executions: int = 0
    accounts: int = 0
    transactions: int = 0
    realised: int = 0
    gain: Decimal = ZERO  # realised, before wash sales
    cash: Decimal = ZERO  # moved, all accounts together
    lots_written: int = 0
    washed: int = 0  # lot rows the households' wash sales changed
    refused: tuple[Refused, ...] = field(default=())


def relief_methods(
    connection: sa.Connection, *, account_ids: list[str], default: Method
) -> dict[str, Method]:
    """Each account's relief method: its own, or ``default``."""
    a = t.accounts
    found = dict(
        connection.execute(
            sa.select(a.c.account_id, a.c.relief_method).where(a.c.account_id.in_(account_ids))
        ).all()
    )
    return {k: Method(found[k]) if found.get(k) else default for k in account_ids}


def book_fills(
    engine: sa.Engine,
    *,
    default_method: Method = Method.FIFO,
    account_ids: list[str] | None = None,
    at: datetime | None = None,
) -> BookedFills:
    """Book every allocation and cross leg not yet in the books (of ``account_ids``;
    None: all). An execution the books cannot take is left unbooked and returned with
    its reason (``refused``); a later run tries it again.

    The households the executions touch are read once (four queries for them all),
    booked and washed in memory, and written once."""
    at = at or datetime.now(UTC)
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        repo.lock_lots(connection)
        pending = unbooked(connection, account_ids=account_ids)
        if not pending:
            return BookedFills()
        mine: dict[str, list[tuple[Execution, Source]]] = {}
        for execution, source in pending:
            mine.setdefault(execution.account_id, []).append((execution, source))
        ids = sorted(mine)
        methods = relief_methods(connection, account_ids=ids, default=default_method)
        homes = sorted(repo.households_of(connection, account_ids=ids))
        securities = repo.securities(connection)
        books = households_books(connection, homes)
        done = _Booking(at)
        keys: set[tuple[str, str]] = set()
        for household in books.values():
            stored = list(household.lots)
            keys |= {(lot.account_id, lot.lot_id) for lot in stored}
            for account in household.accounts:
                if account.account_id in mine:
                    done.account(household, mine[account.account_id], methods[account.account_id])
            if _trades_both_ways(household.transactions):
                booked = household.lots
                household.lots = list(washed(household, securities).lots)
                moved = lot_changes(booked, household.lots)
                done.washed += len(moved.write) + len(moved.remove)
            changes = lot_changes(stored, household.lots)
            done.write += changes.write
            done.remove += changes.remove
        keep_booked(
            connection,
            transactions=done.transactions,
            realised=done.realised,
            closed=done.closed,
            cash=done.cash,
            sources=done.sources,
            at=at,
        )
        written = replace_lots(connection, write=done.write, remove=done.remove, stored=keys)
        append_many(connection, done.entries)
    return BookedFills(
        executions=len(pending) - len(done.refused),
        accounts=len(done.entries),
        transactions=len(done.transactions),
        realised=len(done.realised),
        gain=sum((r.gain for r in done.realised), ZERO),
        cash=sum(done.cash.values(), ZERO),
        lots_written=written,
        washed=done.washed,
        refused=tuple(done.refused),
    )


def _trades_both_ways(transactions: list[Transaction]) -> bool:
    """Only a household that has bought and sold can hold a wash."""
    kinds = {x.kind for x in transactions}
    return TxnKind.BUY in kinds and TxnKind.SELL in kinds


@dataclass
class _Booking:
    """What one booking makes, account by account."""

    at: datetime
    transactions: list[Transaction] = field(default_factory=list)
    realised: list[Realised] = field(default_factory=list)
    closed: list[tuple[TaxLot, date, str]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    cash: dict[str, Decimal] = field(default_factory=dict)
    entries: list[Record] = field(default_factory=list)
    write: list[TaxLot] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)
    washed: int = 0

    def account(
        self, household: HouseholdBooks, executions: list[tuple[Execution, Source]], method: Method
    ) -> None:
        """Book one account's executions into its household's books, in memory."""
        account_id = executions[0][0].account_id
        held = [lot for lot in household.lots if lot.account_id == account_id]
        booked = book(account_id, held, [e for e, _ in executions], method=method)
        household.lots = [lot for lot in household.lots if lot.account_id != account_id]
        household.lots += booked.lots
        household.transactions = sorted(
            [*household.transactions, *booked.transactions],
            key=lambda x: (x.trade_date, x.account_id, x.txn_id),
        )
        household.closed += [lot for lot, _, _ in booked.closed]
        no = {r.txn_id for r in booked.refused}
        self.sources += [s for e, s in executions if e.txn_id not in no]
        self.transactions += booked.transactions
        self.realised += booked.realised
        self.closed += booked.closed
        self.refused += booked.refused
        self.cash[account_id] = booked.cash
        if booked.transactions:
            self.entries.append(
                Record(
                    actor=SYSTEM,
                    action="books.fill",
                    subject=account_id,
                    data={
                        "transactions": [x.txn_id for x in booked.transactions],
                        "cash": str(booked.cash),
                        "realised": [
                            [r.txn_id, r.lot_id, str(r.quantity), str(r.gain)]
                            for r in booked.realised
                        ],
                    },
                    reason=f"{len(booked.transactions)} execution(s) booked, cash {booked.cash:+}",
                    at=self.at,
                )
            )
