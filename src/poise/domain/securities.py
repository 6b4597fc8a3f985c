"""Securities: what can be held and how it may be traded."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO

__all__ = ["Security", "SecurityKind", "TradeUnit", "Trading"]


class SecurityKind(enum.StrEnum):
    STOCK = "stock"
    ETF = "etf"
    MUTUAL_FUND = "mutual_fund"
    BOND = "bond"
    CASH_EQUIVALENT = "cash_equivalent"


class TradeUnit(enum.StrEnum):
    """How quantities of a security may be traded."""

    WHOLE = "whole"  # whole shares only
    FRACTION = "fraction"  # multiples of a step, e.g. 0.001 share
    ROUND_LOT = "round_lot"  # multiples of a lot size, e.g. 100 shares or 1,000 par


@dataclass(frozen=True, slots=True)
class Trading:
    """The quantity grid a security trades on: ``unit`` and its ``step``."""

    unit: TradeUnit = TradeUnit.WHOLE
    step: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if self.step <= ZERO:
            raise ValidationError(f"trade step must be positive, got {self.step}")
        if self.unit is TradeUnit.WHOLE and self.step != 1:
            raise ValidationError("whole-share securities trade in steps of 1")
        if self.unit is TradeUnit.ROUND_LOT and self.step != self.step.to_integral_value():
            raise ValidationError(f"a round lot is a whole number of shares, got {self.step}")

    def round_down(self, quantity: Decimal) -> Decimal:
        """The largest tradable quantity not above ``quantity`` (for a non-negative one)."""
        steps = (quantity / self.step).to_integral_value(rounding=ROUND_FLOOR)
        return steps * self.step

    def allows(self, quantity: Decimal) -> bool:
        """True when ``quantity`` lies on this security's grid."""
        return (quantity / self.step) == (quantity / self.step).to_integral_value()


@dataclass(frozen=True, slots=True)
class Security:
    """One security, as the security master describes it.

    ``identity_group`` is the *substantially identical* group of the wash-sale rule:
    two securities in the same group are treated as one by that rule (two S&P 500
    index funds of different issuers, say). A security with no group stands alone.
    ``replacements`` are the securities a loss harvest may buy to keep exposure, in
    order of preference; none of them may share its identity group.
    """

    security_id: str
    symbol: str
    name: str
    kind: SecurityKind
    asset_class: str
    sub_class: str = ""
    currency: str = "USD"
    trading: Trading = field(default_factory=Trading)
    tags: frozenset[str] = frozenset()
    identity_group: str = ""
    replacements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.security_id.strip():
            raise ValidationError("a security needs an id")
        if not self.asset_class.strip():
            raise ValidationError(f"security {self.security_id} needs an asset class")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValidationError(
                f"security {self.security_id}: currency {self.currency!r} is not ISO 4217"
            )
        if self.security_id in self.replacements:
            raise ValidationError(f"security {self.security_id} cannot replace itself")

    @property
    def wash_sale_identity(self) -> str:
        """The key the wash-sale rule compares: the group, or the security itself."""
        return self.identity_group or self.security_id
