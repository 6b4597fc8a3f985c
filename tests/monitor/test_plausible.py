"""Implausible prices: a move far beyond a security's own volatility, or a price outside
the plain range, is named; an ordinary move — and a genuine big one of a volatile
security — is not.

The securities of these tests, priced every day up to 13 March 2024 and then again on
the evening of 14 March:

    CALM   a large cap moving 1.5% a day, at 100
    WILD   a small cap moving 4% a day, at 20
    MMF    a money-market fund, 1.00 every day
    NEW    listed a week ago: five closes around 50
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from poise.monitor.plausible import (
    MIN_RETURNS,
    PriceCheck,
    Recent,
    implausible_prices,
    recent_prices,
)

D = Decimal
LAST_CLOSE = date(2024, 3, 13)
NOW = datetime(2024, 3, 14, 21, 0, tzinfo=UTC)
CHECK = PriceCheck()


def walk(end: float, sigma: float, days: int, seed: int) -> list[float]:
    """A seeded daily random walk of ``days`` closes ending at ``end``."""
    rng = np.random.default_rng(seed)
    logs = np.cumsum(rng.normal(0, sigma, days))
    return list(np.round(end * np.exp(logs - logs[-1]), 4))


DAYS = [LAST_CLOSE - timedelta(days=k) for k in range(59, -1, -1)]
CLOSES = {
    "CALM": walk(100.0, 0.015, 60, seed=1),
    "WILD": walk(20.0, 0.04, 60, seed=2),
    "MMF": [1.0] * 60,
    "NEW": [np.nan] * 55 + [49.0, 50.5, 50.0, 49.5, 50.0],
}


def recent(closes: dict[str, list[float]] = CLOSES, check: PriceCheck = CHECK) -> Recent:
    names = sorted(closes)
    return recent_prices(
        security_ids=names,
        days=DAYS,
        closes=np.array([closes[s] for s in names], dtype=np.float64).T,
        latest_days=dict.fromkeys(names, NOW.date()),
        check=check,
    )


def judged(
    prices: dict[str, str],
    *,
    closes: dict[str, list[float]] = CLOSES,
    check: PriceCheck = CHECK,
    factors: dict[str, float] | None = None,
) -> dict[str, str]:
    """Why each of today's ``prices`` is implausible (only those that are)."""
    return implausible_prices(
        prices={s: D(p) for s, p in prices.items()},
        price_times=dict.fromkeys(prices, NOW),
        recent=recent(closes, check),
        check=check,
        factors=factors,
    )


def test_recent_prices_when_two_months_of_closes_are_read_then_each_has_its_own_volatility() -> (
    None
):
    found = recent()
    by = found.index()
    assert found.sigma[by["CALM"]] == pytest.approx(0.015, rel=0.3)
    assert found.sigma[by["WILD"]] == pytest.approx(0.04, rel=0.3)
    assert found.sigma[by["MMF"]] == 0.0
    assert np.isnan(found.sigma[by["NEW"]])  # four returns: too few for a volatility
    assert found.returns[by["NEW"]] == 4 < MIN_RETURNS
    assert found.previous[by["CALM"]] == 100.0
    assert found.previous_day[by["NEW"]] == LAST_CLOSE


def test_implausible_when_every_price_moves_as_it_usually_does_then_nothing_is_named() -> None:
    # CALM +1.5%, WILD −6%, MMF unchanged, NEW +3%.
    assert judged({"CALM": "101.50", "WILD": "18.80", "MMF": "1.00", "NEW": "51.50"}) == {}


def test_implausible_when_a_volatile_stock_makes_a_big_move_within_ten_sigmas_then_it_stands() -> (
    None
):
    # WILD moves 4% a day: +30% is about 6.6 of its daily volatilities — a big day, a
    # real one. The same +30% on CALM (1.5% a day) is about 17 volatilities: implausible.
    assert judged({"WILD": "26.00"}) == {}
    [(security, why)] = judged({"CALM": "130.00"}).items()
    assert security == "CALM"
    assert why.startswith("price 130 on 2024-03-14 is 30.0% above the previous 100 of 2024-03-13")
    assert "times its recent daily volatility" in why
    assert why.endswith("more than 10 times is implausible")


def test_implausible_when_the_feed_sends_1e20_and_1e_8_then_both_are_named_with_the_move() -> None:
    found = judged({"CALM": "100000000000000000000", "WILD": "0.00000001"})
    assert set(found) == {"CALM", "WILD"}
    assert found["CALM"] == (
        "price 100000000000000000000 on 2024-03-14 is above the ceiling of 10000000,"
        " and 1e+18 times the previous 100 of 2024-03-13"
    )
    assert found["WILD"].startswith(
        "price 0.00000001 on 2024-03-14 is 1/2e+09 of the previous 20 of 2024-03-13: a move of"
    )


def test_implausible_when_a_calm_series_moves_a_little_then_the_floor_keeps_it_usable() -> None:
    # MMF has not moved in two months (volatility 0): 2% is within the 10% floor, 50% is not.
    assert judged({"MMF": "1.02"}) == {}
    assert judged({"MMF": "1.50"})["MMF"] == (
        "price 1.5 on 2024-03-14 is 50.0% above the previous 1 of 2024-03-13: its recent"
        " daily volatility is only 0.00%, and a move of more than 0.1 (a log return) is"
        " implausible"
    )
    assert judged({"MMF": "1.50"}, check=PriceCheck(floor=0.5)) == {}


def test_implausible_when_there_is_too_little_history_then_more_than_doubling_is_named() -> None:
    assert judged({"NEW": "90.00"}) == {}  # +80%: a lot, but not a doubling
    assert judged({"NEW": "105.00"})["NEW"] == (
        "price 105 on 2024-03-14 is 2.1 times the previous 50 of 2024-03-13; with 4 daily"
        " returns, too few for a volatility, a move of more than 2 times either way is"
        " implausible"
    )
    assert "NEW" in judged({"NEW": "24.00"})  # less than half
    assert judged({"NEW": "105.00"}, check=PriceCheck(jump=3)) == {}


def test_implausible_when_a_security_has_no_earlier_price_then_only_the_range_applies() -> None:
    found = judged({"FIRST": "1234.5", "ZERO": "0", "HUGE": "10000000.01"}, closes={})
    assert found == {
        "HUGE": "price 10000000.01 on 2024-03-14 is above the ceiling of 10000000",
        "ZERO": "price 0 on 2024-03-14 is not positive",
    }


def test_implausible_when_a_split_is_recorded_then_its_halving_is_explained() -> None:
    # A 2-for-1 split halves CALM's price overnight: without a corporate-action record
    # that is a fall of some 46 volatilities; with the factor 0.5 it is a −1% day.
    assert "CALM" in judged({"CALM": "49.50"})
    assert judged({"CALM": "49.50"}, factors={"CALM": 0.5}) == {}


def test_implausible_when_a_wrong_price_was_left_in_the_history_then_the_check_still_sees() -> None:
    # A day of CALM at 1e20, never corrected, is in its history: its two returns are
    # clipped, so CALM's volatility stays a few percent and a fall to 1e-8 is still named.
    closes = dict(CLOSES)
    spoiled = list(closes["CALM"])
    spoiled[30] = 1e20
    closes["CALM"] = spoiled
    assert recent(closes).sigma[recent(closes).index()["CALM"]] < 0.05
    assert "CALM" in judged({"CALM": "0.00000001"}, closes=closes)


def test_implausible_when_the_check_is_switched_off_then_nothing_is_named() -> None:
    assert judged({"CALM": "100000000000000000000"}, check=PriceCheck(on=False)) == {}


def test_recent_prices_when_a_security_has_a_price_today_then_today_is_not_its_history() -> None:
    # The latest price is judged against the day before, never against itself.
    names = ["CALM"]
    closes = np.array([[*CLOSES["CALM"], 1e20]]).T
    found = recent_prices(
        security_ids=names,
        days=[*DAYS, NOW.date()],
        closes=closes,
        latest_days={"CALM": NOW.date()},
        check=CHECK,
    )
    assert found.previous[0] == 100.0
    assert found.previous_day[0] == LAST_CLOSE
    assert found.sigma[0] < 0.05
