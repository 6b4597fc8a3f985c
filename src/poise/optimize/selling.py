"""Selling, shared by every method: which lots a sale relieves, and how a shortfall of
cash is raised.

- **Which lots.** A sale relieves the lots that cost least in tax for each share sold,
  at the account's own rates (:func:`tax_order`): each lot's gain a share (its
  adjusted basis and holding start where a wash sale adjusted them) times the rate of
  its term — federal short-term or long-term plus state. A loss lot comes first, its
  tax being negative (the largest saving first); a long-term lot with a large gain
  can go after a short-term lot with a small one. In an account whose gains are not
  taxed (an IRA, a Roth), or at an equal tax, the highest basis goes first, then the
  oldest lot.
- **Raising cash** (:func:`raise_cash`): cash that must remain — the reserve plus the
  withdrawals asked for — is met before anything is bought. Overweight positions are
  sold first, the most overweight first, down to their targets; then the lot that
  costs least in tax for a dollar raised, whichever position it is in. What cannot be
  raised is said in the proposal's ``binding``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents
from poise.domain.relief import Method, is_long_term, relieve
from poise.optimize import grid
from poise.optimize.check import Costs, outcome
from poise.optimize.problem import Holding, Problem
from poise.optimize.trades import LotSale, Side, Trade, TradeReason

__all__ = ["lot_tax", "raise_cash", "sell", "sell_lots", "tax_order"]


def lot_tax(problem: Problem, lot: TaxLot, price: Decimal) -> Decimal:
    """The tax of selling one share of ``lot`` at ``price`` today (negative for a loss)."""
    long = is_long_term(lot.held_since, problem.today)
    return (price - lot.basis_per_share) * (problem.long_rate if long else problem.short_rate)


def tax_order(problem: Problem, holding: Holding) -> list[TaxLot]:
    """The lots of ``holding`` that may be sold, cheapest in tax a share first; at an
    equal tax (always, where gains are not taxed) the highest basis, then the oldest.
    A loss lot inside its wash-sale window may not be sold and is left out."""

    def key(lot: TaxLot) -> tuple[Decimal, Decimal, object, str]:
        tax = lot_tax(problem, lot, holding.price)
        return (tax, -lot.basis_per_share, lot.acquired, lot.lot_id)

    lots = [lot for lot in holding.lots if lot.quantity > ZERO]
    if holding.no_loss_sale:  # no loss sale inside the wash-sale window
        lots = [lot for lot in lots if lot.basis_per_share <= holding.price]
    return sorted(lots, key=key)


def sell(
    holding: Holding, quantity: Decimal, *, problem: Problem, reason: TradeReason
) -> Trade | None:
    """Sell up to ``quantity`` shares, cheapest lots in tax first; ``None`` if nothing can go."""
    lots = tax_order(problem, holding)
    quantity = min(quantity, sum((lot.quantity for lot in lots), ZERO))
    quantity = grid.down(holding.security.trading, quantity)
    if quantity <= ZERO:
        return None
    chosen: dict[str, Decimal] = {}
    left = quantity
    for lot in lots:
        if left <= ZERO:
            break
        take = min(left, lot.quantity)
        chosen[lot.lot_id] = take
        left -= take
    return sell_lots(holding, chosen, problem=problem, reason=reason)


def sell_lots(
    holding: Holding, chosen: dict[str, Decimal], *, problem: Problem, reason: TradeReason
) -> Trade:
    """Sell the shares ``chosen`` of each named lot (specific identification); the
    quantity is written on the security's grid."""
    total = grid.canonical(holding.security.trading, sum(chosen.values(), ZERO))
    result = relieve(
        list(holding.lots),
        total,
        method=Method.SPECIFIC,
        price=holding.price,
        sold=problem.today,
        specific=chosen,
    )
    return Trade(
        security_id=holding.security_id,
        side=Side.SELL,
        quantity=total,
        price=holding.price,
        reason=reason,
        lots=tuple(
            LotSale(r.lot_id, r.quantity, r.basis, r.proceeds, r.term) for r in result.reliefs
        ),
    )


def _next_lot(problem: Problem, holding: Holding, sold: Decimal) -> tuple[TaxLot, Decimal] | None:
    """The lot the next share of ``holding`` would come from, and how much of it is left."""
    for lot in tax_order(problem, holding):
        if sold < lot.quantity:
            return lot, lot.quantity - sold
        sold -= lot.quantity
    return None


def raise_cash(
    problem: Problem,
    trades: Sequence[Trade],
    costs: Costs,
    binding: list[str],
    *,
    closed: Collection[str] = (),
    reason: TradeReason = TradeReason.CASH_NEED,
    smallest: Decimal = ZERO,
) -> list[Trade]:
    """``trades`` with more sold until cash ends at what must remain (the reserve plus
    the withdrawals asked for): overweight positions first, down to their targets,
    then the cheapest lots in tax for a dollar raised. Securities in ``closed`` (those
    the trades buy) are not sold. A sale is never smaller than ``smallest`` dollars
    (the method's minimum trade): a need below it is met by a sale of the minimum, and
    cash ends a little above what must remain. What cannot be raised is said in
    ``binding``."""

    buys = [t for t in trades if t.side is Side.BUY]
    sales = {t.security_id: t for t in trades if t.side is Side.SELL}

    def short() -> Decimal:
        return problem.reserve - outcome(problem, [*sales.values(), *buys], costs).cash

    if short() <= ZERO:
        return list(trades)
    value = problem.value
    sellable = [
        h
        for h in problem.holdings
        if h.quantity > ZERO and not h.no_sell and h.security_id not in closed
    ]

    def sold(h: Holding) -> Decimal:
        return sales[h.security_id].quantity if h.security_id in sales else ZERO

    def sell_up_to(h: Holding, shares: Decimal) -> bool:
        """Sell ``shares`` of ``h`` in all; whether the sale grew."""
        before = sales.get(h.security_id)
        trade = sell(h, shares, problem=problem, reason=before.reason if before else reason)
        if trade is None or (before is not None and trade.quantity <= before.quantity):
            return False
        sales[h.security_id] = trade
        return True

    def step_past(h: Holding, dollars: Decimal) -> Decimal:
        """Shares worth ``dollars`` gross of costs, and one grid step more — or, for a
        security not sold yet, worth at least the smallest trade."""
        trading = h.security.trading
        if h.security_id not in sales:
            dollars = max(dollars, smallest)
        return grid.down(trading, dollars * (1 + costs.half_spread) / h.price) + trading.step

    def overweight(h: Holding) -> Decimal:
        return (h.quantity - sold(h)) * h.price - h.target * value

    for h in sorted(sellable, key=lambda h: -overweight(h) / value):
        need, over = short(), overweight(h)
        if need <= ZERO or over <= ZERO:
            break
        more = min(step_past(h, need), grid.down(h.security.trading, over / h.price))
        if more > ZERO and (h.security_id in sales or more * h.price >= smallest):
            sell_up_to(h, sold(h) + more)

    for _ in range(sum(len(h.lots) for h in sellable) + len(sellable) + 1):
        need = short()
        if need <= ZERO:
            break
        options = []
        for h in sellable:
            found = _next_lot(problem, h, sold(h))
            if found is not None:
                tax = lot_tax(problem, found[0], h.price) / h.price if h.price else ZERO
                options.append((tax, h.security_id, h, found[1]))
        if not options:
            break
        _, _, h, left = min(options, key=lambda o: (o[0], o[1]))
        if not sell_up_to(h, sold(h) + min(left, step_past(h, need))):
            sellable.remove(h)  # the grid allows no more of it
    if short() > ZERO and not any(b.startswith("short by ") for b in binding):
        binding.append(f"short by {cents(short())}: nothing more may be sold")
    kept = [sales.pop(t.security_id) if t.side is Side.SELL else t for t in trades]
    return [*kept, *sales.values()]
