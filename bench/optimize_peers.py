"""Benchmark: ``optimize`` against its peers, taxrebalance and cvxportfolio, on the same accounts.

    .venv/bin/python bench/optimize_peers.py [--sizes 20x80 500x2000] [--seeds 1 2 3]
        [--runs 20] [--peer-runs 3] [--engines poise taxrebalance cvxportfolio]

One core (BLAS threads set to 1), for every engine alike. A full run takes about half
an hour, most of it taxrebalance at 500/2,000 (about a minute a run). poise is
whatever ``import poise`` finds; to time another tree's (a commit exported with
``git archive``, say), put its ``src`` first on ``PYTHONPATH``.

The peers need packages the project's venv must not get (taxrebalance 0.2.0 pins
``osqp<1.1``, older than the one cvxpy brought in), so the first run builds a venv of
its own, ``bench/out/venv`` (git-ignored): the project's own packages at the versions
of the interpreter that started it (osqp aside), plus the ``bench`` optional
dependencies (``pip install -e .[bench]``), then re-runs itself there. Nothing is
downloaded except by that ``pip install``. Delete the folder to rebuild it.

Every account comes from :func:`rebalance_inputs.make_account` (real prices, lots at
real bases). Each engine gets the same :class:`~poise.optimize.problem.Problem` and
covariance in one process, and its trades are scored by one function,
:func:`poise.optimize.tax_aware.objective` (tracking error + tax + cost, as fractions
of the account; shown in basis points), and checked by
:func:`poise.optimize.check.violations`, which are counted, never hidden (the objective
gives a washed loss no benefit, whichever engine sells it). A run is
timed from the Problem to poise ``Trade`` objects: translating inputs, solving, and
translating the answer back, for every engine alike.

- **poise**: ``rebalance_optimize(problem, covariance)`` — given the covariance, as the
  peers are, so its factor risk model is built inside the timed call
  (``bench/optimize_speed.py`` builds it once per universe and leaves it out).
- **taxrebalance** (``rebalance(method="tax_aware")``, continuous shares): each lot with
  its shares, basis a share and days held (365 for a lot poise counts long-term, at most
  364 otherwise, so the terms agree with poise's more-than-a-year rule), and
  ``prior_30d_replacement`` where a wash-sale window blocks loss sales; poise's
  short- and long-term rates (federal plus state); a loss counted in full now
  (``loss_utilization=1``, ``future_recapture_fraction=0``, as poise counts it); the
  half-spread as its cost in basis points; no tracking-error cap (0.99). It has no cash
  target, so cash is a security of zero variance with the model's cash weight; the
  cash that must remain is one lot of that security it may not trade, the rest is its
  cash. Do-not-buy and do-not-sell both become its ``restricted_tickers`` (which forbid
  both sides). Unlike poise it never buys and sells one security in a proposal, and its
  wash-sale flag only takes the loss's benefit away — it may still sell the lot, which
  poise counts as a violation. Its answer — shares per lot sold, shares bought — is
  rounded down to the security's grid (as poise rounds its own solution) and each
  sale relieves the lots it names (``Method.SPECIFIC``). Its caches (arrays, covariance
  root, compiled problem) are cleared before every timed run: each is a new account.
- **cvxportfolio** (``SinglePeriodOptimization``, Clarabel): holdings in dollars with the
  cash account, the model (cash included) as its benchmark, ``FullCovariance`` of the
  same covariance on the weights minus the benchmark, ``TransactionCost(a=half-spread)``,
  ``LongOnly`` and ``MinCashBalance`` at what must remain (it deducts costs after
  trading, not in that constraint); do-not-buy and do-not-sell as trade limits. It has
  **no tax at all**, lot-level or other: its dollar trades become whole shares (rounded
  down) and each sale relieves lots with ``Method.TAX_MIN`` among the lots the account
  may sell (loss lots are skipped where a wash-sale window blocks them, unless the
  other lots are too few).

Both peers weigh risk as ``γ·TE²`` (variance), poise as ``TE``. They agree where
``2γ·TE = 1``, so each peer's γ is calibrated per account, untimed, before its timed
runs: starting from ``1/(2·TE before)``, set ``γ = 1/(2·TE)`` at the tracking error of
its own last answer, four rounds at most, and keep the γ whose answer scored best —
the peer's best shot at poise's objective.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # one core for every engine, as the other benchmarks run

# The imports below come after the thread settings on purpose: BLAS reads them once.
import argparse  # noqa: E402
import importlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import poise  # noqa: E402
from poise.domain.money import ZERO  # noqa: E402
from poise.domain.relief import Method, is_long_term, relieve  # noqa: E402
from poise.optimize.bands import sell_lots  # noqa: E402
from poise.optimize.check import Costs, violations  # noqa: E402
from poise.optimize.problem import Problem  # noqa: E402
from poise.optimize.tax_aware import objective, rebalance_optimize, tracking_error  # noqa: E402
from poise.optimize.trades import Side, Trade, TradeReason  # noqa: E402
from rebalance_inputs import make_account  # noqa: E402

Floats = npt.NDArray[np.float64]
Engine = Callable[[Problem, Floats, float], list[Trade]]  # problem, covariance, γ

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / "bench" / "out" / "venv"
PEERS = ("taxrebalance", "cvxportfolio")
CASH = "__cash__"  # taxrebalance's stand-in for cash
CVX_CASH = "USDOLLAR"  # cvxportfolio's cash account
CALIBRATION_ROUNDS = 4
COSTS = Costs()


# --- the venv the peers live in ------------------------------------------------------------


def _peers_importable() -> bool:
    try:
        for name in PEERS:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def _into_peer_venv() -> None:
    """Build ``bench/out/venv`` if needed and re-run this script with its Python."""
    python = VENV / "bin" / "python"
    if Path(sys.executable).absolute() == python.absolute():
        raise SystemExit(f"{VENV} lacks {PEERS}: delete it and run again to rebuild it")
    if not python.exists():
        print(f"building {VENV} for the peers (once)…", flush=True)
        frozen = subprocess.run(
            [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        keep = [line for line in frozen if not line.lower().startswith(("osqp", "poise"))]
        VENV.parent.mkdir(parents=True, exist_ok=True)
        constraints = VENV.parent / "constraints.txt"
        constraints.write_text("\n".join(keep) + "\n")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        install = ["-m", "pip", "install", "-q", "-c", str(constraints), "-e", f"{REPO}[bench]"]
        subprocess.run([str(python), *install], check=True)
    os.execv(python, [str(python), __file__, *sys.argv[1:]])


# --- translating answers back into poise trades ---------------------------------------------


def _grid(problem: Problem, security_id: str, shares: float) -> Decimal:
    """A continuous share count rounded down to the security's grid, as poise rounds its
    own solution (to four places first: 4.99999 shares are 5)."""
    trading = problem.holding(security_id).security.trading
    return trading.round_down(Decimal(str(round(max(shares, 0.0), 4))))


def _sale(problem: Problem, security_id: str, chosen: dict[str, Decimal]) -> Trade:
    return sell_lots(
        problem.holding(security_id), chosen, problem=problem, reason=TradeReason.DRIFT
    )


def _tax_min_sale(problem: Problem, security_id: str, shares: Decimal) -> Trade:
    """A sale of ``shares`` relieving lots by TAX_MIN among the lots that may be sold:
    with a wash-sale window open, the lots at a loss are left alone while others remain."""
    holding = problem.holding(security_id)
    lots = list(holding.lots)
    if holding.no_loss_sale:
        gains = [lot for lot in lots if lot.basis_per_share <= holding.price]
        if sum((lot.quantity for lot in gains), ZERO) >= shares:
            lots = gains
    relief = relieve(lots, shares, method=Method.TAX_MIN, price=holding.price, sold=problem.today)
    chosen = {r.lot_id: r.quantity for r in relief.reliefs}
    return _sale(problem, security_id, chosen)


def _buy(problem: Problem, security_id: str, shares: Decimal) -> Trade:
    price = problem.holding(security_id).price
    return Trade(security_id, Side.BUY, shares, price, TradeReason.DRIFT)


# --- the engines ----------------------------------------------------------------------------


def run_poise(problem: Problem, covariance: Floats, gamma: float) -> list[Trade]:
    return list(rebalance_optimize(problem, covariance).trades)


def run_taxrebalance(problem: Problem, covariance: Floats, gamma: float) -> list[Trade]:
    tr: Any = importlib.import_module("taxrebalance")
    holdings = problem.holdings
    locked = min(problem.reserve, problem.cash)
    lots = [
        tr.TaxLot(
            lot_id=lot.lot_id,
            ticker=h.security_id,
            shares=float(lot.quantity),
            basis_per_share=float(lot.basis_per_share),
            days_held=(
                max((problem.today - lot.held_since).days, 365)
                if is_long_term(lot.held_since, problem.today)
                else min((problem.today - lot.held_since).days, 364)
            ),
            prior_30d_replacement=bool(h.no_loss_sale),
        )
        for h in holdings
        for lot in h.lots
    ]
    if locked > ZERO:
        lots.append(tr.TaxLot("cash-kept", CASH, float(locked), 1.0, 365))
    n = len(holdings)
    padded = np.zeros((n + 1, n + 1))
    padded[:n, :n] = covariance
    prices = {h.security_id: float(h.price) for h in holdings} | {CASH: 1.0}
    targets = {h.security_id: float(h.target) for h in holdings} | {
        CASH: float(problem.cash_target)
    }
    restricted = tuple(h.security_id for h in holdings if h.no_buy or h.no_sell)
    result = tr.rebalance(
        tr.Portfolio.from_tax_lots(lots, prices=prices, cash=float(problem.cash - locked)),
        target_weights=targets,
        covariance=padded,
        tax_policy=tr.UnitedStatesLots(
            short_term_rate=float(problem.short_rate), long_term_rate=float(problem.long_rate)
        ),
        config=tr.RebalanceConfig(
            max_tracking_error=0.99,
            trading_cost_bps=float(COSTS.half_spread) * 10_000,
            loss_utilization=1.0,
            future_recapture_fraction=0.0,
            risk_aversion=gamma,
            restricted_tickers=(*restricted, CASH),
        ),
    )
    sold: dict[str, dict[str, Decimal]] = defaultdict(dict)
    trades: list[Trade] = []
    quantity = {lot.lot_id: lot.quantity for h in holdings for lot in h.lots}
    for row in result.trades:
        if row["ticker"] == CASH:
            continue
        shares = _grid(problem, row["ticker"], float(row["shares"]))
        if row["side"] == "SELL":
            shares = min(shares, quantity[row["lot_id"]])
            if shares > ZERO:
                sold[row["ticker"]][row["lot_id"]] = shares
        elif shares > ZERO:
            trades.append(_buy(problem, row["ticker"], shares))
    return [_sale(problem, name, chosen) for name, chosen in sorted(sold.items())] + trades


def run_cvxportfolio(problem: Problem, covariance: Floats, gamma: float) -> list[Trade]:
    cvx: Any = importlib.import_module("cvxportfolio")
    pd: Any = importlib.import_module("pandas")
    holdings = problem.holdings
    ids = [h.security_id for h in holdings]
    universe = [*ids, CVX_CASH]
    dollars = pd.Series([float(h.value) for h in holdings] + [float(problem.cash)], universe)
    benchmark = pd.Series(
        [float(h.target) for h in holdings] + [float(problem.cash_target)], universe
    )
    constraints = [
        cvx.LongOnly(applies_to_cash=False),
        cvx.MinCashBalance(float(min(problem.reserve, problem.cash))),
    ]
    if any(h.no_buy for h in holdings):
        limit = [0.0 if h.no_buy else 1.0 for h in holdings]
        constraints.append(cvx.MaxTradeWeights(pd.Series(limit, ids)))
    if any(h.no_sell for h in holdings):
        limit = [0.0 if h.no_sell else -1.0 for h in holdings]
        constraints.append(cvx.MinTradeWeights(pd.Series(limit, ids)))
    policy = cvx.SinglePeriodOptimization(
        objective=-gamma * cvx.FullCovariance(pd.DataFrame(covariance, ids, ids))
        - cvx.TransactionCost(a=float(COSTS.half_spread), b=None),
        constraints=constraints,
        include_cash_return=False,
        benchmark=benchmark,
        solver="CLARABEL",
    )
    traded, _, _ = policy.execute(dollars, market_data=None, t=pd.Timestamp(problem.today))
    sells: list[Trade] = []
    buys: list[Trade] = []
    for h in holdings:
        shares = float(traded[h.security_id]) / float(h.price)
        grid = _grid(problem, h.security_id, abs(shares))
        if shares < 0 and min(grid, h.quantity) > ZERO:
            sells.append(_tax_min_sale(problem, h.security_id, min(grid, h.quantity)))
        elif shares > 0 and grid > ZERO:
            buys.append(_buy(problem, h.security_id, grid))
    return sells + buys


ENGINES: dict[str, Engine] = {
    "poise": run_poise,
    "taxrebalance": run_taxrebalance,
    "cvxportfolio": run_cvxportfolio,
}


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    engine: str
    size: str
    seed: int
    seconds: tuple[float, ...]
    objective: float  # fraction of the account
    broken: tuple[str, ...]  # the rules its trades break, in poise's words
    trades: int
    gamma: float


def _calibrate(engine: Engine, problem: Problem, covariance: Floats) -> float:
    """The γ for a peer's ``γ·TE²`` that meets poise's ``TE`` at the peer's own answer."""
    te = float(tracking_error(problem, (), covariance))
    best: tuple[float, float] | None = None
    for _ in range(CALIBRATION_ROUNDS):
        gamma = 1.0 / (2.0 * max(te, 1e-4))
        trades = engine(problem, covariance, gamma)
        score = objective(problem, trades, covariance)
        if best is None or score < best[0]:
            best = (score, gamma)
        after = float(tracking_error(problem, trades, covariance))
        if abs(after - te) <= 0.05 * te:
            break
        te = after
    assert best is not None
    return best[1]


def measure(
    name: str, problem: Problem, covariance: Floats, *, runs: int, size: str, seed: int
) -> Measured:
    engine = ENGINES[name]
    gamma = 0.0 if name == "poise" else _calibrate(engine, problem, covariance)
    seconds: list[float] = []
    trades: list[Trade] = []
    for _ in range(runs):
        _cold_peers()
        start = time.perf_counter()
        trades = engine(problem, covariance, gamma)
        seconds.append(time.perf_counter() - start)
    return Measured(
        engine=name,
        size=size,
        seed=seed,
        seconds=tuple(seconds),
        objective=objective(problem, trades, covariance),
        broken=tuple(violations(problem, trades, COSTS)),
        trades=len(trades),
        gamma=gamma,
    )


def _cold_peers() -> None:
    """Forget what taxrebalance caches between calls on an equal input (its arrays, the
    covariance root, the compiled problem): every timed run is a new account's."""
    optimizer: Any = sys.modules.get("tax_rebalancing.optimizer")
    if optimizer is not None:
        optimizer._arrays.cache_clear()
        optimizer._covariance_root.cache_clear()
        optimizer._thread_models.__dict__.pop("cache", None)


KINDS = {
    "sold at a loss, but": "wash sale",
    "ends below": "cash floor",
    "short": "short",
    "tradable quantity": "grid",
    "sold beyond": "lot oversold",
}


def _kinds(broken: Sequence[str]) -> str:
    """The rules broken, counted by kind: "12 wash sale, 1 cash floor"."""
    counted: dict[str, int] = defaultdict(int)
    for text in broken:
        counted[next((kind for key, kind in KINDS.items() if key in text), "other")] += 1
    return ", ".join(f"{n} {kind}" for kind, n in counted.items()) or "0"


def _p95(values: Sequence[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    )


def report(results: list[Measured], sizes: list[str]) -> None:
    console = Console(width=120)
    table = Table(
        title="optimize against its peers (objective in bp of the account, lower is better)"
    )
    for column in (
        "engine",
        "size",
        "median ms",
        "p95 ms",
        "objective",
        "÷ poise time",
        "Δ objective",
        "violations",
    ):
        table.add_column(column, justify="left" if column in ("engine", "size") else "right")
    by: dict[tuple[str, str], list[Measured]] = defaultdict(list)
    for m in results:
        by[m.engine, m.size].append(m)
    for size in sizes:
        base = by["poise", size]
        base_median = statistics.median([s for m in base for s in m.seconds] or [np.nan])
        base_objective = statistics.fmean([m.objective for m in base] or [np.nan])
        for name in ENGINES:
            rows = by[name, size]
            if not rows:
                continue
            seconds = [s for m in rows for s in m.seconds]
            score = statistics.fmean(m.objective for m in rows)
            table.add_row(
                name,
                size,
                f"{1000 * statistics.median(seconds):,.0f}",
                f"{1000 * _p95(seconds):,.0f}",
                f"{10_000 * score:.2f}",
                f"{statistics.median(seconds) / base_median:.2f}",
                f"{10_000 * (score - base_objective):+.2f}",
                str(sum(len(m.broken) for m in rows)),
            )
    console.print(table)
    detail = Table(title="by account (objective in bp; γ the peer's calibrated risk weight)")
    for column in (
        "size",
        "seed",
        "engine",
        "objective",
        "Δ vs poise",
        "trades",
        "violations",
        "γ",
    ):
        detail.add_column(column, justify="left" if column in ("size", "engine") else "right")
    mine = defaultdict(
        lambda: np.nan, {(m.size, m.seed): m.objective for m in results if m.engine == "poise"}
    )
    for m in results:
        detail.add_row(
            m.size,
            str(m.seed),
            m.engine,
            f"{10_000 * m.objective:.2f}",
            f"{10_000 * (m.objective - mine[m.size, m.seed]):+.2f}",
            str(m.trades),
            _kinds(m.broken),
            f"{m.gamma:.1f}" if m.gamma else "",
        )
    console.print(detail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["20x80", "500x2000"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of poise per account")
    parser.add_argument("--peer-runs", type=int, default=3, help="timed runs of each peer")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    args = parser.parse_args()
    if any(e != "poise" for e in args.engines) and not _peers_importable():
        _into_peer_venv()
    print(f"{datetime.now().astimezone():%Y-%m-%d %H:%M}, poise from {Path(poise.__file__).parent}")
    if "poise" in args.engines:
        run_poise(*make_account(5, 10), 0.0)  # warm up: imports, the solver's first load
    results: list[Measured] = []
    for size in args.sizes:
        securities, lots = (int(x) for x in size.split("x"))
        for seed in args.seeds:
            problem, covariance = make_account(securities, lots, seed=seed)
            for name in args.engines:
                runs = args.runs if name == "poise" else args.peer_runs
                m = measure(
                    name, problem, covariance, runs=runs, size=f"{securities}/{lots:,}", seed=seed
                )
                print(
                    f"{m.size} seed {seed} {name}: median {statistics.median(m.seconds):.3f} s, "
                    f"objective {10_000 * m.objective:.2f} bp, violations: {_kinds(m.broken)}",
                    flush=True,
                )
                results.append(m)
    report(results, [f"{s.split('x')[0]}/{int(s.split('x')[1]):,}" for s in args.sizes])


if __name__ == "__main__":
    main()
