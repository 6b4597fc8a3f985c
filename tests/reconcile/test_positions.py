"""Breaks typed and explained: a reverse split, a pending settlement, a price off by
more than the tolerance, a position in a security the master does not know."""

from __future__ import annotations

from decimal import Decimal

from poise.domain.money import D
from poise.reconcile.positions import BreakKind, Pending, Snapshot, compare


def snapshot(
    positions: dict[str, str],
    *,
    cash: str | None = None,
    trade_date_cash: str | None = None,
    prices: dict[str, str] | None = None,
) -> Snapshot:
    return Snapshot(
        "A1",
        {s: D(q) for s, q in positions.items()},
        {s: D(p) for s, p in (prices or {}).items()},
        None if cash is None else D(cash),
        None if trade_date_cash is None else D(trade_date_cash),
    )


def test_compare_when_the_custodian_holds_a_third_then_it_is_a_reverse_split() -> None:
    (found,) = compare(snapshot({"S": "100"}), books={"S": D("300")}, books_cash=D(0),
                       known={"S"})  # fmt: skip

    assert (found.kind, found.difference) == (BreakKind.QUANTITY, D("-200"))
    assert found.cause == "a corporate action the books do not know: a 1-for-3 reverse split"


def test_compare_when_settled_cash_misses_trades_still_to_settle_then_the_cause_says_so() -> None:
    # the books: 10,000 on trade date after a sale of 2,000 that settles tomorrow; the
    # custodian's file calls 10,000 its settled cash — it is the trade-date balance
    unsettled = [Pending("A1", "T9", "S", Decimal(0), D("2000"))]

    (found,) = compare(snapshot({}, cash="10000"), books={}, books_cash=D("10000"),
                       known=set(), unsettled=unsettled)  # fmt: skip

    assert (found.kind, found.books, found.custodian) == (BreakKind.CASH, D("8000"), D("10000"))
    assert found.cause == "a pending settlement: T9"


def test_compare_when_settled_cash_agrees_then_there_is_no_break() -> None:
    unsettled = [Pending("A1", "T9", "S", Decimal(0), D("2000"))]

    assert compare(snapshot({}, cash="8000"), books={}, books_cash=D("10000"), known=set(),
                   unsettled=unsettled) == []  # fmt: skip


def test_compare_when_a_price_is_off_past_the_tolerance_then_it_is_a_price_break() -> None:
    found = compare(
        snapshot({"S": "10", "T": "5"}, prices={"S": "102.5", "T": "50.2"}),
        books={"S": D("10"), "T": D("5")}, books_cash=D(0), known={"S", "T"},
        prices={"S": D("100"), "T": D("50")}, tolerance=D("0.01"),
    )  # fmt: skip

    assert [(b.kind, b.security_id) for b in found] == [(BreakKind.PRICE, "S")]  # 2.5%, 0.4%


def test_compare_when_the_master_does_not_know_a_security_then_it_is_an_unknown_position() -> None:
    (found,) = compare(snapshot({"ZZZ": "7"}), books={}, books_cash=D(0), known={"S"})

    assert (found.kind, found.security_id, found.custodian) == (
        BreakKind.UNKNOWN_POSITION, "ZZZ", D("7"),
    )  # fmt: skip
