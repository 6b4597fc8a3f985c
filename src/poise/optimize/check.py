"""What a set of trades does to an account, and every rule it must keep.

Every method's trades pass through :func:`violations` after rounding to shares; a
method repairs what it finds, and a proposal that still breaks a rule is never
shipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.money import ZERO, cents
from poise.optimize.problem import Problem
from poise.optimize.trades import Side, Trade

__all__ = ["Costs", "Outcome", "outcome", "past_limit", "violations", "wash_sale_buys"]


@dataclass(frozen=True, slots=True)
class Costs:
    """Trading costs: half the bid-ask spread, as a fraction of value, and a commission."""

    half_spread: Decimal = Decimal("0.0005")
    commission: Decimal = ZERO

    def of(self, trade: Trade) -> Decimal:
        return cents(trade.value * self.half_spread) + self.commission


@dataclass(frozen=True, slots=True)
class Outcome:
    quantities: dict[str, Decimal]  # shares held after, by security
    cash: Decimal
    cost: Decimal


def outcome(problem: Problem, trades: Sequence[Trade], costs: Costs) -> Outcome:
    """Holdings and cash after ``trades``; cash moves in cents."""
    quantities = {h.security_id: h.quantity for h in problem.holdings}
    cash, cost = problem.cash, ZERO
    for trade in trades:
        quantities[trade.security_id] = (
            quantities.get(trade.security_id, ZERO) + trade.signed_quantity
        )
        paid = costs.of(trade)
        cost += paid
        value = cents(trade.value)
        cash += (value if trade.side is Side.SELL else -value) - paid
    return Outcome(quantities, cash, cost)


def violations(problem: Problem, trades: Sequence[Trade], costs: Costs) -> list[str]:
    """Every rule the trades break, in words; an empty list when they keep them all."""
    found: list[str] = []
    held = {h.security_id: h for h in problem.holdings}
    relieved: dict[str, Decimal] = defaultdict(Decimal)
    for trade in trades:
        name = trade.security_id
        holding = held.get(name)
        if holding is None:
            found.append(f"{name}: not part of the problem")
            continue
        if not holding.security.trading.allows(trade.quantity):
            found.append(f"{name}: {trade.quantity} is not a tradable quantity")
        if trade.side is Side.BUY and holding.no_buy:
            found.append(f"{name}: bought, but {holding.no_buy}")
        if trade.side is Side.SELL:
            if holding.no_sell:
                found.append(f"{name}: sold, but {holding.no_sell}")
            if sum((lot.quantity for lot in trade.lots), ZERO) != trade.quantity:
                found.append(f"{name}: the lots relieved do not add up to the sale")
            lots = {lot.lot_id: lot for lot in holding.lots}
            for sale in trade.lots:
                relieved[sale.lot_id] += sale.quantity
                lot = lots.get(sale.lot_id)
                if lot is None:
                    found.append(f"{name}: lot {sale.lot_id} is not an open lot")
                elif relieved[sale.lot_id] > lot.quantity:
                    found.append(f"{name}: lot {sale.lot_id} sold beyond its {lot.quantity} shares")
                if sale.gain < ZERO and holding.no_loss_sale:
                    found.append(
                        f"{name}: lot {sale.lot_id} sold at a loss, but {holding.no_loss_sale}"
                    )
    found += _wash_sales(problem, trades)
    bought = {t.security_id for t in trades if t.side is Side.BUY}
    found += [
        f"{name}: bought and sold in one proposal"
        for name in sorted(bought & {t.security_id for t in trades if t.side is Side.SELL})
    ]
    after = outcome(problem, trades, costs)
    found += [
        f"{name}: short {-q} shares" for name, q in sorted(after.quantities.items()) if q < ZERO
    ]
    if after.cash < problem.reserve and after.cash < problem.cash:
        found.append(f"cash {after.cash} ends below the {problem.reserve} that must remain")
    return found


def wash_sale_buys(problem: Problem, trades: Sequence[Trade]) -> set[str]:
    """Securities bought in a proposal that sells a substantially identical one's lot at
    a loss: the loss would be disallowed (IRS Publication 550, wash sales). None in an
    IRA or a Roth: a loss there is no loss to the tax law, so nothing is washed."""
    if not problem.account.registration.taxable:
        return set()
    identity = {h.security_id: h.security.wash_sale_identity for h in problem.holdings}
    losing = {
        identity.get(t.security_id)
        for t in trades
        if t.side is Side.SELL and any(sale.gain < ZERO for sale in t.lots)
    }
    return {
        t.security_id
        for t in trades
        if t.side is Side.BUY and identity.get(t.security_id) in losing
    }


def _wash_sales(problem: Problem, trades: Sequence[Trade]) -> list[str]:
    return [
        f"{name}: bought in the proposal that sells a lot of it at a loss (wash sale)"
        for name in sorted(wash_sale_buys(problem, trades))
    ]


def past_limit(problem: Problem, trades: Sequence[Trade], costs: Costs) -> dict[str, Decimal]:
    """The securities ``trades`` buy past their largest weight (:attr:`Holding.most`)
    in the account after them, exactly — each with how many shares too many."""
    bought = {t.security_id for t in trades if t.side is Side.BUY}
    capped = [h for h in problem.holdings if h.most is not None and h.security_id in bought]
    if not capped:
        return {}
    after = outcome(problem, trades, costs)
    price = {h.security_id: h.price for h in problem.holdings}
    total = after.cash + sum((q * price[s] for s, q in after.quantities.items()), ZERO)
    over = {}
    for h in capped:
        excess = after.quantities[h.security_id] * h.price - (h.most or ZERO) * total
        if excess > ZERO:
            over[h.security_id] = excess / h.price
    return over
