"""Benchmark inputs: one realistic taxable account's rebalancing problem, from real prices.

    from rebalance_inputs import make_account  # from a script in bench/
    problem, covariance = make_account(500, 2_000, seed=3)

:func:`make_account` builds the account from domain objects, exactly as the shell
would hand it to the engine (:func:`poise.optimize.problem.build_problem`), and the
risk model aligned with ``problem.holdings``
(:func:`poise.optimize.risk.annual_covariance`, the engine's own, on two years of daily
prices). "Today" is 2022-12-28, the last day of the shared market data.

- **Prices.** The shared data (``../shared/data`` beside the repository, as the demo
  reads it) holds the real adjusted closes of 20 S&P 500 stocks. An account of up to
  20 securities holds real stocks only (a seeded choice among those with complete
  history); a larger one holds all 20 and *synthetic* stocks for the rest. A synthetic
  stock's daily log return is ``b·index + c·(stock − index) + noise`` — the real
  S&P 500 index, the real return of one of the 20 stocks (its "sector") beyond the
  index, and idiosyncratic noise of 12–35% a year — so its correlations look like a
  market's; its last price is drawn around $80 and rounded to the cent. The synthetic
  stocks depend on their number only, not on the seed: every account sees one market.
- **Model.** ``securities`` stocks, lognormal target weights summing to exactly 0.98
  (on a 0.00001 grid), 0.02 cash, a 5/25 default band.
- **Holdings.** Each position drifted from its target (lognormal, σ 0.3; one in ten
  far off, at 0.3–0.6× or 1.5–2.2× its target), whole shares at today's price; cash of
  0.5–4% of ``value`` and a reserve of 0.5% of the account.
- **Lots.** ``lots`` tax lots over the held securities (every security at least one
  when ``lots ≥ securities``), whole shares, acquired on trading days of the last six
  years. About ``loss_share`` of lots are bought on a day when the price was above
  today's, so they stand at a loss (at the end of 2022 many of those days are
  recent, so short-term lots are mostly losses); 2% are bought in the last 30 days,
  which blocks loss sales of their security, as the wash-sale rule says. The basis
  is the real (or synthetic) close of that day times the shares, to the cent.
- **Replacements.** Harvest replacements for a few stocks: KO/PEP, XOM/CVX, JPM/BAC,
  MRK/PFE/JNJ, HD/WMT among the real ones, and one synthetic stock in eight is
  replaceable by its "sector" stock.

Taxed at 37% short-term, 20% long-term and 5% state. Deterministic for ``seed``.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from poise.demo.files import DATA_DIR, INDEX_FILE, PRICES_FILE
from poise.demo.market import INDEX_COLUMN
from poise.domain.accounts import Account, CashReserve, Registration, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.money import ZERO, cents
from poise.domain.securities import Security, SecurityKind
from poise.optimize.problem import WASH_WINDOW, Problem, build_problem
from poise.optimize.risk import annual_covariance

__all__ = ["TODAY", "make_account"]

Floats = npt.NDArray[np.float64]

TODAY = date(2022, 12, 28)  # the last trading day of the shared prices
LOT_YEARS = 6  # lots were bought over this many years
RISK_DAYS = 504  # about two years of daily prices for the covariance
RECENT_SHARE = 0.02  # lots bought in the last 30 days (they block loss sales of theirs)
WEIGHT_PLACES = 5  # target weights on a 0.00001 grid
SYNTHETIC_SEED = 20221228  # the synthetic market does not move with the account's seed
ACCOUNT = "A1"
REPO = Path(__file__).resolve().parents[1]
REPLACEMENTS = {
    "KO": ("PEP",),
    "PEP": ("KO",),
    "XOM": ("CVX",),
    "CVX": ("XOM",),
    "JPM": ("BAC",),
    "BAC": ("JPM",),
    "MRK": ("PFE", "JNJ"),
    "PFE": ("MRK", "JNJ"),
    "HD": ("WMT",),
}


@dataclass(frozen=True, slots=True)
class _Market:
    """The real closes of the last ``LOT_YEARS`` years (and a little more), oldest first."""

    dates: tuple[date, ...]
    tickers: tuple[str, ...]  # the real stocks with complete history in the window
    texts: dict[str, list[str]]  # the closes as written (exact decimals)
    levels: Floats  # (days, tickers)
    index: Floats  # (days,) the S&P 500


@functools.cache
def _market() -> _Market:
    data = REPO / DATA_DIR
    start = (TODAY - timedelta(days=366 * LOT_YEARS + 10)).isoformat()
    stocks = pl.read_csv(data / PRICES_FILE, infer_schema=False).filter(pl.col("Date") >= start)
    index = pl.read_csv(data / INDEX_FILE, infer_schema=False).filter(pl.col("Date") >= start)
    days = stocks["Date"].to_list()
    if index["Date"].to_list() != days or date.fromisoformat(days[-1]) != TODAY:
        raise ValueError(f"{data}: the stock and index tables do not end together on {TODAY}")
    texts: dict[str, list[str]] = {}
    for name in stocks.columns[1:]:
        column = stocks[name].to_list()
        if all(c and float(c) > 0 for c in column[-RISK_DAYS - 1 :]) and all(column):
            texts[name] = [str(c) for c in column]
    tickers = tuple(sorted(texts))
    return _Market(
        dates=tuple(date.fromisoformat(d) for d in days),
        tickers=tickers,
        texts=texts,
        levels=np.array([[float(texts[t][d]) for t in tickers] for d in range(len(days))]),
        index=np.array([float(v) for v in index[INDEX_COLUMN].to_list()]),
    )


@functools.cache
def _synthetic(number: int) -> tuple[Floats, int]:
    """Closes (days,) of synthetic stock ``number`` (to the cent) and its sector stock."""
    market = _market()
    rng = np.random.default_rng([SYNTHETIC_SEED, number])
    sector = int(rng.integers(len(market.tickers)))
    index = np.diff(np.log(market.index))
    beyond = np.diff(np.log(market.levels[:, sector])) - index
    noise = rng.standard_normal(len(index)) * rng.uniform(0.12, 0.35) / math.sqrt(252)
    returns = rng.uniform(0.6, 1.4) * index + rng.uniform(0.4, 0.9) * beyond + noise
    path = np.concatenate(([0.0], np.cumsum(returns)))
    last = float(np.clip(rng.lognormal(math.log(80.0), 0.9), 8.0, 900.0))
    closes: Floats = np.round(last * np.exp(path - path[-1]), 2).clip(0.01)
    return closes, sector


def _weights(rng: np.random.Generator, n: int) -> list[Decimal]:
    """Lognormal target weights on the 0.00001 grid, adding up to exactly 0.98."""
    total = 98 * 10 ** (WEIGHT_PLACES - 2)
    raw = rng.lognormal(0.0, 0.8, n)
    steps = np.maximum(np.floor(raw / raw.sum() * total), 1).astype(np.int64)
    steps[int(np.argmax(steps))] += total - int(steps.sum())
    return [Decimal(int(s)).scaleb(-WEIGHT_PLACES) for s in steps]


def _split(rng: np.random.Generator, shares: int, parts: int) -> list[int]:
    """``shares`` whole shares in ``parts`` random parts of at least one share each."""
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, shares), parts - 1, replace=False))
    bounds = [0, *cuts, shares]
    return [b - a for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True, slots=True)
class _Universe:
    """The account's securities: ids, closes as floats (days × n), replacements."""

    market: _Market
    ids: tuple[str, ...]
    levels: Floats
    replacements: dict[str, tuple[str, ...]]

    def close(self, i: int, day: int) -> Decimal:
        """The exact close of security ``i`` on ``day``: as written for a real stock."""
        name = self.ids[i]
        if name in self.market.texts:
            return Decimal(self.market.texts[name][day])
        return Decimal(f"{self.levels[day, i]:.2f}")

    @property
    def last(self) -> int:
        return len(self.market.dates) - 1


def _universe(rng: np.random.Generator, securities: int) -> _Universe:
    market = _market()
    real = len(market.tickers)
    if securities <= real:
        chosen = sorted(int(i) for i in rng.choice(real, securities, replace=False))
        ids = tuple(market.tickers[i] for i in chosen)
        levels = market.levels[:, chosen]
        sectors: list[int] = []
    else:
        synthetic = [_synthetic(j) for j in range(1, securities - real + 1)]
        ids = (*market.tickers, *(f"S{j:04d}" for j in range(1, securities - real + 1)))
        levels = np.column_stack([market.levels, *(c for c, _ in synthetic)])
        sectors = [sector for _, sector in synthetic]
    replacements = {name: tuple(r for r in REPLACEMENTS.get(name, ()) if r in ids) for name in ids}
    for j, sector in enumerate(sectors, start=1):
        if j % 8 == 0:
            replacements[f"S{j:04d}"] = (market.tickers[sector],)
    return _Universe(market, ids, levels, replacements)


def _model(ids: tuple[str, ...], weights: list[Decimal]) -> Model:
    return Model(
        model_id="M1",
        name="benchmark model",
        targets=(
            *(ModelTarget(TargetKind.SECURITY, n, w) for n, w in zip(ids, weights, strict=True)),
            ModelTarget(TargetKind.CASH, "", Decimal("0.02")),
            ModelTarget(TargetKind.DEFAULT, "", band=Band(Decimal("0.05"), Decimal("0.25"))),
        ),
    )


def _drifted(rng: np.random.Generator, weights: list[Decimal], invested: float) -> Floats:
    """Dollars held in each security: its target, drifted, ``invested`` in all."""
    n = len(weights)
    drift = rng.lognormal(0.0, 0.3, n)
    far = rng.random(n) < 0.1
    drift[far] = np.where(
        rng.random(int(far.sum())) < 0.5,
        rng.uniform(0.3, 0.6, int(far.sum())),
        rng.uniform(1.5, 2.2, int(far.sum())),
    )
    wanted: Floats = np.array([float(w) for w in weights]) * drift
    scaled: Floats = wanted * (invested / float(wanted.sum()))
    return scaled


def _lots(
    rng: np.random.Generator,
    universe: _Universe,
    wanted: Floats,
    lots: int,
    loss_share: float,
) -> list[TaxLot]:
    """Which securities hold how many lots, then the shares and the day of each."""
    n = len(universe.ids)
    if lots >= n:
        per = 1 + rng.multinomial(lots - n, np.sqrt(wanted) / np.sqrt(wanted).sum())
    else:
        per = np.zeros(n, dtype=np.int64)
        per[rng.choice(n, lots, replace=False)] = 1
    dates = universe.market.dates
    first = TODAY.replace(year=TODAY.year - LOT_YEARS)
    window = [d for d, day in enumerate(dates) if first <= day < TODAY - WASH_WINDOW]
    recent = [d for d, day in enumerate(dates) if TODAY - WASH_WINDOW <= day < TODAY]
    levels, last = universe.levels, universe.last
    made: list[TaxLot] = []
    for i, name in enumerate(universe.ids):
        count = int(per[i])
        if count == 0:
            continue
        shares = max(round(wanted[i] / float(universe.close(i, last))), count)
        above = [d for d in window if levels[d, i] > levels[last, i]]
        below = [d for d in window if levels[d, i] <= levels[last, i]]
        for quantity in _split(rng, shares, count):
            pool = (above or below) if rng.random() < loss_share else (below or above)
            if rng.random() < RECENT_SHARE:
                pool = recent
            day = pool[int(rng.integers(len(pool)))]
            made.append(
                TaxLot(
                    lot_id=f"L{len(made) + 1:05d}",
                    account_id=ACCOUNT,
                    security_id=name,
                    quantity=Decimal(quantity),
                    cost_basis=cents(quantity * universe.close(i, day)),
                    acquired=dates[day],
                )
            )
    return made


def make_account(
    securities: int,
    lots: int,
    *,
    seed: int = 1,
    value: float = 1_000_000.0,
    loss_share: float = 0.3,
) -> tuple[Problem, Floats]:
    """A taxable account of about ``value`` dollars on a model of ``securities`` stocks,
    holding ``lots`` tax lots, and its annual covariance aligned with
    ``problem.holdings`` (see the module's docstring for how each part is made)."""
    if securities < 1 or lots < 1:
        raise ValueError("an account needs at least one security and one lot")
    rng = np.random.default_rng(seed)
    universe = _universe(rng, securities)
    ids = universe.ids
    prices = {name: universe.close(i, universe.last) for i, name in enumerate(ids)}
    catalog = {
        name: Security(
            security_id=name,
            symbol=name,
            name=name,
            kind=SecurityKind.STOCK,
            asset_class="us_equity",
            replacements=universe.replacements[name],
        )
        for name in ids
    }
    weights = _weights(rng, securities)
    cash_share = rng.uniform(0.005, 0.04)
    wanted = _drifted(rng, weights, value * (1.0 - cash_share))
    account = Account(
        account_id=ACCOUNT,
        household_id="H1",
        registration=Registration.TAXABLE,
        name="benchmark account",
        model_id="M1",
        cash=cents(Decimal(f"{value * cash_share:.2f}")),
        reserve=CashReserve(fraction=Decimal("0.005")),
        tax_rates=TaxRates(Decimal("0.37"), Decimal("0.20"), Decimal("0.05")),
        harvest=True,
    )
    problem = build_problem(
        account=account,
        lots=_lots(rng, universe, wanted, lots, loss_share),
        prices=prices,
        model=resolve("M1", {"M1": _model(ids, weights)}),
        securities=catalog,
        today=TODAY,
    )
    if problem.value <= ZERO:
        raise ValueError("the account came out empty")
    column = {name: i for i, name in enumerate(ids)}
    aligned = [column[h.security_id] for h in problem.holdings]
    return problem, annual_covariance(universe.levels[-RISK_DAYS - 1 :, aligned])
