"""Benchmark: time per account of the ``optimize`` method, on one core.

    .venv/bin/python bench/optimize_speed.py [--seeds 5] [--repeats 10]

For each size — a 20-security / 80-lot account and a 500-security / 2,000-lot
direct-indexing account, both of $1,000,000, built by ``rebalance_inputs.make_account``
from the real shared prices — times ``rebalance_optimize`` end to end: the problem
into arrays, the continuous solves (Clarabel, called directly: one, then the search
over where loss sales meet buys of the same identity — a few dives, or with up to 6
such meetings the exact search, tens of solves), rounding to shares, lot
instructions, the rule check and the proposal's figures. The risk model is built
once per universe, as a firm-wide run builds it once for every account, and is not
timed. Targets: ≤ 5 ms and ≤ 150 ms.

Two more rows, without targets: a small account ($50,000, 20 securities), where a
share is a visible weight and the rounding is solved exactly (HiGHS); and the same
continuous problem built and solved through cvxpy (compile included), the measure
behind calling Clarabel directly.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # one core

# The imports below come after the thread settings on purpose: BLAS reads them once.
import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import cvxpy as cp  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import track  # noqa: E402
from rich.table import Table  # noqa: E402

from poise.optimize.bands import rebalance_bands  # noqa: E402
from poise.optimize.program import Arrays, Limits  # noqa: E402
from poise.optimize.risk import RiskModel  # noqa: E402
from poise.optimize.tax_aware import (  # noqa: E402
    OptimizeSettings,
    _arrays,
    _limits,
    objective,
    rebalance_optimize,
)
from rebalance_inputs import make_account  # noqa: E402

SIZES = (
    ("20 securities / 80 lots", 20, 80, 1_000_000.0, 5.0),
    ("500 securities / 2,000 lots", 500, 2000, 1_000_000.0, 150.0),
    ("small: 20 / 80, $50,000 (exact)", 20, 80, 50_000.0, None),
)


def cvxpy_solve(a: Arrays, limits: Limits) -> None:
    """The continuous problem of :mod:`poise.optimize.program`, through cvxpy."""
    n, lots = len(a.held), len(a.lot_of)
    buy = cp.Variable(n, nonneg=True)
    sell = cp.Variable(lots, nonneg=True)
    summed = np.zeros((n, lots))
    summed[a.lot_of, np.arange(lots)] = 1.0
    gap = a.held - a.target + buy - summed @ sell
    h = a.half_spread
    risk = cp.norm(cp.hstack([a.exposures.T @ gap, cp.multiply(np.sqrt(a.specific), gap)]))
    cost = limits.cost * h * (cp.sum(buy) + cp.sum(sell))
    problem = cp.Problem(
        cp.Minimize(limits.risk * risk + limits.tax * (a.lot_tax @ sell) + cost),
        [
            sell <= a.lot_cap,
            buy[a.buy_cap <= 0] == 0,
            (1 + h) * cp.sum(buy) - (1 - h) * cp.sum(sell) <= a.cash,
        ],
    )
    problem.solve(solver=cp.CLARABEL)


def timed(run: Callable[[], object], repeats: int) -> list[float]:
    run()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    console = Console(width=120)
    table = Table(title="optimize: time per account (one core)")
    for column in ("account", "median ms", "p95 ms", "target", "cvxpy ms (median)", "vs bands"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for label, securities, lots, value, target in SIZES:
        times: list[float] = []
        through_cvxpy: list[float] = []
        better = 0
        for seed in track(range(1, args.seeds + 1), description=label, console=console):
            problem, covariance = make_account(securities, lots, seed=seed, value=value)
            risk = RiskModel.of([h.security_id for h in problem.holdings], covariance)
            times += timed(lambda p=problem, r=risk: rebalance_optimize(p, r), args.repeats)
            proposal = rebalance_optimize(problem, risk)
            bands = rebalance_bands(problem)
            better += objective(problem, proposal.trades, risk) <= objective(
                problem, bands.trades, risk
            )
            if target is not None:
                a = _arrays(problem, risk, OptimizeSettings())
                limits = _limits(problem, OptimizeSettings())
                through_cvxpy += timed(lambda a=a, limits=limits: cvxpy_solve(a, limits), 3)
        median = statistics.median(times)
        table.add_row(
            label,
            f"{median:.1f}",
            f"{p95(times):.1f}",
            "—" if target is None else f"≤ {target:g} {'✓' if median <= target else '✗'}",
            f"{statistics.median(through_cvxpy):.1f}" if through_cvxpy else "—",
            f"better in {better} of {args.seeds}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
