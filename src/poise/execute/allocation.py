"""Allocation: a block's fills shared back to the accounts its statement names.

The conditions the SEC set for aggregated orders (SMC Capital, no-action letter of
5 September 1995) hold here: every account in a block gets the block's **average
price**; the **costs** are shared **pro rata** by shares; a **partial fill** is shared
pro rata to the written statement; nobody gets more than their line.

Shares, cents of cash and cents of commission are each shared by one rule,
:func:`largest_remainder` (Hamilton's method): every account first gets its exact
pro-rata entitlement rounded down, and the odd units left over go one each to the
largest fractions cut off, ties to the account that sorts first by
``(account_id, proposal_id, seq)``. Totals are therefore exact:

* Σ allocated shares = Σ filled shares;
* Σ gross = the fills' notional ``Σ quantity × price`` rounded to the cent, and each
  account's gross is its shares × the exact average price, rounded down or up to the
  cent;
* Σ commission = the fills' commissions, to the cent.

The average price is reported to six decimal places (:data:`PRICE_PLACES`); cash is
never worked out from that rounded figure but from the fills' exact notional. Pure.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from poise.domain.errors import ValidationError
from poise.domain.money import CENT, CONTEXT, ZERO, cents, shares_of
from poise.domain.orders import (
    MICRO_SHARE,
    Allocation,
    BlockOrder,
    Fill,
    Side,
    is_whole,
    split_lots,
)

__all__ = ["PRICE_PLACES", "allocate", "average_price", "largest_remainder", "shares_of"]

# The reported average price: six decimal places, half to even.
PRICE_PLACES = Decimal("0.000001")


def largest_remainder(total: int, entitlements: Sequence[Fraction]) -> tuple[int, ...]:
    """Share ``total`` whole units out in proportion to exact ``entitlements``.

    Each gets its entitlement rounded down; the units left over go one each to the
    largest remainders, ties to the earlier entitlement (callers list them in their
    tie-break order). ``total`` must lie between the sum of the rounded-down
    entitlements and that sum plus one unit for each entitlement.

    >>> largest_remainder(7, [Fraction(28, 10), Fraction(21, 10), Fraction(21, 10)])
    (3, 2, 2)
    """
    floors = [math.floor(e) for e in entitlements]
    odd = total - sum(floors)
    if not 0 <= odd <= len(floors):
        raise ValidationError(f"cannot share {total} units over entitlements of {entitlements}")
    order = sorted(range(len(floors)), key=lambda i: (-(entitlements[i] - floors[i]), i))
    for i in order[:odd]:
        floors[i] += 1
    return tuple(floors)


def _fills_total(fills: Sequence[Fill]) -> Decimal:
    return sum((fill.quantity for fill in fills), ZERO)


def _notional(fills: Sequence[Fill]) -> Decimal:
    with decimal.localcontext(CONTEXT):
        return sum((fill.quantity * fill.price for fill in fills), ZERO)


def average_price(fills: Sequence[Fill]) -> Decimal:
    """The fills' volume-weighted average price, to six decimal places (half to even).

    >>> from poise.domain.money import D
    >>> average_price([Fill("E1", D("4"), D("10.00")), Fill("E2", D("3"), D("10.07"))])
    Decimal('10.030000')
    """
    filled = _fills_total(fills)
    if filled <= ZERO:
        raise ValidationError("an average price needs at least one fill")
    with decimal.localcontext(CONTEXT):
        return (_notional(fills) / filled).quantize(PRICE_PLACES)


def _check_fills(block: BlockOrder, fills: Sequence[Fill]) -> Decimal:
    what = f"block {block.block_id}"
    if len({fill.exec_id for fill in fills}) != len(fills):
        raise ValidationError(f"{what}: an execution is reported twice")
    for fill in fills:
        if fill.security_id and fill.security_id != block.security_id:
            raise ValidationError(
                f"{what}: fill {fill.exec_id} is of {fill.security_id}, "
                f"the block of {block.security_id}"
            )
        if fill.side is not None and fill.side is not block.side:
            raise ValidationError(
                f"{what}: fill {fill.exec_id} is a {fill.side}, the block a {block.side}"
            )
    filled = _fills_total(fills)
    if filled > block.quantity:
        raise ValidationError(f"{what}: fills of {filled} shares exceed its {block.quantity}")
    if block.whole and not is_whole(filled):
        raise ValidationError(f"{what}: a whole-share block filled for {filled} shares")
    return filled


def _units(quantity: Decimal, unit: Decimal) -> int:
    return int(quantity / unit)


def allocate(block: BlockOrder, fills: Sequence[Fill]) -> tuple[Allocation, ...]:
    """Share ``fills`` of ``block`` out to its statement's accounts.

    A block filled in full gives every account exactly its line; a partial fill gives
    each its line × filled / ordered, in whole shares for a whole-share block (a
    millionth of a share for a fractional one) by :func:`largest_remainder`. An account
    whose share rounds to nothing gets no allocation. A sale's allocation relieves its
    line's named lots in order, up to the shares allocated. Nothing filled, nothing
    allocated.
    """
    filled = _check_fills(block, fills)
    if filled == ZERO:
        return ()
    unit = Decimal(1) if block.whole else MICRO_SHARE
    lines = sorted(block.statement, key=lambda line: line.key)

    ordered = _units(block.quantity, unit)
    got = _units(filled, unit)
    shares = shares_of(got, [_units(line.quantity, unit) * got for line in lines], ordered)
    taken = [(line, n) for line, n in zip(lines, shares, strict=True) if n > 0]

    # Each account's part of the notional and of the commission: its shares / the
    # shares filled, in whole cents by the same rule; the notional as an exact ratio.
    notional = _notional(fills)
    top, bottom = notional.as_integer_ratio()
    gross = shares_of(
        _units(cents(notional), CENT), [top * 100 * n for _, n in taken], bottom * got
    )
    charged = _units(cents(sum((fill.commission for fill in fills), ZERO)), CENT)
    commission = shares_of(charged, [charged * n for _, n in taken], got)
    taken_shares = [(line, unit * n) for line, n in taken]
    price = average_price(fills)
    allocations = []
    for (line, quantity), gross_cents, cost_cents in zip(
        taken_shares, gross, commission, strict=True
    ):
        cash = CENT * gross_cents
        cost = CENT * cost_cents
        lots, _ = split_lots(line.lots, quantity)
        allocations.append(
            Allocation(
                block_id=block.block_id,
                proposal_id=line.proposal_id,
                seq=line.seq,
                account_id=line.account_id,
                side=block.side,
                quantity=quantity,
                price=price,
                gross=cash,
                commission=cost,
                net=cash + cost if block.side is Side.BUY else cash - cost,
                lots=lots,
            )
        )
    return tuple(allocations)
