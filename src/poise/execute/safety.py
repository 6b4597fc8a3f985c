"""Safety limits: what no run may send, however it was planned.

Checked over a run's block orders before the first is sent, in the spirit of the
pre-trade controls of SEC Rule 15c3-5 (the market access rule): a run breaches its
:class:`Limits` when it would send

* more orders than ``max_orders`` (a run that multiplied its trades by mistake);
* more notional than ``max_notional`` in all — each order's quantity at its limit, or
  at its reference price for a market order;
* a limit price further from its reference than ``collar`` (a fraction of the
  reference, either way: a limit that far off is a mistake in the price, not a
  strategy).

A run with any breach sends nothing; what to do is the shell's to say. And once an
order is working, :func:`child_allowed` keeps each child order within what its parent
has left. Pure.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import CONTEXT, ZERO, D, cents, plain
from poise.domain.orders import BlockOrder

__all__ = ["CHECKS", "Breach", "BreachKind", "Limits", "check_run", "child_allowed"]


MAX_ORDERS = 5000
MAX_NOTIONAL = D("100000000")  # $100 million a run
MAX_COLLAR = D("0.05")  # 5% either side of the reference


@dataclass(frozen=True, slots=True)
class Limits:
    """The most a run may send: orders, notional in dollars, and the widest a limit
    may stand from its reference (a fraction: 0.05 is 5%)."""

    max_orders: int = MAX_ORDERS
    max_notional: Decimal = MAX_NOTIONAL
    collar: Decimal = MAX_COLLAR

    def __post_init__(self) -> None:
        if self.max_orders < 0:
            raise ValidationError("a run's order limit cannot be negative")
        if self.max_notional < ZERO:
            raise ValidationError("a run's notional limit cannot be negative")
        if not ZERO <= self.collar < 1:
            raise ValidationError(f"a collar lies between 0 and 1, got {self.collar}")


class BreachKind(enum.StrEnum):
    ORDERS = "orders"
    NOTIONAL = "notional"
    COLLAR = "collar"


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit a run would pass: of the run (``block_id`` None) or of one order."""

    kind: BreachKind
    block_id: str | None
    measured: Decimal
    limit: Decimal
    explanation: str


def _orders(blocks: Sequence[BlockOrder], limits: Limits) -> list[Breach]:
    if len(blocks) <= limits.max_orders:
        return []
    return [
        Breach(
            BreachKind.ORDERS,
            None,
            D(len(blocks)),
            D(limits.max_orders),
            f"the run would send {len(blocks)} orders; at most {limits.max_orders} may go",
        )
    ]


def _notional(blocks: Sequence[BlockOrder], limits: Limits) -> list[Breach]:
    with decimal.localcontext(CONTEXT):
        total = sum((block.notional for block in blocks), ZERO)
    if total <= limits.max_notional:
        return []
    return [
        Breach(
            BreachKind.NOTIONAL,
            None,
            total,
            limits.max_notional,
            f"the run's orders come to ${cents(total):,}; at most ${cents(limits.max_notional):,}",
        )
    ]


def _collars(blocks: Sequence[BlockOrder], limits: Limits) -> list[Breach]:
    breaches = []
    for block in sorted(blocks, key=lambda b: b.block_id):
        if block.limit is None:
            continue
        with decimal.localcontext(CONTEXT):
            away = abs(block.limit - block.reference) / block.reference
        if away > limits.collar:
            breaches.append(
                Breach(
                    BreachKind.COLLAR,
                    block.block_id,
                    away,
                    limits.collar,
                    f"{block.side} {block.security_id} limit {block.limit} is "
                    f"{plain(round(away * 100, 2))}% from its reference {block.reference}; "
                    f"at most {plain(limits.collar * 100)}%",
                )
            )
    return breaches


Check = Callable[[Sequence[BlockOrder], Limits], list[Breach]]

CHECKS: Mapping[BreachKind, Check] = {
    BreachKind.ORDERS: _orders,
    BreachKind.NOTIONAL: _notional,
    BreachKind.COLLAR: _collars,
}


def check_run(blocks: Sequence[BlockOrder], limits: Limits) -> tuple[Breach, ...]:
    """Every limit the run's ``blocks`` would pass: the run's first (orders, then
    notional), then each order's limit price by block id. Empty when it may go."""
    return tuple(breach for check in CHECKS.values() for breach in check(blocks, limits))


def child_allowed(parent: Decimal, filled: Decimal, open_children: Decimal, child: Decimal) -> bool:
    """May a child order of ``child`` shares go out under a parent of ``parent``
    shares, of which ``filled`` are filled and ``open_children`` are in working child
    orders? Only when it is positive and no larger than what the parent has left."""
    if min(parent, filled, open_children) < ZERO:
        raise ValidationError("an order's shares, fills and working children are not negative")
    return ZERO < child <= parent - filled - open_children
