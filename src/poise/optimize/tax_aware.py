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
budget (the most net realised gain allowed, possibly 0); optionally, every position
inside its band.

A loss sale and a buy of the same (substantially identical) security in one proposal
would be a wash sale: :mod:`poise.optimize.meetings` decides, identity by identity
and all together, whether the harvest or the position wins, and a harvest's exposure
comes back through the security's replacement candidates, which the problem includes.

The arithmetic is in :mod:`poise.optimize.program`: the continuous problem is solved
by Clarabel, called directly. Shares, not weights: the continuous optimum is rounded
to the nearest grid step, a trade below the minimum size left out and the rest solved
again, and buys trimmed when rounding leaves cash short. In a small account
(``_small``), where a share is a visible weight, two more ways to whole shares are
tried and the best of the three kept: coordinate descent over the whole-share
securities with the fractional ones solved again around them
(:mod:`poise.optimize.whole`), and the problem solved in whole grid steps by HiGHS
(mixed-integer; the minimum trade size exactly too). Either way the floats become
share counts in :mod:`poise.optimize.grid`, exactly.
Either way the result is checked against every rule like any method's, and never
shipped broken.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO
from poise.domain.relief import is_long_term, one_year_after
from poise.optimize import grid, meetings, whole
from poise.optimize.bands import finish, sell_lots, settle, summarise
from poise.optimize.check import Costs, violations
from poise.optimize.infeasible import why_nothing
from poise.optimize.problem import Holding, Problem
from poise.optimize.program import Arrays, Continuous, Limits, Weights, solve_shares
from poise.optimize.risk import RiskModel
from poise.optimize.trades import Proposal, Side, Trade, TradeReason

__all__ = [
    "OptimizeSettings",
    "Risk",
    "Settlement",
    "objective",
    "rebalance_optimize",
    "settle_household",
    "tracking_error",
    "with_tracking",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
EXACT_UP_TO = 40  # securities: accounts this small are solved exactly in shares
EXACT_LOTS_UP_TO = 200
CENT = Decimal("0.01")
EXACT_STEP = 5e-4  # ... when a grid step of the median holding is this much of the account
EXACT_GAIN = 2e-5  # of the account (0.2 bp): an answer this near the bound is not searched on
WAITING_LISTED = 5  # lots waiting to turn long-term named in a proposal; then a count
ONE_DAY = timedelta(days=1)


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
    within_bands: bool = False  # every position ends inside its band (where it can)
    long_term_wait_days: int = 31  # a short-term gain this close to long-term is charged
    exact: bool = True  # small accounts: also solve in whole shares with HiGHS (slow)


Risk = RiskModel | Floats  # a factor model, or a covariance aligned with the holdings


def _risk(problem: Problem, risk: Risk) -> RiskModel:
    ids = [h.security_id for h in problem.holdings]
    if isinstance(risk, RiskModel):
        return risk.restricted(ids)
    return RiskModel.of(ids, risk)


def _days_to_long_term(lot: TaxLot, today: date) -> int:
    """Days until a sale of ``lot`` is long-term (0 or less: it is already)."""
    return (one_year_after(lot.held_since) + ONE_DAY - today).days


def _wait_rate(problem: Problem, lot: TaxLot, window: int) -> Decimal:
    """What waiting saves on each dollar of a lot's gain, when it turns long-term within
    ``window`` days: the short-term rate less the long-term one (else nothing)."""
    if 0 < _days_to_long_term(lot, problem.today) <= window:
        return problem.short_rate - problem.long_rate
    return ZERO


def _lots(problem: Problem) -> list[tuple[int, TaxLot]]:
    return [(i, lot) for i, h in enumerate(problem.holdings) for lot in h.lots]


def _arrays(
    problem: Problem,
    risk: RiskModel,
    settings: OptimizeSettings,
    number: Mapping[str, int] | None = None,
) -> Arrays:
    """The problem in weights of the account — the one boundary where Decimal ends.
    ``number``: each wash-sale identity's number, where they are numbered across a
    household (else across the account's own)."""
    holdings, lots = problem.holdings, _lots(problem)
    value, today = problem.value, problem.today
    unit = np.array([float(h.security.trading.step * h.price / value) for h in holdings])
    gains, days, caps, worth, shut = [], [], [], [], []
    for i, lot in lots:  # one pass: a household's accounts hold hundreds of lots
        h = holdings[i]
        basis, price = lot.basis_per_share, h.price
        gains.append(float(1 - basis / price))
        days.append(_days_to_long_term(lot, today))  # ≤ 0: long-term
        worth.append(lot.quantity * price)
        caps.append(float(worth[-1] / value))
        shut.append(
            bool(h.no_sell)
            or (bool(h.no_loss_sale) and basis > price)
            or (settings.harvest_only and basis <= price)
        )
    gain, cap, closed = np.array(gains), np.array(caps), np.array(shut, dtype=bool)
    short, long_ = float(problem.short_rate), float(problem.long_rate)
    window = settings.long_term_wait_days
    taxed = problem.account.registration.taxable  # in an IRA or a Roth a loss washes nothing
    rate = np.array([long_ if d <= 0 else short for d in days])
    waiting = np.array([short - long_ if 0 < d <= window else 0.0 for d in days])
    rate = rate + waiting * (gain > 0) if len(lots) else rate
    lot_of = np.array([i for i, _ in lots], dtype=np.int64)
    if number is None:
        identities = {h.security.wash_sale_identity for h in holdings}
        number = {name: k for k, name in enumerate(sorted(identities))}
    # Cash that must remain (reserve and withdrawals) is met first, as far as the lots
    # that may be sold can raise it; what they cannot is said after rounding.
    raisable = sum((v for v, no in zip(worth, shut, strict=True) if not no), ZERO)
    floor = min(problem.reserve, problem.cash + raisable * (1 - 2 * settings.costs.half_spread))
    return Arrays(
        held=np.array([float(h.value / value) for h in holdings]),
        target=np.array([float(h.target) for h in holdings]),
        unit=unit,
        lot_of=lot_of,
        lot_cap=np.where(closed, 0.0, cap) if len(lots) else np.zeros(0),
        lot_tax=rate * gain if len(lots) else np.zeros(0),
        lot_gain=gain if len(lots) else np.zeros(0),
        lot_loss=(gain < 0) & taxed if len(lots) else np.zeros(0, dtype=bool),
        buy_cap=np.array([_room(h, value, settings.costs.half_spread) for h in holdings]),
        identity=np.array([number[h.security.wash_sale_identity] for h in holdings]),
        cash=float((problem.cash - floor) / value),
        half_spread=float(settings.costs.half_spread),
        exposures=risk.exposures,
        specific=risk.specific,
    )


def _room(h: Holding, value: Decimal, half_spread: Decimal) -> float:
    """How much of ``h`` may be bought, in weights: nothing where it may not be, up to
    its largest weight (less what trading costs could add to it) where it has one."""
    if h.no_buy:
        return 0.0
    if h.most is None:
        return float(np.inf)
    return max(float(h.most * (1 - 4 * half_spread) - h.value / value), 0.0)


def _limits(problem: Problem, settings: OptimizeSettings, *, relaxed: bool = False) -> Limits:
    """The settings in weights. Within bands, each position's band bounds its drift —
    or, ``relaxed``, its band or its drift now, whichever is wider."""
    value = problem.value
    smallest = max(settings.min_trade, settings.min_trade_fraction * value)
    drift = None
    if settings.within_bands:
        drift = np.array(
            [
                np.inf
                if h.band is None
                else max(float(h.band), abs(float(h.value / value - h.target)) if relaxed else 0)
                for h in problem.holdings
            ]
        )
    return Limits(
        risk=settings.risk,
        tax=settings.tax,
        cost=settings.cost,
        turnover=None if settings.max_turnover is None else float(settings.max_turnover),
        gain=None if settings.tax_budget is None else float(settings.tax_budget / value),
        min_trade=float(smallest / value),
        drift=drift,
    )


def _continuous(a: Arrays, limits: Limits, program: Continuous) -> Weights | None:
    """The continuous optimum, with every wash-sale meeting settled
    (:mod:`poise.optimize.meetings`); None when no trades satisfy the constraints.
    ``program``: the account's problem set up, its solver kept while only what may be
    traded changes (a security below the minimum trade left as it is)."""
    return meetings.settle(a, limits, program=program).weights


Choice = tuple[dict[int, Decimal], dict[int, Decimal]]  # shares to buy by security, to sell by lot


def _round(problem: Problem, a: Arrays, weights: Weights) -> Choice:
    """The heuristic for large accounts: each security's buy and sale rounded to the
    nearest grid step; a sale is taken from the lots the solver chose, those it sold
    most of first (the cheapest in tax: the solver sells them whole)."""
    value = float(problem.value)
    lots = _lots(problem)
    buy: dict[int, Decimal] = {}
    sell: dict[int, Decimal] = {}
    sold = np.bincount(a.lot_of, weights=weights.sell, minlength=len(a.held))
    near = 0.4 * a.unit  # less than this rounds to nothing: not worth the Decimal
    for i, h in enumerate(problem.holdings):
        trading, price = h.security.trading, float(h.price)
        if weights.buy[i] >= near[i]:
            shares = grid.nearest(trading, float(weights.buy[i]) * value / price)
            if shares > ZERO:
                buy[i] = shares
        if sold[i] >= near[i]:
            wanted = grid.nearest(trading, float(sold[i]) * value / price)
            if wanted > ZERO:
                sell |= _from_lots(lots, np.flatnonzero(a.lot_of == i), a, weights.sell, wanted)
    return buy, sell


def _exact(problem: Problem, a: Arrays, limits: Limits, start: Weights | None) -> Choice | None:
    """The optimum in whole grid steps (HiGHS), for small accounts."""
    steps = solve_shares(a, limits, start)  # cents of cost rounding: repaired after
    if steps is None:
        return None
    lots = _lots(problem)
    buy: dict[int, Decimal] = {}
    sell: dict[int, Decimal] = {}
    if (steps.buy < 0).any() or (steps.sell < 0).any():  # a count past int64: no solution
        return None
    for i in np.flatnonzero(steps.buy):
        buy[int(i)] = grid.steps(problem.holdings[i].security.trading, int(steps.buy[i]))
    for i in np.flatnonzero(steps.sell):
        sell |= _from_lots(
            lots, np.flatnonzero(a.lot_of == i), a, steps.lots,
            grid.steps(problem.holdings[i].security.trading, int(steps.sell[i])),
        )  # fmt: skip
    return buy, sell


def _from_lots(
    lots: list[tuple[int, TaxLot]], mine: npt.NDArray[np.int64], a: Arrays, chosen: Floats,
    total: Decimal,
) -> dict[int, Decimal]:  # fmt: skip
    """``total`` shares of one security taken from its lots as the solver chose them:
    the lots it sold whole first, then the one it sold part of, then (when rounding
    took more) the sellable lots cheapest in tax."""
    mine = mine[a.lot_cap[mine] > 0]
    fraction = np.round(chosen[mine] / a.lot_cap[mine], 9)
    taken: dict[int, Decimal] = {}
    for k in mine[np.lexsort((a.lot_tax[mine], -fraction))].tolist():
        if total <= ZERO:
            break
        take = min(total, lots[k][1].quantity)
        taken[k] = take
        total -= take
    return taken


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
        sale = sell_lots(h, chosen, problem=problem, reason=TradeReason.DRIFT)
        if h.target == ZERO and h.no_buy and not h.no_buy.startswith("sold at a loss"):
            sale = replace(sale, reason=TradeReason.RESTRICTION)
        elif taxed and all(lot.gain < ZERO for lot in sale.lots):
            sale = replace(sale, reason=TradeReason.HARVEST)
        trades.append(sale)
    for i, shares in sorted(buy.items()):
        h = problem.holdings[i]
        reason = TradeReason.REPLACEMENT if h.target == ZERO else TradeReason.DRIFT
        trades.append(Trade(h.security_id, Side.BUY, shares, h.price, reason))
    return trades


def _fixed(problem: Problem, a: Arrays, choice: Choice, smallest: Decimal) -> Arrays:
    """``a`` with the securities of trades below the minimum size left as they are: a
    buy, or a sale (its lots together), worth less than ``smallest``."""
    lots = _lots(problem)
    sold: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for k, shares in choice[1].items():
        sold[lots[k][0]] += shares
    small = {
        i
        for side in (choice[0], sold)
        for i, shares in side.items()
        if shares * problem.holdings[i].price < smallest
    }
    if not small:
        return a
    index = np.isin(np.arange(len(problem.holdings)), list(small))
    return replace(
        a,
        buy_cap=np.where(index, 0.0, a.buy_cap),
        lot_cap=np.where(index[a.lot_of], 0.0, a.lot_cap) if len(a.lot_of) else a.lot_cap,
    )


@dataclass(frozen=True, slots=True)
class Settlement:
    """A household's meetings, settled together (:func:`settle_household`): the
    identities no account buys (the harvest wins), those no account sells at a loss
    (the position wins), and for each identity that met, the accounts that sold it at a
    loss and those that bought it when it first met — and each account's problem as the
    search set it up and solved it, for :func:`rebalance_optimize` to go on from."""

    harvest: frozenset[str] = frozenset()
    keep: frozenset[str] = frozenset()
    met: Mapping[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    programs: Mapping[str, Continuous] = field(default_factory=dict)  # by account id


def settle_household(parts: Sequence[tuple[Problem, Risk, OptimizeSettings]]) -> Settlement:
    """Every wash-sale meeting across a household's accounts settled at once, over the
    accounts' continuous problems (:func:`poise.optimize.meetings.settle_household`):
    the whole household is one branch and bound, rather than each meeting weighed by
    solving the accounts on either side again."""
    parts = [(p, r, o) for p, r, o in parts if p.value > ZERO and p.holdings]
    if len(parts) < 2:
        return Settlement()
    names = sorted({h.security.wash_sale_identity for p, _, _ in parts for h in p.holdings})
    number = {name: k for k, name in enumerate(names)}
    total = float(sum((p.value for p, _, _ in parts), ZERO))
    settled = meetings.settle_household(
        [
            meetings.Part(_arrays(p, _risk(p, r), o, number), _limits(p, o), float(p.value) / total)
            for p, r, o in parts
        ]
    )
    ids = [p.account.account_id for p, _, _ in parts]
    return Settlement(
        harvest=frozenset(names[i] for i, wins in settled.decisions.items() if wins),
        keep=frozenset(names[i] for i, wins in settled.decisions.items() if not wins),
        met={
            names[i]: (frozenset(ids[k] for k in sold), frozenset(ids[k] for k in bought))
            for i, (sold, bought) in settled.met.items()
        },
        programs=dict(zip(ids, settled.programs, strict=True)),
    )


def rebalance_optimize(
    problem: Problem,
    risk: Risk,
    settings: OptimizeSettings | None = None,
    *,
    program: Continuous | None = None,
) -> Proposal:
    """The tax-aware optimum for ``problem``: see the module's docstring. ``risk`` is a
    :class:`RiskModel` covering the holdings, or their covariance in holdings order.
    ``program``: the account's problem as already set up and solved — as a household's
    search leaves it (:attr:`Settlement.programs`); its solver, and what it solved, are
    used where it is the same problem but for what may be bought and sold
    (:meth:`poise.optimize.program.Continuous.of`), else it is set up anew."""
    settings = settings or OptimizeSettings()
    costs = settings.costs
    if problem.value <= ZERO or not problem.holdings:
        return summarise(problem, [], method="optimize", costs=costs, binding=["empty account"])
    model = _risk(problem, risk)
    a = _arrays(problem, model, settings)
    limits = _limits(problem, settings)
    smallest = max(settings.min_trade, settings.min_trade_fraction * problem.value)
    program = Continuous.of(a, limits, program)
    weights = _continuous(a, limits, program)
    bands_held = settings.within_bands and weights is None
    if bands_held:  # not every band can be reached: no position ends further out
        limits = _limits(problem, settings, relaxed=True)
        program = Continuous(a, limits)
        weights = _continuous(a, limits, program)
    choice: Choice | None = None
    if weights is not None:
        choice = _round(problem, a, weights)
        for _ in range(3 if smallest > ZERO else 0):  # trades below the minimum: leave
            fixed = _fixed(problem, a, choice, smallest)
            if fixed is a:
                break
            a = fixed
            weights = _continuous(a, limits, program)
            choice = _round(problem, a, weights) if weights is not None else None
            if choice is None:
                break
    if choice is not None:
        choice = _shipped(problem, choice, settings, smallest)
    if _small(a):  # whole shares matter: two more ways to them, and the best is kept
        choice = _whole_shares(
            problem, a, limits, weights, choice, risk=model, settings=settings,
            smallest=smallest, program=program,
        )  # fmt: skip
    if choice is None:
        why = why_nothing(
            problem, tax_budget=settings.tax_budget, max_turnover=settings.max_turnover
        )
        return summarise(problem, [], method="optimize", costs=costs, binding=[why])
    binding = []
    if bands_held:
        binding.append("not every position can end inside its band; none ends further out")
    trades = _sized(problem, choice, smallest)
    proposal = finish(
        problem, trades, method="optimize", costs=costs, binding=binding, smallest=smallest
    )
    over = _over_budget(problem, list(proposal.trades), settings.tax_budget)
    if over:  # the tax budget is never shipped broken
        binding = [*proposal.binding, over]
        return summarise(problem, [], method="optimize", costs=costs, binding=binding)
    reached = _binding(problem, list(proposal.trades), settings)  # the limits the trades reach
    return with_tracking(problem, replace(proposal, binding=(*proposal.binding, *reached)), model)


def _sized(problem: Problem, choice: Choice, smallest: Decimal) -> list[Trade]:
    """A choice's trades, without those below the minimum size or worth less than a
    cent: not worth a ticket."""
    return [t for t in _trades(problem, choice) if t.value >= max(smallest, CENT)]


def _better(
    problem: Problem, choice: Choice | None, other: Choice | None, *, risk: RiskModel,
    settings: OptimizeSettings, smallest: Decimal,
) -> Choice | None:  # fmt: skip
    """The better of two choices, each as it would ship (``choice`` already is)."""
    if other is None:
        return choice
    other = _shipped(problem, other, settings, smallest)
    if choice is None or _score(problem, other, risk, settings, smallest) < _score(
        problem, choice, risk, settings, smallest
    ):
        return other
    return choice


def _shipped(
    problem: Problem, choice: Choice, settings: OptimizeSettings, smallest: Decimal
) -> Choice:
    """A rounded choice made to keep the hard limits the solver kept in floats: no
    security both bought and sold (netted), the tax budget (rounding a sale up may
    realise more gain than it allows), and the turnover limit (rounding each trade up
    may trade more than it allows)."""
    netted = _netted(problem, choice)
    kept = _within_budget(problem, netted, settings.tax_budget, smallest)
    return _within_turnover(problem, kept, settings.max_turnover, smallest)


def _netted(problem: Problem, choice: Choice) -> Choice:
    """``choice`` with each security bought and sold netted to one trade: buying and
    selling the same shares only pays the spread twice. The smaller side goes and the
    larger shrinks by it — a sale keeps its lots cheapest in tax."""
    lots = _lots(problem)
    buy, sell = dict(choice[0]), dict(choice[1])
    for i in list(buy):
        sold = sum((shares for k, shares in sell.items() if lots[k][0] == i), ZERO)
        if sold <= ZERO:
            continue
        if buy[i] >= sold:
            sell = {k: shares for k, shares in sell.items() if lots[k][0] != i}
            buy[i] -= sold
        else:
            _cut(problem, lots, sell, i, buy[i])
            buy[i] = ZERO
        if buy[i] <= ZERO:
            del buy[i]
    return buy, sell


def _cut(
    problem: Problem, lots: list[tuple[int, TaxLot]], sell: dict[int, Decimal], i: int,
    shares: Decimal,
) -> None:  # fmt: skip
    """Take ``shares`` off security ``i``'s sale in ``sell`` (in place), from the lots
    of the largest gain a share first."""
    mine = sorted(
        (k for k in sell if lots[k][0] == i), key=lambda k: -_gain_a_share(problem, lots[k])
    )
    for k in mine:
        take = min(shares, sell[k])
        shares -= take
        if take == sell[k]:
            del sell[k]
        else:
            sell[k] -= take


def _realised(problem: Problem, trades: list[Trade]) -> Decimal:
    """The net gain trades realise, lot by lot, exactly: each lot's gain unrounded (a
    proposal shows each to the cent, and cents of one way and the other can hide a
    fraction of a cent of gain)."""
    basis = {lot.lot_id: lot.basis_per_share for h in problem.holdings for lot in h.lots}
    return sum(
        (sale.quantity * (t.price - basis[sale.lot_id]) for t in trades for sale in t.lots), ZERO
    )


def _over_budget(problem: Problem, trades: list[Trade], budget: Decimal | None) -> str:
    """Why trades break the tax budget ("" when they keep it)."""
    gains = _realised(problem, trades)
    if budget is None or gains <= budget:
        return ""
    return (
        "no trades keep the tax budget once rounded to shares and with the cash that must"
        f" remain raised ({gains:,.2f} of {budget:,.2f} would be realised)"
    )


def _within_budget(
    problem: Problem, choice: Choice, budget: Decimal | None, smallest: Decimal
) -> Choice:
    """``choice`` with its sales of gain lots cut, in whole grid steps, until what it
    would ship realises no more net gain than ``budget``. Each cut takes the lot with the
    largest gain a share — the fewest shares left unsold for each dollar of gain — and
    takes a whole number of steps from its security's sale (the lots of the largest
    gain first), so the sale stays on the grid; a sale cut below the minimum trade
    goes, and the gain is counted again."""
    if budget is None:
        return choice
    lots = _lots(problem)
    buy, sell = choice[0], dict(choice[1])
    for _ in range(4 * len(sell) + 4):
        excess = _realised(problem, _sized(problem, (buy, sell), smallest)) - budget
        gaining = [k for k in sell if _gain_a_share(problem, lots[k]) > ZERO]
        if excess <= ZERO or not gaining:
            break
        k = max(gaining, key=lambda k: _gain_a_share(problem, lots[k]))
        i = lots[k][0]
        h = problem.holdings[i]
        total = sum((shares for j, shares in sell.items() if lots[j][0] == i), ZERO)
        count = (
            excess / _gain_a_share(problem, lots[k]) / h.security.trading.step
        ).to_integral_value(rounding=ROUND_CEILING)
        _cut(problem, lots, sell, i, min(total, grid.steps(h.security.trading, int(count))))
    return buy, sell


def _within_turnover(
    problem: Problem, choice: Choice, limit: Decimal | None, smallest: Decimal
) -> Choice:
    """``choice`` with its trades cut, in whole grid steps, until what it would ship
    trades no more than ``limit`` of the account's value. The largest buy is cut first
    (what is not bought stays cash), then — with nothing left to buy — the largest
    sale, from its lots of the largest gain a share; a trade cut below the minimum
    goes, and the turnover is counted again."""
    if limit is None:
        return choice
    most = limit * problem.value
    lots = _lots(problem)
    buy, sell = dict(choice[0]), dict(choice[1])
    for _ in range(4 * (len(buy) + len(sell)) + 4):
        excess = sum((t.value for t in _sized(problem, (buy, sell), smallest)), ZERO) - most
        if excess <= ZERO:
            break
        sold: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for k, shares in sell.items():
            sold[lots[k][0]] += shares
        side = buy or sold
        if not side:
            break
        i = max(side, key=lambda i: side[i] * problem.holdings[i].price)
        h = problem.holdings[i]
        count = (excess / h.price / h.security.trading.step).to_integral_value(
            rounding=ROUND_CEILING
        )
        cut = min(side[i], grid.steps(h.security.trading, int(count)))
        if buy:
            buy[i] -= cut
            if buy[i] <= ZERO:
                del buy[i]
        else:
            _cut(problem, lots, sell, i, cut)
    return buy, sell


def _gain_a_share(problem: Problem, lot: tuple[int, TaxLot]) -> Decimal:
    i, held = lot
    return problem.holdings[i].price - held.basis_per_share


def _whole_shares(
    problem: Problem, a: Arrays, limits: Limits, weights: Weights | None,
    choice: Choice | None, *, risk: RiskModel, settings: OptimizeSettings, smallest: Decimal,
    program: Continuous,
) -> Choice | None:  # fmt: skip
    """The best of ``choice``, the continuous optimum polished in whole shares
    (:mod:`poise.optimize.whole`), and — unless the best so far is within
    ``EXACT_GAIN`` of the continuous optimum, a bound no answer in whole shares can
    beat — the optimum in whole shares (HiGHS, the slow part)."""
    if weights is not None:
        polished = _round(problem, a, whole.polish(a, limits, weights, program))
        choice = _better(problem, choice, polished, risk=risk, settings=settings, smallest=smallest)
    if not settings.exact:  # the search in whole shares is not asked for
        return choice
    near = (
        weights is not None
        and choice is not None
        and _score(problem, choice, risk, settings, smallest) - meetings.value(a, limits, weights)
        <= EXACT_GAIN
    )
    if not near:
        exact = _exact(problem, a, limits, weights)
        choice = _better(problem, choice, exact, risk=risk, settings=settings, smallest=smallest)
    return choice


def _small(a: Arrays) -> bool:
    """An account where a grid step of a typical holding is a visible weight."""
    return (
        len(a.held) <= EXACT_UP_TO
        and len(a.lot_of) <= EXACT_LOTS_UP_TO
        and float(np.sort(a.unit)[len(a.unit) // 2]) >= EXACT_STEP
    )


def _score(
    problem: Problem, choice: Choice, risk: RiskModel, settings: OptimizeSettings, smallest: Decimal
) -> float:
    """The objective of what a choice would ship (inf if it would ship nothing)."""
    trades = settle(problem, _sized(problem, choice, smallest), settings.costs, [], smallest)
    if violations(problem, trades, settings.costs):
        return float("inf")
    return objective(problem, trades, risk, settings)


def _binding(problem: Problem, trades: list[Trade], settings: OptimizeSettings) -> list[str]:
    """The limits the proposal reaches, in words."""
    found = []
    gains = sum((sale.gain for t in trades for sale in t.lots), ZERO)
    if (
        settings.tax_budget is not None
        and gains >= settings.tax_budget - Decimal("0.005") * problem.value
    ):
        found.append(f"the tax budget: {gains:,.2f} of {settings.tax_budget:,.2f} realised")
    turnover = sum((t.value for t in trades), ZERO)
    if (
        settings.max_turnover is not None
        and turnover >= (settings.max_turnover - Decimal("0.001")) * problem.value
    ):
        found.append(f"the turnover limit: {turnover / problem.value:.1%} of the account")
    held_back = [h.security_id for h in problem.holdings if h.no_buy and h.target > ZERO]
    if held_back:
        found.append(f"may not buy model securities {', '.join(held_back)}")
    waiting = _waiting(problem, trades, settings.long_term_wait_days)
    if waiting:
        found.append(f"kept to turn long-term: {waiting}")
    return found


def _waiting(problem: Problem, trades: list[Trade], window: int) -> str:
    """The lots at a short-term gain kept (in part or whole) that turn long-term within
    ``window`` days, and what waiting saves on what is kept, in words ("" if none)."""
    sold: dict[str, Decimal] = defaultdict(Decimal)
    for sale in (sale for t in trades for sale in t.lots):
        sold[sale.lot_id] += sale.quantity
    kept = []
    for h in problem.holdings:
        for lot in h.lots:
            shares = lot.quantity - sold[lot.lot_id]
            if shares <= ZERO or h.price <= lot.basis_per_share:
                continue
            rate = _wait_rate(problem, lot, window)
            if rate > ZERO:
                saves = shares * (h.price - lot.basis_per_share) * rate
                days = _days_to_long_term(lot, problem.today)
                kept.append(f"{h.security_id} lot {lot.lot_id} in {days} days (saves {saves:,.2f})")
    if len(kept) > WAITING_LISTED:
        kept = [*kept[:WAITING_LISTED], f"{len(kept) - WAITING_LISTED} more lots"]
    return ", ".join(kept)


def objective(
    problem: Problem,
    trades: list[Trade] | tuple[Trade, ...],
    risk: Risk,
    settings: OptimizeSettings | None = None,
) -> float:
    """The ``optimize`` objective of any set of trades: risk · tracking error after +
    tax · estimated tax + cost · trading cost, as fractions of the account. One
    function, so methods (and other engines) are compared on the same footing.

    A loss sold in trades that also buy the same (or a substantially identical)
    security is a wash sale: that loss is disallowed now (IRS Publication 550), so it
    earns no benefit here — up to the value bought back, the loss sales' proceeds
    taken in proportion; so is a loss sold within 30 days of a purchase of the same.
    poise's own proposals never have one; another engine's may.
    """
    settings = settings or OptimizeSettings()
    value = float(problem.value)
    if value <= 0:
        return 0.0
    identity = {h.security_id: h.security.wash_sale_identity for h in problem.holdings}
    bought: dict[str, float] = defaultdict(float)
    proceeds: dict[str, float] = defaultdict(float)
    for trade in trades:
        if trade.side is Side.BUY:
            bought[identity[trade.security_id]] += float(trade.value)
        for sale in trade.lots:
            if sale.gain < ZERO:
                proceeds[identity[trade.security_id]] += float(sale.proceeds)
    shares = {h.security_id: float(h.quantity) for h in problem.holdings}
    tax = 0.0
    for trade in trades:
        shares[trade.security_id] += float(trade.signed_quantity)
        group = identity[trade.security_id]
        washed = min(1.0, bought[group] / proceeds[group]) if proceeds[group] else 0.0
        if problem.holding(trade.security_id).no_loss_sale:  # bought in the last 30 days
            washed = 1.0
        for sale in trade.lots:
            lot = next(
                lot for lot in problem.holding(trade.security_id).lots if lot.lot_id == sale.lot_id
            )
            rate = (
                problem.long_rate
                if is_long_term(lot.held_since, problem.today)
                else problem.short_rate
            )
            allowed = 1.0 - washed if sale.gain < ZERO else 1.0
            tax += float(sale.gain * rate) * allowed
            if sale.gain > ZERO:  # sold just before turning long-term: what waiting saves
                tax += float(sale.gain * _wait_rate(problem, lot, settings.long_term_wait_days))
    tracking = _tracking(problem, shares, risk)
    cost = sum(float(settings.costs.of(t)) for t in trades)
    return settings.risk * tracking + settings.tax * tax / value + settings.cost * cost / value


def _tracking(problem: Problem, shares: dict[str, float], risk: Risk) -> float:
    value = float(problem.value)
    if value <= 0:
        return 0.0
    weight = np.array([shares[h.security_id] * float(h.price) for h in problem.holdings]) / value
    gap = weight - np.array([float(h.target) for h in problem.holdings])
    if isinstance(risk, RiskModel):
        model = _risk(problem, risk)
        factor = model.exposures.T @ gap
        return float(np.sqrt(max(factor @ factor + (model.specific * gap) @ gap, 0.0)))
    return float(np.sqrt(max(gap @ risk @ gap, 0.0)))


def tracking_error(
    problem: Problem, trades: list[Trade] | tuple[Trade, ...], risk: Risk
) -> Decimal:
    """Annual tracking error to the model after ``trades`` (none: as it stands), as a
    fraction to four places; ``covariance`` is aligned with the problem's holdings."""
    shares = {h.security_id: float(h.quantity) for h in problem.holdings}
    for trade in trades:
        shares[trade.security_id] += float(trade.signed_quantity)
    return Decimal(f"{_tracking(problem, shares, risk):.4f}")


def with_tracking(problem: Problem, proposal: Proposal, risk: Risk) -> Proposal:
    """``proposal`` with its tracking error before and after, whatever method made it."""
    return replace(
        proposal,
        tracking_before=tracking_error(problem, (), risk),
        tracking_after=tracking_error(problem, proposal.trades, risk),
    )
