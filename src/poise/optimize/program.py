"""The ``optimize`` problem as arrays, and its two solves.

Everything here is in fractions of the account's value, so every figure the solvers
see is of order one whatever the account's size:

* ``β`` (per security) — the weight bought; ``σ`` (per lot) — the weight sold;
* ``g = held − target + β − Sσ`` — the gap to the model after trading
  (``S`` sums each security's lots);
* ``τ ≥ ‖(Bᵀg, √d·g)‖`` — the tracking error under the factor risk model; written as
  ``τ ≥ ‖R g‖`` with ``R`` upper triangular (``RᵀR = BBᵀ + diag(d)``) where that has
  fewer entries — an account's whole covariance, in half of them.

Minimise ``risk·τ + tax·Σ rateₖ·gainₖ·σₖ + cost·h·(Σβ + Σσ)`` (``gainₖ`` the lot's gain
as a fraction of its price, ``h`` the half-spread) subject to cash, turnover, the tax
budget and the per-lot and per-security limits in :class:`Arrays`.

:class:`Continuous` calls Clarabel directly (an LP with one second-order cone;
building it through a modelling layer costs more than solving it), set up once and
solved again with only the right-hand side changed. :func:`solve_shares` solves the
same problem in whole grid steps with HiGHS, near the continuous optimum, the tracking
error by outer approximation: each solve's gap adds a tangent cut
``τ ≥ (Σg*)ᵀg / TE(g*)`` until the cut is tight at the solution — then the integer
solution is optimal there to ``TOLERANCE``. A loss sale and a buy of a substantially
identical security exclude each other (a binary per identity), and a trade is either
nothing or at least the minimum size (a binary per security and side).
"""

from __future__ import annotations

import copy
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import clarabel
import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

__all__ = [
    "FINE",
    "TOLERANCE",
    "Arrays",
    "Continuous",
    "Limits",
    "Steps",
    "Weights",
    "solve_shares",
    "tracking",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
TOLERANCE = 1e-6  # of the account's value: $1 in a $1,000,000 account
CUTS = 30  # outer-approximation rounds before the best integer solution found is taken
NEAR = 2  # coarsest grid steps' weight either side of the continuous optimum
FAER_FROM = 1000  # variables: from here on the faer factorisation is the faster one
NODES = 50  # branch-and-bound nodes a mixed-integer solve may take; then its best stands
FINE = 1e-5  # of the account: a grid step this small is a continuous variable, rounded after


@contextmanager
def _no_stdout() -> Iterator[None]:
    """Standard output, at the file-descriptor level, goes nowhere inside.

    highspy's constructor registers its callback before any option can be set, and
    HiGHS then writes its banner straight to file descriptor 1: ahead of a command's
    JSON, say. A solver never writes to the user's standard output.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


@dataclass(frozen=True, slots=True)
class Arrays:
    """One account's problem in weights — the boundary where Decimal ends."""

    held: Floats  # (n,) weight held now
    target: Floats  # (n,)
    unit: Floats  # (n,) weight of one grid step
    lot_of: Ints  # (L,) security of each lot
    lot_cap: Floats  # (L,) weight that may be sold of each lot (0: none)
    lot_tax: Floats  # (L,) tax a unit of weight sold realises (negative for a loss)
    lot_gain: Floats  # (L,) gain a unit of weight sold realises
    lot_loss: Bools  # (L,) sold at a loss the tax law counts (in a taxable account)
    buy_cap: Floats  # (n,) the most of each that may be bought, in weights: 0 none, inf any
    identity: Ints  # (n,) wash-sale identity of each security
    cash: float  # weight of cash that may be spent: (cash − what must remain) / value
    half_spread: float
    exposures: Floats  # (n, k) factor risk model: Σ = B Bᵀ + diag(d)
    specific: Floats  # (n,)

    @property
    def covariance(self) -> Floats:
        matrix: Floats = self.exposures @ self.exposures.T + np.diag(self.specific)
        return matrix


@dataclass(frozen=True, slots=True)
class Weights:
    """A solution: weight bought per security, sold per lot."""

    buy: Floats
    sell: Floats


@dataclass(frozen=True, slots=True)
class Limits:
    """Settings that bound a solve, in weights (None: no bound)."""

    risk: float
    tax: float
    cost: float
    turnover: float | None
    gain: float | None  # the tax budget, as a weight of the account
    min_trade: float  # the smallest trade, as a weight (0: any)
    drift: Floats | None = None  # (n,) the most |weight − target| after, inf: any


class Rows:
    """A sparse matrix built from (row, column, value) blocks, and its right-hand side."""

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.rows: list[Ints] = []
        self.cols: list[Ints] = []
        self.values: list[Floats] = []
        self.rhs: list[Floats] = []
        self.count = 0

    def add(self, row: Ints, col: Ints, value: Floats | float, rhs: Floats | list[float]) -> None:
        """Rows ``0 … len(rhs)−1`` of a block, numbered after those already added."""
        self.rows.append(np.asarray(row, dtype=np.int64) + self.count)
        self.cols.append(np.asarray(col, dtype=np.int64))
        self.values.append(
            np.full(len(row), value) if isinstance(value, float) else np.asarray(value, np.float64)
        )
        self.rhs.append(np.asarray(rhs, dtype=np.float64))
        self.count += len(rhs)

    def matrix(self) -> sp.csc_matrix:
        rows, cols = np.concatenate(self.rows), np.concatenate(self.cols)
        values = np.concatenate(self.values)
        order = np.lexsort((rows, cols))  # column by column, each by row: compressed
        rows, cols, values = rows[order], cols[order], values[order]
        shape = (self.count, self.columns)
        if len(rows) > 1 and ((np.diff(rows) == 0) & (np.diff(cols) == 0)).any():
            return sp.csc_matrix((values, (rows, cols)), shape=shape)  # repeats, summed
        starts = np.zeros(self.columns + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=self.columns), out=starts[1:])
        return sp.csc_matrix((values, rows, starts), shape=shape)


_SOLVED = (clarabel.SolverStatus.Solved, clarabel.SolverStatus.AlmostSolved)


@functools.lru_cache(maxsize=4096)  # sizes: every account's in a run (not 64: each missed)
def _no_quadratic(columns: int) -> sp.csc_matrix:
    """The objective's quadratic part: none — one matrix a size, shared, as nothing changes it."""
    return sp.csc_matrix((columns, columns))


@dataclass(slots=True)
class _Solvers:
    """A problem's solvers and the right-hand side they hold now: one quick (each step's
    solve unrefined), one careful (refined), made when the quick one does not converge —
    and each right-hand side's solution, so that no problem is solved twice (a search
    and the account's own solve after it often ask for the same)."""

    quick: Any
    rhs: Floats
    careful: Any = None
    solved: dict[bytes, Floats | None] = field(default_factory=dict)  # by right-hand side


class Continuous:
    """The continuous problem of one account (Clarabel), set up once and solved again
    with other limits on what may be bought and sold — only the right-hand side moves,
    so the solver keeps its factorisation's structure."""

    def __init__(self, a: Arrays, limits: Limits) -> None:
        n, lots, k = len(a.held), len(a.lot_of), a.exposures.shape[1]
        h = a.half_spread
        nvar = 2 * n + lots + 1
        b_, s_, g_, t_ = 0, n, n + lots, 2 * n + lots  # where each block starts
        every_n, every_lot = np.arange(n), np.arange(lots)
        m = Rows(nvar)
        # Zero cone: g − β + Sσ = held − target.
        m.add(
            np.concatenate([every_n, every_n, a.lot_of]),
            np.concatenate([g_ + every_n, b_ + every_n, s_ + every_lot]),
            np.concatenate([np.ones(n), -np.ones(n), np.ones(lots)]),
            a.held - a.target,
        )
        zero = self.lows = m.count
        # Nonnegative cone: −β ≤ 0, −σ ≤ 0, σ ≤ cap, β ≤ cap, cash, budgets.
        m.add(every_n, b_ + every_n, -1.0, np.zeros(n))
        m.add(every_lot, s_ + every_lot, -1.0, np.zeros(lots))
        self.caps = m.count
        m.add(every_lot, s_ + every_lot, 1.0, a.lot_cap)
        most = max(a.cash, 0.0) + float(a.lot_cap.sum())  # no buy can be larger
        m.add(every_n, b_ + every_n, 1.0, np.minimum(a.buy_cap, most))
        trades = np.arange(n + lots)
        once = np.zeros(n + lots, dtype=np.int64)
        m.add(once, trades, np.concatenate([np.full(n, 1 + h), np.full(lots, -(1 - h))]), [a.cash])
        if limits.turnover is not None:
            m.add(once, trades, 1.0, [limits.turnover])
        if limits.gain is not None and lots:
            m.add(np.zeros(lots, dtype=np.int64), s_ + every_lot, a.lot_gain, [limits.gain])
        if limits.drift is not None:  # −drift ≤ g ≤ drift
            banded = np.flatnonzero(np.isfinite(limits.drift))
            for sign in (1.0, -1.0):
                m.add(np.arange(len(banded)), g_ + banded, sign, limits.drift[banded])
        nonneg = m.count - zero
        # Second-order cone: (τ, Bᵀg, √d·g), or (τ, R g) where R has fewer entries.
        m.add(np.array([0]), np.array([t_]), -1.0, [0.0])
        spread = np.flatnonzero(a.specific > 0)
        if n * (n + 1) // 2 < k * n + len(spread):  # the triangular root is the smaller
            root = _root(a)
            rows, cols = np.triu_indices(n)
            m.add(rows, g_ + cols, -root[rows, cols], np.zeros(n))
        else:
            rows, cols = np.repeat(np.arange(k), n), np.tile(np.arange(n), k)  # by factor
            m.add(rows, g_ + cols, -a.exposures.T.ravel(), np.zeros(k))
            m.add(
                np.arange(len(spread)), g_ + spread, -np.sqrt(a.specific[spread]),
                np.zeros(len(spread)),
            )  # fmt: skip
        objective = np.concatenate(
            [
                np.full(n, limits.cost * h),
                limits.tax * a.lot_tax + limits.cost * h,
                np.zeros(n),
                [limits.risk],
            ]
        )
        self.a, self.limits = a, limits
        rhs = np.concatenate(m.rhs)
        self.data = (
            _no_quadratic(nvar),
            objective,
            m.matrix(),
            [
                clarabel.ZeroConeT(zero),
                clarabel.NonnegativeConeT(nonneg),
                clarabel.SecondOrderConeT(m.count - zero - nonneg),
            ],
        )
        self.large = nvar > FAER_FROM
        self.state = _Solvers(self._solver(rhs, refined=False), rhs)
        self.blocks = (b_, s_, g_)

    @classmethod
    def of(cls, a: Arrays, limits: Limits, program: Continuous | None = None) -> Continuous:
        """``a``'s problem under ``limits``: ``program``'s, its solver shared, where it is
        the same problem but for what may be bought and sold (only the right-hand side
        differs: a security left as it is, a household's decisions); else set up."""
        if program is None or not program._same(a, limits):
            return cls(a, limits)
        view = copy.copy(program)
        view.a = a
        return view

    def _same(self, a: Arrays, limits: Limits) -> bool:
        """Whether ``a`` under ``limits`` differs from this problem only in its caps."""
        mine, held = self.a, self.limits
        arrays = ("held", "target", "lot_of", "lot_tax", "lot_gain", "exposures", "specific")
        return (
            all(
                getattr(a, name) is getattr(mine, name)  # a problem narrowed shares its arrays
                or np.array_equal(getattr(a, name), getattr(mine, name))
                for name in arrays
            )
            and (a.cash, a.half_spread) == (mine.cash, mine.half_spread)
            and (limits.risk, limits.tax, limits.cost, limits.turnover, limits.gain)
            == (held.risk, held.tax, held.cost, held.turnover, held.gain)
            and (
                limits.drift is held.drift
                or (
                    limits.drift is not None
                    and held.drift is not None
                    and np.array_equal(limits.drift, held.drift)
                )
            )
        )

    def _solver(self, rhs: Floats, *, refined: bool) -> Any:
        quadratic, objective, matrix, cones = self.data
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.max_threads = 1
        settings.presolve_enable = False  # so that the right-hand side may be updated
        # Iterative refinement of each step's solve is half of a solve's time, and in
        # nearly every problem changes its answer by less than 1e-9 of the account; in
        # the few where it is needed (about 3% of a firm's solves) the unrefined solve
        # stops short of its tolerances — or finds no solution — and is done again
        # refined: only a refined solve's "none" or "almost" is taken.
        settings.iterative_refinement_enable = refined
        if self.large:
            # A large account's problem, in weights, is well scaled enough: equilibration
            # costs more time than it buys accuracy (measured; in small accounts with
            # nearly collinear securities it is needed).
            settings.direct_solve_method = "faer"
            settings.equilibrate_enable = False
        return clarabel.DefaultSolver(quadratic, objective, matrix, rhs, cones, settings)

    def solve(
        self, *, forbid: Bools | None = None, keep: Bools | None = None,
        fixed: Weights | None = None, free: Bools | None = None,
    ) -> Weights | None:  # fmt: skip
        """The optimum with the securities ``forbid`` not bought and the lots ``keep``
        not sold — or, given ``fixed``, every trade of a security not ``free`` exactly
        as there; None when no trades satisfy the constraints."""
        a = self.a
        n, lots = len(a.held), len(a.lot_of)
        lot_cap = a.lot_cap if keep is None else np.where(keep, 0.0, a.lot_cap)
        closed = a.buy_cap <= 0
        if forbid is not None:
            closed = closed | forbid
        most = max(a.cash, 0.0) + float(lot_cap.sum())  # no buy can be larger
        state = self.state
        rhs = state.rhs.copy()
        rhs[self.lows : self.lows + n + lots] = 0.0
        rhs[self.caps : self.caps + lots] = lot_cap
        rhs[self.caps + lots : self.caps + lots + n] = np.where(
            closed, 0.0, np.minimum(a.buy_cap, most)
        )
        if fixed is not None and free is not None:
            buy = np.where(free, 0.0, fixed.buy)
            sell = np.where(free[a.lot_of], 0.0, fixed.sell)
            rhs[self.lows : self.lows + n] = -buy
            rhs[self.lows + n : self.lows + n + lots] = -sell
            rhs[self.caps : self.caps + lots] = np.where(free[a.lot_of], lot_cap, sell)
            rhs[self.caps + lots : self.caps + lots + n] = np.where(free & ~closed, most, buy)
        key = rhs.tobytes()
        if key not in state.solved:
            state.solved[key] = self._solved(state, rhs)
        x = state.solved[key]
        if x is None:
            return None
        b_, s_, g_ = self.blocks
        buy = np.where(closed, 0.0, np.maximum(x[b_:s_], 0.0))  # not a solver's 1e-12
        return Weights(buy, np.maximum(np.minimum(x[s_:g_], lot_cap), 0.0))

    def _solved(self, state: _Solvers, rhs: Floats) -> Floats | None:
        """The solution with right-hand side ``rhs`` (None: no trades satisfy it)."""
        if not np.array_equal(rhs, state.rhs):
            state.quick.update(b=rhs)
            if state.careful is not None:
                state.careful.update(b=rhs)
            state.rhs = rhs
        solution = state.quick.solve()
        if solution.status != clarabel.SolverStatus.Solved:  # short of it: refined
            state.careful = state.careful or self._solver(rhs, refined=True)
            solution = state.careful.solve()
        if solution.status not in _SOLVED:
            return None
        x: Floats = np.array(solution.x)
        return x


def _root(a: Arrays) -> Floats:
    """The upper-triangular ``R`` (n × n) with ``RᵀR = B Bᵀ + diag(d)``: the R of the QR
    factorisation of the stacked ``(Bᵀ; √d)``, so that ``‖R g‖ = ‖(Bᵀg, √d·g)‖`` for
    every ``g``. It exists for every model (a singular covariance gives zeros on its
    diagonal, where a Cholesky factorisation would fail). A specific variance below zero
    counts as none, as it does in the factor form."""
    stacked = np.vstack([a.exposures.T, np.diag(np.sqrt(np.clip(a.specific, 0.0, None)))])
    return cast(Floats, np.linalg.qr(stacked, mode="r"))  # mode "r": R alone


def tracking(a: Arrays, gap: Floats) -> float:
    """The tracking error of a gap to the model, under the factor risk model."""
    factor = a.exposures.T @ gap
    return float(np.sqrt(factor @ factor + (a.specific * gap) @ gap))


class _Model:
    """A HiGHS model, built a block of columns and a row at a time."""

    def __init__(self) -> None:
        self.lower: list[Floats] = []
        self.upper: list[Floats] = []
        self.cost: list[Floats] = []
        self.integer: list[bool] = []
        self.entries: list[tuple[int, int, float]] = []  # (row, column, value)
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.count = 0

    def columns(
        self, count: int, *, lower: Floats | float, upper: Floats | float, cost: Floats | float,
        integer: bool | Bools = False,
    ) -> int:  # fmt: skip
        """Add ``count`` columns (whole numbers where ``integer``); the index of the first."""
        first = self.count
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (count,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (count,)))
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (count,)))
        self.integer += np.broadcast_to(np.asarray(integer, dtype=bool), (count,)).tolist()
        self.count += count
        return first

    def row(self, entries: Sequence[tuple[Any, Any]], low: float, up: float) -> None:
        r = len(self.row_lower)
        self.entries.extend((r, int(c), float(v)) for c, v in entries)
        self.row_lower.append(low)
        self.row_upper.append(up)

    def build(self) -> highspy.Highs:
        with _no_stdout():
            solver = highspy.Highs()
        for option, value in (
            ("output_flag", False),
            ("threads", 1),
            ("mip_rel_gap", 0.0),
            ("mip_abs_gap", TOLERANCE),
            ("mip_allow_restart", False),
            ("mip_heuristic_run_rins", False),
            ("mip_heuristic_run_rens", False),
            ("mip_heuristic_run_root_reduced_cost", False),
            ("mip_max_nodes", NODES),
            ("primal_feasibility_tolerance", 1e-9),
            ("mip_feasibility_tolerance", 1e-9),
        ):
            solver.setOptionValue(option, value)
        lp = highspy.HighsLp()
        lp.num_col_ = self.count
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.concatenate(self.cost)
        lp.col_lower_ = np.concatenate(self.lower)
        lp.col_upper_ = np.concatenate(self.upper)
        lp.row_lower_ = np.array(self.row_lower)
        lp.row_upper_ = np.array(self.row_upper)
        r, c, v = (list(x) for x in zip(*self.entries, strict=True))
        matrix = sp.csc_matrix((v, (r, c)), shape=(lp.num_row_, self.count))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr
        lp.a_matrix_.index_ = matrix.indices
        lp.a_matrix_.value_ = matrix.data
        whole, real = highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous
        lp.integrality_ = [whole if flag else real for flag in self.integer]
        solver.passModel(lp)
        return solver


@dataclass(frozen=True, slots=True)
class Steps:
    """A solution in shares: grid steps bought and sold per security, and the weight
    each lot gives to the sales."""

    buy: Ints
    sell: Ints
    lots: Floats


def _near(a: Arrays, limits: Limits, start: Weights, *bounds: tuple[Floats, Floats]) -> None:
    """Bound each security's steps bought and sold to within ``NEAR`` of the coarsest
    grid step's weight of the continuous optimum (a fine-grid security may make up
    for a whole share of a coarse one); nothing stays possible when there is a
    minimum trade size."""
    n = len(a.held)
    sold = np.bincount(a.lot_of, weights=start.sell, minlength=n) if len(a.lot_of) else np.zeros(n)
    radius = np.ceil(NEAR * float(a.unit.max()) / a.unit - 1e-9)
    for (low, up), solved in zip(bounds, (start.buy, sold), strict=True):
        steps = solved / a.unit
        np.minimum(up, np.ceil(steps - 1e-9) + radius, out=up)
        if limits.min_trade <= 0:
            low[:] = np.clip(np.floor(steps + 1e-9) - radius, 0.0, up)


def _exclusions(m: _Model, a: Arrays, buy_up: Floats, b_: int, l_: int) -> None:
    """A loss sale and a buy of the same identity exclude each other: a binary each."""
    inf = highspy.kHighsInf
    for identity in np.unique(a.identity):
        members = np.flatnonzero((a.identity == identity) & (buy_up > 0))
        losing = np.flatnonzero(a.lot_loss & (a.identity[a.lot_of] == identity) & (a.lot_cap > 0))
        if len(members) and len(losing):
            y = m.columns(1, lower=0.0, upper=1.0, cost=0.0, integer=True)
            m.row([(l_ + k, 1.0) for k in losing] + [(y, -float(a.lot_cap[losing].sum()))], -inf, 0)
            for i in members:
                m.row([(b_ + i, 1.0), (y, float(buy_up[i]))], -inf, float(buy_up[i]))


def _minimum(m: _Model, a: Arrays, smallest: float, sides: list[tuple[int, Floats]]) -> None:
    """A trade is nothing or at least ``smallest``: a binary per security and side."""
    inf = highspy.kHighsInf
    for first, up in sides:
        for i in np.flatnonzero(up > 0):
            z = m.columns(1, lower=0.0, upper=1.0, cost=0.0, integer=True)
            m.row([(first + i, a.unit[i]), (z, -smallest)], 0.0, inf)
            m.row([(first + i, 1.0), (z, -float(up[i]))], -inf, 0.0)


def solve_shares(a: Arrays, limits: Limits, start: Weights | None) -> Steps | None:
    """The optimum in whole grid steps per security (HiGHS); see the module.

    ``start`` (the continuous optimum) seeds the first tangent cuts. None when no
    trades satisfy the constraints.
    """
    n, lots, h = len(a.held), len(a.lot_of), a.half_spread
    inf = highspy.kHighsInf
    sellable = np.bincount(a.lot_of, weights=a.lot_cap, minlength=n) if lots else np.zeros(n)
    sell_up = np.floor(sellable / a.unit + 1e-9)
    buy_up = np.floor((max(a.cash, 0.0) + float(sellable.sum())) / (a.unit * (1 + h)) + 1e-9)
    buy_up = np.where(a.buy_cap > 0, np.minimum(buy_up, np.floor(a.buy_cap / a.unit + 1e-9)), 0.0)
    buy_low, sell_low = np.zeros(n), np.zeros(n)
    if start is not None:
        _near(a, limits, start, (buy_low, buy_up), (sell_low, sell_up))
    m = _Model()
    whole = a.unit >= FINE  # a finer grid is solved continuous and rounded after
    b_ = m.columns(n, lower=buy_low, upper=buy_up, cost=limits.cost * h * a.unit, integer=whole)
    s_ = m.columns(n, lower=sell_low, upper=sell_up, cost=0.0, integer=whole)
    l_ = m.columns(lots, lower=0.0, upper=a.lot_cap, cost=limits.tax * a.lot_tax + limits.cost * h)
    drift = np.full(n, inf) if limits.drift is None else limits.drift
    g_ = m.columns(n, lower=-drift, upper=drift, cost=0.0)
    t_ = m.columns(1, lower=0.0, upper=inf, cost=limits.risk)
    for i in range(n):
        mine = [(l_ + k, 1.0) for k in np.flatnonzero(a.lot_of == i)]
        m.row([*mine, (s_ + i, -a.unit[i])], 0.0, 0.0)  # the lots make up the sale
        gap = a.held[i] - a.target[i]
        m.row([(g_ + i, 1.0), (b_ + i, -a.unit[i]), (s_ + i, a.unit[i])], gap, gap)
    buys = [(b_ + i, a.unit[i]) for i in range(n)]
    sells = [(l_ + k, 1.0) for k in range(lots)]
    margin = float(a.unit[~whole].sum()) * (1 + h)  # what rounding the fine grid may spend
    m.row([(c, (1 + h) * v) for c, v in buys] + [(c, -(1 - h)) for c, _ in sells], -inf,
          a.cash - margin)  # fmt: skip
    if limits.turnover is not None:
        m.row(buys + sells, -inf, limits.turnover)
    if limits.gain is not None and lots:
        m.row([(l_ + k, a.lot_gain[k]) for k in range(lots)], -inf, limits.gain)
    _exclusions(m, a, buy_up, b_, l_)
    if limits.min_trade > 0:
        _minimum(m, a, limits.min_trade, [(b_, buy_up), (s_, sell_up)])
    x = _outer_approximation(m.build(), a, limits, start, linear=np.concatenate(m.cost)[:t_], g_=g_)
    if x is None:
        return None
    return Steps(np.rint(x[b_:s_]).astype(np.int64), np.rint(x[s_:l_]).astype(np.int64), x[l_:g_])


def _outer_approximation(
    solver: highspy.Highs, a: Arrays, limits: Limits, start: Weights | None, *, linear: Floats,
    g_: int,
) -> Floats | None:  # fmt: skip
    """Solve, add the tangent cut at the solution's gap, solve again — until the cut is
    tight there (or time is up: then the best solution found stands)."""
    n = len(a.held)
    t_ = g_ + n
    covariance = a.covariance
    index = np.arange(g_ - 1, t_, dtype=np.int32)
    index[0] = t_

    def cut(gap: Floats) -> None:
        error = tracking(a, gap)
        if error > 1e-12:
            slope = -covariance @ gap / error
            solver.addRow(0.0, highspy.kHighsInf, n + 1, index, np.concatenate([[1.0], slope]))

    cut(a.held - a.target)
    if start is not None:  # the continuous optimum and a grid step either side of it
        sold = np.bincount(a.lot_of, weights=start.sell, minlength=n) if len(a.lot_of) else 0.0
        middle = a.held - a.target + start.buy - sold
        cut(middle)
        for i in range(n):
            for sign in (-1.0, 1.0):
                moved = middle.copy()
                moved[i] += sign * a.unit[i]
                cut(moved)
    best: tuple[float, Floats] | None = None
    for _ in range(CUTS):
        solver.run()
        info = solver.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            break
        x = np.asarray(solver.getSolution().col_value)
        error = tracking(a, x[g_:t_])
        true = float(linear @ x[:t_]) + limits.risk * error
        if best is None or true < best[0]:
            best = (true, x)
        if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break  # out of nodes: the best found stands
        if limits.risk * (error - x[t_]) <= TOLERANCE:
            break
        # The cuts only under-estimate tracking error, so the solver's bound is a bound
        # on the true optimum too: once the best found is this close to it, stop.
        if best[0] - info.mip_dual_bound <= TOLERANCE:
            break
        cut(x[g_:t_])
    return None if best is None else best[1]
