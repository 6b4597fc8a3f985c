"""Lot relief: worked examples, one holding written as a table per scenario.

Every figure below can be checked by hand: lots are 100 shares at round per-share
costs, sold at $60.00 on 14 June 2024 unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.money import D
from poise.domain.relief import BOOKING_METHODS, Method, ReliefResult, Term, is_long_term, relieve

ACCOUNT = "ACC-1001"
SECURITY = "VTI"
SOLD = date(2024, 6, 14)
PRICE = D("60.00")

Row = tuple[str, Decimal, Decimal, Decimal, Decimal, Term]


def _amount(text: str) -> Decimal:
    return D(text.replace(",", ""))


def _lines(table: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in table.strip().splitlines())
    return [line for line in lines if line]


def lots(table: str) -> list[TaxLot]:
    """Open lots of one holding, one a line.

    ``L1  2024-03-01  100 sh  cost 5,000.00  adjusted 5,600.00  disallowed 600.00
    held since 2022-05-01`` — everything after the cost is optional (wash-sale
    adjustments); ``#`` starts a comment.
    """
    result = []
    for line in _lines(table):
        match line.replace("held since", "since").split():
            case [lot_id, acquired, quantity, "sh", "cost", cost, *extra]:
                pairs = dict(zip(extra[::2], extra[1::2], strict=True))
                assert set(pairs) <= {"adjusted", "disallowed", "since"}, line
                result.append(
                    TaxLot(
                        lot_id=lot_id,
                        account_id=ACCOUNT,
                        security_id=SECURITY,
                        quantity=_amount(quantity),
                        cost_basis=_amount(cost),
                        acquired=date.fromisoformat(acquired),
                        adjusted_basis=_amount(pairs["adjusted"]) if "adjusted" in pairs else None,
                        holding_start=date.fromisoformat(pairs["since"])
                        if "since" in pairs
                        else None,
                        disallowed_loss=_amount(pairs.get("disallowed", "0")),
                    )
                )
            case _:
                raise AssertionError(f"not a lot line: {line!r}")
    return result


def reliefs(table: str) -> list[Row]:
    """Expected reliefs, one a line: ``L1  100 sh  basis 5,000.00  proceeds 6,000.00
    gain 1,000.00  long``."""
    rows: list[Row] = []
    for line in _lines(table):
        match line.split():
            case [lot_id, qty, "sh", "basis", basis, "proceeds", proceeds, "gain", gain, term]:
                rows.append(
                    (
                        lot_id,
                        _amount(qty),
                        _amount(basis),
                        _amount(proceeds),
                        _amount(gain),
                        Term(term),
                    )
                )
            case _:
                raise AssertionError(f"not a relief line: {line!r}")
    return rows


def relieved(result: ReliefResult) -> list[Row]:
    return [(r.lot_id, r.quantity, r.basis, r.proceeds, r.gain, r.term) for r in result.reliefs]


def sell(
    table: str,
    quantity: str,
    method: Method,
    *,
    price: Decimal = PRICE,
    sold: date = SOLD,
    specific: dict[str, Decimal] | None = None,
) -> ReliefResult:
    return relieve(
        lots(table), D(quantity), method=method, price=price, sold=sold, specific=specific
    )


# Per share: L1 $50 (long), L2 $80 (long), L3 $55 (short), L4 $65 (short) against $60.
HOLDING = """
    L1  2019-03-01  100 sh  cost 5,000.00
    L2  2021-11-15  100 sh  cost 8,000.00
    L3  2023-09-20  100 sh  cost 5,500.00
    L4  2024-02-01  100 sh  cost 6,500.00
"""


# --- one worked example per booking method ----------------------------------------


def test_relieve_fifo_when_selling_150_then_oldest_lot_goes_first_and_next_is_split() -> None:
    result = sell(HOLDING, "150", Method.FIFO)

    assert relieved(result) == reliefs("""
        L1  100 sh  basis 5,000.00  proceeds 6,000.00  gain 1,000.00   long
        L2   50 sh  basis 4,000.00  proceeds 3,000.00  gain -1,000.00  long
    """)
    assert list(result.remaining) == lots("""
        L2  2021-11-15   50 sh  cost 4,000.00
        L3  2023-09-20  100 sh  cost 5,500.00
        L4  2024-02-01  100 sh  cost 6,500.00
    """)
    assert result.quantity == 150
    assert result.proceeds == D("9000.00")
    assert result.gain() == 0


def test_relieve_fifo_when_lots_are_listed_out_of_order_then_oldest_still_goes_first() -> None:
    shuffled = """
        L4  2024-02-01  100 sh  cost 6,500.00
        L2  2021-11-15  100 sh  cost 8,000.00
        L1  2019-03-01  100 sh  cost 5,000.00
        L3  2023-09-20  100 sh  cost 5,500.00
    """
    result = sell(shuffled, "150", Method.FIFO)

    assert [r.lot_id for r in result.reliefs] == ["L1", "L2"]
    # The lots left keep the order they came in.
    assert [lot.lot_id for lot in result.remaining] == ["L4", "L2", "L3"]


def test_relieve_lifo_when_selling_150_then_newest_lot_goes_first() -> None:
    result = sell(HOLDING, "150", Method.LIFO)

    assert relieved(result) == reliefs("""
        L4  100 sh  basis 6,500.00  proceeds 6,000.00  gain -500.00  short
        L3   50 sh  basis 2,750.00  proceeds 3,000.00  gain 250.00   short
    """)
    assert list(result.remaining) == lots("""
        L1  2019-03-01  100 sh  cost 5,000.00
        L2  2021-11-15  100 sh  cost 8,000.00
        L3  2023-09-20   50 sh  cost 2,750.00
    """)
    assert result.gain(Term.SHORT) == D("-250.00")
    assert result.gain(Term.LONG) == 0


def test_relieve_hifo_when_selling_150_then_dearest_shares_go_first() -> None:
    result = sell(HOLDING, "150", Method.HIFO)

    assert relieved(result) == reliefs("""
        L2  100 sh  basis 8,000.00  proceeds 6,000.00  gain -2,000.00  long
        L4   50 sh  basis 3,250.00  proceeds 3,000.00  gain -250.00    short
    """)
    assert list(result.remaining) == lots("""
        L1  2019-03-01  100 sh  cost 5,000.00
        L3  2023-09-20  100 sh  cost 5,500.00
        L4  2024-02-01   50 sh  cost 3,250.00
    """)
    assert result.gain(Term.LONG) == D("-2000.00")
    assert result.gain(Term.SHORT) == D("-250.00")


def test_relieve_hifo_when_two_lots_cost_the_same_a_share_then_older_goes_first() -> None:
    table = """
        N  2023-05-01  10 sh  cost 700.00
        O  2020-05-01  20 sh  cost 1,400.00
    """
    result = sell(table, "15", Method.HIFO)

    assert [(r.lot_id, r.quantity) for r in result.reliefs] == [("O", D("15"))]


def test_relieve_specific_when_lots_are_named_then_exactly_those_shares_are_sold() -> None:
    result = sell(HOLDING, "120", Method.SPECIFIC, specific={"L3": D("70"), "L1": D("50")})

    assert relieved(result) == reliefs("""
        L3  70 sh  basis 3,850.00  proceeds 4,200.00  gain 350.00  short
        L1  50 sh  basis 2,500.00  proceeds 3,000.00  gain 500.00  long
    """)
    assert list(result.remaining) == lots("""
        L1  2019-03-01   50 sh  cost 2,500.00
        L2  2021-11-15  100 sh  cost 8,000.00
        L3  2023-09-20   30 sh  cost 1,650.00
        L4  2024-02-01  100 sh  cost 6,500.00
    """)
    assert result.gain(Term.LONG) == D("500.00")
    assert result.gain(Term.SHORT) == D("350.00")


# At $60: A and B are long-term gains, C a short-term gain, D and E losses.
TAX_MIN_HOLDING = """
    A  2018-05-01  100 sh  cost 4,000.00   # $40 a share: long-term gain $20
    B  2020-05-01  100 sh  cost 5,000.00   # $50 a share: long-term gain $10
    C  2024-01-10  100 sh  cost 5,800.00   # $58 a share: short-term gain $2
    D  2023-10-02  100 sh  cost 6,200.00   # $62 a share: short-term loss $2
    E  2021-08-01  100 sh  cost 7,000.00   # $70 a share: long-term loss $10
"""


def test_relieve_tax_min_when_selling_350_then_losses_then_long_term_gains() -> None:
    result = sell(TAX_MIN_HOLDING, "350", Method.TAX_MIN)

    assert relieved(result) == reliefs("""
        E  100 sh  basis 7,000.00  proceeds 6,000.00  gain -1,000.00  long
        D  100 sh  basis 6,200.00  proceeds 6,000.00  gain -200.00    short
        B  100 sh  basis 5,000.00  proceeds 6,000.00  gain 1,000.00   long
        A   50 sh  basis 2,000.00  proceeds 3,000.00  gain 1,000.00   long
    """)
    assert list(result.remaining) == lots("""
        A  2018-05-01   50 sh  cost 2,000.00
        C  2024-01-10  100 sh  cost 5,800.00
    """)
    assert result.gain(Term.LONG) == D("1000.00")
    assert result.gain(Term.SHORT) == D("-200.00")


def test_relieve_tax_min_when_selling_everything_then_short_term_gain_comes_last() -> None:
    # C's $2 gain is the smallest, but it is short-term, so it waits for A's $20.
    result = sell(TAX_MIN_HOLDING, "500", Method.TAX_MIN)

    assert [r.lot_id for r in result.reliefs] == ["E", "D", "B", "A", "C"]
    assert result.remaining == ()


def test_relieve_tax_min_when_wash_sale_moved_holding_start_then_lot_counts_as_long_term() -> None:
    # X was bought in March 2024 but inherits a holding period from 2021 through a
    # wash sale: its $6 gain is long-term and goes before Y's smaller short-term $3.
    table = """
        X  2024-03-01  100 sh  cost 5,000.00  adjusted 5,400.00  disallowed 400.00  held since 2021-06-01
        Y  2023-12-01  100 sh  cost 5,700.00
    """  # noqa: E501 - a lot line reads best on one line
    result = sell(table, "100", Method.TAX_MIN)

    assert relieved(result) == reliefs("""
        X  100 sh  basis 5,400.00  proceeds 6,000.00  gain 600.00  long
    """)


def test_booking_methods_when_looked_up_then_every_ordering_method_has_a_function() -> None:
    assert set(BOOKING_METHODS) == set(Method) - {Method.SPECIFIC}


# --- partial lots, rounding and proceeds ----------------------------------------------


def test_relieve_when_part_of_a_lot_is_sold_then_basis_is_prorated_half_even_to_the_cent() -> None:
    # 1 of 4 shares costing $10.10 carries $2.525, which rounds half-even to $2.52.
    result = sell("L1  2022-01-03  4 sh  cost 10.10", "1", Method.FIFO, price=D("3.00"))

    assert relieved(result) == reliefs("""
        L1  1 sh  basis 2.52  proceeds 3.00  gain 0.48  long
    """)
    assert list(result.remaining) == lots("L1  2022-01-03  3 sh  cost 7.58")


def test_relieve_when_a_lot_is_sold_in_two_parts_then_the_parts_use_up_its_cost_exactly() -> None:
    first = sell("L1  2022-01-03  3 sh  cost 100.00", "1", Method.FIFO)
    second = relieve(first.remaining, D("2"), method=Method.FIFO, price=PRICE, sold=SOLD)

    assert first.reliefs[0].basis == D("33.33")
    assert list(first.remaining) == lots("L1  2022-01-03  2 sh  cost 66.67")
    assert second.reliefs[0].basis == D("66.67")
    assert second.remaining == ()


def test_relieve_when_sale_spans_several_lots_then_proceeds_add_up_to_the_rounded_total() -> None:
    # 3 shares at $10.005 fetch $30.015, $30.02 to the cent (half-even). Each lot gets
    # the step in the rounded running total: 10.00, then 20.01 − 10.00, then 30.02 − 20.01.
    table = """
        L1  2020-01-02  1 sh  cost 9.00
        L2  2020-01-03  1 sh  cost 9.00
        L3  2020-01-04  1 sh  cost 9.00
    """
    result = sell(table, "3", Method.FIFO, price=D("10.005"))

    assert relieved(result) == reliefs("""
        L1  1 sh  basis 9.00  proceeds 10.00  gain 1.00  long
        L2  1 sh  basis 9.00  proceeds 10.01  gain 1.01  long
        L3  1 sh  basis 9.00  proceeds 10.01  gain 1.01  long
    """)
    assert result.proceeds == D("30.02")


def test_relieve_when_last_lot_is_a_sliver_then_its_proceeds_are_not_negative() -> None:
    # 3.001 shares at $1.015 fetch $3.046015, $3.05 to the cent. Each whole share is
    # $1.015, $1.02 to the cent, so the first three lots take $3.06 between them.
    table = """
        L1  2020-01-02  1 sh      cost 1.00
        L2  2020-01-03  1 sh      cost 1.00
        L3  2020-01-04  1 sh      cost 1.00
        L4  2020-01-05  0.001 sh  cost 0.01
    """
    result = sell(table, "3.001", Method.FIFO, price=D("1.015"))

    assert result.proceeds == D("3.05")
    assert [r.proceeds >= 0 for r in result.reliefs] == [True, True, True, True]


def test_relieve_when_cost_has_sub_cent_digits_then_remainder_keeps_non_negative_cost() -> None:
    result = sell("L1  2020-01-02  2 sh  cost 5.009", "1.999", Method.FIFO, price=D("3.00"))

    (left,) = result.remaining
    assert left.quantity == D("0.001")
    assert left.cost_basis >= 0
    assert result.reliefs[0].basis + left.cost_basis == D("5.009")


# --- wash-sale adjustments -------------------------------------------------------------


def test_relieve_when_lot_was_wash_sale_adjusted_then_adjusted_basis_and_start_count() -> None:
    # Unadjusted, 40 shares would show a $320 short-term gain (2,320 − 2,000); with the
    # $600 disallowed loss added to basis and the holding period carried back to
    # May 2022, they show $80 long-term.
    table = """
        W  2024-03-01  100 sh  cost 5,000.00  adjusted 5,600.00  disallowed 600.00  held since 2022-05-01
    """  # noqa: E501 - a lot line reads best on one line
    result = sell(table, "40", Method.FIFO, price=D("58.00"))

    assert relieved(result) == reliefs("""
        W  40 sh  basis 2,240.00  proceeds 2,320.00  gain 80.00  long
    """)
    assert list(result.remaining) == lots("""
        W  2024-03-01  60 sh  cost 3,000.00  adjusted 3,360.00  disallowed 360.00  held since 2022-05-01
    """)  # noqa: E501 - a lot line reads best on one line


def test_relieve_hifo_when_wash_sale_raised_a_lots_basis_then_adjusted_basis_ranks_it() -> None:
    # P cost $55 a share but carries $30 a share of disallowed loss: $85 beats Q's $80.
    table = """
        P  2024-04-01  10 sh  cost 550.00  adjusted 850.00  disallowed 300.00
        Q  2021-11-15  10 sh  cost 800.00
    """
    result = sell(table, "10", Method.HIFO)

    assert relieved(result) == reliefs("""
        P  10 sh  basis 850.00  proceeds 600.00  gain -250.00  short
    """)


# --- holding period (IRS Publication 550) ----------------------------------------------


@pytest.mark.parametrize(
    ("held_since", "sold", "long_term"),
    [
        pytest.param(date(2023, 2, 5), date(2024, 2, 5), False, id="on-the-anniversary"),
        pytest.param(date(2023, 2, 5), date(2024, 2, 6), True, id="day-after-anniversary"),
        pytest.param(date(2023, 2, 5), date(2023, 2, 5), False, id="same-day"),
        pytest.param(date(2023, 2, 5), date(2023, 8, 1), False, id="six-months"),
        pytest.param(date(2020, 2, 29), date(2021, 2, 28), False, id="leap-day-to-feb-28"),
        pytest.param(date(2020, 2, 29), date(2021, 3, 1), True, id="leap-day-to-mar-1"),
        pytest.param(date(2020, 2, 29), date(2024, 2, 29), True, id="leap-day-four-years"),
    ],
)
def test_is_long_term_when_held_until_sale_then_more_than_one_year_is_long(
    held_since: date, sold: date, long_term: bool
) -> None:
    assert is_long_term(held_since, sold) is long_term


@pytest.mark.parametrize(
    ("sold", "term", "gain"),
    [
        pytest.param(date(2024, 2, 5), Term.SHORT, D("1000.00"), id="sold-2024-02-05"),
        pytest.param(date(2024, 2, 6), Term.LONG, D("1000.00"), id="sold-2024-02-06"),
    ],
)
def test_relieve_when_lot_bought_5_feb_2023_then_term_turns_long_on_6_feb_2024(
    sold: date, term: Term, gain: Decimal
) -> None:
    result = sell("L1  2023-02-05  100 sh  cost 5,000.00", "100", Method.FIFO, sold=sold)

    assert [(r.term, r.gain) for r in result.reliefs] == [(term, gain)]
    assert result.gain(term) == gain


# --- sales that cannot be booked -------------------------------------------------------


def test_relieve_when_selling_more_than_is_held_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="only 400 are held"):
        sell(HOLDING, "401", Method.FIFO)


def test_relieve_when_named_lots_do_not_add_up_to_the_sale_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="do not add up"):
        sell(HOLDING, "100", Method.SPECIFIC, specific={"L1": D("50"), "L3": D("20")})


def test_relieve_when_a_named_lot_is_not_open_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="L9 is not an open lot"):
        sell(HOLDING, "10", Method.SPECIFIC, specific={"L9": D("10")})


def test_relieve_when_more_is_named_from_a_lot_than_it_holds_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="cannot sell 150 of 100"):
        sell(HOLDING, "150", Method.SPECIFIC, specific={"L2": D("150")})


def test_relieve_when_specific_method_names_no_lots_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="needs the lots"):
        sell(HOLDING, "10", Method.SPECIFIC)


@pytest.mark.parametrize("quantity", ["0", "-5"])
def test_relieve_when_quantity_is_not_positive_then_validation_error(quantity: str) -> None:
    with pytest.raises(ValidationError, match="positive quantity"):
        sell(HOLDING, quantity, Method.FIFO)


def test_relieve_when_price_is_negative_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="cannot be negative"):
        sell(HOLDING, "10", Method.FIFO, price=D("-0.01"))


def test_relieve_when_lots_belong_to_two_securities_then_validation_error() -> None:
    vti, bnd = lots("""
        L1  2019-03-01  100 sh  cost 5,000.00
        L2  2021-11-15  100 sh  cost 8,000.00
    """)
    bnd = TaxLot("L2", ACCOUNT, "BND", bnd.quantity, bnd.cost_basis, bnd.acquired)

    with pytest.raises(ValidationError, match="one security in one account"):
        relieve([vti, bnd], D("10"), method=Method.FIFO, price=PRICE, sold=SOLD)
