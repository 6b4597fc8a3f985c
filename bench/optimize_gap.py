"""Benchmark: how far ``optimize``'s proposals are from the optimum of the same problem,
solved by a generic solver.

    .venv/bin/python bench/optimize_gap.py [--accounts N] [--most-meetings 10]

Builds the default demo firm once (into ``bench/out/gap/``), then for each taxable
account that is not held (by id; the first ``--accounts`` of them if given), as of
2022-12-28, loads its problem and risk model as ``bench/proposal_audit.py`` does and:

- solves the continuous problem of :mod:`poise.optimize.program` — the very arrays
  the engine builds (``_arrays``, ``_limits``), minimise ``risk·τ + tax·Σ lot_tax·σ +
  cost·h·(Σβ + Σσ)`` under cash, per-lot caps, buy caps and the tax budget, turnover
  and bands where set — through cvxpy (Clarabel), with the harvest-or-keep choice
  enumerated exactly: a *meeting* is a wash-sale identity with both a loss lot that
  may be sold and a security that may be bought; for every assignment of the
  meetings (its loss lots kept, or its securities not bought) the problem is solved
  and the best objective kept — up to ``2 ** --most-meetings`` solves, beyond which
  the account is reported as too many to enumerate and left out of the summary;
- solves the same problem in whole grid steps through cvxpy and SCIP (a
  mixed-integer solver nobody here wrote): integer steps bought and sold of every
  security whose step is at least ``FINE`` of the account (a share of a stock),
  continuous for the finer ones (a fund's thousandths of a share, worth less than a
  thousandth of a basis point a step), each meeting a binary (``whole_optimum``);
- runs ``rebalance_optimize(problem, risk)`` with the default settings (no minimum
  trade: neither reference has one) and scores its trades with the engine's
  ``objective(problem, trades, risk, settings)``;
- prints, per account, the gap (optimize's objective less SCIP's whole-share
  optimum) in basis points of the account's value, and the median and largest gap.
  Target: ≤ 0.5 bp median, ≤ 2 bp max. Beside it, ``vs cont``: optimize less the
  continuous optimum — a bound no whole-share answer can beat, so this is never
  negative, and in small accounts near their model whole shares alone cost a few
  basis points of it. SCIP's answer is checked the same way: it is never below the
  continuous bound; where it is above optimize's (a negative gap), SCIP's tolerances
  stopped it short, and the summary counts those accounts.

The continuous gap is split in two. ``cont bp`` is the engine's own continuous
solution (its way of settling the meetings, before any rounding) less the continuous
optimum — what the engine's harvest-or-keep choice costs; the rest of ``vs cont`` is
what whole shares cost. Where the gap is above 2 bp, the meetings at which optimize's
trades and the continuous optimum went different ways are named (``harvest``: its
loss lots sold, nothing of it bought; ``keep``: bought, no loss sold; ``neither``),
with the engine's continuous solution's way where it is not the way the shipped
trades went.

``srch`` is how many solves the engine's search over the meetings took
(:mod:`poise.optimize.meetings`), ``+`` where its limit stopped it before it had
proved its way the best.

The same formulation, checked: ``prog bp`` is the same enumeration solved through the
engine's own program (:class:`poise.optimize.program.Continuous`, Clarabel called
directly) less the cvxpy optimum — about zero says the two are one problem, so a gap
is the engine's choice, not its formulation.

Same units, checked: the cvxpy objective expression is evaluated at the weights of
optimize's own trades (shares × price / value, bought per security and sold per
lot — exact, where turning the continuous optimum into trades would need a rounding
of its own) and set beside ``objective()``; the ``check`` column is their
difference, which is only the cents each trade's cost is rounded to (and a wash
sale's disallowed loss, which ``objective()`` counts and the continuous problem
excludes by construction; optimize never ships one).

What is compared: the objective only — tracking error under the same factor model,
lot-by-lot tax at the account's rates (a short-term gain about to turn long-term
charged what waiting saves, as the engine charges it) and half-spread cost. What the
references leave out: the minimum trade size, commissions, and the rules a proposal
is checked against after rounding. A meeting here is any buy or loss sale at all; the
engine calls a trade below half a grid step noise — so the optimum here is, if
anything, a little stricter than the engine's.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cvxpy as cp
import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from poise.optimize import meetings as meetings_
from poise.optimize import program as program_
from poise.optimize.problem import Problem
from poise.optimize.program import FINE, Arrays, Limits, _no_stdout
from poise.optimize.risk import RiskModel
from poise.optimize.tax_aware import (
    OptimizeSettings,
    _arrays,
    _limits,
    objective,
    rebalance_optimize,
)
from poise.optimize.trades import Side, Trade
from poise.settings import Settings
from poise.store.engine import make_engine

try:
    from proposal_audit import AS_OF, demo_database, problems
except ModuleNotFoundError:  # imported as bench.optimize_gap, by the test suite
    from bench.proposal_audit import AS_OF, demo_database, problems

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "gap"
TRADED = 1e-7  # of the account's value ($0.10 in $1,000,000): less is a solver's noise
MEDIAN_TARGET, MAX_TARGET = 0.5, 2.0  # bp
FEASTOL = 1e-9  # SCIP's feasibility tolerance, in weights ($0.001 in $1,000,000)

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


class Continuous:
    """The continuous problem of one account through cvxpy, compiled once: which lots
    may be sold and which securities bought are parameters, so each assignment of the
    meetings is a re-solve."""

    def __init__(self, a: Arrays, limits: Limits) -> None:
        n, lots = len(a.held), len(a.lot_of)
        self.a = a
        self.buy = cp.Variable(n, nonneg=True)
        self.sell = cp.Variable(lots, nonneg=True)
        self.lot_cap = cp.Parameter(lots, nonneg=True)
        self.open = cp.Parameter(n, nonneg=True)  # 1: may be bought, 0: not
        summed = np.zeros((n, lots))
        summed[a.lot_of, np.arange(lots)] = 1.0
        gap = a.held - a.target + self.buy - summed @ self.sell
        h = a.half_spread
        risk = cp.norm(cp.hstack([a.exposures.T @ gap, cp.multiply(np.sqrt(a.specific), gap)]))
        traded = cp.sum(self.buy) + cp.sum(self.sell)
        self.objective = (
            limits.risk * risk + limits.tax * (a.lot_tax @ self.sell) + limits.cost * h * traded
        )
        most = max(a.cash, 0.0) + float(a.lot_cap.sum())  # no buy can be larger
        constraints = [
            self.sell <= self.lot_cap,
            self.buy <= most * self.open,
            (1 + h) * cp.sum(self.buy) - (1 - h) * cp.sum(self.sell) <= a.cash,
        ]
        if limits.turnover is not None:
            constraints.append(traded <= limits.turnover)
        if limits.gain is not None and lots:
            constraints.append(a.lot_gain @ self.sell <= limits.gain)
        if limits.drift is not None:
            banded = np.flatnonzero(np.isfinite(limits.drift))
            constraints.append(cp.abs(gap[banded]) <= limits.drift[banded])
        self.problem = cp.Problem(cp.Minimize(self.objective), constraints)

    def solve(self, *, forbid: Bools, keep: Bools) -> tuple[float, Floats, Floats] | None:
        """The optimum with securities ``forbid`` not bought and lots ``keep`` not sold."""
        a = self.a
        self.lot_cap.value = np.where(keep, 0.0, a.lot_cap)
        self.open.value = np.where((a.buy_cap <= 0) | forbid, 0.0, 1.0)
        self.problem.solve(solver=cp.CLARABEL)
        if self.problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return None
        assert self.buy.value is not None
        assert self.sell.value is not None
        return float(self.problem.value), self.buy.value.copy(), self.sell.value.copy()

    def at(self, buy: Floats, sell: Floats) -> float:
        """The objective expression evaluated at given weights."""
        self.buy.value = buy
        self.sell.value = sell
        return float(self.objective.value)


def meetings(a: Arrays) -> list[int]:
    """Identities with both a loss lot that may be sold and a security that may be bought."""
    harvestable = set(a.identity[a.lot_of[a.lot_loss & (a.lot_cap > 0)]].tolist())
    buyable = set(a.identity[a.buy_cap > 0].tolist())
    return sorted(harvestable & buyable)


@dataclass(frozen=True, slots=True)
class Optimum:
    value: float
    buy: Floats
    sell: Floats
    solves: int


def assignments(a: Arrays, met: list[int]) -> Iterator[tuple[Bools, Bools]]:
    """Every way of settling the meetings, as (securities not bought, lots not sold):
    at each, its harvest wins (nothing of it bought) or its position does (its loss
    lots kept)."""
    for sides in itertools.product((False, True), repeat=len(met)):  # True: harvest
        forbid = np.zeros(len(a.held), dtype=bool)
        keep = np.zeros(len(a.lot_of), dtype=bool)
        for identity, harvest in zip(met, sides, strict=True):
            members = a.identity == identity
            if harvest:
                forbid |= members
            else:
                keep |= a.lot_loss & members[a.lot_of]
        yield forbid, keep


def enumerate_optimum(a: Arrays, limits: Limits, met: list[int]) -> Optimum | None:
    """The best of every assignment of the meetings, through cvxpy."""
    program = Continuous(a, limits)
    best: Optimum | None = None
    solves = 0
    for forbid, keep in assignments(a, met):
        found = program.solve(forbid=forbid, keep=keep)
        solves += 1
        if found is not None and (best is None or found[0] < best.value):
            best = Optimum(found[0], found[1], found[2], solves)
    return None if best is None else Optimum(best.value, best.buy, best.sell, solves)


@dataclass(frozen=True, slots=True)
class Whole:
    """The optimum in whole grid steps, as a generic mixed-integer solver found it."""

    value: float
    status: str
    seconds: float


def whole_optimum(a: Arrays, limits: Limits, met: list[int]) -> Whole:
    """The same problem in whole grid steps, through cvxpy and SCIP: the weight bought
    and sold of each security whose step is at least ``FINE`` of the account is a
    whole number of steps (an integer each), each lot's sale continuous and summing to
    its security's, and each meeting a binary — its loss lots sold or its securities
    bought, not both. Weights, not step counts, are the variables, and the objective
    is in basis points: the solver's tolerances are absolute."""
    n, lots = len(a.held), len(a.lot_of)
    h = a.half_spread
    coarse = np.flatnonzero(a.unit >= FINE)
    buy = cp.Variable(n, nonneg=True)  # weights, so the solver sees figures of order one
    sell = cp.Variable(lots, nonneg=True)
    whole_buy = cp.Variable(len(coarse), integer=True)
    whole_sale = cp.Variable(len(coarse), integer=True)
    summed = np.zeros((n, lots))
    summed[a.lot_of, np.arange(lots)] = 1.0
    gap = a.held - a.target + buy - summed @ sell
    risk = cp.norm(cp.hstack([a.exposures.T @ gap, cp.multiply(np.sqrt(a.specific), gap)]))
    traded = cp.sum(buy) + cp.sum(sell)
    objective_ = limits.risk * risk + limits.tax * (a.lot_tax @ sell) + limits.cost * h * traded
    most = max(a.cash, 0.0) + float(a.lot_cap.sum())
    constraints = [
        sell <= a.lot_cap,
        buy[coarse] == cp.multiply(a.unit[coarse], whole_buy),
        (summed @ sell)[coarse] == cp.multiply(a.unit[coarse], whole_sale),
        whole_buy >= 0,
        whole_sale >= 0,
        (1 + h) * cp.sum(buy) - (1 - h) * cp.sum(sell) <= a.cash,
    ]
    if (a.buy_cap <= 0).any():
        constraints.append(buy[np.flatnonzero(a.buy_cap <= 0)] == 0)
    if limits.turnover is not None:
        constraints.append(traded <= limits.turnover)
    if limits.gain is not None and lots:
        constraints.append(a.lot_gain @ sell <= limits.gain)
    if limits.drift is not None:
        banded = np.flatnonzero(np.isfinite(limits.drift))
        constraints.append(cp.abs(gap[banded]) <= limits.drift[banded])
    for identity in met:
        harvest = cp.Variable(boolean=True)
        members = np.flatnonzero(a.identity == identity)
        losing = np.flatnonzero(a.lot_loss & (a.identity[a.lot_of] == identity))
        constraints += [
            cp.sum(sell[losing]) <= float(a.lot_cap[losing].sum()) * harvest,
            cp.sum(buy[members]) <= most * (1 - harvest),
        ]
    problem = cp.Problem(cp.Minimize(objective_ * 1e4), constraints)
    started = time.perf_counter()
    # SCIP writes a line on its LP tolerance to standard output each solve, and cvxpy
    # warns of an inaccurate answer: the status says so, in the row.
    with _no_stdout(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        problem.solve(
            solver=cp.SCIP,
            scip_params={"limits/time": 120, "limits/gap": 1e-9, "numerics/feastol": FEASTOL},
        )
    seconds = time.perf_counter() - started
    found = float("inf") if problem.value is None else float(problem.value) / 1e4
    return Whole(found, str(problem.status), seconds)


def engine_enumerated(a: Arrays, limits: Limits, met: list[int]) -> float:
    """The same enumeration through the engine's own program (Clarabel, called
    directly): the best objective (inf if no assignment has a solution)."""
    program = program_.Continuous(a, limits)
    values = [
        meetings_.value(a, limits, way)
        for forbid, keep in assignments(a, met)
        if (way := program.solve(forbid=forbid, keep=keep)) is not None
    ]
    return min(values, default=float("inf"))


def weights_of(problem: Problem, trades: tuple[Trade, ...]) -> tuple[Floats, Floats]:
    """Trades as weights of the account: bought per security, sold per lot."""
    value = float(problem.value)
    index = {h.security_id: i for i, h in enumerate(problem.holdings)}
    lot_index = {
        lot.lot_id: k for k, lot in enumerate(lot for h in problem.holdings for lot in h.lots)
    }
    buy = np.zeros(len(problem.holdings))
    sell = np.zeros(len(lot_index))
    for trade in trades:
        if trade.side is Side.BUY:
            buy[index[trade.security_id]] += float(trade.value) / value
        for sale in trade.lots:
            sell[lot_index[sale.lot_id]] += float(sale.quantity * trade.price) / value
    return buy, sell


def sides(a: Arrays, met: list[int], buy: Floats, sell: Floats) -> dict[int, str]:
    """What a solution did at each meeting: harvested, bought, both or neither."""
    found = {}
    for identity in met:
        members = a.identity == identity
        harvested = float(sell[a.lot_loss & members[a.lot_of]].sum()) > TRADED
        bought = float(buy[members].sum()) > TRADED
        found[identity] = {
            (True, False): "harvest",
            (False, True): "keep",
            (True, True): "both",
            (False, False): "neither",
        }[(harvested, bought)]
    return found


@dataclass(frozen=True, slots=True)
class Row:
    account_id: str
    head: str  # account, securities, lots, meetings
    gap: float | None  # bp of the account's value, to the optimum in whole steps; None: skipped
    line: str
    below: float = 0.0  # bp: optimize less the continuous optimum (a bound: whole steps cost)
    note: str = ""  # what optimize did differently, where the gap is large
    choosing: float = 0.0  # bp of the gap the engine's continuous solution already has
    formulation: float = 0.0  # bp: the engine's program enumerated less the cvxpy optimum
    check: float = 0.0  # bp: objective() less the cvxpy objective, at optimize's trades
    searched: int = 0  # solves the engine's search over the meetings took
    proven: bool = True  # ... and whether it finished


def accounts(engine: sa.Engine, settings: Settings) -> Iterator[tuple[str, Problem, RiskModel]]:
    """Each taxable account that is not held, its problem and risk model, by id."""
    for problem, covariance in problems(engine, settings):
        if problem.account.registration.taxable:
            held = [h.security_id for h in problem.holdings]
            yield problem.account.account_id, problem, RiskModel.of(held, covariance)


def compare(account_id: str, problem: Problem, risk: RiskModel, most_meetings: int) -> Row:
    """optimize's proposal for one account against the enumerated continuous optimum."""
    settings = OptimizeSettings()
    a = _arrays(problem, risk, settings)
    limits = _limits(problem, settings)
    met = meetings(a)
    head = f"{account_id:<14} {len(a.held):>4} {len(a.lot_of):>4} {len(met):>4}"
    if len(met) > most_meetings:
        return Row(account_id, head, None, f"too many meetings to enumerate (2^{len(met)})")
    optimum = enumerate_optimum(a, limits, met)
    if optimum is None:
        return Row(account_id, head, None, "no continuous solution")
    proposal = rebalance_optimize(problem, risk)
    scored = objective(problem, proposal.trades, risk, settings)
    buy, sell = weights_of(problem, proposal.trades)
    check = (scored - Continuous(a, limits).at(buy, sell)) * 1e4
    formulation = (engine_enumerated(a, limits, met) - optimum.value) * 1e4
    settled = meetings_.settle(a, limits)
    engine_continuous = settled.weights
    before = (
        float("nan")
        if engine_continuous is None
        else (meetings_.value(a, limits, engine_continuous) - optimum.value) * 1e4
    )
    whole = whole_optimum(a, limits, met)
    below = (scored - optimum.value) * 1e4
    gap = (scored - whole.value) * 1e4
    line = (
        f"{optimum.solves:>6} {scored:>10.6f} {whole.value:>10.6f} {optimum.value:>10.6f}"
        f" {gap:>7.3f} {below:>7.3f} {before:>8.3f} {check:>8.4f} {formulation:>8.4f}"
        f" {settled.solves:>4}{'' if settled.proven else '+'} {whole.seconds:>5.1f}"
        + ("" if whole.status == cp.OPTIMAL else f" SCIP: {whole.status}")
    )
    parts = (
        f"{(whole.value - optimum.value) * 1e4:.2f} bp whole steps cost at best,"
        f" {before:.2f} bp choosing, {below - before:.2f} bp in shares"
    )
    note = ""
    if gap > MAX_TARGET:
        names = {int(a.identity[i]): h.security.wash_sale_identity
                 for i, h in enumerate(problem.holdings)}  # fmt: skip
        mine = sides(a, met, buy, sell)
        best = sides(a, met, optimum.buy, optimum.sell)
        ahead = (
            sides(a, met, engine_continuous.buy, engine_continuous.sell)
            if engine_continuous
            else mine
        )
        differ = [
            f"{names[m]}: optimize {mine[m]}"
            + (f" (continuous {ahead[m]})" if ahead[m] != mine[m] else "")
            + f", optimum {best[m]}"
            for m in met
            if best[m] not in (mine[m], ahead[m]) or mine[m] != ahead[m]
        ]
        note = f"{account_id} ({gap:.2f} bp: {parts}): " + (
            "; ".join(differ) if differ else "the same side at every meeting"
        )
    return Row(
        account_id, head, gap, line, below, note, before, formulation, check, settled.solves,
        settled.proven,
    )  # fmt: skip


def summary(rows: list[Row], seconds: float) -> None:
    compared = [(row.gap, row.account_id) for row in rows if row.gap is not None]
    skipped = [row for row in rows if row.gap is None]
    print()
    print(
        f"{len(compared)} taxable accounts as of {AS_OF:%Y-%m-%d} compared,"
        f" {len(skipped)} skipped"
        f" ({', '.join(f'{r.account_id}: {r.line}' for r in skipped) or 'none'}); {seconds:.0f} s"
    )
    if not compared:
        return
    values = [gap for gap, _ in compared]
    median, (largest, worst) = statistics.median(values), max(compared)
    print(
        f"gap: median {median:.3f} bp (target ≤ {MEDIAN_TARGET})"
        f" {'✓' if median <= MEDIAN_TARGET else '✗'},"
        f" max {largest:.3f} bp at {worst} (target ≤ {MAX_TARGET})"
        f" {'✓' if largest <= MAX_TARGET else '✗'};"
        f" {sum(v > MAX_TARGET for v in values)} accounts above {MAX_TARGET} bp"
    )
    split = [r for r in rows if r.gap is not None and not math.isnan(r.choosing)]
    choosing = [r.choosing for r in split]
    shares = [r.below - r.choosing for r in split]
    below = [r.below for r in split]
    print(
        f"  to the continuous optimum (a bound: fractions of shares): median"
        f" {statistics.median(below):.3f} bp, max {max(below):.3f} bp; of which choosing"
        f" harvest or keep: median {statistics.median(choosing):.3f} bp, max"
        f" {max(choosing):.3f} bp; whole shares: median {statistics.median(shares):.3f} bp,"
        f" max {max(shares):.3f} bp"
    )
    print(
        f"  optimize better than SCIP's whole-step answer in"
        f" {sum(v < -1e-3 for v in values)} accounts (by at most {-min(values):.3f} bp)"
    )
    print(
        "  the same enumeration through the engine's own program differs from cvxpy's by at"
        f" most {max(abs(r.formulation) for r in split):.4f} bp; objective() and the cvxpy"
        " objective at optimize's trades by at most"
        f" {max(abs(r.check) for r in split):.4f} bp"
    )
    searched = [r.searched for r in split]
    print(
        f"  the engine's search over the meetings: median {statistics.median(searched):.0f}"
        f" solves, max {max(searched)}; stopped by its limit in"
        f" {sum(not r.proven for r in split)} of {len(split)} accounts"
    )
    for row in rows:
        if row.note:
            print(f"  {row.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--most-meetings", type=int, default=10)
    args = parser.parse_args()
    engine = make_engine(demo_database(OUT))
    print(
        f"{'account':<14} {'secs':>4} {'lots':>4} {'meet':>4} {'solves':>6}"
        f" {'optimize':>10} {'whole':>10} {'contin.':>10} {'gap bp':>7} {'vs cont':>7}"
        f" {'cont bp':>8} {'check bp':>8} {'prog bp':>8} {'srch':>4} {'scip s':>6}"
    )
    rows: list[Row] = []
    started = time.perf_counter()
    for account_id, problem, risk in accounts(engine, Settings()):
        if args.accounts is not None and len(rows) == args.accounts:
            break
        row = compare(account_id, problem, risk, args.most_meetings)
        rows.append(row)
        print(f"{row.head} {row.line}", flush=True)
    summary(rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
