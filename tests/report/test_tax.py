"""Form 8949 and Schedule D from what sales realised: Publication 550's wash sale as a
row with code W, each row in its box by term and whether its basis was reported, and
Schedule D's lines as the boxes' totals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from poise.domain.money import D
from poise.domain.relief import Term
from poise.domain.securities import Security, SecurityKind
from poise.report.tax import Sold, form_8949, schedule_d

X = Security("X", "X", "X Corp", SecurityKind.STOCK, "us_equity")
FUND = Security("F", "FUNDX", "A fund", SecurityKind.MUTUAL_FUND, "us_equity")


def sold(  # noqa: PLR0917 - a row of the form, as the form lays it out
    txn: str, lot: str, security: str, shares: str, proceeds: str, basis: str,
    acquired: date, on: date, term: Term,
) -> Sold:  # fmt: skip
    return Sold("A1", txn, lot, security, D(shares), D(proceeds), D(basis), acquired, on, term)


def test_form_8949_when_a_loss_is_washed_then_its_row_has_code_w_and_the_loss_back() -> None:
    # Publication 550: 100 shares bought for 1,000, sold for 750, and 100 bought again
    # within 30 days for 800 — the 250 loss is not deductible.
    sale = sold("T1", "L1", "X", "100", "750", "1000", date(2025, 9, 2), date(2026, 2, 10),
                Term.SHORT)  # fmt: skip

    (row,) = form_8949(
        [sale], disallowed={("A1", "T1", "L1"): D("250")}, securities={"X": X}, year=2026
    )

    assert (row.box, row.description, row.acquired, row.sold) == (
        "A", "100 sh. X", date(2025, 9, 2), date(2026, 2, 10),
    )  # fmt: skip
    assert (row.proceeds, row.basis, row.code, row.adjustment) == (
        D("750"), D("1000"), "W", D("250"),
    )  # fmt: skip
    assert row.gain == Decimal(0)  # (d) − (e) + (g)


def test_form_8949_when_lots_differ_in_term_and_coverage_then_each_goes_in_its_box() -> None:
    sales = [
        sold("T1", "L1", "X", "10", "500", "400", date(2025, 6, 1), date(2026, 3, 2), Term.SHORT),
        sold("T1", "L2", "X", "10", "500", "300", date(2009, 6, 1), date(2026, 3, 2), Term.LONG),
        sold("T2", "L3", "F", "5", "100", "120", date(2011, 6, 1), date(2026, 4, 1), Term.LONG),
        sold("T3", "L4", "X", "1", "10", "5", date(2020, 1, 2), date(2025, 4, 1), Term.LONG),
    ]

    rows = form_8949(sales, disallowed={}, securities={"X": X, "F": FUND}, year=2026)
    lines = schedule_d(rows)

    # covered short-term: A; stock bought before 2011: E; fund shares before 2012: E;
    # a sale of 2025: not this year's
    assert [(r.lot_id, r.box, r.code) for r in rows] == [
        ("L1", "A", ""), ("L2", "E", ""), ("L3", "E", ""),
    ]  # fmt: skip
    assert [(x.line, x.box, x.proceeds, x.basis, x.gain) for x in lines] == [
        ("1b", "A", D("500"), D("400"), D("100")),
        ("9", "E", D("600"), D("420"), D("180")),
    ]
