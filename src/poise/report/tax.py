"""Tax reports: realised gains and losses by year and term, Form 8949's rows and
Schedule D's totals.

Sources: the Instructions for Form 8949 (Sales and Other Dispositions of Capital
Assets) and for Schedule D (Form 1040), 2025; IRS Publication 550.

* **One row per lot a sale relieved**: (a) the shares and the security, (b) the date
  the lot was acquired, (c) the date sold, (d) the proceeds (net of the sale's costs, as
  brokers report them), (e) the basis (as adjusted by earlier wash sales), (f) the
  adjustment's code, (g) its amount, (h) the gain or loss, ``(d) − (e) + (g)``.
* **Wash sales** (code **W**): a loss disallowed under §1091 is entered in (g) as a
  positive amount, so the row's gain or loss is the loss less what was disallowed —
  whether the disallowed loss moved into a replacement's basis or was lost for good in
  an IRA (Rev. Rul. 2008-5; the instructions' "Nondeductible wash sale loss").
* **The box** (A–F): short-term (held a year or less) in Part I, long-term in Part II;
  within each, whether the broker reported the basis to the IRS. A lot's basis is
  reported for a *covered* security (Treas. Reg. §1.6045-1(a)(15)): stock and ETFs
  acquired from 2011, mutual fund shares from 2012, bonds from 2014. poise's sales are
  made through custodians that issue a Form 1099-B, so a covered lot's row is in box A
  or D, any other in box B or E; C and F (no Form 1099-B) are not made here.
* **Schedule D** gets each box's totals: box A on line 1b, B on 2, C on 3; D on 8b, E
  on 9, F on 10 (lines 1a and 8a, for sales reported without adjustments that skip
  Form 8949, are not used: every row goes through the form).

Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.money import ZERO, plain
from poise.domain.relief import Term
from poise.domain.securities import Security

__all__ = ["COVERED_FROM", "Row8949", "ScheduleDLine", "form_8949", "schedule_d"]

# The first acquisition date from which a lot's basis is reported, by kind of security.
COVERED_FROM = {
    "stock": date(2011, 1, 1),
    "etf": date(2011, 1, 1),
    "mutual_fund": date(2012, 1, 1),
    "bond": date(2014, 1, 1),
}
_LINES = {"A": "1b", "B": "2", "C": "3", "D": "8b", "E": "9", "F": "10"}


@dataclass(frozen=True, slots=True)
class Sold:
    """What a sale realised on one lot, as the books kept it."""

    account_id: str
    txn_id: str
    lot_id: str
    security_id: str
    quantity: Decimal
    proceeds: Decimal
    basis: Decimal
    acquired: date
    sold: date
    term: Term


@dataclass(frozen=True, slots=True)
class Row8949:
    """One row of Form 8949, and where it came from."""

    box: str  # A–F
    description: str  # (a)
    acquired: date  # (b)
    sold: date  # (c)
    proceeds: Decimal  # (d)
    basis: Decimal  # (e)
    code: str  # (f): "W", or empty
    adjustment: Decimal  # (g)
    account_id: str
    txn_id: str
    lot_id: str

    @property
    def gain(self) -> Decimal:
        """(h): (d) − (e) + (g)."""
        return self.proceeds - self.basis + self.adjustment

    @property
    def term(self) -> Term:
        return Term.SHORT if self.box in "ABC" else Term.LONG


@dataclass(frozen=True, slots=True)
class ScheduleDLine:
    line: str
    box: str
    proceeds: Decimal
    basis: Decimal
    adjustment: Decimal

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.basis + self.adjustment


def _box(term: Term, covered: bool) -> str:
    if term is Term.SHORT:
        return "A" if covered else "B"
    return "D" if covered else "E"


def _covered(security: Security | None, acquired: date) -> bool:
    kind = getattr(getattr(security, "kind", None), "value", None) or "stock"
    start = COVERED_FROM.get(str(kind))
    return start is not None and acquired >= start


def form_8949(
    sales: Iterable[Sold],
    *,
    disallowed: Mapping[tuple[str, str, str], Decimal],
    securities: Mapping[str, Security],
    year: int,
) -> list[Row8949]:
    """The year's rows: each lot a sale in ``year`` relieved, with the loss
    ``disallowed[(account, sale, lot)]`` by wash sales (code W), in order of the date
    sold, account, sale and lot."""
    rows = []
    for sale in sales:
        if sale.sold.year != year:
            continue
        security = securities.get(sale.security_id)
        lost = disallowed.get((sale.account_id, sale.txn_id, sale.lot_id), ZERO)
        symbol = getattr(security, "symbol", None) or sale.security_id
        rows.append(
            Row8949(
                box=_box(sale.term, _covered(security, sale.acquired)),
                description=f"{plain(sale.quantity)} sh. {symbol}",
                acquired=sale.acquired,
                sold=sale.sold,
                proceeds=sale.proceeds,
                basis=sale.basis,
                code="W" if lost > ZERO else "",
                adjustment=lost,
                account_id=sale.account_id,
                txn_id=sale.txn_id,
                lot_id=sale.lot_id,
            )
        )
    return sorted(rows, key=lambda r: (r.sold, r.account_id, r.txn_id, r.lot_id))


def schedule_d(rows: Sequence[Row8949]) -> list[ScheduleDLine]:
    """Each box's totals, on its line of Schedule D (boxes with no rows left out)."""
    lines = []
    for box, line in _LINES.items():
        mine = [r for r in rows if r.box == box]
        if mine:
            lines.append(
                ScheduleDLine(
                    line=line,
                    box=box,
                    proceeds=sum((r.proceeds for r in mine), ZERO),
                    basis=sum((r.basis for r in mine), ZERO),
                    adjustment=sum((r.adjustment for r in mine), ZERO),
                )
            )
    return lines
