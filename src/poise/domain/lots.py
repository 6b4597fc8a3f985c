"""Tax lots: shares bought together, with their cost and wash-sale adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO

__all__ = ["TaxLot"]


@dataclass(frozen=True, slots=True)
class TaxLot:
    """An open tax lot.

    ``cost_basis`` is the total cost of the lot's shares. When a wash sale adds a
    disallowed loss to this lot (IRS Publication 550), ``adjusted_basis`` holds the
    basis after that addition, ``holding_start`` the holding period's adjusted start,
    and ``disallowed_loss`` the amount added; with no adjustment they are ``None``
    and zero.
    """

    lot_id: str
    account_id: str
    security_id: str
    quantity: Decimal
    cost_basis: Decimal
    acquired: date
    adjusted_basis: Decimal | None = None
    holding_start: date | None = None
    disallowed_loss: Decimal = ZERO

    def __post_init__(self) -> None:
        if not self.lot_id.strip():
            raise ValidationError("a lot needs an id")
        if self.quantity < ZERO:
            raise ValidationError(f"lot {self.lot_id}: quantity cannot be negative")
        if self.cost_basis < ZERO:
            raise ValidationError(f"lot {self.lot_id}: cost basis cannot be negative")
        if self.adjusted_basis is not None and self.adjusted_basis < ZERO:
            raise ValidationError(f"lot {self.lot_id}: adjusted basis cannot be negative")
        if self.disallowed_loss < ZERO:
            raise ValidationError(f"lot {self.lot_id}: a disallowed loss is a positive amount")

    @property
    def basis(self) -> Decimal:
        """The basis that counts for gains: adjusted if a wash sale adjusted it."""
        return self.cost_basis if self.adjusted_basis is None else self.adjusted_basis

    @property
    def held_since(self) -> date:
        """The start of the holding period that counts for short vs long term."""
        return self.acquired if self.holding_start is None else self.holding_start

    @property
    def basis_per_share(self) -> Decimal:
        return self.basis / self.quantity if self.quantity else ZERO
