"""Decimal money, made through one constructor.

Never use floating point for an amount of money, a price or a quantity: every such
value in poise is a :class:`decimal.Decimal` made by :func:`D`.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from math import gcd as _gcd

from poise.domain.errors import ValidationError

__all__ = ["CENT", "ZERO", "D", "cents", "is_decimal_text", "plain", "share_cents", "shares_of"]

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


def shares_of(total: int, numerators: Sequence[int], denominator: int) -> tuple[int, ...]:
    """:func:`largest_remainder` of entitlements ``numerator / denominator``, in whole
    numbers throughout (each entitlement's floor and remainder by one ``divmod``).

    >>> shares_of(7, [28, 21, 21], 10)
    (3, 2, 2)
    """
    if denominator <= 0:
        raise ValidationError(f"cannot share over a denominator of {denominator}")
    split = [divmod(n, denominator) for n in numerators]
    floors = [whole for whole, _ in split]
    odd = total - sum(floors)
    if not 0 <= odd <= len(floors):
        raise ValidationError(
            f"cannot share {total} units over entitlements of {numerators} / {denominator}"
        )
    if odd:
        order = sorted(range(len(split)), key=lambda i: (-split[i][1], i))
        for i in order[:odd]:
            floors[i] += 1
    return tuple(floors)


def share_cents(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """``amount`` (whole cents) shared in proportion to ``weights`` (not all zero), in
    whole cents that add up to it exactly: :func:`shares_of` on the cents.

    >>> share_cents(Decimal("10.00"), [Decimal(1), Decimal(1), Decimal(1)])
    [Decimal('3.34'), Decimal('3.33'), Decimal('3.33')]
    """
    if cents(amount) != amount:
        raise ValidationError(f"{amount} is not a whole number of cents")
    if len(weights) == 1 and weights[0] > 0:  # one part takes it all
        return [amount]
    ratios = [weight.as_integer_ratio() for weight in weights]
    common = 1
    for _, bottom in ratios:
        common = common * bottom // _gcd(common, bottom)
    scaled = [top * (common // bottom) for top, bottom in ratios]
    whole = sum(scaled)
    if whole <= 0 or any(n < 0 for n in scaled):
        raise ValidationError(f"cannot share {amount} over weights {weights}")
    total = int(amount * 100)
    if total < 0:
        return [-part for part in share_cents(-amount, weights)]
    return [CENT * n for n in shares_of(total, [n * total for n in scaled], whole)]
