"""The ``cash`` method: put excess cash to work, or raise what is needed, touching as
little as possible.

- **Cash needed** (below the reserve plus the withdrawals asked for): sell the most
  overweight positions first, down to their targets; if that is not enough, go on
  selling the lot that costs least in tax for a dollar raised at the account's own
  rates, whichever position it is in (a loss lot before any gain; see
  :mod:`poise.optimize.selling`).
- **Cash to invest** (above the larger of the model's cash target and what must
  remain): buy the most underweight positions first, each up to its target, until the
  cash is spent.

Quantities are rounded to each security's grid and checked like every method's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from poise.domain.money import ZERO, cents
from poise.optimize import grid
from poise.optimize.bands import finish
from poise.optimize.check import Costs
from poise.optimize.problem import Problem
from poise.optimize.selling import raise_cash
from poise.optimize.trades import Proposal, Side, Trade, TradeReason

__all__ = ["CashSettings", "rebalance_cash"]


@dataclass(frozen=True, slots=True)
class CashSettings:
    costs: Costs = field(default_factory=Costs)
    min_trade: Decimal = ZERO  # smallest trade, in dollars


def _invest(
    problem: Problem, spare: Decimal, settings: CashSettings, binding: list[str]
) -> list[Trade]:
    """Buy the most underweight positions first, each up to its target."""
    value, trades = problem.value, []
    for h in sorted(problem.holdings, key=lambda h: h.value / value - h.target):
        under = h.target * value - h.value
        if spare <= ZERO or under <= ZERO:
            break
        if h.no_buy:
            binding.append(f"{h.security_id} is underweight but {h.no_buy}")
            continue
        amount = min(under, spare / (1 + settings.costs.half_spread))
        quantity = grid.down(h.security.trading, amount / h.price)
        if quantity > ZERO and quantity * h.price >= settings.min_trade:
            trade = Trade(h.security_id, Side.BUY, quantity, h.price, TradeReason.CASH_INVEST)
            trades.append(trade)
            spare -= cents(trade.value) + settings.costs.of(trade)
    return trades


def rebalance_cash(problem: Problem, settings: CashSettings | None = None) -> Proposal:
    """Raise the cash that is needed, or invest the cash that is spare; see the docstring."""
    settings = settings or CashSettings()
    binding: list[str] = []
    value = problem.value
    keep = max(problem.reserve, cents(problem.cash_target * value))
    if problem.cash < problem.reserve:
        trades = raise_cash(problem, [], settings.costs, binding, smallest=settings.min_trade)
    elif problem.cash > keep:
        trades = _invest(problem, problem.cash - keep, settings, binding)
    else:
        trades = []
    return finish(
        problem,
        trades,
        method="cash",
        costs=settings.costs,
        binding=binding,
        smallest=settings.min_trade,
    )
