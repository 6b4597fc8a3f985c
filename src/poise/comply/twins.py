"""The optimiser's side of the rules: what the engine is asked to respect, taken from
the very rule objects that check its proposals, so the two cannot drift apart.

The engine takes its limits in three places today, and each twin speaks its terms:

* an account's :class:`~poise.domain.accounts.Restrictions` (do not buy, do not sell,
  excluded tags) and :class:`~poise.domain.accounts.CashReserve`, which
  ``build_problem`` reads — from the restricted-list rules, the client's exclusions,
  must-hold (not sold) and minimum cash (:func:`account_terms`);
* the method's :class:`~poise.optimize.tax_aware.OptimizeSettings` — the tax budget,
  the turnover limit and the smallest trade (:func:`settings`); the strictest rule
  wins, and a limit already stricter in the settings stands;
* a problem's holdings, each with the largest weight buying may take it to — the
  single-security limit's twin (:func:`problem_terms`): the engine plans its buys
  within it and cuts, after rounding, any that would pass it in the account after
  the trades; a security already at its limit is not bought at all.

A household tax budget or turnover limit has no one-account twin: a turnover limit
binds each account too (none may trade more than all may), a household tax budget
does not, and stays a check only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal

from poise.comply.rules import Rule
from poise.comply.rules.base import Scope
from poise.comply.rules.concentration import MinimumCash, SecurityWeight
from poise.comply.rules.restricted import DoNotBuy, DoNotSell, ExcludedTags, MustHold
from poise.comply.rules.suitability import ClientExclusions
from poise.comply.rules.tax import TaxBudget
from poise.comply.rules.trading import MinimumTrade, Turnover
from poise.comply.views import Client
from poise.domain.accounts import Account, CashReserve, Restrictions
from poise.optimize.problem import Problem
from poise.optimize.tax_aware import OptimizeSettings

__all__ = ["account_terms", "problem_terms", "settings"]


def _union(a: Restrictions, b: Restrictions) -> Restrictions:
    return Restrictions(
        do_not_buy=a.do_not_buy | b.do_not_buy,
        do_not_sell=a.do_not_sell | b.do_not_sell,
        excluded_tags=a.excluded_tags | b.excluded_tags,
    )


def account_terms(rules: Iterable[Rule], account: Account, client: Client | None = None) -> Account:
    """``account`` with the restrictions and the cash reserve the rules ask of it (its
    own kept too): what ``build_problem`` makes its problem from."""
    restrictions = account.restrictions
    reserve = account.reserve
    for rule in rules:
        if isinstance(rule, DoNotBuy | DoNotSell | ExcludedTags | MustHold):
            restrictions = _union(restrictions, rule.restrictions(account.account_id))
        elif isinstance(rule, ClientExclusions) and client is not None:
            restrictions = _union(restrictions, rule.restrictions(client))
        elif isinstance(rule, MinimumCash):
            twin = rule.reserve()
            reserve = CashReserve(
                amount=max(reserve.amount, twin.amount),
                fraction=max(reserve.fraction, twin.fraction),
            )
    return replace(account, restrictions=restrictions, reserve=reserve)


def _least(*values: Decimal | None) -> Decimal | None:
    given = [v for v in values if v is not None]
    return min(given) if given else None


def settings(rules: Iterable[Rule], base: OptimizeSettings) -> OptimizeSettings:
    """``base`` with the tax budget, turnover limit and smallest trade the rules ask
    for, the strictest of each."""
    found = base
    for rule in rules:
        if isinstance(rule, TaxBudget):
            found = replace(found, tax_budget=_least(found.tax_budget, rule.tax_budget()))
        elif isinstance(rule, Turnover):
            limit = rule.settings()["max_turnover"]
            found = replace(found, max_turnover=_least(found.max_turnover, limit))
        elif isinstance(rule, MinimumTrade):
            twin = rule.settings()
            found = replace(
                found,
                min_trade=max(found.min_trade, twin["min_trade"]),
                min_trade_fraction=max(found.min_trade_fraction, twin["min_trade_fraction"]),
            )
    return found


def problem_terms(rules: Iterable[Rule], problem: Problem) -> Problem:
    """``problem`` with each holding's largest weight from the account-scoped
    single-security limits (the strictest that does not spare it): the engine buys no
    security past it; one at or above it already is not bought at all."""
    limits = [r for r in rules if isinstance(r, SecurityWeight) and r.scope is Scope.ACCOUNT]
    if not limits or problem.value <= 0:
        return problem
    value = problem.value
    holdings = []
    for h in problem.holdings:
        mine = [r for r in limits if h.security_id not in r.exempt]
        if not mine:
            holdings.append(h)
            continue
        rule = min(mine, key=lambda r: r.max_weight)
        most = Decimal(str(rule.max_weight))
        if h.most is not None and h.most <= most:
            holdings.append(h)
            continue
        capped = replace(h, most=most, most_why=f"the {rule.rule_id} limit")
        if h.value / value >= most and not h.no_buy:
            capped = replace(capped, no_buy=f"at the {rule.rule_id} limit")
        holdings.append(capped)
    return replace(problem, holdings=tuple(holdings))
