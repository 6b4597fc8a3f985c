"""The demo market: a daily close for every demo security on every trading day.

The 20 stocks are the real adjusted closes of the shared market data, exactly as
written there. The funds are derived:

- **SPY** and **VOO** are the real S&P 500 index level divided by 10 and by 10.9
  (rounded to 4 decimals), the price levels of those two ETFs.
- **VTI** is the index divided by 20.3, times a slowly wandering tracking
  difference of about 2% (a mean-reverting AR(1) drawn from the seed) that is 1 on
  the last day.
- **BND** and **VGSH** are *synthetic*: nothing in the shared data prices a bond fund,
  so their series are an accrual of about 3% a year times a small mean-reverting
  wobble, drawn from the seed and scaled to end near those funds' real late-2022
  levels. They are plausible, not historical.
- **VMFXX**, a money-market fund, is 1.00 every day.

Pure: the caller passes the two price tables (every column as text); nothing here
reads a file.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import polars as pl

from poise.demo.catalog import FUNDS, STOCKS, FundSpec
from poise.domain.errors import FormatError

__all__ = ["INDEX_COLUMN", "Market", "build_market"]

INDEX_COLUMN = "SP500"
_PLACES = Decimal("0.0001")
_AR = 0.995  # daily persistence of the wobble: it half-decays in about 140 trading days

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Market:
    """Closes by security id, aligned with ``dates`` (ascending trading days).

    ``closes`` are the exact Decimals (what a lot's cost is computed from); ``levels``
    the same numbers as floats, for arithmetic that only chooses; ``listed`` the index
    of a security's first trading day.
    """

    dates: tuple[date, ...]
    closes: Mapping[str, tuple[Decimal, ...]]
    levels: Mapping[str, FloatArray]
    listed: Mapping[str, int]

    @property
    def as_of(self) -> date:
        return self.dates[-1]

    @property
    def security_ids(self) -> tuple[str, ...]:
        return tuple(self.closes)

    def first_index_on_or_after(self, day: date) -> int:
        """The index of the first trading day on or after ``day`` (len(dates) if none)."""
        return bisect.bisect_left(self.dates, day)


def _column(frame: pl.DataFrame, name: str) -> list[str]:
    if name not in frame.columns:
        raise FormatError(f"market data has no column {name!r}")
    values = frame[name].cast(pl.String).to_list()
    if any(v is None or not v.strip() for v in values):
        raise FormatError(f"market data column {name!r} has empty cells")
    return [str(v) for v in values]


def _wobble(rng: np.random.Generator, n: int, size: float) -> FloatArray:
    """A stationary AR(1) path with standard deviation ``size``, ending at 0."""
    shocks = rng.standard_normal(n) * size * math.sqrt(1.0 - _AR * _AR)
    path = np.empty(n, dtype=np.float64)
    path[0] = rng.standard_normal() * size
    for i in range(1, n):
        path[i] = _AR * path[i - 1] + shocks[i]
    ended: FloatArray = path - path[-1]
    return ended


def _to_decimals(values: FloatArray) -> tuple[Decimal, ...]:
    return tuple(Decimal(f"{v:.4f}") for v in values)


def _fund_closes(
    fund: FundSpec, index: list[str], years: FloatArray, rng: np.random.Generator
) -> tuple[Decimal, ...]:
    rule = fund.rule
    n = len(index)
    if rule.method == "constant":
        return (rule.end_price,) * n
    if rule.method == "index":
        if rule.tracking <= 0:
            return tuple((Decimal(level) / rule.scale).quantize(_PLACES) for level in index)
        factor = np.exp(_wobble(rng, n, rule.tracking))
        levels = np.array([float(level) for level in index]) / float(rule.scale)
        return _to_decimals(levels * factor)
    if rule.method == "synthetic":
        accrual = rule.drift * (years - years[-1])
        levels = float(rule.end_price) * np.exp(accrual + _wobble(rng, n, rule.noise))
        return _to_decimals(levels)
    raise ValueError(f"unknown price rule {rule.method!r}")


def build_market(stocks: pl.DataFrame, index: pl.DataFrame, *, seed: int) -> Market:
    """The demo market from the stock closes and the S&P 500 index closes.

    Both tables have a ``Date`` column (YYYY-MM-DD) and one column per series, on the
    same trading days. The synthetic series depend only on ``seed``.
    """
    day_texts = _column(stocks, "Date")
    if _column(index, "Date") != day_texts:
        raise FormatError("the stock and index tables cover different trading days")
    dates = tuple(date.fromisoformat(d) for d in day_texts)
    if any(b <= a for a, b in itertools.pairwise(dates)):
        raise FormatError("market data dates are not strictly ascending")

    closes: dict[str, tuple[Decimal, ...]] = {}
    for stock in STOCKS:
        closes[stock.symbol] = tuple(Decimal(v) for v in _column(stocks, stock.symbol))

    levels_index = _column(index, INDEX_COLUMN)
    years = np.array([(d - dates[0]).days / 365.25 for d in dates], dtype=np.float64)
    for number, fund in enumerate(FUNDS):
        rng = np.random.default_rng([seed, 1, number])
        closes[fund.symbol] = _fund_closes(fund, levels_index, years, rng)

    for security_id, series in closes.items():
        if any(price <= 0 for price in series):
            raise FormatError(f"market data for {security_id} has a price that is not positive")

    listed = {s.symbol: 0 for s in STOCKS}
    for fund in FUNDS:
        listed[fund.symbol] = bisect.bisect_left(dates, fund.listed)
    levels = {sid: np.array([float(p) for p in series]) for sid, series in closes.items()}
    return Market(dates=dates, closes=closes, levels=levels, listed=listed)
