"""Decimal money, made through one constructor.

Never use floating point for an amount of money, a price or a quantity: every such
value in poise is a :class:`decimal.Decimal` made by :func:`D`.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

from poise.domain.errors import ValidationError

__all__ = ["CENT", "ZERO", "D", "cents", "is_decimal_text", "plain"]

ZERO = Decimal(0)
CENT = Decimal("0.01")

# Enough digits for any amount a firm holds, with room for per-share precision.
CONTEXT = decimal.Context(prec=38, rounding=decimal.ROUND_HALF_EVEN)


def D(value: str | int | Decimal) -> Decimal:  # noqa: N802 - the project's one money constructor
    """Make a Decimal from text, an int or a Decimal; refuse floats and junk.

    >>> D("10.50")
    Decimal('10.50')
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValidationError(f"not an amount: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            result = Decimal(text)
        except decimal.InvalidOperation:
            raise ValidationError(f"not a number: {value!r}") from None
    else:
        raise ValidationError(
            f"amounts are made from text, int or Decimal, not {type(value).__name__}"
        )
    if not result.is_finite():
        raise ValidationError(f"not a finite number: {value!r}")
    return result


def cents(amount: Decimal) -> Decimal:
    """Round an amount of money to the cent, half to even (banker's rounding)."""
    return amount.quantize(CENT, rounding=decimal.ROUND_HALF_EVEN)


def plain(amount: Decimal) -> str:
    """The canonical text of a Decimal: no exponent, no trailing zeros, no ``-0``."""
    if amount.is_zero():
        return "0"
    return format(amount.normalize(CONTEXT), "f")


def is_decimal_text(text: str) -> bool:
    """True when ``text`` is a plain decimal number (what the file formats accept)."""
    try:
        value = Decimal(text)
    except decimal.InvalidOperation:
        return False
    return value.is_finite() and "e" not in text.lower()
