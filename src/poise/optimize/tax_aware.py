"""The ``optimize`` method: full tax-aware optimisation of one account.

Minimise, over shares bought of each security and shares sold of each lot::

    risk · tracking error  +  tax · estimated tax  +  cost · trading cost

all in fractions of the account's value, with the weights the user sets (by default
1, 1, 1: paying 1% of the account in tax is worth removing 1 point of annual tracking
error). Tracking error is ``‖L (w − t)‖`` with ``L Lᵀ`` the risk model's covariance
(:mod:`poise.optimize.risk`); tax is lot by lot, each lot's gain at the rate of its
term, so a loss lot earns a benefit — that is loss harvesting; cost is half the
spread on what is traded. Subject to: cash after trades at least what must remain;
no short position (a lot is never sold beyond what it holds); do-not-buy,
do-not-sell and excluded tags; the wash-sale windows; a maximum turnover; a tax
budget (the most net realised gain allowed, possibly 0).

A loss sale and a buy of the same (substantially identical) security in one proposal
would be a wash sale: when the first solution has both, the buy is forbidden and the
problem solved again — the exposure then comes back through the security's
replacement candidates, which the problem includes.

The continuous solution (Clarabel, through cvxpy) is rounded down to each security's
grid, lot by lot. In an account of up to ``IMPROVE_UP_TO`` securities, a heuristic
then adds grid steps one at a time — a share bought, a share sold from the lot
cheapest in tax, or one of each — while that lowers the objective (a share can be a
point of a small account). The result is checked against every rule like any method's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

import cvxpy as cp
import numpy as np
import numpy.typing as npt

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO
from poise.domain.relief import Method, is_long_term, relieve
from poise.optimize.bands import repair, summarise
from poise.optimize.check import Costs, violations
from poise.optimize.problem import Problem
from poise.optimize.trades import LotSale, Proposal, Side, Trade, TradeReason

__all__ = [
    "OptimizeSettings",
    "objective",
    "rebalance_optimize",
    "tracking_error",
    "with_tracking",
]

Floats = npt.NDArray[np.float64]
IMPROVE_UP_TO = 40  # securities: the rounding heuristic runs on accounts this small
IMPROVE_STEPS = 200  # grid steps it may add


@dataclass(frozen=True, slots=True)
class OptimizeSettings:
    risk: float = 1.0  # weight of tracking error
    tax: float = 1.0  # weight of estimated tax
    cost: float = 1.0  # weight of trading cost
    costs: Costs = field(default_factory=Costs)
    max_turnover: Decimal | None = None  # of the account's value
    tax_budget: Decimal | None = None  # the most net realised gain, in dollars
    min_trade: Decimal = ZERO  # smallest trade, in dollars
    min_trade_fraction: Decimal = ZERO  # smallest trade, as a fraction of the account
    harvest_only: bool = False  # sell only lots at a loss (and buy to keep exposure)


@dataclass(frozen=True, slots=True)
class _Arrays:
    """The problem as floats for the solver — the one boundary where Decimal ends."""

    price: Floats  # (n,)
    held: Floats  # (n,)
    target: Floats  # (n,)
    lot_of: npt.NDArray[np.int64]  # (L,) security index of each lot
    lot_quantity: Floats  # (L,)
    lot_gain: Floats  # (L,) gain a share at today's price
    lot_rate: Floats  # (L,) tax rate of the lot's term
    no_buy: npt.NDArray[np.bool_]  # (n,)
    no_sell_lot: npt.NDArray[np.bool_]  # (L,)


def _arrays(problem: Problem) -> _Arrays:
    lots = [(i, lot) for i, h in enumerate(problem.holdings) for lot in h.lots]
    holdings = problem.holdings
    return _Arrays(
        price=np.array([float(h.price) for h in holdings]),
        held=np.array([float(h.quantity) for h in holdings]),
        target=np.array([float(h.target) for h in holdings]),
        lot_of=np.array([i for i, _ in lots], dtype=np.int64),
        lot_quantity=np.array([float(lot.quantity) for _, lot in lots]),
        lot_gain=np.array([float(holdings[i].price - lot.basis_per_share) for i, lot in lots]),
        lot_rate=np.array(
            [
                float(
                    problem.long_rate
                    if is_long_term(lot.held_since, problem.today)
                    else problem.short_rate
                )
                for _, lot in lots
            ]
        ),
        no_buy=np.array([bool(h.no_buy) for h in holdings]),
        no_sell_lot=np.array(
            [
                bool(holdings[i].no_sell)
                or (bool(holdings[i].no_loss_sale) and lot.basis_per_share > holdings[i].price)
                for i, lot in lots
            ]
        ),
    )


def _solve(
    problem: Problem,
    a: _Arrays,
    factor: Floats,
    settings: OptimizeSettings,
    forbid_buy: npt.NDArray[np.bool_],
) -> tuple[Floats, Floats] | None:
    """Shares to buy per security and to sell per lot, continuous; None if infeasible."""
    n, lots = len(a.price), len(a.lot_quantity)
    value = float(problem.value)
    half = float(settings.costs.half_spread)
    buy = cp.Variable(n, nonneg=True)
    sell = cp.Variable(lots, nonneg=True) if lots else None
    sold = np.zeros((n, lots))
    if lots:
        sold[a.lot_of, np.arange(lots)] = 1.0
    sold_shares = sold @ sell if sell is not None else np.zeros(n)
    after = a.held + buy - sold_shares
    weight = cp.multiply(after, a.price) / value
    traded = a.price @ buy + (a.price @ sold_shares if sell is not None else 0)
    cost = half * traded
    cash_after = (
        float(problem.cash)
        + (a.price @ sold_shares if sell is not None else 0)
        - a.price @ buy
        - cost
    )
    tax = cp.multiply(a.lot_gain * a.lot_rate, sell).sum() if sell is not None else 0
    objective = (
        settings.risk * cp.norm(factor @ (weight - a.target))
        + settings.tax * tax / value
        + settings.cost * cost / value
    )
    constraints = [buy[forbid_buy | a.no_buy] == 0] if (forbid_buy | a.no_buy).any() else []
    if sell is not None:
        constraints.append(sell <= a.lot_quantity)
        if a.no_sell_lot.any():
            constraints.append(sell[a.no_sell_lot] == 0)
        if settings.tax_budget is not None:
            constraints.append(a.lot_gain @ sell <= float(settings.tax_budget))
    constraints.append(cash_after >= min(float(problem.reserve), float(problem.cash)))
    if settings.max_turnover is not None:
        constraints.append(traded <= float(settings.max_turnover) * value)
    solved = cp.Problem(cp.Minimize(objective), constraints)
    try:
        solved.solve(solver=cp.CLARABEL)
    except cp.SolverError:
        return None
    if solved.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or buy.value is None:
        return None
    sells = (
        np.clip(sell.value, 0, None) if sell is not None and sell.value is not None else np.zeros(0)
    )
    return np.clip(buy.value, 0, None), sells


def _shares(solved: float) -> Decimal:
    """A solver's share count as a Decimal, to four places: 99.99999 shares are 100,
    not 99 — an interior-point solver's last digits are noise, not a decision."""
    return Decimal(str(round(float(solved), 4)))


Choice = tuple[dict[int, Decimal], dict[int, Decimal]]  # shares to buy by security, to sell by lot


def _round(problem: Problem, a: _Arrays, buys: Floats, sells: Floats) -> Choice:
    """The solution rounded down to each security's grid, lot by lot."""
    lots = _lots(problem)
    sell: dict[int, Decimal] = {}
    for k, (i, lot) in enumerate(lots):
        shares = min(
            problem.holdings[i].security.trading.round_down(_shares(sells[k])), lot.quantity
        )
        if shares > ZERO:
            sell[k] = shares
    buy: dict[int, Decimal] = {}
    for i, h in enumerate(problem.holdings):
        shares = h.security.trading.round_down(_shares(buys[i]))
        if shares > ZERO:
            buy[i] = shares
    return buy, sell


def _lots(problem: Problem) -> list[tuple[int, TaxLot]]:
    return [(i, lot) for i, h in enumerate(problem.holdings) for lot in h.lots]


def _trades(problem: Problem, choice: Choice) -> list[Trade]:
    """Trades for a choice, each sale with its lots, each trade with its reason."""
    buy, sell = choice
    lots = _lots(problem)
    per_security: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for k, shares in sell.items():
        i, lot = lots[k]
        per_security[i][lot.lot_id] = shares
    taxed = problem.short_rate + problem.long_rate > 0
    trades: list[Trade] = []
    for i, chosen in sorted(per_security.items()):
        h = problem.holdings[i]
        total = sum(chosen.values(), ZERO)
        relief = relieve(
            list(h.lots),
            total,
            method=Method.SPECIFIC,
            price=h.price,
            sold=problem.today,
            specific=chosen,
        )
        sales = tuple(
            LotSale(r.lot_id, r.quantity, r.basis, r.proceeds, r.term) for r in relief.reliefs
        )
        harvest = taxed and all(sale.gain < ZERO for sale in sales)
        reason = TradeReason.HARVEST if harvest else TradeReason.DRIFT
        trades.append(Trade(h.security_id, Side.SELL, total, h.price, reason, sales))
    for i, shares in sorted(buy.items()):
        h = problem.holdings[i]
        reason = TradeReason.REPLACEMENT if h.target == ZERO else TradeReason.DRIFT
        trades.append(Trade(h.security_id, Side.BUY, shares, h.price, reason))
    return trades


def _allowed(problem: Problem, trades: list[Trade], settings: OptimizeSettings) -> bool:
    if violations(problem, trades, settings.costs):
        return False
    gains = sum((sale.gain for t in trades for sale in t.lots), ZERO)
    if settings.tax_budget is not None and gains > settings.tax_budget:
        return False
    turnover = sum((t.value for t in trades), ZERO)
    return settings.max_turnover is None or turnover <= settings.max_turnover * problem.value


def _improve(
    problem: Problem,
    choice: Choice,
    covariance: Floats,
    settings: OptimizeSettings,
    forbid: npt.NDArray[np.bool_],
) -> Choice:
    """The rounding heuristic: from the rounded-down solution, add one grid step at a
    time — a share more bought, or a share more sold from the lot cheapest in tax — while
    that lowers the objective and every rule still holds. Whole shares matter most in
    small accounts, where one share can be a point of weight."""
    lots = _lots(problem)
    best = objective(problem, _trades(problem, choice), covariance, settings)
    for _ in range(IMPROVE_STEPS):
        buy, sell = choice
        options: list[Choice] = []
        for i, h in enumerate(problem.holdings):
            step = h.security.trading.step
            if not (h.no_buy or forbid[i]):
                options.append(({**buy, i: buy.get(i, ZERO) + step}, sell))
            room = [
                k
                for k, (j, lot) in enumerate(lots)
                if j == i and sell.get(k, ZERO) + step <= lot.quantity
            ]
            if room and not h.no_sell:
                k = min(room, key=lambda k: lots[k][1].basis_per_share * -1)
                options.append((buy, {**sell, k: sell.get(k, ZERO) + step}))
        # A buy may need the cash of a sale: try each sale with each buy too.
        sales = [o for o in options if o[0] is buy]
        buys = [o for o in options if o[1] is sell]
        options += [(b[0], s[1]) for s in sales for b in buys]
        scored = []
        for option in options:
            trades = _trades(problem, option)
            if _allowed(problem, trades, settings):
                scored.append((objective(problem, trades, covariance, settings), option))
        if not scored:
            break
        score, option = min(scored, key=lambda s: s[0])
        if score >= best - 1e-12:
            break
        best, choice = score, option
    return choice


def rebalance_optimize(
    problem: Problem, covariance: Floats, settings: OptimizeSettings | None = None
) -> Proposal:
    """The tax-aware optimum for ``problem``; ``covariance`` is aligned with its holdings."""
    settings = settings or OptimizeSettings()
    binding: list[str] = []
    if problem.value <= ZERO or not problem.holdings:
        return summarise(
            problem, [], method="optimize", costs=settings.costs, binding=["empty account"]
        )
    a = _arrays(problem)
    factor = np.asarray(
        np.linalg.cholesky(covariance + 1e-12 * np.eye(len(a.price))).T, dtype=np.float64
    )
    forbid = np.zeros(len(a.price), dtype=bool)
    identity = [h.security.wash_sale_identity for h in problem.holdings]
    solution = None
    for _ in range(len(a.price) + 1):
        solution = _solve(problem, a, factor, settings, forbid)
        if solution is None:
            break
        buys, sells = solution
        losing = {
            identity[int(a.lot_of[k])] for k in np.flatnonzero((sells > 1e-9) & (a.lot_gain < 0))
        }
        clash = (
            np.array([identity[i] in losing for i in range(len(a.price))]) & (buys > 1e-9) & ~forbid
        )
        if not clash.any():
            break
        forbid |= clash  # harvest wins; replacements keep the exposure
    if solution is None:
        binding.append("no trades satisfy every constraint (the tax budget, turnover or cash)")
        return summarise(problem, [], method="optimize", costs=settings.costs, binding=binding)
    choice = _round(problem, a, *solution)
    if len(problem.holdings) <= IMPROVE_UP_TO:
        choice = _improve(problem, choice, covariance, settings, forbid)
    trades = [t for t in _trades(problem, choice) if t.value >= settings.min_trade]
    trades = repair(problem, trades, settings.costs)
    left = violations(problem, trades, settings.costs)
    if left:  # never ship a broken proposal
        return summarise(
            problem, [], method="optimize", costs=settings.costs, binding=[*binding, *left]
        )
    return summarise(problem, trades, method="optimize", costs=settings.costs, binding=binding)


def objective(
    problem: Problem,
    trades: list[Trade] | tuple[Trade, ...],
    covariance: Floats,
    settings: OptimizeSettings | None = None,
) -> float:
    """The ``optimize`` objective of any set of trades: risk · tracking error after +
    tax · estimated tax + cost · trading cost, as fractions of the account. One
    function, so methods (and other engines) are compared on the same footing."""
    settings = settings or OptimizeSettings()
    value = float(problem.value)
    if value <= 0:
        return 0.0
    shares = {h.security_id: float(h.quantity) for h in problem.holdings}
    tax = 0.0
    for trade in trades:
        shares[trade.security_id] += float(trade.signed_quantity)
        for sale in trade.lots:
            lot = next(
                lot for lot in problem.holding(trade.security_id).lots if lot.lot_id == sale.lot_id
            )
            rate = (
                problem.long_rate
                if is_long_term(lot.held_since, problem.today)
                else problem.short_rate
            )
            tax += float(sale.gain * rate)
    tracking = _tracking(problem, shares, covariance)
    cost = sum(float(settings.costs.of(t)) for t in trades)
    return settings.risk * tracking + settings.tax * tax / value + settings.cost * cost / value


def _tracking(problem: Problem, shares: dict[str, float], covariance: Floats) -> float:
    value = float(problem.value)
    if value <= 0:
        return 0.0
    weight = np.array([shares[h.security_id] * float(h.price) for h in problem.holdings]) / value
    gap = weight - np.array([float(h.target) for h in problem.holdings])
    return float(np.sqrt(max(gap @ covariance @ gap, 0.0)))


def tracking_error(
    problem: Problem, trades: list[Trade] | tuple[Trade, ...], covariance: Floats
) -> Decimal:
    """Annual tracking error to the model after ``trades`` (none: as it stands), as a
    fraction to four places; ``covariance`` is aligned with the problem's holdings."""
    shares = {h.security_id: float(h.quantity) for h in problem.holdings}
    for trade in trades:
        shares[trade.security_id] += float(trade.signed_quantity)
    return Decimal(f"{_tracking(problem, shares, covariance):.4f}")


def with_tracking(problem: Problem, proposal: Proposal, covariance: Floats) -> Proposal:
    """``proposal`` with its tracking error before and after, whatever method made it."""
    return replace(
        proposal,
        tracking_before=tracking_error(problem, (), covariance),
        tracking_after=tracking_error(problem, proposal.trades, covariance),
    )
