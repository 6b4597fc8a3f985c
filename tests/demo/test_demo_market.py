"""The demo market: real stock closes as written, funds derived from the real index."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from poise.demo import Market, build_market, read_market
from poise.domain.errors import FormatError


def test_stock_closes_are_the_shared_data_exactly(
    market: Market, real_closes: pl.DataFrame
) -> None:
    assert len(market.dates) == real_closes.height
    assert market.dates[0] == date(1990, 1, 2)
    assert market.as_of == date(2022, 12, 28)
    for symbol in ("AAPL", "XOM", "RRC"):
        assert market.closes[symbol] == tuple(Decimal(v) for v in real_closes[symbol])


def test_index_funds_are_scaled_index_levels_on_realistic_price_levels(market: Market) -> None:
    last = {sid: closes[-1] for sid, closes in market.closes.items()}
    assert last["SPY"] == Decimal("378.322")
    assert last["VOO"] == (Decimal("3783.22") / Decimal("10.9")).quantize(Decimal("0.0001"))
    assert last["VTI"] == (Decimal("3783.22") / Decimal("20.3")).quantize(Decimal("0.0001"))
    ratio = [
        float(v) / float(s) for v, s in zip(market.closes["VTI"], market.closes["SPY"], strict=True)
    ]
    assert 0.4 < min(ratio) < max(ratio) < 0.6  # a small tracking difference, not a new index


def test_synthetic_bond_funds_accrue_about_three_percent_a_year(market: Market) -> None:
    for fund, end in (("BND", Decimal("72.40")), ("VGSH", Decimal("58.10"))):
        closes = market.closes[fund]
        assert closes[-1] == end
        start = market.first_index_on_or_after(date(2010, 1, 4))
        years = (market.as_of - market.dates[start]).days / 365.25
        growth = (float(closes[-1]) / float(closes[start])) ** (1 / years) - 1
        assert 0.015 < growth < 0.045, fund
        daily = [abs(float(b) / float(a) - 1) for a, b in itertools.pairwise(closes)]
        assert max(daily) < 0.01  # smooth: no day moves a bond fund by 1%
    assert set(market.closes["VMFXX"]) == {Decimal("1.00")}


def test_synthetic_series_depend_only_on_the_seed(market: Market, data_dir: Path) -> None:
    again = read_market(data_dir, seed=7)
    other = read_market(data_dir, seed=8)
    assert again.closes == market.closes
    assert other.closes["BND"] != market.closes["BND"]
    assert other.closes["SPY"] == market.closes["SPY"]


def test_funds_are_listed_on_their_first_trading_day(market: Market) -> None:
    assert market.listed["AAPL"] == 0
    assert market.dates[market.listed["VOO"]] == date(2010, 9, 9)


def test_build_market_when_a_stock_column_is_missing_then_format_error(
    real_closes: pl.DataFrame, data_dir: Path
) -> None:
    index = pl.read_csv(data_dir / "sp500_index.csv.gz", infer_schema=False)
    with pytest.raises(FormatError, match="KO"):
        build_market(real_closes.drop("KO"), index, seed=7)
    with pytest.raises(FormatError, match="different trading days"):
        build_market(real_closes, index.head(10), seed=7)
