"""What an execution report does to the order it is about — a small pure function over
a typed report, as the broker's FIX ExecutionReport (35=8) reads.

An order's state follows the broker's OrdStatus (39); its filled quantity is the
report's CumQty (14), never a running sum of LastQty (32), so a report heard twice, or
out of order, cannot fill an order twice. A report is kept once under its ExecID (17)
by the shell; one that names no order poise sent, or fills past what was asked, is a
break: kept, with its reason, and never booked against an order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.money import ZERO

__all__ = ["Booking", "OrderState", "Report", "apply_report", "state_of"]


class OrderState(enum.StrEnum):
    PENDING = "pending"  # decided, in the outbox, not yet sent
    SENT = "sent"  # sent, not yet acknowledged
    NEW = "new"  # acknowledged, working
    PARTIAL = "partial"  # partly filled, working
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"  # the rest cancelled (a partial fill stands)
    REPLACED = "replaced"  # a cancel-replace took its place
    REJECTED = "rejected"

    @property
    def done(self) -> bool:
        """Nothing more will fill it."""
        return self in _DONE


_DONE = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REPLACED, OrderState.REJECTED}
)

# OrdStatus (39) → the order's state.
_ORD_STATUS = {
    "0": OrderState.NEW,
    "1": OrderState.PARTIAL,
    "2": OrderState.FILLED,
    "4": OrderState.CANCELLED,
    "5": OrderState.REPLACED,
    "6": OrderState.PENDING_CANCEL,
    "8": OrderState.REJECTED,
    "A": OrderState.SENT,  # pending new
    "E": OrderState.PENDING_CANCEL,  # pending replace: still working as it was
}

TRADE_TYPES = frozenset({"F", "1", "2"})  # ExecType (150) of a fill: Trade (4.4), or 4.2's


@dataclass(frozen=True, slots=True)
class Report:
    """An execution report, typed: what booking needs of it."""

    exec_id: str
    cl_ord_id: str
    exec_type: str  # 150
    ord_status: str  # 39
    last_qty: Decimal = ZERO  # 32
    last_px: Decimal = ZERO  # 31
    cum_qty: Decimal = ZERO  # 14
    leaves_qty: Decimal = ZERO  # 151
    order_id: str = ""  # 37: the broker's
    orig_cl_ord_id: str = ""  # 41
    text: str = ""  # 58

    @property
    def is_fill(self) -> bool:
        return self.exec_type in TRADE_TYPES and self.last_qty > ZERO


def state_of(ord_status: str) -> OrderState | None:
    return _ORD_STATUS.get(ord_status)


@dataclass(frozen=True, slots=True)
class Booking:
    """The order after a report: its state and filled quantity; ``fill`` the shares
    the report filled (0: none); ``problem`` a break's reason, and then nothing else
    changes."""

    state: OrderState
    filled: Decimal
    fill: Decimal = ZERO
    problem: str = ""


def apply_report(state: OrderState, filled: Decimal, quantity: Decimal, report: Report) -> Booking:
    """The order (``state``, ``filled`` of ``quantity``) after ``report``."""
    after = state_of(report.ord_status)
    if after is None:
        return Booking(state, filled, problem=f"unknown OrdStatus {report.ord_status!r}")
    if report.is_fill and report.cum_qty > quantity:
        return Booking(
            state,
            filled,
            problem=f"fills {report.cum_qty} of an order for {quantity}: an overfill",
        )
    cum = max(filled, report.cum_qty) if report.is_fill else filled
    if state.done and not after.done:  # a late report of a state the order has left
        return Booking(state, cum, cum - filled)
    return Booking(after, cum, cum - filled)
