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
        self.sellable = np.bincount(a.lot_of, weights=a.lot_cap, minlength=len(a.held))
        # Each lot's place in its security's order of sale: what its earlier lots hold.
        before = np.zeros(len(a.lot_of))
        for lots in self.lots.values():
            caps = a.lot_cap[lots]
            before[lots] = np.cumsum(caps) - caps
        self.before = before

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
        """Steps moved one at a time while the objective improves: each coarse security
        in turn a step up, else a step down, the first move that improves taken. Every
        move from where the search stands is valued at once (:meth:`_moves`); the one
        taken is valued again as :meth:`score` does, and taken only if it improves."""
        best = self.score(self.weights(fine, steps))
        order = self.index.tolist()
        for _ in range(PASSES):
            moved = False
            start = 0
            while start < len(order):
                current = self.weights(fine, steps)
                if current is None:
                    return best, steps
                valued = self._moves(current, steps, order[start:])
                taken = None
                for flat in np.flatnonzero(valued < best - SLACK).tolist():
                    j, down = divmod(flat, 2)
                    trial = dict(steps)
                    trial[order[start + j]] += -1 if down else 1
                    found = self.score(self.weights(fine, trial))
                    if found < best - SLACK:
                        taken = j
                        best, steps, moved = found, trial, True
                        break
                if taken is None:
                    break
                start += taken + 1
            if not moved:
                break
        return best, steps

    def _moves(self, current: Weights, steps: dict[int, int], chosen: list[int]) -> Floats:
        """What :meth:`score` would give each of ``chosen`` moved a step up and a step
        down from ``current`` (the weights of ``steps``), all at once: (securities, 2)."""
        a, limits = self.a, self.limits
        h, n = a.half_spread, len(a.held)
        security = np.repeat(np.array(chosen, dtype=np.int64), 2)
        count = np.array([steps[i] for i in chosen], dtype=np.int64).repeat(2)
        count += np.tile(np.array([1, -1], dtype=np.int64), len(chosen))
        unit = a.unit[security]
        buy = np.where(count > 0, count * unit, 0.0)
        wanted = np.where(count < 0, -count * unit, 0.0)
        mine = a.lot_of[None, :] == security[:, None]  # (moves, lots)
        sell = np.where(mine, np.clip(wanted[:, None] - self.before, 0.0, a.lot_cap), 0.0)
        over = wanted > self.sellable[security] * (1 + 1e-9)
        change_sell = sell - np.where(mine, current.sell, 0.0)
        change_buy = buy - current.buy[security]
        change_net = change_buy - change_sell.sum(axis=1)
        bought = float(current.buy.sum()) + change_buy
        sold = float(current.sell.sum()) + change_sell.sum(axis=1)
        net = current.buy - np.bincount(a.lot_of, weights=current.sell, minlength=n)
        gap = a.held - a.target + net
        moved_gap = gap[security] + change_net
        factor = (a.exposures.T @ gap)[None, :] + change_net[:, None] * a.exposures[security]
        specific = float((a.specific * gap) @ gap) + a.specific[security] * (
            moved_gap**2 - gap[security] ** 2
        )
        error = np.sqrt(np.maximum(np.einsum("ij,ij->i", factor, factor) + specific, 0.0))
        valued = (
            limits.risk * error
            + limits.tax * (float(a.lot_tax @ current.sell) + change_sell @ a.lot_tax)
            + limits.cost * h * (bought + sold)
        )

        def elsewhere(broken: Bools) -> Bools:
            """Whether a security other than each move's breaks a limit already."""
            found: Bools = (int(broken.sum()) - broken[security]) > 0
            return found

        breaks = over | ((1 + h) * bought - (1 - h) * sold > a.cash + SLACK)
        if limits.turnover is not None:
            breaks |= bought + sold > limits.turnover + SLACK
        if limits.gain is not None:
            gain = float(a.lot_gain @ current.sell) + change_sell @ a.lot_gain
            breaks |= gain > limits.gain + SLACK
        breaks |= elsewhere(current.buy > a.buy_cap) | (buy > a.buy_cap[security])
        if limits.drift is not None:
            breaks |= elsewhere(np.abs(gap) > limits.drift + SLACK)
            breaks |= np.abs(moved_gap) > limits.drift[security] + SLACK
        if limits.min_trade > 0:
            traded = np.zeros(n)
            traded[self.index] = np.abs(net[self.index])
            breaks |= elsewhere((traded > 0) & (traded < limits.min_trade - SLACK))
            moved = np.abs(net[security] + change_net)
            breaks |= (moved > 0) & (moved < limits.min_trade - SLACK)
        breaks |= self._clashes(current, security, buy, sell, mine)
        return np.where(breaks, np.inf, valued).reshape(-1, 2)

    def _clashes(
        self, current: Weights, security: Ints, buy: Floats, sell: Floats, mine: Bools
    ) -> Bools:
        """Whether each move leaves a wash sale: an identity both sold at a loss and
        bought (as :func:`poise.optimize.meetings.clash` finds it)."""
        a = self.a
        half = a.unit / 2
        groups = max(len(a.held), int(a.identity.max()) + 1)
        loss_sold = (current.sell > half[a.lot_of]) & a.lot_loss
        own_losses = np.bincount(a.lot_of[loss_sold], minlength=len(a.held))[security]
        losses = np.bincount(a.identity[a.lot_of[loss_sold]], minlength=groups)
        bought = current.buy > half
        buys = np.bincount(a.identity[bought], minlength=groups)
        both = (losses > 0) & (buys > 0)
        identity = a.identity[security]
        elsewhere = (int(both.sum()) - both[identity]) > 0
        new_losses = ((sell > half[security][:, None]) & a.lot_loss & mine).sum(axis=1)
        moved_losses = losses[identity] - own_losses + new_losses
        moved_buys = buys[identity] - bought[security] + (buy > half[security])
        found: Bools = elsewhere | ((moved_losses > 0) & (moved_buys > 0))
        return found


def polish(a: Arrays, limits: Limits, start: Weights, program: Continuous | None = None) -> Weights:
    """``start`` (a continuous solution, its meetings settled) with every coarse
    security trading whole steps: see the module. Where no whole-step choice keeps
    every limit, ``start`` itself (the rounding after mends). ``program``: a problem
    already set up, used as :func:`poise.optimize.meetings.settle` uses it."""
    search = _Coarse(a, limits, start)
    if not len(search.index):
        return start
    program = None if program is None else Continuous.of(a, limits, program)
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
