"""Concentration: no security, issuer or sector too large a share; the largest
holdings together not too large; each asset class within the investment policy
statement's range; and enough cash.

Each limit is measured after the trades, over each account (``scope: account``) or
the household (``scope: household``). A proposal is judged on what its trades do: a
limit broken before them is a finding only where the trades buy into it (sell out of
it, for a minimum); a breach the markets made and the trades leave alone is the daily
check of holdings' to raise — which checks with an empty ``before``
(:func:`~poise.comply.views.nothing`), so that every breach counts as new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import ClassVar

import numpy as np

from poise.comply.findings import Finding
from poise.comply.rules.base import (
    SCOPE,
    Direction,
    Param,
    Rule,
    Scope,
    count,
    fraction,
    ids,
    money,
    pct,
    text,
    usd,
)
from poise.comply.views import Floats, Ints, Portfolio, TradeRow, group_key
from poise.domain.accounts import CashReserve
from poise.domain.money import ZERO
from poise.optimize.trades import Side

__all__ = [
    "AssetClassRange",
    "IssuerWeight",
    "MinimumCash",
    "SectorWeight",
    "SecurityWeight",
    "TopHoldings",
]


def _sums(after: Portfolio, group: str, where: Scope) -> tuple[Floats, Ints, int]:
    """Weights summed by (account or household, group member); the codes of the cells
    and the number of members, to tell a cell's owner and member apart."""
    codes, names = after.codes[group]
    members = len(names)
    if where is Scope.HOUSEHOLD:
        sums: Floats = np.bincount(codes, after.household_weight, members).astype(np.float64)
        return sums, codes, members
    cells: Ints = after.row_account * members + codes
    sums = np.bincount(cells, after.weight, len(after.accounts) * members).astype(np.float64)
    return sums, cells, members


def _owner(after: Portfolio, where: Scope, cell: int, members: int) -> tuple[str, tuple[str, ...]]:
    if where is Scope.HOUSEHOLD:
        return f"household {after.household_id}", tuple(a.account_id for a in after.accounts)
    account = after.accounts[cell // members].account_id
    return f"account {account}", (account,)


def _weight(p: Portfolio, group: str, where: Scope, account: str, name: str | None) -> float:
    """The weight of ``name`` (every member, for None) in ``account`` or the household."""
    codes, names = p.codes[group]
    if name is not None and name not in names:
        return 0.0
    mine = np.ones(len(codes), dtype=bool) if name is None else codes == names.index(name)
    if where is Scope.HOUSEHOLD:
        return float(p.household_weight[mine].sum())
    k = next((i for i, a in enumerate(p.accounts) if a.account_id == account), -1)
    return float(p.weight[mine & (p.row_account == k)].sum())


def _traded(
    p: Portfolio,
    trades: tuple[TradeRow, ...],
    *,
    group: str,
    side: Side,
    account: str,
    name: str | None,
) -> bool:
    """True when a trade on ``side`` touches ``name`` (any member, for None) in
    ``account`` ("" for any account)."""
    return any(
        row.trade.side is side
        and (not account or row.account_id == account)
        and (name is None or group_key(group, row.security, p.reference) == name)
        for row in trades
    )


def _made(
    before: Portfolio,
    after: Portfolio,
    trades: tuple[TradeRow, ...],
    *,
    group: str,
    where: Scope,
    account: str,
    name: str | None,
    side: Side,
    broken: Callable[[float], bool],
) -> bool:
    """True when the trades make a breach or add to it: ``broken`` before them holds
    of the weight only where they traded on ``side``."""
    if not broken(_weight(before, group, where, account, name)):
        return True
    account = "" if where is Scope.HOUSEHOLD else account
    return _traded(after, trades, group=group, side=side, account=account, name=name)


class _Before:
    """The weights before the trades, by owner (an account's index, or 0 for the
    household) and group member, worked out only when asked."""

    def __init__(self, before: Portfolio, group: str, where: Scope) -> None:
        self.before, self.group, self.where = before, group, where
        self.sums: Floats | None = None

    def weight(self, owner: int, name: str) -> float:
        if self.sums is None:
            self.sums, _, self.members = _sums(self.before, self.group, self.where)
            self.index = {n: i for i, n in enumerate(self.before.codes[self.group][1])}
        i = self.index.get(name)
        return 0.0 if i is None else float(self.sums[owner * self.members + i])


def _bought(
    after: Portfolio, trades: tuple[TradeRow, ...], group: str, where: Scope
) -> set[tuple[int, str]]:
    """(owner, group member) of every buy: the account's index, or 0 for the household."""
    index = {a.account_id: i for i, a in enumerate(after.accounts)}
    return {
        (
            0 if where is Scope.HOUSEHOLD else index[row.account_id],
            group_key(group, row.security, after.reference),
        )
        for row in trades
        if row.trade.side is Side.BUY
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class _GroupWeight(Rule):
    """No member of a group (a security, an issuer, a sector) above ``max_weight``."""

    group: ClassVar[str] = "security"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_weight": Param(fraction, Direction.LOWER, about="the largest weight allowed"),
        "scope": SCOPE,
        "exempt": Param(
            ids,
            Direction.FEWER,
            required=False,
            about="members the limit spares (diversified funds, say), by id",
        ),
    }

    max_weight: float
    scope: Scope = Scope.ACCOUNT
    exempt: frozenset[str] = frozenset()

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        sums, cells, members = _sums(after, self.group, self.scope)
        over = np.flatnonzero(sums > self.max_weight + 1e-12)
        if not len(over):
            return []
        names = after.codes[self.group][1]
        was = _Before(before, self.group, self.scope)
        bought = _bought(after, trades, self.group, self.scope)
        found = []
        for cell in over.tolist():
            where, accounts = _owner(after, self.scope, cell, members)
            name = names[cell % members]
            if name in self.exempt:
                continue
            owner = cell // members
            if was.weight(owner, name) > self.max_weight + 1e-12 and (owner, name) not in bought:
                continue  # broken before, and the trades did not buy into it
            rows = np.flatnonzero(cells == cell).tolist()
            securities = tuple(dict.fromkeys(after.row_security[i] for i in rows))
            if self.group == "security":
                name = after.securities[name].symbol
            found.append(
                self.found(
                    float(sums[cell]),
                    self.max_weight,
                    f"{self._what(name)} would be {pct(float(sums[cell]))} of {where}, above "
                    f"the {pct(self.max_weight)} {self.rule_id} limit",
                    securities=securities,
                    accounts=accounts,
                )
            )
        return found

    def _what(self, name: str) -> str:
        return name if self.group == "security" else f"{self.group.replace('_', ' ')} {name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityWeight(_GroupWeight):
    kind: ClassVar[str] = "security_weight"
    group: ClassVar[str] = "security"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuerWeight(_GroupWeight):
    kind: ClassVar[str] = "issuer_weight"
    group: ClassVar[str] = "issuer"


@dataclass(frozen=True, slots=True, kw_only=True)
class SectorWeight(_GroupWeight):
    kind: ClassVar[str] = "sector_weight"
    group: ClassVar[str] = "sector"


@dataclass(frozen=True, slots=True, kw_only=True)
class TopHoldings(Rule):
    """The ``count`` largest holdings together at most ``max_weight``."""

    kind: ClassVar[str] = "top_holdings"
    PARAMS: ClassVar[dict[str, Param]] = {
        "count": Param(count, Direction.FIXED, about="how many of the largest holdings"),
        "max_weight": Param(fraction, Direction.LOWER, about="their largest total weight"),
        "scope": SCOPE,
    }

    count: int
    max_weight: float
    scope: Scope = Scope.ACCOUNT

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        sums, _, members = _sums(after, "security", self.scope)
        owners = len(sums) // max(members, 1)
        if not owners:
            return []
        table = sums.reshape(owners, members)
        k = min(self.count, members)
        top = -np.sort(-table, axis=1)[:, :k].sum(axis=1)
        found = []
        for owner in np.flatnonzero(top > self.max_weight + 1e-12).tolist():
            where, accounts = _owner(after, self.scope, owner * members, members)
            if not self._made(before, trades, accounts[0]):
                continue
            largest = np.argsort(-table[owner])[:k].tolist()
            names = after.codes["security"][1]
            found.append(
                self.found(
                    float(top[owner]),
                    self.max_weight,
                    f"the {self.count} largest holdings of {where} would be "
                    f"{pct(float(top[owner]))} of it, above the {pct(self.max_weight)} "
                    f"{self.rule_id} limit",
                    securities=tuple(names[i] for i in largest),
                    accounts=accounts,
                )
            )
        return found

    def _made(self, before: Portfolio, trades: tuple[TradeRow, ...], account: str) -> bool:
        """True when the trades make the breach or buy into it."""
        where = "" if self.scope is Scope.HOUSEHOLD else account
        if _traded(before, trades, group="security", side=Side.BUY, account=where, name=None):
            return True
        sums, _, members = _sums(before, "security", self.scope)
        owner = (
            0
            if self.scope is Scope.HOUSEHOLD
            else next((i for i, a in enumerate(before.accounts) if a.account_id == account), -1)
        )
        if owner < 0 or not members:
            return True
        row = sums.reshape(-1, members)[owner]
        return bool(-np.sort(-row)[: self.count].sum() <= self.max_weight + 1e-12)


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetClassRange(Rule):
    """An asset class between ``min_weight`` and ``max_weight`` of each account or of
    the household (the investment policy statement's range)."""

    kind: ClassVar[str] = "asset_class_range"
    PARAMS: ClassVar[dict[str, Param]] = {
        "asset_class": Param(text, Direction.FIXED, about="the asset class"),
        "min_weight": Param(fraction, Direction.HIGHER, required=False),
        "max_weight": Param(fraction, Direction.LOWER, required=False),
        "scope": SCOPE,
    }

    asset_class: str
    min_weight: float = 0.0
    max_weight: float = 1.0
    scope: Scope = Scope.ACCOUNT

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        codes, names = after.codes["asset_class"]
        if self.scope is Scope.HOUSEHOLD:
            total = 0.0
            if self.asset_class in names:
                total = float(after.household_weight[codes == names.index(self.asset_class)].sum())
            owners = [
                (
                    f"household {after.household_id}",
                    total,
                    tuple(a.account_id for a in after.accounts),
                )
            ]
        else:
            weights: Floats = np.zeros(len(after.accounts))
            if self.asset_class in names:
                mine = codes == names.index(self.asset_class)
                weights = np.bincount(
                    after.row_account[mine], after.weight[mine], len(after.accounts)
                ).astype(np.float64)
            owners = [
                (f"account {a.account_id}", float(w), (a.account_id,))
                for a, w in zip(after.accounts, weights.tolist(), strict=True)
                if a.value > ZERO
            ]
        found = []
        for where, weight, accounts in owners:
            made = partial(
                _made, before, after, trades, group="asset_class", where=self.scope,
                account=accounts[0], name=self.asset_class,
            )  # fmt: skip
            if weight > self.max_weight + 1e-12:
                limit, side = self.max_weight, "above"
                if not made(side=Side.BUY, broken=lambda w: w > self.max_weight + 1e-12):
                    continue
            elif weight < self.min_weight - 1e-12:
                limit, side = self.min_weight, "below"
                if not made(side=Side.SELL, broken=lambda w: w < self.min_weight - 1e-12):
                    continue
            else:
                continue
            found.append(
                self.found(
                    weight,
                    limit,
                    f"{self.asset_class} would be {pct(weight)} of {where}, {side} the "
                    f"{pct(limit)} {self.rule_id} limit",
                    accounts=accounts,
                )
            )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class MinimumCash(Rule):
    """Each account keeps at least ``amount`` dollars and ``fraction`` of its value
    in cash after the trades (the larger) — the cash reserve the optimiser keeps. An
    account short of it before the trades is a finding only where they spend from it."""

    kind: ClassVar[str] = "minimum_cash"
    PARAMS: ClassVar[dict[str, Param]] = {
        "amount": Param(money, Direction.HIGHER, required=False, about="dollars"),
        "fraction": Param(fraction, Direction.HIGHER, required=False, about="of the account"),
    }

    amount: Decimal = ZERO
    fraction: float = 0.0

    def reserve(self) -> CashReserve:
        """The optimiser's twin: the cash reserve an account keeps."""
        return CashReserve(amount=self.amount, fraction=Decimal(str(self.fraction)))

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        reserve = self.reserve()
        was = {a.account_id: a for a in before.accounts}
        found = []
        for a in after.accounts:
            need = reserve.required(a.value)
            if a.cash >= need:
                continue
            prior = was.get(a.account_id)
            if (
                prior is not None
                and prior.value > ZERO  # an empty before (a check of holdings): never short
                and prior.cash < reserve.required(prior.value)
                and a.cash >= prior.cash
            ):
                continue  # short before, and the trades spent none of it
            found.append(
                self.found(
                    a.cash,
                    need,
                    f"account {a.account_id} would hold {usd(a.cash)} in cash, below the "
                    f"{usd(need)} the {self.rule_id} rule keeps",
                    accounts=(a.account_id,),
                )
            )
        return found
