"""Allocation of a block's fills: worked examples a reader can check by hand.

A block is written as its statement, one account a line (``A1  P1#1  500`` and, for a
sale, ``lots=L1:6,L2:4``); fills as the broker reports them (``E1  600 @ 50.00`` and
``commission 10.00``); the allocations expected as ``A1  P1#1  500 @ 50.040000  gross
25,020.00  commission 5.00  net 25,025.00``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.errors import ValidationError
from poise.domain.money import D, plain
from poise.domain.orders import (
    Allocation,
    BlockOrder,
    Fill,
    LotInstruction,
    OrdType,
    Side,
    StatementLine,
)
from poise.execute.allocation import allocate, average_price, largest_remainder, shares_of


def _lines(table: str) -> list[str]:
    return [" ".join(line.split()) for line in table.strip().splitlines() if line.strip()]


def _amount(text: str) -> Decimal:
    return D(text.replace(",", ""))


def block(table: str, side: Side = Side.BUY, security: str = "VTI") -> BlockOrder:
    """A block of ``security`` whose statement is ``table``."""
    lines = []
    for line in _lines(table):
        account, key, quantity, *rest = line.split()
        proposal, seq = key.split("#")
        lots: tuple[LotInstruction, ...] = ()
        if rest:
            [named] = rest
            lots = tuple(
                LotInstruction(lot, D(qty))
                for lot, qty in (part.split(":") for part in named.removeprefix("lots=").split(","))
            )
        lines.append(StatementLine(proposal, int(seq), account, D(quantity), lots))
    quantity = sum((line.quantity for line in lines), Decimal(0))
    return BlockOrder(
        block_id="R1-VTI",
        route="SCHW-FIX",
        security_id=security,
        side=side,
        quantity=quantity,
        ord_type=OrdType.MARKET,
        limit=None,
        reference=D("50.00"),
        statement=tuple(lines),
    )


def fills(table: str) -> list[Fill]:
    """``E1  600 @ 50.00`` and optionally ``commission 10.00``, one fill a line."""
    result = []
    for line in _lines(table):
        match line.split():
            case [exec_id, quantity, "@", price]:
                result.append(Fill(exec_id, D(quantity), D(price)))
            case [exec_id, quantity, "@", price, "commission", commission]:
                result.append(Fill(exec_id, D(quantity), D(price), D(commission)))
            case _:
                raise AssertionError(f"not a fill: {line!r}")
    return result


def allocated(allocations: tuple[Allocation, ...]) -> list[str]:
    rows = []
    for a in allocations:
        words = [
            a.account_id,
            f"{a.proposal_id}#{a.seq}",
            plain(a.quantity),
            "@",
            str(a.price),
            "gross",
            f"{a.gross:,}",
            "commission",
            f"{a.commission:,}",
            "net",
            f"{a.net:,}",
        ]
        if a.lots:
            words.append(",".join(f"{lot.lot_id}:{plain(lot.quantity)}" for lot in a.lots))
        rows.append(" ".join(words))
    return rows


# --- a block filled in full -----------------------------------------------------------


def test_allocate_when_filled_in_full_at_two_prices_then_everyone_gets_the_average() -> None:
    # 600 at $50.00 and 400 at $50.10: $50,040.00 for 1,000 shares, $50.04 each.
    made = allocate(
        block("""
            A1  P1#1  500
            B1  P2#1  300
            C1  P3#1  200
        """),
        fills("""
            E1  600 @ 50.00  commission 6.00
            E2  400 @ 50.10  commission 4.00
        """),
    )

    assert allocated(made) == _lines("""
        A1 P1#1 500 @ 50.040000 gross 25,020.00 commission 5.00 net 25,025.00
        B1 P2#1 300 @ 50.040000 gross 15,012.00 commission 3.00 net 15,015.00
        C1 P3#1 200 @ 50.040000 gross 10,008.00 commission 2.00 net 10,010.00
    """)
    assert all(a.block_id == "R1-VTI" and a.side is Side.BUY for a in made)


def test_allocate_when_a_sale_is_filled_then_each_account_receives_gross_less_commission() -> None:
    made = allocate(
        block(
            """
            A1  P1#1  60  lots=L1:60
            B1  P2#1  40  lots=L7:25,L8:15
            """,
            Side.SELL,
        ),
        fills("E1  100 @ 25.00  commission 5.00"),
    )

    assert allocated(made) == _lines("""
        A1 P1#1 60 @ 25.000000 gross 1,500.00 commission 3.00 net 1,497.00 L1:60
        B1 P2#1 40 @ 25.000000 gross 1,000.00 commission 2.00 net 998.00 L7:25,L8:15
    """)


# --- a partial fill and the odd share -------------------------------------------------


def test_allocate_when_7_of_10_shares_fill_then_4_3_3_become_3_2_2() -> None:
    # Pro rata 2.8, 2.1 and 2.1: two shares each, and the seventh to A1, whose .8 is
    # the largest fraction cut off.
    made = allocate(
        block("""
            A1  P1#1  4
            B1  P2#1  3
            C1  P3#1  3
        """),
        fills("E1  7 @ 20.00"),
    )

    assert allocated(made) == _lines("""
        A1 P1#1 3 @ 20.000000 gross 60.00 commission 0.00 net 60.00
        B1 P2#1 2 @ 20.000000 gross 40.00 commission 0.00 net 40.00
        C1 P3#1 2 @ 20.000000 gross 40.00 commission 0.00 net 40.00
    """)


def test_allocate_when_accounts_tie_for_the_odd_share_then_the_first_by_account_id_wins() -> None:
    # Two shares of three lines of one: 2/3 each. A1 and B1 win the tie; C1 gets no
    # shares, so no allocation.
    made = allocate(
        block("""
            C1  P1#1  1
            A1  P3#1  1
            B1  P2#1  1
        """),
        fills("E1  2 @ 20.00"),
    )

    assert [(a.account_id, a.quantity) for a in made] == [("A1", 1), ("B1", 1)]


def test_allocate_when_a_sale_fills_in_part_then_each_relieves_its_first_named_lots() -> None:
    made = allocate(
        block(
            """
            A1  P1#1  10  lots=L1:6,L2:4
            B1  P2#1  10  lots=L5:10
            """,
            Side.SELL,
        ),
        fills("E1  16 @ 10.00"),
    )

    assert [(a.account_id, a.quantity, a.lots) for a in made] == [
        ("A1", 8, (LotInstruction("L1", D("6")), LotInstruction("L2", D("2")))),
        ("B1", 8, (LotInstruction("L5", D("8")),)),
    ]


def test_allocate_when_a_fractional_block_fills_in_part_then_to_a_millionth_of_a_share() -> None:
    # 1 share of 1.5: a third and two thirds, 0.333333 and 0.666667.
    made = allocate(
        block("""
            A1  P1#1  0.5
            B1  P2#1  1
        """),
        fills("E1  1 @ 30.00"),
    )

    assert [(a.account_id, a.quantity, a.gross) for a in made] == [
        ("A1", D("0.333333"), D("10.00")),
        ("B1", D("0.666667"), D("20.00")),
    ]


# --- cents: gross and commission ------------------------------------------------------


def test_allocate_when_cash_does_not_split_to_the_cent_then_the_residue_goes_by_remainder() -> None:
    # 10 shares at $10.003: $100.03. Exactly, A1 is owed $50.015, B1 $30.009, C1
    # $20.006. Each rounded to the cent would come to $100.04, a cent more than the
    # fills; rounded down, $100.01. The two cents left go to B1 (.9 of a cent cut off)
    # and C1 (.6), not A1 (.5).
    made = allocate(
        block("""
            A1  P1#1  5
            B1  P2#1  3
            C1  P3#1  2
        """),
        fills("E1  10 @ 10.003"),
    )

    assert allocated(made) == _lines("""
        A1 P1#1 5 @ 10.003000 gross 50.01 commission 0.00 net 50.01
        B1 P2#1 3 @ 10.003000 gross 30.01 commission 0.00 net 30.01
        C1 P3#1 2 @ 10.003000 gross 20.01 commission 0.00 net 20.01
    """)
    assert sum(a.gross for a in made) == D("100.03")


def test_allocate_when_commission_does_not_split_to_the_cent_then_the_odd_cent_goes_first() -> None:
    # $1.00 over three equal lines: 33⅓ cents each; the odd cent to A1 by the tie-break.
    # Three fills, $30.01 in all: the same third of a cent each, and the odd cent of
    # gross also to A1.
    made = allocate(
        block("""
            A1  P1#1  1
            B1  P2#1  1
            C1  P3#1  1
        """),
        fills("""
            E1  1 @ 10.00  commission 1.00
            E2  1 @ 10.00
            E3  1 @ 10.01
        """),
    )

    assert allocated(made) == _lines("""
        A1 P1#1 1 @ 10.003333 gross 10.01 commission 0.34 net 10.35
        B1 P2#1 1 @ 10.003333 gross 10.00 commission 0.33 net 10.33
        C1 P3#1 1 @ 10.003333 gross 10.00 commission 0.33 net 10.33
    """)


# --- the average price ----------------------------------------------------------------


def test_average_price_when_it_does_not_end_then_six_decimal_places() -> None:
    # $30.02 for three shares: $10.00666…
    assert average_price(fills("E1 1 @ 10.00\nE2 2 @ 10.01")) == D("10.006667")


def test_average_price_when_nothing_filled_then_there_is_none() -> None:
    with pytest.raises(ValidationError, match="at least one fill"):
        average_price([])


def test_allocate_when_nothing_filled_then_nothing_is_allocated() -> None:
    assert allocate(block("A1  P1#1  10"), []) == ()


# --- fills that cannot be the block's -------------------------------------------------


@pytest.mark.parametrize(
    ("fill", "message"),
    [
        ([Fill("E1", D("11"), D("20.00"))], "exceed its 10"),
        ([Fill("E1", D("6"), D("20.00")), Fill("E2", D("5"), D("20.00"))], "exceed its 10"),
        ([Fill("E1", D("5"), D("20.00"), security_id="BND")], "is of BND"),
        ([Fill("E1", D("5"), D("20.00"), side=Side.SELL)], "is a sell"),
        ([Fill("E1", D("2"), D("20.00")), Fill("E1", D("3"), D("20.00"))], "reported twice"),
        ([Fill("E1", D("2.5"), D("20.00"))], "whole-share block filled for 2.5"),
    ],
    ids=["too many", "too many in all", "wrong security", "wrong side", "twice", "fraction"],
)
def test_allocate_when_a_fill_cannot_be_the_block_s_then_it_is_refused(
    fill: list[Fill], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        allocate(block("A1  P1#1  6\nB1  P2#1  4"), fill)


@pytest.mark.parametrize(
    ("quantity", "price", "commission", "message"),
    [
        ("0", "20.00", "0", "positive quantity"),
        ("1", "0", "0", "fill price must be positive"),
        ("1", "20.00", "-1", "commission cannot be negative"),
    ],
)
def test_fill_when_it_breaks_a_rule_of_its_type_then_it_is_refused(
    quantity: str, price: str, commission: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Fill("E1", D(quantity), D(price), D(commission))


# --- the odd-unit rule itself ---------------------------------------------------------


def test_largest_remainder_when_units_are_left_then_they_go_to_the_largest_fractions() -> None:
    assert largest_remainder(7, [Fraction(28, 10), Fraction(21, 10), Fraction(21, 10)]) == (
        3,
        2,
        2,
    )
    assert largest_remainder(2, [Fraction(2, 3)] * 3) == (1, 1, 0)


def test_largest_remainder_when_the_total_cannot_be_shared_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="cannot share"):
        largest_remainder(5, [Fraction(1), Fraction(1)])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8),
    st.integers(min_value=1, max_value=10**6),
)
def test_shares_of_when_given_whole_numerators_then_it_shares_as_exact_fractions_do(
    weights: list[int], total: int
) -> None:
    whole = sum(weights) or 1
    numerators = [w * total for w in weights]

    def outcome(share: Callable[[], tuple[int, ...]]) -> object:
        try:
            return share()
        except ValidationError:
            return "refused"

    assert outcome(lambda: shares_of(total, numerators, whole)) == outcome(
        lambda: largest_remainder(total, [Fraction(n, whole) for n in numerators])
    )
