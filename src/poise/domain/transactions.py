"""Transactions: what happened in an account, with trade and settlement dates."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO

__all__ = ["CashFlow", "CashFlowKind", "LotRelieved", "Transaction", "TxnKind", "sale_gain"]


class TxnKind(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    DIVIDEND = "dividend"
    INTEREST = "interest"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    FEE = "fee"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    SPLIT = "split"


# Kinds that name a security, and kinds that move shares.
NEEDS_SECURITY = frozenset({TxnKind.BUY, TxnKind.SELL, TxnKind.DIVIDEND, TxnKind.SPLIT})
MOVES_SHARES = frozenset(
    {TxnKind.BUY, TxnKind.SELL, TxnKind.TRANSFER_IN, TxnKind.TRANSFER_OUT, TxnKind.SPLIT}
)


@dataclass(frozen=True, slots=True)
class LotRelieved:
    """Shares of one lot that a sale used up."""

    lot_id: str
    quantity: Decimal

    def __post_init__(self) -> None:
        if self.quantity <= ZERO:
            raise ValidationError(f"lot {self.lot_id}: relieved quantity must be positive")


@dataclass(frozen=True, slots=True)
class Transaction:
    """One booked transaction.

    ``quantity`` is the shares moved (for a split, the shares added; positive for all
    kinds), ``amount`` the cash moved, always positive: the kind gives the direction.
    A sale lists the lots it relieved.
    """

    txn_id: str
    account_id: str
    kind: TxnKind
    trade_date: date
    settle_date: date
    amount: Decimal = ZERO
    security_id: str | None = None
    quantity: Decimal = ZERO
    lots: tuple[LotRelieved, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.settle_date < self.trade_date:
            raise ValidationError(f"transaction {self.txn_id}: settles before it trades")
        if self.amount < ZERO or self.quantity < ZERO:
            raise ValidationError(
                f"transaction {self.txn_id}: amount and quantity are positive;"
                " the kind gives the direction"
            )
        if self.kind in NEEDS_SECURITY and not self.security_id:
            raise ValidationError(
                f"transaction {self.txn_id}: a {self.kind.value} names a security"
            )
        if self.kind in MOVES_SHARES and self.quantity == ZERO:
            raise ValidationError(f"transaction {self.txn_id}: a {self.kind.value} moves shares")
        if self.lots and self.kind is not TxnKind.SELL:
            raise ValidationError(f"transaction {self.txn_id}: only a sale relieves lots")
        if self.lots and sum((r.quantity for r in self.lots), ZERO) != self.quantity:
            raise ValidationError(
                f"transaction {self.txn_id}: relieved lots do not add up to the shares sold"
            )


def sale_gain(sale: Transaction, lots: Mapping[str, TaxLot]) -> Decimal | None:
    """The gain a sale realised — its proceeds (``amount``, net of commission) less the
    basis of the shares it relieved, each at its lot's basis a share (adjusted for wash
    sales) as the books hold the lot — or None when that cannot be known: the sale
    names no lots, or a lot it names is not in ``lots`` (the account's, by id) with
    shares. A lot keeps its basis a share as it is sold down, so the books' row, before
    or after the sale, gives it."""
    if sale.kind is not TxnKind.SELL or not sale.lots:
        return None
    basis = ZERO
    for relieved in sale.lots:
        lot = lots.get(relieved.lot_id)
        if lot is None or lot.quantity <= ZERO or lot.security_id != sale.security_id:
            return None
        basis += relieved.quantity * lot.basis_per_share
    return sale.amount - basis


class CashFlowKind(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


@dataclass(frozen=True, slots=True)
class CashFlow:
    """A deposit or withdrawal a client has asked for that has not yet happened."""

    flow_id: str
    account_id: str
    kind: CashFlowKind
    amount: Decimal
    requested: date
    due: date | None = None

    def __post_init__(self) -> None:
        if self.amount <= ZERO:
            raise ValidationError(f"cash flow {self.flow_id}: amount must be positive")
        if self.due is not None and self.due < self.requested:
            raise ValidationError(f"cash flow {self.flow_id}: due before it was requested")

    @property
    def signed(self) -> Decimal:
        """The change to the account's cash: positive in, negative out."""
        return self.amount if self.kind is CashFlowKind.DEPOSIT else -self.amount
