"""The demo's only I/O: read the market data, write the firm's CSV files.

:func:`generate_firm` reads ``sp500_prices.csv.gz`` and ``sp500_index.csv.gz`` from
``data_dir`` — by default the copy shipped inside the package (``demo/data``, with its
source and licence), so the demo runs wherever poise is installed — every cell as
text, so no close is ever a float, and hands them to the pure generator;
:func:`write_firm` writes one canonical CSV a kind, in load order.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import polars as pl

from poise.demo.firm import Firm, Progress, build_firm
from poise.demo.market import Market, build_market
from poise.domain.errors import ConfigError

__all__ = [
    "DATA_DIR",
    "INDEX_FILE",
    "PRICES_FILE",
    "generate_firm",
    "read_market",
    "write_backtest_inputs",
    "write_firm",
]

DATA_DIR = Path(__file__).with_name("data")  # package data: installed with poise
PRICES_FILE = "sp500_prices.csv.gz"
INDEX_FILE = "sp500_index.csv.gz"


def _read_text_csv(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise ConfigError(f"market data file not found: {path}")
    return pl.read_csv(path, infer_schema=False)


def read_market(data_dir: Path | None = None, *, seed: int = 7) -> Market:
    """The demo market built from the two market-data files in ``data_dir`` (by default
    the copy inside the package)."""
    data_dir = DATA_DIR if data_dir is None else data_dir
    stocks = _read_text_csv(data_dir / PRICES_FILE)
    index = _read_text_csv(data_dir / INDEX_FILE)
    return build_market(stocks, index, seed=seed)


def generate_firm(
    *,
    households: int = 200,
    seed: int = 7,
    data_dir: Path | None = None,
    progress: Progress | None = None,
) -> Firm:
    """Read the market data and generate the demo firm (see :func:`build_firm`)."""
    if progress is not None:
        progress("market", 0, 1)
    market = read_market(data_dir, seed=seed)
    if progress is not None:
        progress("market", 1, 1)
    return build_firm(market, households=households, seed=seed, progress=progress)


def write_firm(firm: Firm, out_dir: Path) -> list[Path]:
    """Write ``<kind>.csv`` for every kind into ``out_dir``; the paths, in load order.

    Empty cells are written empty (not as ``""``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for kind, frame in firm.frames().items():
        path = out_dir / f"{kind}.csv"
        frame.with_columns(pl.all().replace("", None)).write_csv(path)
        paths.append(path)
    return paths


def write_backtest_inputs(out_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """A price history and a model for ``poise backtest``: the stocks' closes as they
    ship (a Date column and one a stock), and ``model.csv`` holding each stock alike,
    2% in cash. The paths."""
    data_dir = DATA_DIR if data_dir is None else data_dir
    source = data_dir / PRICES_FILE
    if not source.is_file():
        raise ConfigError(f"market data file not found: {source}")
    out_dir.mkdir(parents=True, exist_ok=True)
    prices = out_dir / "prices.csv.gz"
    prices.write_bytes(source.read_bytes())
    stocks = [c for c in _read_text_csv(source).columns if c.lower() != "date"]
    weight = Decimal("0.98") / len(stocks) if stocks else Decimal(0)
    weight = weight.quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
    rows = [("EQUAL", "Each stock alike", "security", s, str(weight)) for s in stocks]
    rows.append(("EQUAL", "Each stock alike", "cash", "", str(1 - weight * len(stocks))))
    model = out_dir / "model.csv"
    pl.DataFrame(
        rows, schema=["model_id", "model_name", "kind", "target_id", "weight"], orient="row"
    ).with_columns(pl.col("target_id").replace("", None)).write_csv(model)
    return [prices, model]
