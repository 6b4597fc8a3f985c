"""What every rule kind shares: its id and severity, the parameters a rule set may
give it (each with the direction that tightens it), and how findings are written."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding, Measure, Severity
from poise.comply.views import Portfolio, TradeRow
from poise.domain.errors import ValidationError
from poise.domain.money import D, cents

__all__ = [
    "SCOPE",
    "Direction",
    "Param",
    "Rule",
    "Scope",
    "days",
    "fraction",
    "ids",
    "money",
    "pct",
    "usd",
]


class Scope(enum.StrEnum):
    """Whom a limit is measured over: each account on its own, or the household."""

    ACCOUNT = "account"
    HOUSEHOLD = "household"


class Direction(enum.StrEnum):
    """Which way a parameter tightens its rule, for layering rule sets."""

    LOWER = "lower"  # a smaller number is stricter (a maximum)
    HIGHER = "higher"  # a larger number is stricter (a minimum)
    MORE = "more"  # a larger set is stricter (securities not to buy)
    FEWER = "fewer"  # a smaller set is stricter (accounts a rule spares)
    FIXED = "fixed"  # any change is a loosening


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a rule set may give: how its YAML value is read (raising
    ``ValueError`` or ``TypeError`` with what was wrong), which way tightens it, and
    whether it must be given."""

    read: Callable[[object], object]
    tighter: Direction
    required: bool = True
    about: str = ""


def fraction(value: object) -> float:
    """A weight or a share between 0 and 1 (0.1 is 10%)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a fraction between 0 and 1, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"expected a fraction between 0 and 1, got {value!r}")
    return float(value)


def money(value: object) -> Decimal:
    """Dollars, exact: written as a number or as text ("25000", 25000.50)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError(f"expected an amount of money, got {value!r}")
    try:
        amount = D(str(value) if isinstance(value, float) else value)
    except ValidationError as e:
        raise ValueError(str(e)) from None
    if amount < 0:
        raise ValueError(f"expected a positive amount, got {value!r}")
    return amount


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def days(value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TypeError(f"expected a number of days, got {value!r}")
    return timedelta(days=float(value))


def ids(value: object) -> frozenset[str]:
    """A list of ids (securities, accounts or tags)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(
            f"expected a list of names, got {value!r} (quote a name that reads as a number)"
        )
    return frozenset(value)


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"expected text, got {value!r}")
    return value


def scope(value: object) -> Scope:
    try:
        return Scope(str(value))
    except ValueError:
        raise ValueError(f"expected account or household, got {value!r}") from None


SCOPE = Param(scope, Direction.FIXED, required=False, about="account (default) or household")


def pct(weight: float) -> str:
    return f"{weight * 100:.1f}%"


def usd(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(cents(amount)):,.2f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A rule: its ``rule_id`` (unique in its rule set) and ``severity``. A kind sets
    ``kind`` and ``PARAMS`` and implements :meth:`check`."""

    kind: ClassVar[str] = ""
    PARAMS: ClassVar[Mapping[str, Param]] = {}

    rule_id: str
    severity: Severity = Severity.BLOCK

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        raise NotImplementedError

    def found(
        self,
        measured: Measure,
        limit: Measure,
        explanation: str,
        *,
        securities: Iterable[str] = (),
        accounts: Iterable[str] = (),
    ) -> Finding:
        return Finding(
            rule_id=self.rule_id,
            kind=self.kind,
            severity=self.severity,
            measured=measured,
            limit=limit,
            explanation=explanation,
            securities=tuple(securities),
            accounts=tuple(accounts),
        )

    @property
    def whose(self) -> str:
        """How a finding names the limit's owner: the rule set's id for it."""
        return f"the {self.rule_id} limit"
