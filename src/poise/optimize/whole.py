"""Whole shares near the continuous optimum, where a share is a visible weight.

A security whose grid step is at least ``FINE`` of the account (a share of a stock in
all but the largest accounts) is *coarse*: it trades whole steps, and which way each
rounds matters — in an account near its model, a few stocks each a fraction of a
share off add up to basis points of tracking error. The rest (fractional shares of a
fund, cash funds) are *fine*: a step of them is worth less than the solver's
tolerance, so they stay continuous here and are rounded to the nearest step after.

Coordinate descent from the continuous optimum:

1. each coarse security's net trade is rounded to the nearest step — a sale taken
   from the lots the solver chose, those it sold most of first, then the cheapest in
   tax;
2. each coarse security in turn moves a step either way while that improves the
   objective with every limit kept and no wash sale made (evaluated directly, the
   fine trades held);
3. the fine trades are solved again (Clarabel) with the coarse ones fixed — they
   make up what the whole shares leave — and 2 runs again, while that improves.

It is a heuristic; ``bench/optimize_gap.py`` measures it against the optimum in whole
shares found by a generic mixed-integer solver.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from poise.optimize.meetings import clash, sides, value
from poise.optimize.program import FINE, Arrays, Continuous, Limits, Weights

__all__ = ["FINE", "coarse", "polish"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
PASSES = 6  # coordinate passes over the coarse securities, each time the fine re-solved
ROUNDS = 3  # re-solves of the fine trades
SLACK = 1e-12  # a limit kept to this, in weights (the rule check after is exact)


def coarse(a: Arrays) -> Bools:
    """The securities that trade whole steps here."""
    found: Bools = a.unit >= FINE
    return found


class _Coarse:
    """The coarse securities' trades in whole steps, and the weights they make."""

    def __init__(self, a: Arrays, limits: Limits, start: Weights) -> None:
        self.a, self.limits = a, limits
        self.index = np.flatnonzero(coarse(a))
        fraction = np.where(a.lot_cap > 0, start.sell / np.where(a.lot_cap > 0, a.lot_cap, 1.0), 0)
        order = np.lexsort((a.lot_tax, -np.round(fraction, 9), a.lot_of))
        self.lots = {int(i): order[a.lot_of[order] == i] for i in self.index}
        self.sellable = {i: float(a.lot_cap[lots].sum()) for i, lots in self.lots.items()}

    def steps(self, weights: Weights) -> dict[int, int]:
        """Each coarse security's net trade rounded to the nearest step (+ buys)."""
        a = self.a
        sold = np.bincount(a.lot_of, weights=weights.sell, minlength=len(a.held))
        net = (weights.buy - sold) / a.unit
        return {int(i): round(float(net[i])) for i in self.index}

    def weights(self, fine: Weights, steps: dict[int, int]) -> Weights | None:
        """``fine``'s trades of fine securities with the coarse ones as ``steps``; None
        when a sale is more than the lots that may be sold hold."""
        a = self.a
        buy, sell = fine.buy.copy(), fine.sell.copy()
        buy[self.index] = 0.0
        for i, lots in self.lots.items():
            sell[lots] = 0.0
            k = steps[i]
            if k > 0:
                buy[i] = k * a.unit[i]
            elif k < 0:
                wanted = -k * a.unit[i]
                if wanted > self.sellable[i] * (1 + 1e-9):
                    return None
                for lot in lots:
                    take = min(wanted, float(a.lot_cap[lot]))
                    sell[lot] = take
                    wanted -= take
                    if wanted <= 0:
                        break
        return Weights(buy, sell)

    def score(self, weights: Weights | None) -> float:
        """The objective, or inf where a limit breaks or a wash sale is made."""
        if weights is None or self._breaks(weights):
            return np.inf
        return value(self.a, self.limits, weights)

    def _breaks(self, weights: Weights) -> bool:
        a, limits = self.a, self.limits
        h = a.half_spread
        bought, sold = float(weights.buy.sum()), float(weights.sell.sum())
        net = weights.buy - np.bincount(a.lot_of, weights=weights.sell, minlength=len(a.held))
        traded = np.abs(net[self.index])
        return bool(
            (1 + h) * bought - (1 - h) * sold > a.cash + SLACK
            or (limits.turnover is not None and bought + sold > limits.turnover + SLACK)
            or (limits.gain is not None and float(a.lot_gain @ weights.sell) > limits.gain + SLACK)
            or (weights.buy > a.buy_cap).any()
            or (
                limits.drift is not None
                and (np.abs(a.held - a.target + net) > limits.drift + SLACK).any()
            )
            or (limits.min_trade > 0 and ((traded > 0) & (traded < limits.min_trade - SLACK)).any())
            or clash(a, weights).any()
        )

    def descend(self, fine: Weights, steps: dict[int, int]) -> tuple[float, dict[int, int]]:
        """Steps moved one at a time while the objective improves."""
        best = self.score(self.weights(fine, steps))
        for _ in range(PASSES):
            moved = False
            for i in self.index.tolist():
                for move in (1, -1):
                    trial = dict(steps)
                    trial[i] += move
                    found = self.score(self.weights(fine, trial))
                    if found < best - SLACK:
                        best, steps, moved = found, trial, True
                        break
            if not moved:
                break
        return best, steps


def polish(a: Arrays, limits: Limits, start: Weights) -> Weights:
    """``start`` (a continuous solution, its meetings settled) with every coarse
    security trading whole steps: see the module. Where no whole-step choice keeps
    every limit, ``start`` itself (the rounding after mends)."""
    search = _Coarse(a, limits, start)
    if not len(search.index):
        return start
    program: Continuous | None = None
    fine = start
    best, steps = search.descend(fine, search.steps(start))
    for _ in range(ROUNDS):
        if best == np.inf:
            break
        program = program or Continuous(a, limits)
        fixed = search.weights(fine, steps)
        assert fixed is not None
        forbid, keep = sides(a, fixed)
        solved = program.solve(forbid=forbid, keep=keep, fixed=fixed, free=~coarse(a))
        if solved is None:
            break
        again, moved = search.descend(solved, steps)
        if again >= best - 1e-9:
            if again < best:
                best, steps, fine = again, moved, solved
            break
        best, steps, fine = again, moved, solved
    if best == np.inf:
        return start
    final = search.weights(fine, steps)
    return start if final is None else final
