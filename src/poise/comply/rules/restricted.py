"""Restricted lists: securities not to buy (the firm's own stock, names under
research), not to sell, tags not to buy (ESG or faith-based screens), and
securities an account must go on holding. Firm-wide when no ``accounts`` are named,
else for those accounts alone.

Each has a twin in the optimiser: :meth:`restrictions` gives the account's
:class:`~poise.domain.accounts.Restrictions` — what the engine's problem builder
already keeps an account from buying or selling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from poise.comply.findings import Finding
from poise.comply.rules.base import Direction, Param, Rule, ids, usd
from poise.comply.views import Portfolio, TradeRow
from poise.domain.accounts import Restrictions
from poise.domain.money import ZERO
from poise.optimize.trades import Side

__all__ = ["DoNotBuy", "DoNotSell", "ExcludedTags", "MustHold"]

ACCOUNTS = Param(
    ids, Direction.FEWER, required=False, about="the accounts it binds; none: every account"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Listed(Rule):
    accounts: frozenset[str] = frozenset()

    def binds(self, account_id: str) -> bool:
        return not self.accounts or account_id in self.accounts

    def restrictions(self, account_id: str) -> Restrictions:
        """The optimiser's twin: what this rule keeps ``account_id`` from doing."""
        raise NotImplementedError

    def _trades(
        self, trades: tuple[TradeRow, ...], side: Side, listed: frozenset[str], why: str
    ) -> list[Finding]:
        found = []
        for row in trades:
            t = row.trade
            if t.side is side and t.security_id in listed and self.binds(row.account_id):
                verb = "buys" if side is Side.BUY else "sells"
                found.append(
                    self.found(
                        row.value,
                        ZERO,
                        f"account {row.account_id} {verb} {t.quantity} {row.security.symbol} "
                        f"({usd(row.value)}), {why} by the {self.rule_id} rule",
                        securities=(t.security_id,),
                        accounts=(row.account_id,),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class DoNotBuy(_Listed):
    kind: ClassVar[str] = "do_not_buy"
    PARAMS: ClassVar[dict[str, Param]] = {
        "securities": Param(ids, Direction.MORE, about="security ids not to buy"),
        "accounts": ACCOUNTS,
    }

    securities: frozenset[str]

    def restrictions(self, account_id: str) -> Restrictions:
        return Restrictions(do_not_buy=self.securities if self.binds(account_id) else frozenset())

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        return self._trades(trades, Side.BUY, self.securities, "a purchase forbidden")


@dataclass(frozen=True, slots=True, kw_only=True)
class DoNotSell(_Listed):
    kind: ClassVar[str] = "do_not_sell"
    PARAMS: ClassVar[dict[str, Param]] = {
        "securities": Param(ids, Direction.MORE, about="security ids not to sell"),
        "accounts": ACCOUNTS,
    }

    securities: frozenset[str]

    def restrictions(self, account_id: str) -> Restrictions:
        return Restrictions(do_not_sell=self.securities if self.binds(account_id) else frozenset())

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        return self._trades(trades, Side.SELL, self.securities, "a sale forbidden")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExcludedTags(_Listed):
    """No purchase of a security carrying any of ``tags``."""

    kind: ClassVar[str] = "excluded_tags"
    PARAMS: ClassVar[dict[str, Param]] = {
        "tags": Param(ids, Direction.MORE, about="security tags not to buy"),
        "accounts": ACCOUNTS,
    }

    tags: frozenset[str]

    def restrictions(self, account_id: str) -> Restrictions:
        return Restrictions(excluded_tags=self.tags if self.binds(account_id) else frozenset())

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        found = []
        for row in trades:
            hit = row.security.tags & self.tags
            if row.trade.side is Side.BUY and hit and self.binds(row.account_id):
                found.append(
                    self.found(
                        row.value,
                        ZERO,
                        f"account {row.account_id} buys {row.security.symbol} "
                        f"({usd(row.value)}), tagged {', '.join(sorted(hit))}, which the "
                        f"{self.rule_id} rule excludes",
                        securities=(row.trade.security_id,),
                        accounts=(row.account_id,),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class MustHold(_Listed):
    """Each bound account still holds every one of ``securities`` after the trades
    (a concentrated position the client keeps, a legacy holding): held before, it is
    not sold to nothing. Its twin: the account may not sell them."""

    kind: ClassVar[str] = "must_hold"
    PARAMS: ClassVar[dict[str, Param]] = {
        "securities": Param(ids, Direction.MORE, about="security ids to keep holding"),
        "accounts": ACCOUNTS,
    }

    securities: frozenset[str]

    def restrictions(self, account_id: str) -> Restrictions:
        return Restrictions(do_not_sell=self.securities if self.binds(account_id) else frozenset())

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        kept = {
            (after.account_of(i), s)
            for i, s in enumerate(after.row_security)
            if s in self.securities and after.quantity[i] > ZERO
        }
        found = []
        for i, security_id in enumerate(before.row_security):
            if security_id not in self.securities or before.quantity[i] <= ZERO:
                continue
            account = before.account_of(i)
            if not self.binds(account) or (account, security_id) in kept:
                continue  # only what an account holds must stay
            found.append(
                self.found(
                    ZERO,
                    before.quantity[i],
                    f"account {account} would no longer hold "
                    f"{after.securities[security_id].symbol}, which the {self.rule_id} "
                    f"rule says it must keep",
                    securities=(security_id,),
                    accounts=(account,),
                )
            )
        return found
