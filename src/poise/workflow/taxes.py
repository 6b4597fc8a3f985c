"""Tax reports from the store (``poise report gains``, ``poise report 8949``): what a
household's sales realised, as the books kept it when they were booked, with the losses
its wash sales disallowed (the household's history run through the wash-sale engine)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from poise.domain.money import ZERO, cents
from poise.domain.relief import Term
from poise.report.tax import Row8949, ScheduleDLine, Sold, form_8949, schedule_d
from poise.store import repo
from poise.store import tables as t
from poise.workflow.washsales import households_books, washed

__all__ = ["Gains", "TaxYear", "realised_sales", "tax_year"]


@dataclass(frozen=True, slots=True)
class Gains:
    """A year's realised gains and losses by term, before and after wash sales."""

    short: Decimal
    long: Decimal
    disallowed: Decimal  # losses wash sales disallowed

    @property
    def total(self) -> Decimal:
        return self.short + self.long


@dataclass(frozen=True, slots=True)
class TaxYear:
    """A household's year: Form 8949's rows, Schedule D's lines, the gains by term."""

    household_id: str
    year: int
    rows: tuple[Row8949, ...]
    lines: tuple[ScheduleDLine, ...]
    gains: Gains


def realised_sales(connection: sa.Connection, *, account_ids: Sequence[str]) -> list[Sold]:
    """What the accounts' sales realised, lot by lot, as booked."""
    r = t.realised_gains
    ids = sorted(set(account_ids))
    found = []
    for first in range(0, len(ids), 500):
        for row in connection.execute(
            sa.select(r).where(r.c.account_id.in_(ids[first : first + 500]))
        ):
            found.append(
                Sold(
                    account_id=row.account_id,
                    txn_id=row.txn_id,
                    lot_id=row.lot_id,
                    security_id=row.security_id,
                    quantity=row.quantity,
                    proceeds=row.proceeds,
                    basis=row.basis,
                    acquired=row.acquired,
                    sold=row.sold,
                    term=Term(row.term),
                )
            )
    return found


def tax_year(connection: sa.Connection, *, household_id: str, year: int) -> TaxYear:
    """The household's ``year``: its sales' rows with the losses wash sales disallowed
    (raises ``NotFoundError`` for a household the store lacks)."""
    repo.household(connection, household_id=household_id)
    securities = repo.securities(connection)
    books = households_books(connection, [household_id])[household_id]
    history = washed(books, securities)
    disallowed: dict[tuple[str, str, str], Decimal] = {}
    for booked in history.washes:
        key = (booked.wash.sale.account_id, booked.txn_id, booked.wash.sale.lot_id)
        disallowed[key] = disallowed.get(key, ZERO) + booked.wash.disallowed
    sales = realised_sales(connection, account_ids=[a.account_id for a in books.accounts])
    rows = form_8949(
        sales,
        disallowed={k: cents(v) for k, v in disallowed.items()},
        securities=securities,
        year=year,
    )
    short = sum((r.gain for r in rows if r.term is Term.SHORT), ZERO)
    long = sum((r.gain for r in rows if r.term is Term.LONG), ZERO)
    return TaxYear(
        household_id=household_id,
        year=year,
        rows=tuple(rows),
        lines=tuple(schedule_d(rows)),
        gains=Gains(short=short, long=long, disallowed=sum((r.adjustment for r in rows), ZERO)),
    )
