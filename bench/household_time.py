"""Benchmark: time to plan one large household with ``optimize``, on one core.

    .venv/bin/python bench/household_time.py [--runs 20] [--seed 1]

The household: a joint account, a taxable account, a traditional IRA and a Roth IRA
(about $1.2M, $0.8M, $0.6M and $0.4M), 300 tax lots in all over 60 securities. Built
on the demo's own reference data — a one-household demo firm is generated and stored
once (``bench/out/household/``) and read back with
:func:`poise.workflow.households.load_firm`, so the securities, their replacements, the
latest prices and the two years of daily prices behind the risk model are what a run
reads — and widened to 60 securities with 34 synthetic stocks. A synthetic stock's
daily log return is ``b·SPY + c·(stock − SPY) + noise``: the demo's S&P 500 fund, one
of the 20 real stocks (its "sector", and for one in four its harvest replacement)
beyond it, and 12–35% a year of its own. The model: the 20 stocks, the 34 synthetic
ones, VTI, BND and VGSH (lognormal weights, 2% cash, 5/25 bands); the lots also hold
SPY and VOO (outside the model, twins of each other and replacements of VTI) and the
money-market fund. About 30% of lots stand at a loss, and 3% were bought in the last
30 days, so that wash-sale meetings arise across the accounts.

Timed, as a run's task runs it: :func:`poise.workflow.households.plan_household` —
holds, the wash-sale window and each account's problem (``household_problems``), the
risk model of each account's securities (the covariance of their daily returns), and
the engine (``rebalance_household``: the solves, rounding to shares, lot instructions,
the rule checks and the figures), with the time inside the solvers (Clarabel's
set-up, updates and solves; HiGHS's runs) counted apart. Twice: each account to the
model, and the household as one on the same model (an allocation across the accounts
with asset location). ``--runs`` timed runs after two untimed ones; median and p95.

Target: ≤ 50 ms a household.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # one core

# The imports below come after the thread settings on purpose: BLAS reads them once.
import argparse  # noqa: E402
import contextlib  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

import poise.workflow.households as households_module  # noqa: E402
from firm_run import SolverClock, solvers_timed  # noqa: E402
from poise.demo import generate_firm, read_market, write_firm  # noqa: E402
from poise.domain.accounts import (  # noqa: E402
    Account,
    CashReserve,
    Household,
    Registration,
    TaxRates,
)
from poise.domain.lots import TaxLot  # noqa: E402
from poise.domain.models import Band, Model, ModelTarget, TargetKind  # noqa: E402
from poise.domain.money import cents  # noqa: E402
from poise.domain.securities import Security, SecurityKind  # noqa: E402
from poise.optimize.history import PriceHistory  # noqa: E402
from poise.settings import Settings  # noqa: E402
from poise.store.engine import make_engine  # noqa: E402
from poise.store.migrate import upgrade  # noqa: E402
from poise.workflow.households import (  # noqa: E402
    HouseholdBook,
    Reference,
    load_firm,
    plan_household,
)
from poise.workflow.ingest import ingest_paths  # noqa: E402
from poise.workflow.monitor import price_check  # noqa: E402
from poise.workflow.run import RunOptions, plan_options  # noqa: E402

Floats = npt.NDArray[np.float64]

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "household"
AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)
TODAY = AS_OF.date()
SYNTHETIC = 34
LOTS = 300
MODEL = "B60"
ACCOUNTS = (  # id, registration, value
    ("J1", Registration.JOINT, 1_200_000.0),
    ("T1", Registration.TAXABLE, 800_000.0),
    ("I1", Registration.TRADITIONAL_IRA, 600_000.0),
    ("R1", Registration.ROTH_IRA, 400_000.0),
)
OFF_MODEL = ("SPY", "VOO", "VMFXX")  # held, not in the model
LOSS_SHARE = 0.3
RECENT_SHARE = 0.03  # lots bought in the wash-sale window
LOT_YEARS = 6


def demo_reference() -> Reference:
    """What a run of the demo firm reads as of 2022-12-28 (a one-household firm, stored
    once)."""
    path = OUT / "poise.db"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        paths = write_firm(generate_firm(households=1, seed=7), OUT / "files")
        refused = [r for r in ingest_paths(engine, paths, today=date(2026, 1, 1)) if r.refused]
        if refused:
            path.unlink()
            raise SystemExit(f"the demo firm did not load: {refused}")
        engine.dispose()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    settings = Settings()
    firm = load_firm(
        engine,
        as_of=AS_OF,
        lookback=timedelta(days=settings.risk_lookback_days),
        check=price_check(settings),
    )
    engine.dispose()
    return firm.reference


@dataclass(frozen=True, slots=True)
class Universe:
    """Every security's closes (floats, days × securities) on the demo market's days."""

    days: tuple[date, ...]
    ids: tuple[str, ...]
    closes: Floats
    securities: dict[str, Security] = field(default_factory=dict)

    def close(self, security_id: str, day: int) -> Decimal:
        return Decimal(f"{self.closes[day, self.ids.index(security_id)]:.2f}")


def universe(reference: Reference, rng: np.random.Generator) -> Universe:
    """The demo's securities and 34 synthetic stocks, closes over the demo market."""
    market = read_market()
    days = market.dates
    demo = [s for s in reference.securities if s in market.levels]
    levels = np.column_stack([market.levels[s] for s in demo])
    spy = np.diff(np.log(market.levels["SPY"]))
    stocks = sorted(s for s, sec in reference.securities.items() if sec.kind == SecurityKind.STOCK)
    made: dict[str, Security] = {}
    columns = []
    for j in range(1, SYNTHETIC + 1):
        sector = stocks[int(rng.integers(len(stocks)))]
        listed = market.listed.get(sector, 0)
        beyond = np.diff(np.log(np.maximum(market.levels[sector], 1e-9))) - spy
        noise = rng.standard_normal(len(spy)) * rng.uniform(0.12, 0.35) / math.sqrt(252)
        returns = rng.uniform(0.6, 1.4) * spy + rng.uniform(0.4, 0.9) * beyond + noise
        returns[: max(listed, 1)] = 0.0
        path = np.concatenate(([0.0], np.cumsum(returns)))
        last = float(np.clip(rng.lognormal(math.log(80.0), 0.9), 8.0, 900.0))
        columns.append(np.round(last * np.exp(path - path[-1]), 2).clip(0.01))
        known = reference.securities[sector]
        name = f"S{j:04d}"
        made[name] = Security(
            security_id=name,
            symbol=name,
            name=f"synthetic stock {j}",
            kind=SecurityKind.STOCK,
            asset_class=known.asset_class,
            sub_class=known.sub_class,
            replacements=(sector,) if j % 4 == 0 else (),
        )
    ids = (*demo, *made)
    return Universe(
        days, ids, np.column_stack([levels, *columns]), {**reference.securities, **made}
    )


def widened(reference: Reference, u: Universe, model: Model) -> Reference:
    """The reference with the synthetic stocks priced, in the risk model's history, and
    the household's model."""
    synthetic = [s for s in u.ids if s not in reference.securities]
    rows = [u.days.index(d) for d in reference.history.days]
    extra = u.closes[rows][:, [u.ids.index(s) for s in synthetic]]
    history = PriceHistory(
        (*reference.history.security_ids, *synthetic),
        reference.history.days,
        np.column_stack([reference.history.prices, extra]),
    )
    last = len(u.days) - 1
    return replace(
        reference,
        securities=u.securities,
        models={**reference.models, MODEL: model},
        prices={**reference.prices, **{s: u.close(s, last) for s in synthetic}},
        price_times={**reference.price_times, **dict.fromkeys(synthetic, AS_OF)},
        history=history,
    )


def model_of(u: Universe, rng: np.random.Generator) -> Model:
    held = [s for s in u.ids if s not in OFF_MODEL]
    total = 98_000  # weights on a 0.00001 grid, 0.98 in all
    raw = rng.lognormal(0.0, 0.8, len(held))
    steps = np.maximum(np.floor(raw / raw.sum() * total), 1).astype(np.int64)
    steps[int(np.argmax(steps))] += total - int(steps.sum())
    return Model(
        model_id=MODEL,
        name="benchmark household model",
        targets=(
            *(
                ModelTarget(TargetKind.SECURITY, s, Decimal(int(w)).scaleb(-5))
                for s, w in zip(held, steps, strict=True)
            ),
            ModelTarget(TargetKind.CASH, "", Decimal("0.02")),
            ModelTarget(TargetKind.DEFAULT, "", band=Band(Decimal("0.05"), Decimal("0.25"))),
        ),
    )


def book_of(u: Universe, model: Model, rng: np.random.Generator) -> HouseholdBook:
    """The four accounts and their 300 lots: each account holds most of the model,
    drifted, and a share of the twins and the money-market fund."""
    weights = {t.target_id: float(t.weight) for t in model.targets if t.kind == TargetKind.SECURITY}
    days = u.days
    last = len(days) - 1
    first = TODAY.replace(year=TODAY.year - LOT_YEARS)
    window = [d for d, day in enumerate(days) if first <= day < TODAY - timedelta(days=31)]
    recent = [d for d, day in enumerate(days) if TODAY - timedelta(days=30) <= day < TODAY]
    accounts: list[Account] = []
    lots: list[TaxLot] = []
    per_account = [LOTS // len(ACCOUNTS)] * len(ACCOUNTS)
    for (account_id, registration, value), count in zip(ACCOUNTS, per_account, strict=True):
        names = [s for s in u.ids if rng.random() < (0.85 if s in weights else 0.5)]
        wanted = np.array([weights.get(s, 0.01) for s in names]) * rng.lognormal(0, 0.3, len(names))
        dollars = wanted / wanted.sum() * value * 0.97
        per = 1 + rng.multinomial(count - len(names), np.sqrt(dollars) / np.sqrt(dollars).sum())
        for name, spend, n in zip(names, dollars, per, strict=True):
            i = u.ids.index(name)
            shares = max(round(spend / u.closes[last, i]), int(n))
            cuts = (
                sorted(rng.choice(np.arange(1, shares), int(n) - 1, replace=False)) if n > 1 else []
            )
            bounds = [0, *map(int, cuts), shares]
            for a, b in itertools.pairwise(bounds):
                above = [d for d in window if u.closes[d, i] > u.closes[last, i]]
                below = [d for d in window if u.closes[d, i] <= u.closes[last, i]]
                pool = (above or below) if rng.random() < LOSS_SHARE else (below or above)
                if rng.random() < RECENT_SHARE:
                    pool = recent
                day = pool[int(rng.integers(len(pool)))]
                lots.append(
                    TaxLot(
                        lot_id=f"{account_id}-L{len(lots) + 1:04d}",
                        account_id=account_id,
                        security_id=name,
                        quantity=Decimal(b - a),
                        cost_basis=cents((b - a) * u.close(name, day)),
                        acquired=days[day],
                    )
                )
        accounts.append(
            Account(
                account_id=account_id,
                household_id="HB1",
                registration=registration,
                name=f"benchmark {registration.value}",
                model_id=MODEL,
                cash=cents(Decimal(f"{value * rng.uniform(0.01, 0.04):.2f}")),
                reserve=CashReserve(fraction=Decimal("0.005")),
                tax_rates=TaxRates(Decimal("0.37"), Decimal("0.20"), Decimal("0.05")),
                harvest=registration.taxable,
            )
        )
    return HouseholdBook(
        household=Household("HB1", "benchmark household"),
        accounts=tuple(accounts),
        lots=tuple(lots),
    )


@dataclass(slots=True)
class Parts:
    seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def parts_timed(parts: Parts) -> Iterator[None]:
    """The parts of :func:`plan_household`, timed where it calls them."""
    names = vars(households_module)
    real = {"household_problems": names["household_problems"]}
    real["rebalance_household"] = names["rebalance_household"]
    real_covariance = PriceHistory.covariance

    def timed(label: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                parts.seconds[label] = parts.seconds.get(label, 0.0) + time.perf_counter() - start

        return wrapper

    names.update({k: timed(k, v) for k, v in real.items()})
    PriceHistory.covariance = timed("covariance", real_covariance)  # type: ignore[method-assign]
    try:
        yield
    finally:
        names.update(real)
        PriceHistory.covariance = real_covariance  # type: ignore[method-assign]


def quantile(values: list[float], q: float) -> float:
    return float(np.quantile(np.array(values), q))


def measure(reference: Reference, book: HouseholdBook, runs: int, label: str) -> str:
    options = plan_options(RunOptions(method="optimize"), Settings())
    for _ in range(2):
        plan = plan_household(reference, book, options)
    if plan.proposal is None or len(plan.proposal.accounts) != len(ACCOUNTS):
        raise SystemExit(f"{label}: not every account was planned: {plan.held}")
    totals: list[float] = []
    split: dict[str, list[float]] = {}
    for _ in range(runs):
        parts, clock = Parts(), SolverClock()
        with parts_timed(parts), solvers_timed(clock):
            start = time.perf_counter()
            plan_household(reference, book, options)
            totals.append(time.perf_counter() - start)
        # inside the engine (rebalance_household) the covariances are asked for lazily
        engine = parts.seconds.get("rebalance_household", 0.0)
        covariance = parts.seconds.get("covariance", 0.0)
        for name, seconds in (
            ("problems", parts.seconds.get("household_problems", 0.0)),
            ("risk model", covariance),
            ("engine", engine - covariance),
            ("of it, solvers", clock.seconds),
        ):
            split.setdefault(name, []).append(seconds)
    assert plan.proposal is not None
    trades = sum(len(a.proposal.trades) for a in plan.proposal.accounts)
    held = sorted({lot.security_id for lot in book.lots})
    median, p95 = statistics.median(totals), quantile(totals, 0.95)
    mark = "✓" if p95 <= 0.050 else ("median ✓, p95 ✗" if median <= 0.050 else "✗")
    shown = ", ".join(f"{k} {statistics.median(v) * 1000:.1f} ms" for k, v in split.items())
    return (
        f"| {datetime.now(UTC).date()} | {label}"
        f" | {len(book.accounts)} / {len(held)} held / {len(book.lots)}"
        f" | {median * 1000:.1f} ms | {p95 * 1000:.1f} ms | ≤ 50 ms {mark} | {shown}"
        f" | {trades} trades, meetings: {len(plan.proposal.meetings)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    base = demo_reference()
    u = universe(base, rng)
    model = model_of(u, rng)
    reference = widened(base, u, model)
    book = book_of(u, model, rng)
    together = replace(book, household=replace(book.household, model_id=MODEL))
    print(
        "| date | household | accounts / securities / lots | median | p95 | target"
        " | median parts | plan |"
    )
    print("|---|---|---|---:|---:|---|---|---|")
    print(measure(reference, book, args.runs, "each account to the model"))
    print(measure(reference, together, args.runs, "one household model"))


if __name__ == "__main__":
    main()
