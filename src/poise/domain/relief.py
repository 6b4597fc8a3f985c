"""Lot relief: which lots a sale uses up, and the gain each realises.

Each booking method is a pure function that orders the candidate lots; the table
:data:`BOOKING_METHODS` maps a :class:`Method` to its function. Specific-lot relief
takes the lots and quantities the caller names instead.

Gains follow IRS Publication 550: the holding period starts the day after
acquisition, and a gain is long-term when the lot was held *more than one year*
(bought 5 February 2023, sold 5 February 2024: short-term; sold 6 February: long-term).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents

__all__ = [
    "BOOKING_METHODS",
    "Method",
    "Relief",
    "ReliefResult",
    "Term",
    "is_long_term",
    "relieve",
]


class Method(enum.StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"
    SPECIFIC = "specific"
    TAX_MIN = "tax_min"


class Term(enum.StrEnum):
    SHORT = "short"
    LONG = "long"


@functools.lru_cache(maxsize=4096)
def one_year_after(day: date) -> date:
    """The same calendar day a year later (28 February for a 29 February start)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return date(day.year + 1, 3, 1) - timedelta(days=1)


def is_long_term(held_since: date, sold: date) -> bool:
    """Held more than one year: sold after the anniversary of the holding period's start."""
    return sold > one_year_after(held_since)


@dataclass(frozen=True, slots=True)
class Relief:
    """Shares of one lot used up by a sale, and what they realised."""

    lot_id: str
    quantity: Decimal
    basis: Decimal  # the basis that counts (adjusted by wash sales, if any)
    proceeds: Decimal
    term: Term

    @property
    def gain(self) -> Decimal:
        """Realised gain; negative for a loss."""
        return self.proceeds - self.basis


@dataclass(frozen=True, slots=True)
class ReliefResult:
    reliefs: tuple[Relief, ...]
    remaining: tuple[TaxLot, ...]  # the lots after the sale; emptied lots are gone

    @property
    def quantity(self) -> Decimal:
        return sum((r.quantity for r in self.reliefs), ZERO)

    @property
    def proceeds(self) -> Decimal:
        return sum((r.proceeds for r in self.reliefs), ZERO)

    def gain(self, term: Term | None = None) -> Decimal:
        """Realised gain of the sale, of one term or of both."""
        return sum((r.gain for r in self.reliefs if term is None or r.term is term), ZERO)


# An ordering takes the open lots, the sale price and date, and returns them in the
# order the method relieves them.
Ordering = Callable[[Sequence[TaxLot], Decimal, date], list[TaxLot]]


def booking_method_fifo(lots: Sequence[TaxLot], price: Decimal, sold: date) -> list[TaxLot]:
    return sorted(lots, key=lambda lot: (lot.acquired, lot.lot_id))


def booking_method_lifo(lots: Sequence[TaxLot], price: Decimal, sold: date) -> list[TaxLot]:
    by_date = sorted(lots, key=lambda lot: lot.lot_id)
    return sorted(by_date, key=lambda lot: lot.acquired, reverse=True)


def booking_method_hifo(lots: Sequence[TaxLot], price: Decimal, sold: date) -> list[TaxLot]:
    return sorted(lots, key=lambda lot: (-lot.basis_per_share, lot.acquired, lot.lot_id))


def booking_method_tax_min(lots: Sequence[TaxLot], price: Decimal, sold: date) -> list[TaxLot]:
    """Losses first (largest loss a share first), then long-term gains, then short-term,
    the smallest gain a share first within each."""

    def key(lot: TaxLot) -> tuple[int, Decimal, date, str]:
        gain = price - lot.basis_per_share
        if gain <= ZERO:
            group = 0
        elif is_long_term(lot.held_since, sold):
            group = 1
        else:
            group = 2
        return (group, gain, lot.acquired, lot.lot_id)

    return sorted(lots, key=key)


BOOKING_METHODS: Mapping[Method, Ordering] = {
    Method.FIFO: booking_method_fifo,
    Method.LIFO: booking_method_lifo,
    Method.HIFO: booking_method_hifo,
    Method.TAX_MIN: booking_method_tax_min,
}


def _split(lot: TaxLot, quantity: Decimal) -> tuple[TaxLot | None, Decimal, Decimal]:
    """Take ``quantity`` shares out of ``lot``: (what is left, basis taken, cost taken).

    A part of a lot carries its share of the basis, rounded to the cent; what is left
    keeps the rest, so basis is conserved to the last digit.
    """
    if quantity == lot.quantity:
        return None, lot.basis, lot.cost_basis
    fraction = quantity / lot.quantity

    def part(amount: Decimal) -> Decimal:
        # Rounding up to the cent may not take more than the lot has (a cost of 5.009).
        return min(cents(amount * fraction), amount)

    cost_taken = part(lot.cost_basis)
    basis_taken = cost_taken if lot.adjusted_basis is None else part(lot.adjusted_basis)
    left = TaxLot(  # made directly: dataclasses.replace looks up every field each time
        lot_id=lot.lot_id,
        account_id=lot.account_id,
        security_id=lot.security_id,
        quantity=lot.quantity - quantity,
        cost_basis=lot.cost_basis - cost_taken,
        acquired=lot.acquired,
        adjusted_basis=None if lot.adjusted_basis is None else lot.adjusted_basis - basis_taken,
        holding_start=lot.holding_start,
        disallowed_loss=lot.disallowed_loss - part(lot.disallowed_loss),
    )
    return left, basis_taken, cost_taken


def _plan(
    lots: Sequence[TaxLot],
    quantity: Decimal,
    *,
    method: Method,
    price: Decimal,
    sold: date,
    specific: Mapping[str, Decimal] | None,
) -> list[tuple[TaxLot, Decimal]]:
    if method is Method.SPECIFIC:
        if not specific:
            raise ValidationError("specific-lot relief needs the lots to sell")
        by_id = {lot.lot_id: lot for lot in lots}
        plan: list[tuple[TaxLot, Decimal]] = []
        for lot_id, take in specific.items():
            lot = by_id.get(lot_id)
            if lot is None:
                raise ValidationError(f"lot {lot_id} is not an open lot of this holding")
            if take <= ZERO or take > lot.quantity:
                raise ValidationError(f"lot {lot_id}: cannot sell {take} of {lot.quantity} shares")
            plan.append((lot, take))
        if sum((take for _, take in plan), ZERO) != quantity:
            raise ValidationError("the named lots do not add up to the quantity sold")
        return plan
    plan = []
    left = quantity
    for lot in BOOKING_METHODS[method]([lot for lot in lots if lot.quantity > ZERO], price, sold):
        if left == ZERO:
            break
        take = min(left, lot.quantity)
        plan.append((lot, take))
        left -= take
    return plan


def relieve(
    lots: Sequence[TaxLot],
    quantity: Decimal,
    *,
    method: Method,
    price: Decimal,
    sold: date,
    specific: Mapping[str, Decimal] | None = None,
) -> ReliefResult:
    """Sell ``quantity`` shares at ``price`` on ``sold`` out of ``lots`` (one holding).

    Proceeds are ``price × quantity`` rounded to the cent, shared out over the lots
    in the order they are relieved so that their parts add up to that total exactly.
    """
    if quantity <= ZERO:
        raise ValidationError(f"a sale needs a positive quantity, got {quantity}")
    if price < ZERO:
        raise ValidationError(f"a sale price cannot be negative, got {price}")
    if len({lot.security_id for lot in lots}) > 1 or len({lot.account_id for lot in lots}) > 1:
        raise ValidationError("lots relieved by one sale belong to one security in one account")
    held = sum((lot.quantity for lot in lots), ZERO)
    if quantity > held:
        raise ValidationError(f"cannot sell {quantity} shares: only {held} are held")

    plan = _plan(lots, quantity, method=method, price=price, sold=sold, specific=specific)
    taken: dict[str, TaxLot | None] = {}
    reliefs: list[Relief] = []
    sold_so_far = ZERO
    for lot, take in plan:
        left, basis_taken, _ = _split(lot, take)
        taken[lot.lot_id] = left
        # Each lot's proceeds are the step in the rounded running total, so no part is
        # negative and the parts add up to cents(price × quantity) exactly.
        proceeds = cents(price * (sold_so_far + take)) - cents(price * sold_so_far)
        sold_so_far += take
        term = Term.LONG if is_long_term(lot.held_since, sold) else Term.SHORT
        reliefs.append(Relief(lot.lot_id, take, basis_taken, proceeds, term))

    remaining: list[TaxLot] = []
    for lot in lots:
        after = taken.get(lot.lot_id, lot)
        if after is not None:
            remaining.append(after)
    return ReliefResult(reliefs=tuple(reliefs), remaining=tuple(remaining))
