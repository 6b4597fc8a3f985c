"""Fills into the books: buys become lots at what they cost, sales relieve the lots
their proposals named (or, where they cannot, by the account's method), proceeds and
cash are the allocations' to the cent, and shares and basis are conserved."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, D, cents
from poise.domain.orders import LotInstruction, Side
from poise.domain.relief import Method, Term
from poise.domain.transactions import TxnKind
from poise.reconcile.fills import Execution, book

ACCOUNT = "ACC-1"
DAY = date(2026, 3, 2)
SETTLES = date(2026, 3, 3)


def lot(lot_id: str, quantity: str, cost: str, acquired: date, security: str = "VTI") -> TaxLot:
    return TaxLot(lot_id, ACCOUNT, security, D(quantity), D(cost), acquired)


def execution(
    txn_id: str,
    side: Side,
    quantity: str,
    price: str,
    *,
    commission: str = "0",
    lots: tuple[LotInstruction, ...] = (),
    security: str = "VTI",
    day: date = DAY,
) -> Execution:
    gross = cents(D(quantity) * D(price))
    cost = D(commission)
    net = gross + cost if side is Side.BUY else gross - cost
    return Execution(
        txn_id, ACCOUNT, security, side, D(quantity), D(price), gross, cost, net, day, SETTLES,
        lots=lots,
    )  # fmt: skip


def test_book_when_a_buy_is_booked_then_it_is_a_lot_at_its_cost_and_cash_pays_for_it() -> None:
    done = book(
        ACCOUNT, [], [execution("F1", Side.BUY, "10", "250.125", commission="1.25")],
        method=Method.FIFO,
    )  # fmt: skip

    (made,) = done.lots
    assert (made.lot_id, made.quantity, made.cost_basis, made.acquired) == (
        "F1", D("10"), D("2502.50"), DAY,
    )  # fmt: skip
    assert done.cash == D("-2502.50")
    (txn,) = done.transactions
    assert (txn.kind, txn.amount, txn.settle_date) == (TxnKind.BUY, D("2502.50"), SETTLES)
    assert done.realised == ()
    assert done.closed == ()


def test_book_when_a_sale_names_its_lots_then_they_are_relieved_and_the_gain_is_kept() -> None:
    held = [lot("L1", "10", "1000", date(2024, 1, 5)), lot("L2", "10", "3000", date(2025, 9, 1))]
    named = (LotInstruction("L2", D("10")), LotInstruction("L1", D("5")))

    done = book(
        ACCOUNT, held, [execution("F2", Side.SELL, "15", "200", commission="3", lots=named)],
        method=Method.FIFO,
    )  # fmt: skip

    assert done.cash == D("2997")
    by_lot = {r.lot_id: r for r in done.realised}
    assert sum((r.proceeds for r in done.realised), ZERO) == D("2997")
    assert (by_lot["L2"].proceeds, by_lot["L1"].proceeds) == (D("1998"), D("999"))
    assert (by_lot["L2"].basis, by_lot["L2"].term, by_lot["L2"].gain) == (
        D("3000"), Term.SHORT, D("-1002"),
    )  # fmt: skip
    assert (by_lot["L1"].basis, by_lot["L1"].term) == (D("500.00"), Term.LONG)
    assert [(x.lot_id, x.quantity, x.cost_basis) for x in done.lots] == [
        ("L1", D("5"), D("500.00"))
    ]
    ((emptied, on, by),) = done.closed
    assert (emptied.lot_id, emptied.quantity, emptied.cost_basis, on, by) == (
        "L2", D("10"), D("3000"), DAY, "F2",
    )  # fmt: skip
    (txn,) = done.transactions
    assert [(r.lot_id, r.quantity) for r in txn.lots] == [("L2", D("10")), ("L1", D("5"))]


def test_book_when_a_named_lot_is_gone_then_the_sale_goes_by_the_accounts_method() -> None:
    held = [lot("L1", "10", "1000", date(2024, 1, 5)), lot("L2", "10", "3000", date(2025, 9, 1))]
    named = (LotInstruction("L9", D("4")),)

    done = book(
        ACCOUNT, held, [execution("F3", Side.SELL, "4", "200", lots=named)], method=Method.HIFO
    )

    assert [(r.lot_id, r.quantity) for r in done.realised] == [("L2", D("4"))]
    assert "relieved by hifo" in done.transactions[0].description


def test_book_when_a_sale_is_larger_than_the_holding_then_it_is_refused_and_nothing_moves() -> None:
    held = [lot("L1", "10", "1000", date(2024, 1, 5))]

    done = book(
        ACCOUNT, held,
        [
            execution("F4", Side.SELL, "11", "200"),
            execution("F5", Side.BUY, "1", "5", security="X"),
        ],
        method=Method.FIFO,
    )  # fmt: skip

    (refused,) = done.refused
    assert (refused.txn_id, "only 10 are held" in refused.reason) == ("F4", True)
    assert [x.txn_id for x in done.transactions] == ["F5"]
    assert done.cash == D("-5")
    assert [x.lot_id for x in done.lots] == ["L1", "F5"]


def test_book_when_a_day_sells_and_buys_then_the_sale_never_relieves_the_days_buy() -> None:
    held = [lot("L1", "10", "1000", date(2024, 1, 5))]

    done = book(
        ACCOUNT, held,
        [execution("A-BUY", Side.BUY, "10", "90"), execution("Z-SELL", Side.SELL, "10", "95")],
        method=Method.LIFO,
    )  # fmt: skip

    assert [r.lot_id for r in done.realised] == ["L1"]
    assert [x.lot_id for x in done.lots] == ["A-BUY"]


def test_book_when_the_method_is_specific_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be specific"):
        book(ACCOUNT, [], [], method=Method.SPECIFIC)


# ── conservation, for any holding and any run of fills that fits ──────────────────

_QTY = st.integers(min_value=1, max_value=500)
_PRICE = st.integers(min_value=100, max_value=500_00).map(lambda c: Decimal(c) / 100)


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[TaxLot], list[Execution]]:
    held = [
        lot(
            f"L{i}", str(draw(_QTY)), str(Decimal(draw(st.integers(1, 10**7))) / 100),
            date(2020 + draw(st.integers(0, 5)), 1 + draw(st.integers(0, 11)), 1),
            security=draw(st.sampled_from(["VTI", "BND"])),
        )
        for i in range(draw(st.integers(0, 5)))
    ]  # fmt: skip
    fills = []
    for i in range(draw(st.integers(1, 6))):
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        security = draw(st.sampled_from(["VTI", "BND"]))
        mine = [x for x in held if x.security_id == security]
        named: tuple[LotInstruction, ...] = ()
        if side is Side.SELL and mine and draw(st.booleans()):
            chosen = draw(st.sampled_from(mine))
            take = draw(st.integers(1, int(chosen.quantity)))
            named = (LotInstruction(chosen.lot_id, Decimal(take)),)
            quantity = str(take)
        else:
            quantity = str(draw(_QTY))
        fills.append(
            execution(
                f"F{i}", side, quantity, str(draw(_PRICE)),
                commission=str(Decimal(draw(st.integers(0, 500))) / 100),
                lots=named, security=security,
            )
        )  # fmt: skip
    return held, fills


@settings(max_examples=200, deadline=None)
@given(_scenario(), st.sampled_from([Method.FIFO, Method.LIFO, Method.HIFO, Method.TAX_MIN]))
def test_book_when_any_fills_are_booked_then_shares_basis_and_cash_are_conserved(
    scenario: tuple[list[TaxLot], list[Execution]], method: Method
) -> None:
    held, fills = scenario

    done = book(ACCOUNT, held, fills, method=method)

    taken = {x.txn_id for x in done.transactions}
    assert taken | {r.txn_id for r in done.refused} == {f.txn_id for f in fills}
    kept = [f for f in fills if f.txn_id in taken]
    for security in ("VTI", "BND"):
        before = sum((x.quantity for x in held if x.security_id == security), ZERO)
        after = sum((x.quantity for x in done.lots if x.security_id == security), ZERO)
        moved = sum(
            (f.quantity if f.side is Side.BUY else -f.quantity)
            for f in kept
            if f.security_id == security
        )
        assert after == before + moved
    basis_before = sum((x.basis for x in held), ZERO)
    bought = sum((f.net for f in kept if f.side is Side.BUY), ZERO)
    realised_basis = sum((r.basis for r in done.realised), ZERO)
    assert sum((x.basis for x in done.lots), ZERO) + realised_basis == basis_before + bought
    sold = sum((f.net for f in kept if f.side is Side.SELL), ZERO)
    assert sum((r.proceeds for r in done.realised), ZERO) == sold
    assert done.cash == sold - bought
    for relieved in done.realised:
        assert relieved.proceeds == cents(relieved.proceeds)
