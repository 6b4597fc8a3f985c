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
from poise.domain.transactions import Transaction
from poise.domain.washhistory import lot_changes
from poise.reconcile.fills import Execution, Realised, Refused, book
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo.fills import Source, keep_booked, unbooked
from poise.workflow.washsales import apply_household_washes

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
    its reason (``refused``); a later run tries it again."""
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
        before: dict[str, list[TaxLot]] = {k: [] for k in ids}
        for lot in repo.lots(connection, account_ids=ids):
            before[lot.account_id].append(lot)
        transactions: list[Transaction] = []
        realised: list[Realised] = []
        closed: list[tuple[TaxLot, date, str]] = []
        refused: list[Refused] = []
        sources: list[Source] = []
        cash: dict[str, Decimal] = {}
        write: list[TaxLot] = []
        remove: list[tuple[str, str]] = []
        entries = []
        for account_id in ids:
            executions = [e for e, _ in mine[account_id]]
            booked = book(account_id, before[account_id], executions, method=methods[account_id])
            no = {r.txn_id for r in booked.refused}
            sources += [s for e, s in mine[account_id] if e.txn_id not in no]
            transactions += booked.transactions
            realised += booked.realised
            closed += booked.closed
            refused += booked.refused
            cash[account_id] = booked.cash
            changes = lot_changes(before[account_id], booked.lots)
            write += changes.write
            remove += changes.remove
            if booked.transactions:
                entries.append(
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
                        reason=f"{len(booked.transactions)} execution(s) booked, cash"
                        f" {booked.cash:+}",
                        at=at,
                    )
                )
        keep_booked(
            connection,
            transactions=transactions,
            realised=realised,
            closed=closed,
            cash=cash,
            sources=sources,
            at=at,
        )
        written = repo.write_lots(connection, write=write, remove=remove)
        touched = repo.households_of(connection, account_ids=ids)
        washed = apply_household_washes(
            connection, household_ids=touched & repo.trading_households(connection)
        )
        append_many(connection, entries)
    return BookedFills(
        executions=len(pending) - len(refused),
        accounts=len(entries),
        transactions=len(transactions),
        realised=len(realised),
        gain=sum((r.gain for r in realised), ZERO),
        cash=sum(cash.values(), ZERO),
        lots_written=written,
        washed=washed,
        refused=tuple(refused),
    )
