"""Trades, lot instructions and the proposal that explains them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO
from poise.domain.relief import Term

__all__ = ["LotSale", "Proposal", "Side", "Trade", "TradeReason"]


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class TradeReason(enum.StrEnum):
    DRIFT = "drift"  # back inside (or to the middle of) its band
    CASH_NEED = "cash_need"  # raising a withdrawal or the reserve
    CASH_INVEST = "cash_invest"  # investing cash above target
    HARVEST = "harvest"  # selling a lot at a loss for its tax benefit
    REPLACEMENT = "replacement"  # keeping the exposure a harvest sold
    RESTRICTION = "restriction"  # selling what the account may not hold


@dataclass(frozen=True, slots=True)
class LotSale:
    """Shares of one lot a sale relieves, and what they realise."""

    lot_id: str
    quantity: Decimal
    basis: Decimal
    proceeds: Decimal
    term: Term

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.basis


@dataclass(frozen=True, slots=True)
class Trade:
    security_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    reason: TradeReason
    lots: tuple[LotSale, ...] = ()

    def __post_init__(self) -> None:
        if self.quantity <= ZERO:
            raise ValidationError(f"a trade of {self.security_id} needs a positive quantity")
        if self.side is Side.BUY and self.lots:
            raise ValidationError("a buy relieves no lots")

    @property
    def value(self) -> Decimal:
        return self.quantity * self.price

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity


@dataclass(frozen=True, slots=True)
class Proposal:
    """What a method proposes for one account, with the figures a reviewer needs."""

    account_id: str
    method: str
    trades: tuple[Trade, ...]
    cash_before: Decimal
    cash_after: Decimal
    realised_short: Decimal
    realised_long: Decimal
    estimated_tax: Decimal
    cost: Decimal
    drift_before: Decimal  # largest |weight − target| before, in weight points
    drift_after: Decimal
    binding: tuple[str, ...] = ()  # constraints that held the method back, in words
    tracking_before: Decimal | None = None  # annual tracking error to the model, a fraction
    tracking_after: Decimal | None = None  # None where no risk model was given

    @property
    def turnover(self) -> Decimal:
        return sum((t.value for t in self.trades), ZERO)
