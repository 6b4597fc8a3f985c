"""Benchmark: which covariance estimator predicts tracking error best, out of sample.

    .venv/bin/python bench/risk_oos.py [--pairs 200] [--seed 7]

The demo market (:func:`poise.demo.read_market`: the 20 real stocks, SPY, VOO, VTI,
the synthetic bond funds and the money-market fund) is cut into windows. Each
estimator is fitted on ``--days`` trading days of daily simple returns and scored on
the 250 trading days that follow: for many pairs of a portfolio ``w`` and a target
``t``, the predicted annual tracking error ``√((w−t)ᵀ Σ (w−t))`` against the realised
one (the standard deviation of the daily active return ``(w−t)·r`` over the following
window, × √252). Origins step by 125 trading days from 2004 to the end of the data.

Kinds of pair, each scored apart:

- **random**: two random portfolios of 3 to 12 securities;
- **tilt**: a random target and the same with one to three positions moved, 2–10% of
  the account each (the small differences ``optimize`` weighs);
- **twin swap**: all in one index fund against all in another (VOO/SPY, VTI/SPY,
  VOO/VTI) — what a tax-loss harvest into a replacement is;
- **stock for stock**: all in one stock against all in another.

The demo universe has 26 securities, fewer than the 40 factors the risk model keeps,
so it uses the sample covariance whole; the factor-model rows show what a bigger
universe gets (10 components here stand for 40 of 500).

The table gives, per estimator and kind, the mean absolute error of the predicted
tracking error (percentage points), the median of predicted ÷ realised, and for the
twins the mean predicted and realised tracking errors.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from datetime import date

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from poise.demo import read_market
from poise.optimize.risk import (
    TRADING_DAYS,
    _twin_factors,
    ledoit_wolf,
    sample_covariance_of_returns,
)

Floats = npt.NDArray[np.float64]
Estimator = Callable[[Floats], Floats]  # daily returns (days × n) → annual covariance

TEST_DAYS = 250
STEP = 125
START = date(2004, 1, 1)
TWINS = (("VOO", "SPY"), ("VTI", "SPY"), ("VOO", "VTI"))


def lw_identity(returns: Floats) -> Floats:
    """Ledoit–Wolf (2004) toward a scaled identity."""
    return ledoit_wolf(returns)[0] * TRADING_DAYS


def sample(returns: Floats) -> Floats:
    """The sample covariance of the demeaned returns."""
    return sample_covariance_of_returns(returns) * TRADING_DAYS


def lw_constant_correlation(returns: Floats) -> Floats:
    """Ledoit–Wolf (2003) toward the constant-correlation matrix."""
    days = returns.shape[0]
    x = returns - returns.mean(axis=0)
    s = x.T @ x / days
    var = np.diag(s).copy()
    sd = np.sqrt(np.where(var > 0, var, 1.0))
    live = var > 0
    corr = s / np.outer(sd, sd)
    m = int(live.sum())
    rbar = (corr[np.ix_(live, live)].sum() - m) / (m * (m - 1)) if m > 1 else 0.0
    target = rbar * np.outer(sd, sd) * np.outer(live, live)
    np.fill_diagonal(target, var)
    y = x**2
    phi_mat = y.T @ y / days - s**2
    phi = float(phi_mat.sum())
    term1 = (x**3).T @ x / days
    help_ = x.T @ x / days
    term2 = np.diag(help_)[:, None] * s
    theta = term1 - term2
    np.fill_diagonal(theta, 0.0)
    ratio = np.outer(1 / sd, sd) * np.outer(live, live)
    rho = float(np.diag(phi_mat).sum()) + rbar * float((ratio * theta).sum())
    gamma = float(np.sum((s - target) ** 2))
    if gamma <= 0:
        return s * TRADING_DAYS
    kappa = (phi - rho) / gamma
    intensity = max(0.0, min(1.0, kappa / days))
    shrunk: Floats = (intensity * target + (1 - intensity) * s) * TRADING_DAYS
    return shrunk


def factor_model(k: int, *, twins: bool = False) -> Estimator:
    """``k`` principal components of the sample covariance, specific variances from
    the residuals; with ``twins``, the risk model's twin factors added (what
    :meth:`RiskModel.of` does for a universe of more than 40 securities)."""

    def estimate(returns: Floats) -> Floats:
        s = sample_covariance_of_returns(returns)
        values, vectors = np.linalg.eigh(s)
        b = vectors[:, -k:] * np.sqrt(np.clip(values[-k:], 0.0, None))
        if twins:
            b = np.hstack([b, _twin_factors(s, b)])
        common = b @ b.T
        specific = np.clip(np.diag(s) - np.diag(common), 0.0, None)
        model: Floats = (common + np.diag(specific)) * TRADING_DAYS
        return model

    return estimate


ESTIMATORS: tuple[tuple[str, Estimator], ...] = (
    ("LW → scaled identity (before)", lw_identity),
    ("LW → constant correlation", lw_constant_correlation),
    ("3 PCs + specific", factor_model(3)),
    ("10 PCs + specific", factor_model(10)),
    ("10 PCs + twin factors + specific", factor_model(10, twins=True)),
    ("sample (chosen)", sample),
)


def pairs(ids: list[str], count: int, rng: np.random.Generator) -> dict[str, list[Floats]]:
    """Active weights ``w − t`` of each kind."""
    n = len(ids)
    at = {name: i for i, name in enumerate(ids)}
    stocks = [i for i, name in enumerate(ids) if name.isupper() and len(name) <= 4]
    stocks = [i for i in stocks if ids[i] not in {"SPY", "VOO", "VTI", "BND", "VGSH", "VMFXX"}]

    def portfolio() -> Floats:
        chosen = rng.choice(n, size=int(rng.integers(3, 13)), replace=False)
        w = np.zeros(n)
        w[chosen] = rng.dirichlet(np.ones(len(chosen)))
        return w

    kinds: dict[str, list[Floats]] = {
        "random": [],
        "tilt": [],
        "twin swap": [],
        "stock for stock": [],
    }
    for _ in range(count):
        kinds["random"].append(portfolio() - portfolio())
        target = portfolio()
        held = target.copy()
        for _ in range(int(rng.integers(1, 4))):
            source, sink = rng.choice(n, size=2, replace=False)
            amount = min(float(rng.uniform(0.02, 0.10)), held[source])
            held[source] -= amount
            held[sink] += amount
        kinds["tilt"].append(held - target)
        a, b = rng.choice(stocks, size=2, replace=False)
        swap = np.zeros(n)
        swap[a], swap[b] = 1.0, -1.0
        kinds["stock for stock"].append(swap)
    for one, other in TWINS:
        swap = np.zeros(n)
        swap[at[one]], swap[at[other]] = 1.0, -1.0
        kinds["twin swap"].append(swap)
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, nargs="+", default=[60, 250, 500])
    args = parser.parse_args()

    market = read_market()
    ids = list(market.security_ids)
    levels = np.column_stack([market.levels[name] for name in ids])
    returns = levels[1:] / levels[:-1] - 1.0
    first = market.first_index_on_or_after(START)
    console = Console(width=200)
    rng = np.random.default_rng(args.seed)
    for window in args.days:
        errors: dict[tuple[str, str], list[float]] = {}
        ratios: dict[tuple[str, str], list[float]] = {}
        twins: dict[tuple[str, str], list[tuple[float, float]]] = {}
        origins = range(max(first, window), len(returns) - TEST_DAYS + 1, STEP)
        for origin in origins:
            fit = returns[origin - window : origin]
            test = returns[origin : origin + TEST_DAYS]
            kinds = pairs(ids, args.pairs, rng)
            for name, estimator in ESTIMATORS:
                sigma = estimator(fit)
                for kind, actives in kinds.items():
                    for number, active in enumerate(actives):
                        predicted = float(np.sqrt(max(active @ sigma @ active, 0.0)))
                        realised = float(np.std(test @ active) * np.sqrt(TRADING_DAYS))
                        errors.setdefault((name, kind), []).append(abs(predicted - realised))
                        if realised > 1e-9:
                            ratios.setdefault((name, kind), []).append(predicted / realised)
                        if kind == "twin swap":
                            pair = "/".join(TWINS[number])
                            twins.setdefault((name, pair), []).append((predicted, realised))
        table = Table(
            title=f"fit on {window} days, scored on the next {TEST_DAYS}: {len(origins)} windows"
            " — mean |predicted − realised| TE, pp (median predicted ÷ realised)"
        )
        table.add_column("estimator")
        kinds_named = ("random", "tilt", "twin swap", "stock for stock")
        for kind in kinds_named:
            table.add_column(kind, justify="right")
        for pair in TWINS:
            table.add_column("/".join(pair) + " pred / real", justify="right")
        for name, _ in ESTIMATORS:
            cells = []
            for kind in kinds_named:
                mae = statistics.fmean(errors[(name, kind)]) * 100
                some = ratios.get((name, kind))
                median = f" ({statistics.median(some):.2f})" if some else ""
                cells.append(f"{mae:.2f}{median}")
            for pair in TWINS:
                seen = twins[(name, "/".join(pair))]
                pred = statistics.fmean(p for p, _ in seen) * 100
                real = statistics.fmean(r for _, r in seen) * 100
                cells.append(f"{pred:.2f}% / {real:.2f}%")
            table.add_row(name, *cells)
        console.print(table)


if __name__ == "__main__":
    main()
