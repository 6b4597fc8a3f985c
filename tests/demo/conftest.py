"""One small demo firm per session, built from the real market data."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from poise.demo import Firm, Market, generate_firm, read_market

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SMALL = 10  # households: about 25 accounts, enough to see every kind of row


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "sp500_prices.csv.gz").is_file():
        pytest.skip(f"market data not found in {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def market(data_dir: Path) -> Market:
    return read_market(data_dir, seed=7)


@pytest.fixture(scope="session")
def firm(data_dir: Path) -> Firm:
    return generate_firm(households=SMALL, seed=7, data_dir=data_dir)


@pytest.fixture(scope="session")
def real_closes(data_dir: Path) -> pl.DataFrame:
    """The shared stock closes as text, read independently of the generator."""
    return pl.read_csv(data_dir / "sp500_prices.csv.gz", infer_schema=False)
