"""The ``bands`` method: trade only what is outside its band, back to target.

1. Every position above its band is sold back to its target (or to the band's upper
   edge, with ``to_edge``), relieving the lots that cost least in tax a share first at
   the account's own rates, a loss first (:func:`poise.optimize.selling.tax_order`).
   A lot that may not be sold at a loss (a substantially identical purchase in the
   last 30 days) is left.
2. When cash would still end below what must remain (the reserve plus the
   withdrawals asked for), more is sold first — overweight positions down to their
   targets, then the cheapest lots in tax (:func:`poise.optimize.selling.raise_cash`).
3. Every position below its band is bought back to target (or to its lower edge) with
   the cash there is — cash on hand plus what the sales raise, less costs and less
   what must remain (the reserve and the withdrawals asked for). When that is not
   enough, every buy is scaled down alike.
4. Quantities are rounded down to what each security allows, trades below the minimum
   size are dropped, and the result is checked against every rule.

What stopped the method — a restriction, the reserve, a wash-sale window — is said
in the proposal's ``binding``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from decimal import Decimal

from poise.domain.money import ZERO, cents
from poise.domain.relief import Term
from poise.optimize import grid
from poise.optimize.check import Costs, outcome, past_limit, violations, wash_sale_buys
from poise.optimize.problem import Holding, Problem
from poise.optimize.selling import raise_cash, sell, sell_lots
from poise.optimize.trades import Proposal, Side, Trade, TradeReason

__all__ = [
    "BandSettings",
    "finish",
    "rebalance_bands",
    "repair",
    "sell",
    "sell_lots",
    "settle",
    "summarise",
]


@dataclass(frozen=True, slots=True)
class BandSettings:
    to_edge: bool = False  # trade to the band's edge instead of the target
    costs: Costs = field(default_factory=Costs)
    min_trade: Decimal = ZERO  # smallest trade, in dollars
    min_trade_fraction: Decimal = ZERO  # smallest trade, as a fraction of the account


def _drift(problem: Problem, quantities: dict[str, Decimal], cash: Decimal) -> Decimal:
    value = cash + sum((quantities[h.security_id] * h.price for h in problem.holdings), ZERO)
    if value <= ZERO:
        return ZERO
    return max(
        (abs(quantities[h.security_id] * h.price / value - h.target) for h in problem.holdings),
        default=ZERO,
    )


def summarise(
    problem: Problem,
    trades: list[Trade],
    *,
    method: str,
    costs: Costs,
    binding: list[str],
) -> Proposal:
    """The proposal for ``trades``: gains, tax, cost, drift before and after."""
    after = outcome(problem, trades, costs)
    sales = [s for t in trades for s in t.lots]
    short = sum((s.gain for s in sales if s.term is Term.SHORT), ZERO)
    long = sum((s.gain for s in sales if s.term is Term.LONG), ZERO)
    before = {h.security_id: h.quantity for h in problem.holdings}
    return Proposal(
        account_id=problem.account.account_id,
        method=method,
        trades=tuple(trades),
        cash_before=problem.cash,
        cash_after=after.cash,
        realised_short=short,
        realised_long=long,
        estimated_tax=cents(short * problem.short_rate + long * problem.long_rate),
        cost=after.cost,
        drift_before=_drift(problem, before, problem.cash),
        drift_after=_drift(problem, after.quantities, after.cash),
        binding=tuple(binding),
    )


def _sales(problem: Problem, settings: BandSettings, binding: list[str]) -> list[Trade]:
    """Positions above their band, sold back."""
    value, trades = problem.value, []
    smallest = max(settings.min_trade, settings.min_trade_fraction * value)
    for h in problem.holdings:
        if h.band is None or h.value / value - h.target <= h.band:
            continue
        if h.no_sell:
            binding.append(f"{h.security_id} is above its band but {h.no_sell}")
            continue
        goal = h.target + (h.band if settings.to_edge else ZERO)
        shares = (h.value - goal * value) / h.price  # no weight round trip: exact digits
        trade = sell(h, shares, problem=problem, reason=TradeReason.DRIFT)
        if trade is not None and trade.value >= smallest:
            trades.append(trade)
        elif h.no_loss_sale:
            binding.append(f"{h.security_id}: its loss lots may not be sold, {h.no_loss_sale}")
    return trades


def _buys(
    problem: Problem,
    settings: BandSettings,
    available: Decimal,
    binding: list[str],
    sold: Collection[str] = (),
) -> list[Trade]:
    """Positions below their band, bought back with the cash there is; never one
    ``sold`` to raise cash (it would only pay the spread twice)."""
    value = problem.value
    smallest = max(settings.min_trade, settings.min_trade_fraction * value)
    wanted: list[tuple[Holding, Decimal]] = []
    for h in problem.holdings:
        if h.band is None or h.target - h.value / value <= h.band or h.security_id in sold:
            continue
        if h.no_buy:
            binding.append(f"{h.security_id} is below its band but {h.no_buy}")
            continue
        goal = h.target - (h.band if settings.to_edge else ZERO)
        wanted.append((h, goal * value - h.value))
    total = sum((amount for _, amount in wanted), ZERO) * (1 + settings.costs.half_spread)
    if total <= ZERO:
        return []
    scale = Decimal(1) if total <= available else max(available, ZERO) / total
    if scale < 1:
        binding.append("the cash there is, after the reserve and withdrawals, buys only part")
    trades = []
    for h, amount in wanted:
        quantity = grid.down(h.security.trading, amount * scale / h.price)
        if quantity > ZERO and quantity * h.price >= smallest:
            trades.append(Trade(h.security_id, Side.BUY, quantity, h.price, TradeReason.DRIFT))
    return trades


def repair(
    problem: Problem, trades: list[Trade], costs: Costs, smallest: Decimal = ZERO
) -> list[Trade]:
    """Trim buys, the largest first, until rounding and costs no longer leave cash
    below what must remain: nothing is bought with cash a client asked for. A buy
    trimmed below ``smallest`` (the method's minimum trade) goes."""
    trades = list(trades)
    for _ in range(4 * len(trades) + 4):
        short = problem.reserve - outcome(problem, trades, costs).cash
        if short <= ZERO and not violations(problem, trades, costs):
            break
        buys = [t for t in trades if t.side is Side.BUY]
        if short <= ZERO or not buys:
            break
        largest = max(buys, key=lambda t: t.value)
        trading = problem.holding(largest.security_id).security.trading
        cut = grid.down(trading, short / largest.price)  # and one step more, below
        left = grid.less(trading, largest.quantity, cut, trading.step)
        trades.remove(largest)
        if left > ZERO and left * largest.price >= smallest:
            trades.append(replace(largest, quantity=left))
    return trades


def within_limits(
    problem: Problem,
    trades: list[Trade],
    costs: Costs,
    binding: list[str],
    smallest: Decimal = ZERO,
) -> list[Trade]:
    """Buys cut, by whole grid steps, until none takes its security past its largest
    weight (a compliance limit's twin) in the account after the trades, exactly; a buy
    cut below ``smallest`` goes."""
    trades = list(trades)
    cut: set[str] = set()
    for _ in range(4 * len(trades) + 4):
        over = past_limit(problem, trades, costs)
        if not over:
            break
        for security_id, shares in over.items():
            buy = next(t for t in trades if t.side is Side.BUY and t.security_id == security_id)
            trading = problem.holding(security_id).security.trading
            left = grid.less(trading, buy.quantity, shares)
            trades.remove(buy)
            if left > ZERO and left * buy.price >= smallest:
                trades.append(replace(buy, quantity=left))
            cut.add(security_id)
    for security_id in sorted(cut):
        h = problem.holding(security_id)
        binding.append(f"{security_id} bought only up to {h.most_why or 'its largest weight'}")
    return trades


def settle(
    problem: Problem,
    trades: list[Trade],
    costs: Costs,
    binding: list[str],
    smallest: Decimal = ZERO,
) -> list[Trade]:
    """A method's trades made ready to check: a buy that would wash a loss sale in the
    same proposal goes (the harvest wins), and buys are trimmed until rounding and
    costs no longer leave cash short (one trimmed below ``smallest`` goes). What went
    is said in ``binding``."""
    washed = wash_sale_buys(problem, trades)
    if washed:
        binding.append(f"not bought: {', '.join(sorted(washed))} (a loss sale of the same)")
        trades = [t for t in trades if not (t.side is Side.BUY and t.security_id in washed)]
    return repair(problem, trades, costs, smallest)


def finish(
    problem: Problem,
    trades: list[Trade],
    *,
    method: str,
    costs: Costs,
    binding: list[str],
    smallest: Decimal = ZERO,
) -> Proposal:
    """Every method's last step: :func:`settle`; then, if cash still ends below what
    must remain, more sold (:func:`raise_cash`; never a security the trades buy, nor
    one substantially identical, nor a sale below ``smallest``, the method's minimum
    trade); then every rule checked — a proposal that still breaks one is never
    shipped: it proposes nothing and says why."""
    limited = within_limits(problem, trades, costs, binding, smallest)
    trades = settle(problem, limited, costs, binding, smallest)
    bought = {t.security_id for t in trades if t.side is Side.BUY}
    identities = {problem.holding(s).security.wash_sale_identity for s in bought}
    closed = {
        h.security_id for h in problem.holdings if h.security.wash_sale_identity in identities
    }
    trades = raise_cash(problem, trades, costs, binding, closed=closed, smallest=smallest)
    left = violations(problem, trades, costs)
    if left:
        return summarise(problem, [], method=method, costs=costs, binding=[*binding, *left])
    return summarise(problem, trades, method=method, costs=costs, binding=binding)


def rebalance_bands(problem: Problem, settings: BandSettings | None = None) -> Proposal:
    """Trade what is outside its band back to target; see the module's docstring."""
    settings = settings or BandSettings()
    binding: list[str] = []
    if problem.value <= ZERO:
        return summarise(
            problem, [], method="bands", costs=settings.costs, binding=["empty account"]
        )
    smallest = max(settings.min_trade, settings.min_trade_fraction * problem.value)
    trades = raise_cash(
        problem, _sales(problem, settings, binding), settings.costs, binding, smallest=smallest
    )
    raised = sum((cents(t.value) - settings.costs.of(t) for t in trades), ZERO)
    available = problem.cash + raised - problem.reserve
    trades += _buys(problem, settings, available, binding, {t.security_id for t in trades})
    return finish(
        problem, trades, method="bands", costs=settings.costs, binding=binding, smallest=smallest
    )
