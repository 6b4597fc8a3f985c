"""The grid a security trades on, in exact Decimal: the one boundary where the solver's
floats become quantities, and where every quantity a method proposes is made one the
security allows.

A quantity leaves here as a whole number of the security's steps, written with the
step's decimal places and no other digits (``12.500`` of a fund traded in 0.001, ``300``
of a stock traded in whole shares or round lots of 100) — never ``1.5E+29`` and never
with a float's binary noise:

- :func:`nearest` takes a solver's float share count through its shortest decimal text
  (``repr``: the digits the float stands for, not its binary expansion), and rounds it
  to the nearest step;
- :func:`steps` is a whole number of steps, however large;
- :func:`down` rounds a Decimal quantity down to the grid, exactly, and :func:`less`
  takes amounts from one;
- :func:`canonical` writes a quantity that is on the grid with the step's places.

The arithmetic is done with as many digits as the quantity needs, so a quantity beyond
the 28 digits of Decimal's default context is still exact (it takes an absurd price to
get one: the monitor holds such prices, but nothing here depends on that).
"""

from __future__ import annotations

import decimal
import functools
import math
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from poise.domain.errors import ValidationError
from poise.domain.securities import Trading

__all__ = ["canonical", "down", "exponent", "less", "nearest", "steps"]

DIGITS = 28  # Decimal's default precision: at least this many, more when needed


def exponent(trading: Trading) -> int:
    """The exponent every quantity of this grid is written with: the step's decimal
    places (0 for a step of whole shares or of round lots)."""
    return min(int(trading.step.as_tuple().exponent), 0)


def _context(*numbers: Decimal, places: int, rounding: str = ROUND_FLOOR) -> decimal.Context:
    """A context with room for every digit of ``numbers`` down to ``places`` (one made
    per precision and rounding, and shared: a context is made once, not per quantity)."""
    largest = max((n.adjusted() for n in numbers if n and n.is_finite()), default=0)
    return _made(max(DIGITS, largest + places + 4), rounding)


@functools.cache
def _made(precision: int, rounding: str) -> decimal.Context:
    return decimal.Context(prec=precision, rounding=rounding)


def _written(trading: Trading, count: Decimal, context: decimal.Context) -> Decimal:
    """``count`` whole steps, at the grid's exponent."""
    places = exponent(trading)
    return context.multiply(count, trading.step).quantize(
        Decimal(1).scaleb(places), rounding=ROUND_HALF_EVEN, context=context
    )


def steps(trading: Trading, count: int) -> Decimal:
    """``count`` whole steps of the grid, exactly."""
    whole = Decimal(count)
    return _written(trading, whole, _context(whole, trading.step, places=-exponent(trading)))


def down(trading: Trading, quantity: Decimal) -> Decimal:
    """The largest quantity on the grid not above ``quantity``, exactly — however many
    digits it has (``Trading.round_down`` works in the default 28)."""
    context = _context(quantity, trading.step, places=-exponent(trading))
    count = context.divide(quantity, trading.step).to_integral_value(
        rounding=ROUND_FLOOR, context=context
    )
    return _written(trading, count, context)


def less(trading: Trading, quantity: Decimal, *amounts: Decimal) -> Decimal:
    """``quantity`` less ``amounts``, exactly, rounded down to the grid."""
    context = _context(quantity, *amounts, trading.step, places=-exponent(trading))
    left = quantity
    for amount in amounts:
        left = context.subtract(left, amount)
    return down(trading, left)


def nearest(trading: Trading, shares: float) -> Decimal:
    """A solver's share count rounded to the nearest grid step (half to even), from the
    float's shortest decimal text."""
    if not math.isfinite(shares):
        raise ValidationError(f"the solver gave {shares} shares, not a number of shares")
    text = Decimal(repr(shares))
    context = _context(text, trading.step, places=-exponent(trading), rounding=ROUND_HALF_EVEN)
    count = context.divide(text, trading.step).to_integral_value(
        rounding=ROUND_HALF_EVEN, context=context
    )
    return _written(trading, count, context)


def canonical(trading: Trading, quantity: Decimal) -> Decimal:
    """``quantity`` at the grid's exponent when it lies on the grid (``100`` of a fund
    traded in 0.001 is written ``100.000``); as it is when it does not — the rules
    check then says it is not a tradable quantity."""
    context = _context(quantity, trading.step, places=-exponent(trading))
    count = context.divide(quantity, trading.step)
    if count != count.to_integral_value(context=context):
        return quantity
    return _written(trading, count.to_integral_value(context=context), context)
