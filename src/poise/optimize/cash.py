"""The ``cash`` method: put excess cash to work, or raise what is needed, touching as
little as possible.

- **Cash needed** (below the reserve plus the withdrawals asked for): sell the most
  overweight positions first, down to their targets; if that is not enough, go on
  selling the lot that costs least in tax for a dollar raised, whichever position it
  is in (a loss lot before any gain, a long-term gain before a short-term one at the
  same gain, the highest basis first).
- **Cash to invest** (above the larger of the model's cash target and what must
  remain): buy the most underweight positions first, each up to its target, until the
  cash is spent.

Quantities are rounded to each security's grid and checked like every method's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents
from poise.domain.relief import BOOKING_METHODS, Method, is_long_term
from poise.optimize import grid
from poise.optimize.bands import finish, sell
from poise.optimize.check import Costs
from poise.optimize.problem import Holding, Problem
from poise.optimize.trades import Proposal, Side, Trade, TradeReason

__all__ = ["CashSettings", "rebalance_cash"]


@dataclass(frozen=True, slots=True)
class CashSettings:
    costs: Costs = field(default_factory=Costs)
    min_trade: Decimal = ZERO  # smallest trade, in dollars


def _net(trades: dict[str, Trade], costs: Costs) -> Decimal:
    return sum((cents(t.value) - costs.of(t) for t in trades.values()), ZERO)


def _next_lot(holding: Holding, sold: Decimal, problem: Problem) -> tuple[TaxLot, Decimal] | None:
    """The lot the next share of ``holding`` would come from, and how much of it is left."""
    lots = [
        lot
        for lot in holding.lots
        if not (holding.no_loss_sale and lot.basis_per_share > holding.price)
    ]
    order = BOOKING_METHODS[Method.TAX_MIN](lots, holding.price, problem.today)
    for lot in order:
        if sold < lot.quantity:
            return lot, lot.quantity - sold
        sold -= lot.quantity
    return None


def _tax_per_dollar(holding: Holding, lot: TaxLot, problem: Problem) -> Decimal:
    gain = holding.price - lot.basis_per_share
    long = is_long_term(lot.held_since, problem.today)
    return gain * (problem.long_rate if long else problem.short_rate) / holding.price


def _raise(problem: Problem, need: Decimal, costs: Costs, binding: list[str]) -> list[Trade]:
    """Sell to raise ``need`` dollars: overweights first, then the cheapest lots in tax."""
    value = problem.value
    trades: dict[str, Trade] = {}
    sellable = [h for h in problem.holdings if h.quantity > ZERO and not h.no_sell]

    def sell_up_to(h: Holding, shares: Decimal) -> None:
        trade = sell(h, shares, problem=problem, reason=TradeReason.CASH_NEED)
        if trade is not None:
            trades[h.security_id] = trade

    for h in sorted(sellable, key=lambda h: h.target - h.value / value):
        short = need - _net(trades, costs)
        over = h.value - h.target * value
        if short <= ZERO or over <= ZERO:
            break
        amount = min(over, short * (1 + costs.half_spread))
        sell_up_to(h, grid.down(h.security.trading, amount / h.price) + h.security.trading.step)

    for _ in range(sum(len(h.lots) for h in sellable) + 1):
        short = need - _net(trades, costs)
        if short <= ZERO:
            break
        options = []
        for h in sellable:
            sold = trades[h.security_id].quantity if h.security_id in trades else ZERO
            found = _next_lot(h, sold, problem)
            if found is not None:
                options.append(
                    (_tax_per_dollar(h, found[0], problem), h.security_id, h, sold, found[1])
                )
        if not options:
            break
        _, _, h, sold, left = min(options, key=lambda o: (o[0], o[1]))
        more = min(
            left,
            grid.down(h.security.trading, short * (1 + costs.half_spread) / h.price)
            + h.security.trading.step,
        )
        before = trades.get(h.security_id)
        sell_up_to(h, sold + more)
        if trades.get(h.security_id) == before:  # the grid allows no more of it
            sellable.remove(h)
    if need - _net(trades, costs) > ZERO:
        binding.append(f"short by {cents(need - _net(trades, costs))}: nothing more may be sold")
    return list(trades.values())


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
        trades = _raise(problem, problem.reserve - problem.cash, settings.costs, binding)
    elif problem.cash > keep:
        trades = _invest(problem, problem.cash - keep, settings, binding)
    else:
        trades = []
    return finish(problem, trades, method="cash", costs=settings.costs, binding=binding)
