"""Households and their accounts.

A household is one taxpayer unit: the scope of the wash-sale rule and of asset
location. Every account belongs to exactly one household.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.models import Band
from poise.domain.money import ZERO

__all__ = [
    "Account",
    "CashReserve",
    "Household",
    "MinTrade",
    "Registration",
    "Restrictions",
    "TaxRates",
    "model_of",
]


class Registration(enum.StrEnum):
    """The registration of an account, which sets how it is taxed."""

    TAXABLE = "taxable"
    JOINT = "joint"
    TRUST = "trust"
    TRADITIONAL_IRA = "traditional_ira"
    ROTH_IRA = "roth_ira"
    SEP_IRA = "sep_ira"
    K401 = "401k"
    ROTH_401K = "roth_401k"
    HSA = "hsa"

    @property
    def taxable(self) -> bool:
        """True when gains are taxed as realised (so lots and wash sales matter)."""
        return self in _TAXABLE

    @property
    def tax_deferred(self) -> bool:
        return self in _DEFERRED

    @property
    def tax_exempt(self) -> bool:
        return self in _EXEMPT


_TAXABLE = frozenset({Registration.TAXABLE, Registration.JOINT, Registration.TRUST})
_DEFERRED = frozenset({Registration.TRADITIONAL_IRA, Registration.SEP_IRA, Registration.K401})
_EXEMPT = frozenset({Registration.ROTH_IRA, Registration.ROTH_401K, Registration.HSA})


def _is_rate(value: Decimal) -> bool:
    return ZERO <= value <= 1


@dataclass(frozen=True, slots=True)
class TaxRates:
    """Marginal rates as fractions (0.37 is 37%): federal short- and long-term, state."""

    short_term: Decimal = ZERO
    long_term: Decimal = ZERO
    state: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("short_term", "long_term", "state"):
            if not _is_rate(getattr(self, name)):
                raise ValidationError(f"tax rate {name} must lie between 0 and 1")


@dataclass(frozen=True, slots=True)
class CashReserve:
    """Cash to keep: a fixed amount, a fraction of the account's value, or both (the larger)."""

    amount: Decimal = ZERO
    fraction: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.amount < ZERO:
            raise ValidationError("a cash reserve cannot be negative")
        if not _is_rate(self.fraction):
            raise ValidationError("a cash reserve fraction must lie between 0 and 1")

    def required(self, account_value: Decimal) -> Decimal:
        return max(self.amount, self.fraction * account_value)


@dataclass(frozen=True, slots=True)
class MinTrade:
    """An account's own smallest trade, overriding the firm's: dollars, a fraction of
    the account's value, or both (the larger); None where the firm's stands."""

    amount: Decimal | None = None
    fraction: Decimal | None = None

    def __post_init__(self) -> None:
        if self.amount is not None and self.amount < ZERO:
            raise ValidationError("a minimum trade cannot be negative")
        if self.fraction is not None and not _is_rate(self.fraction):
            raise ValidationError("a minimum trade fraction must lie between 0 and 1")


@dataclass(frozen=True, slots=True)
class Restrictions:
    """What may not be done in an account, by security id or by security tag."""

    do_not_buy: frozenset[str] = frozenset()
    do_not_sell: frozenset[str] = frozenset()
    excluded_tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Household:
    """A taxpayer unit: the scope of the wash-sale rule. ``model_id``: one allocation
    across all its accounts (rebalanced as one), where it has one."""

    household_id: str
    name: str
    advisor: str = ""
    model_id: str | None = None

    def __post_init__(self) -> None:
        if not self.household_id.strip():
            raise ValidationError("a household needs an id")


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    household_id: str
    registration: Registration
    custodian: str = ""
    name: str = ""
    model_id: str | None = None
    cash: Decimal = ZERO
    reserve: CashReserve = field(default_factory=CashReserve)
    restrictions: Restrictions = field(default_factory=Restrictions)
    tax_rates: TaxRates = field(default_factory=TaxRates)
    harvest: bool = False
    tolerance: Band = field(default_factory=Band)  # overrides of the model's bands
    min_trade: MinTrade = field(default_factory=MinTrade)  # overrides of the firm's
    cross_consent: bool = False  # its trades may cross with the firm's other accounts

    def __post_init__(self) -> None:
        if not self.account_id.strip():
            raise ValidationError("an account needs an id")
        if not self.household_id.strip():
            raise ValidationError(f"account {self.account_id} needs a household")
        if self.cash < ZERO:
            raise ValidationError(f"account {self.account_id}: cash cannot be negative")
        if self.harvest and not self.registration.taxable:
            raise ValidationError(
                f"account {self.account_id}: loss harvesting needs a taxable account, "
                f"not {self.registration.value}"
            )


def model_of(household: Household, account: Account) -> str | None:
    """The model an account is held to: the household's, where it has one (one
    allocation across its accounts), else the account's own; None: neither has one."""
    return household.model_id or account.model_id
