"""The risk model: tracking errors it predicts between securities that move together,
apart, and on the demo market's real index funds."""

from __future__ import annotations

import bisect
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pytest
from tests.optimize.test_optimize import make

from poise.demo import Market, read_market
from poise.domain.lots import TaxLot
from poise.optimize.history import PriceHistory
from poise.optimize.risk import DEFAULT_VOLATILITY, TRADING_DAYS, RiskModel
from poise.optimize.tax_aware import rebalance_optimize
from poise.optimize.trades import Side, TradeReason

Floats = npt.NDArray[np.float64]


def _tracking_error(covariance: Floats, ids: tuple[str, ...], held: str, target: str) -> float:
    active = np.zeros(len(ids))
    active[ids.index(held)] += 1.0
    active[ids.index(target)] -= 1.0
    return float(np.sqrt(max(active @ covariance @ active, 0.0)))


def _history(ids: tuple[str, ...], prices: Floats, first: date) -> PriceHistory:
    days = tuple(first + timedelta(days=d) for d in range(prices.shape[0]))
    return PriceHistory(ids, days, prices)


def _walk(rng: np.random.Generator, days: int, volatility: float) -> Floats:
    daily = rng.normal(0.0, volatility / np.sqrt(TRADING_DAYS), days - 1)
    path: Floats = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + daily)])
    return path


def test_tracking_error_when_two_funds_track_one_index_then_it_is_zero() -> None:
    # Two funds priced off the same index at different price levels, beside a stock
    # that moves on its own: swapping one fund for the other changes nothing.
    rng = np.random.default_rng(11)
    index = _walk(rng, 300, 0.20)
    stock = _walk(rng, 300, 0.35)
    ids = ("IDXA", "IDXB", "STOCK")
    prices = np.column_stack([index / 10.0, index / 10.9, stock])
    covariance = _history(ids, prices, date(2022, 1, 3)).covariance()

    # Zero to rounding: a variance off by 1e-17 is a tracking error of 3e-9 (a square
    # root), and how a product of floats is summed differs from one BLAS to another.
    assert _tracking_error(covariance, ids, "IDXA", "IDXB") == pytest.approx(0.0, abs=1e-7)
    # Each keeps its own volatility: nothing is taken from a variance.
    returns = index[1:] / index[:-1] - 1.0
    assert covariance[0, 0] == pytest.approx(np.var(returns) * TRADING_DAYS)
    assert covariance[2, 2] > covariance[0, 0]


def test_tracking_error_when_two_stocks_move_apart_then_it_is_their_realised_spread() -> None:
    rng = np.random.default_rng(12)
    ids = ("ONE", "TWO")
    prices = np.column_stack([_walk(rng, 400, 0.25), _walk(rng, 400, 0.30)])
    covariance = _history(ids, prices, date(2022, 1, 3)).covariance()

    returns = prices[1:] / prices[:-1] - 1.0
    realised = float(np.std(returns[:, 0] - returns[:, 1]) * np.sqrt(TRADING_DAYS))
    assert _tracking_error(covariance, ids, "ONE", "TWO") == pytest.approx(realised, rel=1e-9)


def test_covariance_when_history_is_too_short_then_it_is_the_default() -> None:
    rng = np.random.default_rng(13)
    ids = ("ONE", "TWO")
    prices = np.column_stack([_walk(rng, 30, 0.25), _walk(rng, 30, 0.30)])
    covariance = _history(ids, prices, date(2022, 1, 3)).covariance()

    assert np.array_equal(covariance, np.eye(2) * DEFAULT_VOLATILITY**2)


@pytest.fixture(scope="module")
def market() -> Market:
    return read_market()


def _market_history(
    market: Market,
    ids: tuple[str, ...],
    first: date,
    last: date,
    alias: dict[str, str] | None = None,
) -> PriceHistory:
    """The demo market's prices of ``ids`` (each under its ``alias``, if any)."""
    start = bisect.bisect_left(market.dates, first)
    end = bisect.bisect_right(market.dates, last)
    real = alias or {}
    prices = np.column_stack([market.levels[real.get(s, s)][start:end] for s in ids])
    return PriceHistory(ids, market.dates[start:end], prices)


def _realised(history: PriceHistory, held: str, target: str) -> float:
    returns = history.prices[1:] / history.prices[:-1] - 1.0
    ids = history.security_ids
    active = returns[:, ids.index(held)] - returns[:, ids.index(target)]
    return float(np.std(active) * np.sqrt(TRADING_DAYS))


DEMO_IDS: tuple[str, ...] = (
    "AAPL",
    "BAC",
    "BND",
    "JNJ",
    "JPM",
    "KO",
    "MRK",
    "MSFT",
    "PEP",
    "PFE",
    "PG",
    "SPY",
)
DEMO_IDS += ("VGSH", "VOO", "VTI", "WMT", "VMFXX")


def test_tracking_error_when_voo_replaces_spy_on_the_demo_market_then_it_is_below_half_a_percent(
    market: Market,
) -> None:
    history = _market_history(market, DEMO_IDS, date(2020, 12, 29), date(2022, 12, 28))
    risk = RiskModel.of(DEMO_IDS, history.covariance())

    assert _tracking_error(risk.covariance, DEMO_IDS, "VOO", "SPY") < 0.005


def test_tracking_error_when_vti_replaces_spy_then_the_forecast_meets_the_next_year(
    market: Market,
) -> None:
    # Estimated on the two years to the end of 2021, held against what 2022 did: VTI
    # wanders about 2% around the S&P 500, so the swap carries about 3% a year.
    fitted = _market_history(market, DEMO_IDS, date(2019, 12, 30), date(2021, 12, 29))
    following = _market_history(market, DEMO_IDS, date(2021, 12, 29), date(2022, 12, 28))
    risk = RiskModel.of(DEMO_IDS, fitted.covariance())

    predicted = _tracking_error(risk.covariance, DEMO_IDS, "VTI", "SPY")
    realised = _realised(following, "VTI", "SPY")
    assert 0.02 < realised < 0.05
    assert predicted == pytest.approx(realised, abs=0.0075)


def test_factor_model_when_the_universe_exceeds_the_factors_then_twins_stay_twins() -> None:
    # 60 securities, more than the factors kept: two copies of one index among
    # them still carry no tracking error between them.
    rng = np.random.default_rng(14)
    market_path = _walk(rng, 500, 0.18)
    market_returns = market_path[1:] / market_path[:-1] - 1.0
    columns = [market_path / 10.0, market_path / 10.9]
    for _ in range(58):
        own = rng.normal(0.0, 0.25 / np.sqrt(TRADING_DAYS), 499)
        beta = rng.uniform(0.6, 1.4)
        columns.append(
            100.0 * np.concatenate([[1.0], np.cumprod(1.0 + beta * market_returns + own)])
        )
    ids = tuple(["IDXA", "IDXB"] + [f"S{i:02d}" for i in range(58)])
    covariance = _history(ids, np.column_stack(columns), date(2021, 1, 4)).covariance()
    risk = RiskModel.of(ids, covariance)

    assert _tracking_error(risk.covariance, ids, "IDXA", "IDXB") < 0.005


def test_optimize_when_the_replacement_tracks_the_index_closely_then_the_whole_loss_is_harvested(
    market: Market,
) -> None:
    # Half of a $10,000 account in 13 SPY bought at $5,500, now $4,918: a $582
    # short-term loss, worth $244 (2.4% of the account) at 42%. VTI, SPY's replacement,
    # tracked the S&P 500 within 3.1% a year over the two years of prices, so swapping
    # half the account costs about 1.6 points of tracking error: the whole lot goes.
    # (Shrunk toward a scaled identity, the covariance put the pair at 5.5% and sold
    # two shares.)
    alias = {"SPY": "SPY", "VTI": "VTI", "AAA": "XOM"}
    last = {name: str(market.closes[real][-1]) for name, real in alias.items()}
    problem = make(
        {"SPY": "0.5", "AAA": "0.45"},
        [
            TaxLot("L1", "A1", "SPY", Decimal(13), Decimal(5500), date(2024, 1, 10)),
            TaxLot("L2", "A1", "AAA", Decimal(40), Decimal(4000), date(2020, 1, 10)),
        ],
        last,
    )
    ids = tuple(h.security_id for h in problem.holdings)
    history = _market_history(market, ids, date(2020, 12, 29), date(2022, 12, 28), alias)

    proposal = rebalance_optimize(problem, history.covariance())

    by = {(t.security_id, t.side): t for t in proposal.trades}
    assert by[("SPY", Side.SELL)].quantity == Decimal(13)
    assert by[("SPY", Side.SELL)].reason is TradeReason.HARVEST
    assert by[("VTI", Side.BUY)].reason is TradeReason.REPLACEMENT
    assert proposal.realised_short == Decimal("-581.81")
