"""Data: no trade on a stale price, and none whose price has moved too far since the
proposal was made — checked again at release, against the prices then.

Both read when the check is made from the portfolio (``as_of``, handed in: a rule
never reads the clock). A price with no time is not judged stale; a release-time
check is given the prices at release (``release_prices``) and without them finds
nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import Direction, Param, Rule, days, fraction, pct
from poise.comply.views import Portfolio, TradeRow

__all__ = ["PriceMoved", "StalePrice"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StalePrice(Rule):
    """Every traded security priced within ``max_age_days`` of the check; a finding
    measures the price's age in days."""

    kind: ClassVar[str] = "stale_price"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_age_days": Param(days, Direction.LOWER, about="the oldest price allowed, in days"),
    }

    max_age_days: timedelta

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        if after.as_of is None:
            return []
        found = []
        for security_id in dict.fromkeys(r.trade.security_id for r in trades):
            priced = after.price_times.get(security_id)
            if priced is None:
                continue
            age = after.as_of - priced
            if age > self.max_age_days:
                age_days = age.total_seconds() / 86400
                found.append(
                    self.found(
                        age_days,
                        self.max_age_days.total_seconds() / 86400,
                        f"{after.securities[security_id].symbol}'s price is {age_days:.1f} days "
                        f"old, older than the {self.rule_id} rule allows a trade on",
                        securities=(security_id,),
                        accounts=tuple(
                            dict.fromkeys(
                                r.account_id for r in trades if r.trade.security_id == security_id
                            )
                        ),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceMoved(Rule):
    """At release, no traded security's price moved more than ``max_move`` (a
    fraction, either way) from the price the proposal was made at."""

    kind: ClassVar[str] = "price_moved"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_move": Param(fraction, Direction.LOWER, about="the largest move, either way"),
    }

    max_move: float
    release_prices: Mapping[str, Decimal] = field(default_factory=dict)

    def at_release(self, prices: Mapping[str, Decimal]) -> PriceMoved:
        """This rule checking against ``prices``, those at release."""
        return PriceMoved(
            rule_id=self.rule_id,
            severity=self.severity,
            max_move=self.max_move,
            release_prices=prices,
        )

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        found = []
        made_at: dict[str, Decimal] = {}  # the price each was proposed at
        for r in trades:
            made_at.setdefault(r.trade.security_id, r.trade.price)
        for security_id, price in made_at.items():
            then = price or after.prices.get(security_id)
            now = self.release_prices.get(security_id)
            if not then or now is None:
                continue
            move = float(abs(now - then) / then)
            if move > self.max_move:
                found.append(
                    self.found(
                        move,
                        self.max_move,
                        f"{after.securities[security_id].symbol} is at {now}, {pct(move)} from "
                        f"the {then} the proposal was made at, more than the "
                        f"{pct(self.max_move)} the {self.rule_id} rule allows",
                        securities=(security_id,),
                    )
                )
        return found
