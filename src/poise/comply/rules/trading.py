"""Trading: no trade too small to be worth its cost, not too much turnover, not too
many trades. The first two are the optimiser's own settings (``min_trade``,
``min_trade_fraction``, ``max_turnover``), and each rule gives them
(:meth:`MinimumTrade.settings`, :meth:`Turnover.settings`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import (
    SCOPE,
    Direction,
    Param,
    Rule,
    Scope,
    count,
    fraction,
    money,
    pct,
    usd,
)
from poise.comply.views import Portfolio, TradeRow
from poise.domain.money import ZERO

__all__ = ["MinimumTrade", "TradeCount", "Turnover"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MinimumTrade(Rule):
    """Every trade at least ``amount`` dollars and ``fraction`` of its account's
    value (before the trades)."""

    kind: ClassVar[str] = "minimum_trade"
    PARAMS: ClassVar[dict[str, Param]] = {
        "amount": Param(money, Direction.HIGHER, required=False, about="dollars"),
        "fraction": Param(fraction, Direction.HIGHER, required=False, about="of the account"),
    }

    amount: Decimal = ZERO
    fraction: float = 0.0

    def settings(self) -> dict[str, Decimal]:
        """The optimiser's twin: its ``min_trade`` and ``min_trade_fraction``."""
        return {"min_trade": self.amount, "min_trade_fraction": Decimal(str(self.fraction))}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        values = {a.account_id: a.value for a in before.accounts}
        fraction = Decimal(str(self.fraction))
        found = []
        for row in trades:
            least = max(self.amount, fraction * values.get(row.account_id, ZERO))
            if row.value < least:
                found.append(
                    self.found(
                        row.value,
                        least,
                        f"account {row.account_id}'s {row.trade.side.value} of "
                        f"{row.security.symbol} is {usd(row.value)}, below the {usd(least)} "
                        f"{self.rule_id} size",
                        securities=(row.trade.security_id,),
                        accounts=(row.account_id,),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Turnover(Rule):
    """What is traded, bought and sold, at most ``max_turnover`` of the value before
    the trades — of each account, or of the household."""

    kind: ClassVar[str] = "turnover"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_turnover": Param(fraction, Direction.LOWER, about="of the value"),
        "scope": SCOPE,
    }

    max_turnover: float
    scope: Scope = Scope.ACCOUNT

    def settings(self) -> dict[str, Decimal]:
        """The optimiser's twin: its ``max_turnover`` (an account's; a household's
        limit binds each account too, since none may exceed what all may)."""
        return {"max_turnover": Decimal(str(self.max_turnover))}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        traded: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in trades:
            traded[row.account_id] += row.value
        if self.scope is Scope.HOUSEHOLD:
            owners = [
                (
                    f"household {before.household_id}",
                    sum(traded.values(), ZERO),
                    before.total,
                    tuple(traded),
                )
            ]
        else:
            owners = [
                (f"account {a.account_id}", traded[a.account_id], a.value, (a.account_id,))
                for a in before.accounts
                if a.account_id in traded
            ]
        found = []
        for where, amount, value, accounts in owners:
            share = float(amount / value) if value > ZERO else float("inf")
            if share > self.max_turnover + 1e-12:
                found.append(
                    self.found(
                        share,
                        self.max_turnover,
                        f"{where} would trade {usd(amount)}, {pct(share)} of its value, above "
                        f"the {pct(self.max_turnover)} {self.rule_id} limit",
                        accounts=accounts,
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeCount(Rule):
    """At most ``max_trades`` trades in the proposal (the household's)."""

    kind: ClassVar[str] = "trade_count"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_trades": Param(count, Direction.LOWER, about="the most trades"),
    }

    max_trades: int

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        if len(trades) <= self.max_trades:
            return []
        return [
            self.found(
                len(trades),
                self.max_trades,
                f"household {before.household_id}'s proposal has {len(trades)} trades, more "
                f"than the {self.max_trades} the {self.rule_id} rule allows",
                accounts=tuple(dict.fromkeys(r.account_id for r in trades)),
            )
        ]
