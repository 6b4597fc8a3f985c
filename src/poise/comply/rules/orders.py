"""Order limits: no order too large in dollars, or in shares against the security's
average daily volume (ADV).

The security master holds no ADV yet: it comes from the rule's ``adv`` mapping where
given, else from the portfolio's :class:`~poise.comply.views.Reference`; a security
with neither is not judged (the price file would need an ``adv`` column for every
security to be). An order is what the household sends for a security: its
accounts' trades on the same side summed, as they go out in one block."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import Direction, Param, Rule, fraction, money, pct, usd
from poise.comply.views import Portfolio, TradeRow
from poise.optimize.trades import Side

__all__ = ["MaxOrderValue", "MaxShareOfVolume"]


def _orders(trades: tuple[TradeRow, ...]) -> dict[tuple[str, Side], list[TradeRow]]:
    orders: dict[tuple[str, Side], list[TradeRow]] = defaultdict(list)
    for row in trades:
        orders[(row.trade.security_id, row.trade.side)].append(row)
    return orders


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxOrderValue(Rule):
    kind: ClassVar[str] = "max_order_value"
    PARAMS: ClassVar[dict[str, Param]] = {
        "amount": Param(money, Direction.LOWER, about="the largest order, in dollars"),
    }

    amount: Decimal

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        found = []
        for (security_id, side), rows in _orders(trades).items():
            value = sum((r.value for r in rows), Decimal(0))
            if value > self.amount:
                found.append(
                    self.found(
                        value,
                        self.amount,
                        f"the order to {side.value} {rows[0].security.symbol} would be "
                        f"{usd(value)}, above the {usd(self.amount)} {self.rule_id} limit",
                        securities=(security_id,),
                        accounts=tuple(dict.fromkeys(r.account_id for r in rows)),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxShareOfVolume(Rule):
    kind: ClassVar[str] = "max_share_of_volume"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_share": Param(fraction, Direction.LOWER, about="of the average daily volume"),
    }

    max_share: float
    adv: Mapping[str, Decimal] = field(default_factory=dict)  # shares a day, by security

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        found = []
        for (security_id, side), rows in _orders(trades).items():
            adv = self.adv.get(security_id) or after.reference.adv.get(security_id)
            if not adv:
                continue
            shares = sum((r.trade.quantity for r in rows), Decimal(0))
            share = float(shares / adv)
            if share > self.max_share:
                found.append(
                    self.found(
                        share,
                        self.max_share,
                        f"the order to {side.value} {shares} {rows[0].security.symbol} would be "
                        f"{pct(share)} of its average daily volume ({adv} shares), above the "
                        f"{pct(self.max_share)} {self.rule_id} limit",
                        securities=(security_id,),
                        accounts=tuple(dict.fromkeys(r.account_id for r in rows)),
                    )
                )
        return found
