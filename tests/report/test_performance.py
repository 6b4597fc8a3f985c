"""Performance, by worked examples with their numbers written out: a mid-month deposit
where time- and money-weighted methods part, an IRR a spreadsheet documents, a
Brinson–Fachler table that adds up to the active return; and properties: a period
without flows returns its value ratio however it is cut."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.errors import ValidationError
from poise.report.performance import (
    annualised,
    brinson_fachler,
    daily_returns,
    irr,
    link,
    max_drawdown,
    modified_dietz,
    period_returns,
    tracking_error,
    twr,
    volatility,
)


def month_with_a_deposit(path: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """A 30-day month: 100,000 at its start, 105,000 after day 15, then a 50,000
    deposit at the start of day 16, and 160,000 at its end; ``path`` the values in
    between (they may be anything: linking telescopes)."""
    values = np.array([*path[:14], 105_000.0, *path[14:28], 160_000.0])
    flows = np.zeros(30)
    flows[15] = 50_000.0
    return values, flows


def test_twr_when_a_deposit_comes_mid_month_then_it_links_the_two_halves() -> None:
    rng = np.random.default_rng(7)
    values, flows = month_with_a_deposit(list(rng.uniform(90_000, 170_000, 28)))

    result = twr(values[None, :], flows[None, :], np.array([100_000.0]))

    # 105,000 / 100,000 × 160,000 / 155,000 − 1
    assert result[0] == pytest.approx(0.083871, abs=5e-7)
    assert round(float(result[0]) * 100, 3) == 8.387


def test_modified_dietz_when_a_deposit_comes_mid_month_then_it_is_weighted_by_half() -> None:
    flows = np.zeros(30)
    flows[15] = 50_000.0  # 15 of 30 days invested: weight 0.5

    result = modified_dietz(np.array([100_000.0]), np.array([160_000.0]), flows[None, :])

    # (160,000 − 100,000 − 50,000) / (100,000 + 0.5 × 50,000) = 10,000 / 125,000
    assert result[0] == pytest.approx(0.08, abs=1e-12)


def test_irr_when_the_spreadsheet_example_is_given_then_it_is_the_documented_rate() -> None:
    # Microsoft's XIRR example: an investment of 10,000 and four returns of it.
    days = [date(2008, 1, 1), date(2008, 3, 1), date(2008, 10, 30), date(2009, 2, 15),
            date(2009, 4, 1)]  # fmt: skip
    amounts = [-10_000.0, 2_750.0, 4_250.0, 3_250.0, 2_750.0]

    # documented as 0.373362535; the spreadsheet stops iterating within 0.000001%, so
    # its last digit is its own: the root itself is 0.3733625335...
    assert irr(days, amounts) == pytest.approx(0.373362535, abs=1e-8)


def test_irr_when_monthly_deposits_grow_then_the_rate_discounts_them_to_nothing() -> None:
    # 1,000 deposited on the first of each month of 2025, worth 12,700 on 1 January 2026.
    days = [date(2025, m, 1) for m in range(1, 13)] + [date(2026, 1, 1)]
    amounts = [-1_000.0] * 12 + [12_700.0]

    rate = irr(days, amounts)

    first = days[0]
    npv = sum(
        a / (1 + rate) ** ((d - first).days / 365) for d, a in zip(days, amounts, strict=True)
    )
    assert abs(npv) < 1e-6
    assert 0.10 < rate < 0.12  # 700 earned on about 6,500 held for a year on average


def test_irr_when_the_flows_do_not_change_sign_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="both ways"):
        irr([date(2025, 1, 1), date(2026, 1, 1)], [-1.0, -2.0])


def test_brinson_fachler_when_a_table_is_worked_then_its_effects_add_up_to_the_active_return() -> (
    None
):
    done = brinson_fachler(
        ["equity", "bonds", "cash"],
        portfolio_weights=[0.60, 0.30, 0.10],
        benchmark_weights=[0.50, 0.40, 0.10],
        portfolio_returns=[0.10, 0.03, 0.01],
        benchmark_returns=[0.08, 0.04, 0.01],
    )

    # R_b = .5×.08 + .4×.04 + .1×.01 = .057; R_p = .6×.10 + .3×.03 + .1×.01 = .070
    assert (done.benchmark, done.portfolio) == (pytest.approx(0.057), pytest.approx(0.070))
    # allocation (w_p − w_b)(r_b − R_b): .1×.023, −.1×−.017, 0
    assert done.allocation == pytest.approx((0.0023, 0.0017, 0.0))
    # selection w_b(r_p − r_b): .5×.02, .4×−.01, 0
    assert done.selection == pytest.approx((0.010, -0.004, 0.0))
    # interaction (w_p − w_b)(r_p − r_b): .1×.02, −.1×−.01, 0
    assert done.interaction == pytest.approx((0.002, 0.001, 0.0))
    assert done.explained == pytest.approx(done.active)
    assert done.active == pytest.approx(0.013)


def test_brinson_fachler_when_weights_do_not_add_up_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="add up"):
        brinson_fachler(["a", "b"], [0.5, 0.4], [0.5, 0.5], [0.1, 0.1], [0.1, 0.1])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=2, max_size=60),
    st.floats(min_value=1.0, max_value=1e9),
)
def test_twr_when_no_money_moves_then_it_is_the_ratio_of_end_to_start(
    moves: list[float], start: float
) -> None:
    path = start * np.cumprod(moves)  # a day may halve or double the account, no more
    values = path[None, :]

    result = twr(values, np.zeros_like(values), np.array([start]))

    assert result[0] == pytest.approx(path[-1] / start - 1, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=3, max_size=40),
    st.integers(min_value=1, max_value=38),
)
def test_link_when_a_span_is_cut_in_two_then_the_halves_link_to_the_whole(
    returns: list[float], cut: int
) -> None:
    series = np.array(returns)
    cut = min(cut, len(returns) - 1)

    halves = (1 + link(series[:cut])) * (1 + link(series[cut:])) - 1

    assert halves == pytest.approx(link(series), rel=1e-12, abs=1e-15)


def test_daily_returns_when_an_account_opens_with_a_deposit_then_it_earns_from_that_day() -> None:
    values = np.array([[0.0, 1_010.0, 1_020.1]])
    flows = np.array([[0.0, 1_000.0, 0.0]])

    returns = daily_returns(values, flows, np.array([0.0]))

    assert returns[0] == pytest.approx([0.0, 0.01, 0.01])


def test_risk_when_measured_then_volatility_drawdown_and_tracking_error_are_the_textbooks() -> None:
    returns = np.array([0.01, -0.02, 0.015, -0.01, 0.005])
    benchmark = np.array([0.008, -0.015, 0.01, -0.012, 0.006])

    assert volatility(returns) == pytest.approx(np.std(returns, ddof=1) * math.sqrt(252))
    assert tracking_error(returns, benchmark) == pytest.approx(
        np.std(returns - benchmark, ddof=1) * math.sqrt(252)
    )
    # the dollar goes 1.01, 0.9898, 1.00465, 0.99460, 0.99957: its peak 1.01, its trough
    # 0.9898 — a fall of 2%
    assert max_drawdown(returns) == pytest.approx(0.02)


def test_annualised_when_under_a_year_then_left_as_it_is_and_over_a_year_compounded() -> None:
    assert annualised(0.05, 200) == 0.05
    assert annualised(0.21, 730) == pytest.approx(0.1, rel=1e-3)


def test_period_returns_when_a_year_of_days_is_given_then_each_period_links_its_own_days() -> None:
    start = date(2025, 1, 1)
    days = [start + timedelta(days=i) for i in range(365)]
    returns = np.full(365, 0.0001)
    as_of = date(2025, 12, 31)

    found = period_returns(days, returns, as_of)

    assert found["mtd"] == pytest.approx(1.0001**31 - 1)
    assert found["qtd"] == pytest.approx(1.0001**92 - 1)
    assert found["ytd"] == pytest.approx(1.0001**365 - 1)
    assert found["1y"] == pytest.approx(1.0001**365 - 1)
    assert found["3y"] is None
    assert found["inception"] == pytest.approx(1.0001**365 - 1)
