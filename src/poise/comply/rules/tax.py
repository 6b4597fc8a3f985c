"""Tax: no wash sale anywhere in the household, realised gains within the tax
budget, short-term gains within their limit.

The wash-sale rule is the household's (IRS Publication 550): a proposal may not buy
an identity sold at a loss in the last 30 days, nor sell at a loss an identity
bought in them — the household's :class:`~poise.domain.recent.WashWindow`, the one
the engine and the monitor read — nor, within the proposal, sell an identity at a
loss in one account while another (or the same) buys it, the meeting the household
engine settles. Gains count only in taxable accounts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import SCOPE, Direction, Param, Rule, Scope, money, usd
from poise.comply.views import Portfolio, TradeRow
from poise.domain.money import ZERO
from poise.domain.relief import Term
from poise.optimize.trades import Side

__all__ = ["ShortTermGains", "TaxBudget", "WashSale"]


def _taxable(before: Portfolio) -> frozenset[str]:
    return frozenset(a.account_id for a in before.accounts if a.registration.taxable)


@dataclass(frozen=True, slots=True, kw_only=True)
class WashSale(Rule):
    kind: ClassVar[str] = "wash_sale"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        taxable = _taxable(before)
        window = before.wash
        losses: dict[str, list[TradeRow]] = defaultdict(list)
        buys: dict[str, list[TradeRow]] = defaultdict(list)
        for row in trades:
            identity = row.security.wash_sale_identity
            if row.trade.side is Side.BUY:
                buys[identity].append(row)
            elif row.account_id in taxable and any(s.gain < ZERO for s in row.trade.lots):
                losses[identity].append(row)
        found = []
        for identity, rows in buys.items():
            if window is not None and window.blocks_buy(identity):
                found.append(
                    self._found(
                        rows,
                        f"{_who(rows)} buys {rows[0].security.symbol}, sold at a loss in the "
                        f"household in the last 30 days",
                    )
                )
        for identity, rows in losses.items():
            own = frozenset(s.lot_id for r in rows for s in r.trade.lots)
            if window is not None and window.blocks_loss_sale(identity, own):
                found.append(
                    self._found(
                        rows,
                        f"{_who(rows)} sells {rows[0].security.symbol} at a loss, bought in "
                        f"the household in the last 30 days",
                    )
                )
            if identity in buys:
                found.append(
                    self._found(
                        rows + buys[identity],
                        f"{_who(rows)} sells {rows[0].security.symbol} at a loss while "
                        f"{_who(buys[identity])} buys {buys[identity][0].security.symbol} "
                        f"in the same proposal",
                    )
                )
        return found

    def _found(self, rows: list[TradeRow], what: str) -> Finding:
        loss = sum((-s.gain for r in rows for s in r.trade.lots if s.gain < ZERO), ZERO)
        accounts = tuple(dict.fromkeys(r.account_id for r in rows))
        return self.found(
            loss,
            ZERO,
            f"{what}: a wash sale, which the {self.rule_id} rule forbids",
            securities=tuple(dict.fromkeys(r.trade.security_id for r in rows)),
            accounts=accounts,
        )


def _who(rows: list[TradeRow]) -> str:
    accounts = list(dict.fromkeys(r.account_id for r in rows))
    if len(accounts) == 1:
        return f"account {accounts[0]}"
    return f"accounts {', '.join(accounts[:-1])} and {accounts[-1]}"


def _gains(
    before: Portfolio, trades: tuple[TradeRow, ...], term: Term | None = None
) -> dict[str, Decimal]:
    """Net gain realised, by taxable account (of ``term`` only, where given)."""
    taxable = _taxable(before)
    gains: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in trades:
        if row.account_id in taxable:
            for s in row.trade.lots:
                if term is None or s.term is term:
                    gains[row.account_id] += s.gain
    return gains


@dataclass(frozen=True, slots=True, kw_only=True)
class _GainLimit(Rule):
    PARAMS: ClassVar[dict[str, Param]] = {
        "amount": Param(money, Direction.LOWER, about="the largest net gain, in dollars"),
        "scope": SCOPE,
    }
    term: ClassVar[Term | None] = None
    what: ClassVar[str] = "a net gain"

    amount: Decimal
    scope: Scope = Scope.ACCOUNT

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        gains = _gains(before, trades, self.term)
        owners = (
            [(f"household {before.household_id}", sum(gains.values(), ZERO), tuple(gains))]
            if self.scope is Scope.HOUSEHOLD
            else [(f"account {a}", g, (a,)) for a, g in gains.items()]
        )
        return [
            self.found(
                gain,
                self.amount,
                f"{where} would realise {self.what} of {usd(gain)}, above the "
                f"{usd(self.amount)} {self.rule_id} limit",
                accounts=accounts,
            )
            for where, gain, accounts in owners
            if gain > self.amount
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxBudget(_GainLimit):
    """Net realised gain at most ``amount`` — the optimiser's tax budget (its twin,
    per account)."""

    kind: ClassVar[str] = "tax_budget"

    def tax_budget(self) -> Decimal | None:
        """The optimiser's twin: its ``tax_budget`` for an account (None: a household
        budget, which the one-account optimiser cannot hold as one)."""
        return self.amount if self.scope is Scope.ACCOUNT else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortTermGains(_GainLimit):
    kind: ClassVar[str] = "short_term_gains"
    term: ClassVar[Term | None] = Term.SHORT
    what: ClassVar[str] = "a net short-term gain"
