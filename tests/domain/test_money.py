"""Money: one constructor, canonical text, and banker's rounding to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.errors import ValidationError
from poise.domain.money import CENT, D, cents, is_decimal_text, plain

# --- D: the one constructor -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("10.50", Decimal("10.50"), id="text-keeps-its-digits"),
        pytest.param("  1234.5678 ", Decimal("1234.5678"), id="text-is-stripped"),
        pytest.param("-0.01", Decimal("-0.01"), id="negative-text"),
        pytest.param(250, Decimal(250), id="int"),
        pytest.param(Decimal("0.001"), Decimal("0.001"), id="decimal"),
        pytest.param("1E+3", Decimal("1E+3"), id="exponent-text-kept-as-given"),
    ],
)
def test_d_when_given_text_int_or_decimal_then_the_exact_amount(
    value: str | int | Decimal, expected: Decimal
) -> None:
    amount = D(value)

    assert isinstance(amount, Decimal)
    assert amount == expected
    assert str(amount) == str(expected)


def test_d_when_given_a_float_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="not float"):
        D(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", [True, False])
def test_d_when_given_a_bool_then_validation_error(flag: bool) -> None:
    with pytest.raises(ValidationError, match="not an amount"):
        D(flag)


@pytest.mark.parametrize("junk", ["abc", "", "1,000.00", "$10", "10.5.1"])
def test_d_when_given_text_that_is_not_a_number_then_validation_error(junk: str) -> None:
    with pytest.raises(ValidationError, match="not a number"):
        D(junk)


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", Decimal("NaN"), Decimal("-Inf")],
)
def test_d_when_given_nan_or_infinity_then_validation_error(value: str | Decimal) -> None:
    with pytest.raises(ValidationError, match="not a finite number"):
        D(value)


def test_d_when_given_some_other_type_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="not list"):
        D([1])  # type: ignore[arg-type]


# --- plain: canonical text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.500", "10.5"),
        ("-0", "0"),
        ("-0.000", "0"),
        ("0E+5", "0"),
        ("1E+3", "1000"),
        ("1.20E+2", "120"),
        ("100", "100"),
        ("0.0001000", "0.0001"),
        ("1E-8", "0.00000001"),
        ("-42.10", "-42.1"),
    ],
)
def test_plain_when_amount_has_exponent_or_trailing_zeros_then_canonical_text(
    text: str, expected: str
) -> None:
    assert plain(D(text)) == expected


@settings(max_examples=200)
@given(
    st.decimals(
        min_value=-(10**15), max_value=10**15, places=8, allow_nan=False, allow_infinity=False
    ),
    st.integers(min_value=0, max_value=6),
)
def test_plain_when_any_amount_then_text_round_trips_and_ignores_trailing_zeros(
    amount: Decimal, extra_zeros: int
) -> None:
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    padded = Decimal((sign, (*digits, *[0] * extra_zeros), exponent - extra_zeros))
    text = plain(amount)

    assert D(text) == amount
    assert plain(padded) == text
    assert "E" not in text.upper()
    assert text != "-0"
    assert not ("." in text and text.endswith(("0", ".")))


def test_is_decimal_text_when_plain_number_then_true_and_exponent_or_junk_false() -> None:
    assert [is_decimal_text(t) for t in ["10.50", "-3", "0.001"]] == [True, True, True]
    assert [is_decimal_text(t) for t in ["1E+3", "1e3", "NaN", "Infinity", "abc", ""]] == [
        False
    ] * 6


# --- cents: banker's rounding ---------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        pytest.param("0.125", "0.12", id="half-to-even-down"),
        pytest.param("0.135", "0.14", id="half-to-even-up"),
        pytest.param("2.675", "2.68", id="2.675"),
        pytest.param("2.665", "2.66", id="2.665"),
        pytest.param("-0.125", "-0.12", id="negative-half"),
        pytest.param("0.1251", "0.13", id="above-half"),
        pytest.param("0.1249", "0.12", id="below-half"),
        pytest.param("10", "10.00", id="whole-dollars"),
    ],
)
def test_cents_when_amount_has_more_than_two_places_then_rounds_half_to_even(
    amount: str, expected: str
) -> None:
    rounded = cents(D(amount))

    assert str(rounded) == expected


@settings(max_examples=200)
@given(
    st.decimals(
        min_value=-(10**12), max_value=10**12, places=6, allow_nan=False, allow_infinity=False
    )
)
def test_cents_when_any_amount_then_within_half_a_cent_and_idempotent(amount: Decimal) -> None:
    rounded = cents(amount)

    assert abs(rounded - amount) <= CENT / 2
    assert rounded.as_tuple().exponent == -2
    assert cents(rounded) == rounded
