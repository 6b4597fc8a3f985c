"""Long only, no negative cash, no margin: an account never owes shares or money."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import Param, Rule, usd
from poise.comply.views import Portfolio, TradeRow
from poise.domain.money import ZERO
from poise.optimize.trades import Side

__all__ = ["LongOnly", "NoMargin", "NoNegativeCash"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LongOnly(Rule):
    """No position below zero after the trades: nothing sold that is not held."""

    kind: ClassVar[str] = "long_only"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        if not len(after.value) or after.value.min() >= 0.0:
            return []  # every value at or above zero (prices are positive): none short
        found = []
        for i, q in enumerate(after.quantity):
            if q < ZERO:
                account = after.accounts[int(after.row_account[i])].account_id
                symbol = after.securities[after.row_security[i]].symbol
                found.append(
                    self.found(
                        q,
                        ZERO,
                        f"account {account} would be short {-q} {symbol}; the {self.rule_id} "
                        f"rule allows no short position",
                        securities=(after.row_security[i],),
                        accounts=(account,),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class NoNegativeCash(Rule):
    """No account's cash below zero after the trades, as the proposal states it."""

    kind: ClassVar[str] = "no_negative_cash"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        return [
            self.found(
                a.cash,
                ZERO,
                f"account {a.account_id} would hold {usd(a.cash)} in cash; the "
                f"{self.rule_id} rule allows no negative cash",
                accounts=(a.account_id,),
            )
            for a in after.accounts
            if a.cash < ZERO
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class NoMargin(Rule):
    """Each account's purchases paid from its own cash and its sales in the same
    proposal — counted from the trades themselves, not from the cash the proposal
    states, so a proposal that borrows is caught even where its figures are wrong."""

    kind: ClassVar[str] = "no_margin"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        net: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in trades:
            sign = -1 if row.trade.side is Side.BUY else 1
            net[row.account_id] += sign * row.value
        found = []
        for a in before.accounts:
            left = a.cash + net.get(a.account_id, ZERO)
            if left < ZERO:
                found.append(
                    self.found(
                        -left,
                        ZERO,
                        f"account {a.account_id}'s purchases exceed its cash and sales by "
                        f"{usd(-left)}: bought on margin, which the {self.rule_id} rule forbids",
                        accounts=(a.account_id,),
                    )
                )
        return found
