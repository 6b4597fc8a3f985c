"""A year's capital gains settled, on the examples of IRS Publication 550 and the
Schedule D instructions' Capital Loss Carryover Worksheet, and the properties every
answer keeps. Each figure is worked out by hand in the comments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.accounts import TaxRates
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO
from poise.domain.relief import Term
from poise.domain.taxes import (
    ORDINARY_LOSS_LIMIT,
    Carryforward,
    Realised,
    YearTax,
    settle_year,
)

D = Decimal
NONE = Carryforward()
UNTAXED = TaxRates()
# A high earner in a high-tax state: 35% ordinary, 15% long-term, 5% state.
HIGH = TaxRates(short_term=D("0.35"), long_term=D("0.15"), state=D("0.05"))


def short(gain: str, on: date = date(2024, 6, 3)) -> Realised:
    return Realised(on, Term.SHORT, D(gain))


def long(gain: str, on: date = date(2024, 6, 3)) -> Realised:
    return Realised(on, Term.LONG, D(gain))


def carried(short: str = "0", long: str = "0") -> Carryforward:
    return Carryforward(D(short), D(long))


def figures(result: YearTax) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
    """(taxed short, taxed long, deducted, carried out short, carried out long)."""
    return (
        result.taxed_short,
        result.taxed_long,
        result.deducted,
        result.carried_out.short,
        result.carried_out.long,
    )


# -- Publication 550 and the Capital Loss Carryover Worksheet -----------------------------


@pytest.mark.parametrize("term", [Term.SHORT, Term.LONG])
def test_settle_year_when_publication_550_loses_7000_then_3000_is_deducted_and_4000_carried(
    term: Term,
) -> None:
    # Pub. 550 (Bob and Gloria): securities sold at a $7,000 capital loss, no other
    # capital transactions, a joint return. Deducted: the $3,000 limit. Carried over:
    # $7,000 − $3,000 = $4,000. The example does not say the term; either way the
    # carryover keeps the loss's character.
    result = settle_year(2024, [Realised(date(2024, 9, 16), term, D(-7000))], NONE, UNTAXED)
    assert (result.taxed_short, result.taxed_long, result.deducted) == (ZERO, ZERO, D(3000))
    assert result.carried_out.total == D(4000)
    assert result.carried_out == (
        carried(short="4000") if term is Term.SHORT else carried(long="4000")
    )


def test_settle_year_when_publication_550_loses_2000_then_all_is_deducted_and_none_carried() -> (
    None
):
    # Pub. 550: had the loss been $2,000, under the $3,000 limit, the deduction is
    # $2,000 and there is no carryover.
    result = settle_year(2024, [short("-2000")], NONE, UNTAXED)
    assert figures(result) == (ZERO, ZERO, D(2000), ZERO, ZERO)


def test_settle_year_when_both_terms_lose_then_the_worksheet_uses_the_short_term_loss_first() -> (
    None
):
    # Net short-term loss $2,000 (Schedule D line 7), net long-term loss $5,000
    # (line 15). Line 16: −$7,000; line 21: the $3,000 limit.
    # Worksheet: line 4 = $3,000 (taxable income taken as not negative).
    #   Short-term: line 5 = 2,000, line 6 = 0, line 7 = 3,000 + 0 = 3,000,
    #               line 8 = 2,000 − 3,000 < 0, so 0.
    #   Long-term:  line 9 = 5,000, line 10 = 0, line 11 = 3,000 − 2,000 = 1,000,
    #               line 12 = 0 + 1,000 = 1,000, line 13 = 5,000 − 1,000 = 4,000.
    # The $3,000 deduction took all $2,000 of the short-term loss and $1,000 long-term.
    result = settle_year(2024, [short("-2000"), long("-5000")], NONE, UNTAXED)
    assert figures(result) == (ZERO, ZERO, D(3000), ZERO, D(4000))


def test_settle_year_when_the_short_term_loss_passes_the_limit_then_the_long_term_carries() -> None:
    # Net short-term loss $4,500, net long-term loss $1,000: the deduction of $3,000
    # comes out of the short-term loss alone.
    #   line 8 = 4,500 − (3,000 + 0) = 1,500 short-term carried;
    #   line 11 = 3,000 − 4,500 < 0, so 0; line 13 = 1,000 − 0 = 1,000 long-term carried.
    result = settle_year(2024, [short("-4500"), long("-1000")], NONE, UNTAXED)
    assert figures(result) == (ZERO, ZERO, D(3000), D(1500), D(1000))


def test_settle_year_when_married_filing_separately_then_the_limit_is_1500() -> None:
    # §1211(b)(1): $1,500 for a married individual filing separately.
    # $7,000 loss: $1,500 deducted, $7,000 − $1,500 = $5,500 carried.
    result = settle_year(2024, [long("-7000")], NONE, UNTAXED, loss_limit=D(1500))
    assert figures(result) == (ZERO, ZERO, D(1500), ZERO, D(5500))


# -- Gains, and netting across the terms -------------------------------------------------


def test_settle_year_when_both_terms_gain_then_each_is_taxed_at_its_own_rate() -> None:
    # Short-term: 6,000 − 1,000 = 5,000; long-term: 12,000 − 2,000 = 10,000.
    # Tax at 35% + 5% = 40% and 15% + 5% = 20%: 5,000 × 0.40 + 10,000 × 0.20
    # = 2,000 + 2,000 = 4,000.00.
    sales = [short("6000"), short("-1000"), long("12000"), long("-2000")]
    result = settle_year(2024, sales, NONE, HIGH)
    assert (result.short_gains, result.long_gains) == (D(5000), D(10000))
    assert figures(result) == (D(5000), D(10000), ZERO, ZERO, ZERO)
    assert result.tax == D("4000.00")


def test_settle_year_when_short_gain_beats_long_loss_then_the_rest_is_short_term() -> None:
    # Short-term gain 8,000, long-term loss 3,000: 8,000 − 3,000 = 5,000 left, a
    # short-term gain (no net long-term gain, so no net capital gain, §1222(11)).
    # Tax: 5,000 × 0.40 = 2,000.00.
    result = settle_year(2024, [short("8000"), long("-3000")], NONE, HIGH)
    assert figures(result) == (D(5000), ZERO, ZERO, ZERO, ZERO)
    assert result.tax == D("2000.00")


def test_settle_year_when_long_gain_beats_short_loss_then_the_rest_is_long_term() -> None:
    # Long-term gain 8,000, short-term loss 3,000: the net capital gain is
    # 8,000 − 3,000 = 5,000, taxed as long-term. Tax: 5,000 × 0.20 = 1,000.00.
    result = settle_year(2024, [short("-3000"), long("8000")], NONE, HIGH)
    assert figures(result) == (ZERO, D(5000), ZERO, ZERO, ZERO)
    assert result.tax == D("1000.00")


def test_settle_year_when_long_loss_beats_short_gain_then_a_long_term_loss_carries() -> None:
    # Short-term gain 2,000, long-term loss 9,000: line 16 = −7,000, a loss of the
    # long-term's character. Deducted 3,000. Worksheet: line 5 = 0 (line 7 is a gain),
    # line 8 = 0; line 9 = 9,000, line 10 = 2,000, line 11 = 3,000 − 0 = 3,000,
    # line 12 = 5,000, line 13 = 9,000 − 5,000 = 4,000 long-term carried.
    # Tax: −3,000 × 0.40 = −1,200.00.
    result = settle_year(2024, [short("2000"), long("-9000")], NONE, HIGH)
    assert figures(result) == (ZERO, ZERO, D(3000), ZERO, D(4000))
    assert result.tax == D("-1200.00")


def test_settle_year_when_short_loss_beats_long_gain_then_a_short_term_loss_carries() -> None:
    # Short-term loss 9,000, long-term gain 2,000: line 16 = −7,000, short-term.
    # Worksheet: line 5 = 9,000, line 6 = 2,000, line 7 = 3,000 + 2,000 = 5,000,
    # line 8 = 9,000 − 5,000 = 4,000 short-term carried; line 15 is a gain: no line 13.
    result = settle_year(2024, [short("-9000"), long("2000")], NONE, HIGH)
    assert figures(result) == (ZERO, ZERO, D(3000), D(4000), ZERO)
    assert result.tax == D("-1200.00")


# -- Carryforwards -----------------------------------------------------------------------


def test_settle_year_when_losses_pass_the_limit_then_next_year_s_gains_use_up_the_rest() -> None:
    # 2023: short-term loss 6,000, long-term loss 4,000: line 16 = −10,000.
    #   Deducted 3,000, all short-term (line 8 = 6,000 − 3,000 = 3,000 carried);
    #   line 11 = 3,000 − 6,000 < 0, so line 13 = 4,000 − 0 = 4,000 long-term carried.
    #   Tax: −3,000 × 0.40 = −1,200.00.
    first = settle_year(
        2023, [short("-6000", date(2023, 3, 1)), long("-4000", date(2023, 11, 20))], NONE, HIGH
    )
    assert figures(first) == (ZERO, ZERO, D(3000), D(3000), D(4000))
    assert first.tax == D("-1200.00")

    # 2024: short-term gain 5,000, long-term gain 10,000, with 3,000 and 4,000 carried in.
    #   Line 7 = 5,000 − 3,000 = 2,000; line 15 = 10,000 − 4,000 = 6,000.
    #   Tax: 2,000 × 0.40 + 6,000 × 0.20 = 800 + 1,200 = 2,000.00. Nothing carried.
    second = settle_year(2024, [short("5000"), long("10000")], first.carried_out, HIGH)
    assert (second.net_short, second.net_long) == (D(2000), D(6000))
    assert figures(second) == (D(2000), D(6000), ZERO, ZERO, ZERO)
    assert second.tax == D("2000.00")


def test_settle_year_when_a_long_carryforward_beats_the_long_gain_then_it_cuts_the_short() -> None:
    # Pub. 550: a long-term loss carried in reduces the long-term gains first, then the
    # short-term. Carried in: 5,000 long-term. Gains: 3,000 long-term, 4,000 short-term.
    #   Line 15 = 3,000 − 5,000 = −2,000; line 7 = 4,000; line 16 = 2,000, short-term.
    #   Tax: 2,000 × 0.40 = 800.00.
    result = settle_year(2024, [short("4000"), long("3000")], carried(long="5000"), HIGH)
    assert (result.short_gains, result.long_gains) == (D(4000), D(3000))
    assert figures(result) == (D(2000), ZERO, ZERO, ZERO, ZERO)
    assert result.tax == D("800.00")


def test_settle_year_when_the_carryforward_beats_the_gains_then_the_rest_is_deducted() -> None:
    # Carried in: 10,000 short-term. Gains: 4,000 short-term.
    #   Line 7 = 4,000 − 10,000 = −6,000; deducted 3,000; carried 6,000 − 3,000 = 3,000.
    #   Tax: −3,000 × 0.40 = −1,200.00.
    result = settle_year(2024, [short("4000")], carried(short="10000"), HIGH)
    assert figures(result) == (ZERO, ZERO, D(3000), D(3000), ZERO)
    assert result.tax == D("-1200.00")


def test_settle_year_when_nothing_happens_then_everything_is_zero() -> None:
    result = settle_year(2024, [], NONE, HIGH)
    assert (result.short_gains, result.long_gains) == (ZERO, ZERO)
    assert figures(result) == (ZERO, ZERO, ZERO, ZERO, ZERO)
    assert result.tax == D("0.00")


def test_settle_year_when_only_a_carryforward_then_it_is_deducted_without_a_sale() -> None:
    # Nothing sold; 1,000 short-term and 2,500 long-term carried in: line 16 = −3,500.
    #   Deducted 3,000: 1,000 short-term, then 2,000 long-term; 500 long-term carried.
    #   Tax: −3,000 × 0.40 = −1,200.00.
    result = settle_year(2024, [], carried(short="1000", long="2500"), HIGH)
    assert figures(result) == (ZERO, ZERO, D(3000), ZERO, D(500))
    assert result.tax == D("-1200.00")


# -- Rates and rounding ------------------------------------------------------------------


def test_settle_year_when_the_state_taxes_gains_then_its_rate_is_added_to_each() -> None:
    # 35% + 5% on 1,000 short-term = 400; 15% + 5% on 1,000 long-term = 200: 600.00.
    # Without the state: 350 + 150 = 500.00.
    sales = [short("1000"), long("1000")]
    assert settle_year(2024, sales, NONE, HIGH).tax == D("600.00")
    without_state = TaxRates(short_term=D("0.35"), long_term=D("0.15"))
    assert settle_year(2024, sales, NONE, without_state).tax == D("500.00")


def test_settle_year_when_the_tax_falls_on_half_a_cent_then_it_rounds_half_to_even() -> None:
    # 1.25 × 0.10 = 0.125: half a cent, to the even cent, 0.12.
    # 1.35 × 0.10 = 0.135: to 0.14.
    ten = TaxRates(short_term=D("0.10"))
    assert settle_year(2024, [short("1.25")], NONE, ten).tax == D("0.12")
    assert settle_year(2024, [short("1.35")], NONE, ten).tax == D("0.14")


# -- Refusals ----------------------------------------------------------------------------


def test_settle_year_when_a_sale_is_of_another_year_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="2023-12-31"):
        settle_year(2024, [short("100"), short("100", date(2023, 12, 31))], NONE, HIGH)


def test_carryforward_when_negative_then_it_is_refused() -> None:
    with pytest.raises(ValidationError):
        Carryforward(short=D(-1))
    with pytest.raises(ValidationError):
        Carryforward(long=D("-0.01"))


def test_settle_year_when_the_loss_limit_is_negative_then_it_is_refused() -> None:
    with pytest.raises(ValidationError):
        settle_year(2024, [], NONE, HIGH, loss_limit=D(-1))


# -- Properties --------------------------------------------------------------------------

amounts = st.integers(-5_000_000, 5_000_000).map(lambda c: Decimal(c).scaleb(-2))
losses = st.integers(0, 5_000_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def years(draw: st.DrawFn) -> tuple[list[Realised], Carryforward, Decimal]:
    sales = draw(
        st.lists(
            st.builds(
                Realised,
                day=st.dates(date(2024, 1, 1), date(2024, 12, 31)),
                term=st.sampled_from(Term),
                gain=amounts,
            ),
            max_size=12,
        )
    )
    carried_in = Carryforward(draw(losses), draw(losses))
    limit = draw(st.sampled_from([ORDINARY_LOSS_LIMIT, D(1500), ZERO, D("3000.01")]))
    return sales, carried_in, limit


@settings(max_examples=300, deadline=None)
@given(years())
def test_settle_year_when_any_year_then_the_net_is_conserved_and_the_limits_hold(
    year: tuple[list[Realised], Carryforward, Decimal],
) -> None:
    sales, carried_in, limit = year
    result = settle_year(2024, sales, carried_in, HIGH, loss_limit=limit)

    # Every dollar of the net is taxed, deducted or carried: none is lost or made.
    assert (
        result.taxed_short
        + result.taxed_long
        - result.deducted
        - result.carried_out.short
        - result.carried_out.long
        == result.short_gains + result.long_gains - carried_in.short - carried_in.long
    )
    assert result.taxed_short >= ZERO
    assert result.taxed_long >= ZERO
    assert result.carried_out.short >= ZERO
    assert result.carried_out.long >= ZERO
    assert ZERO <= result.deducted <= limit
    # A year has a net gain or a net loss, not both; a loss carries only past the limit,
    # and only in a character that was a loss that year.
    assert result.deducted == ZERO or result.taxed_short == result.taxed_long == ZERO
    assert result.carried_out.total == ZERO or result.deducted == limit
    assert result.carried_out.short == ZERO or result.net_short < ZERO
    assert result.carried_out.long == ZERO or result.net_long < ZERO
