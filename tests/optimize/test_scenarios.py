"""Scenarios: which ones a name asks for, the settings a person may give, and the
trade-offs of several methods on one account."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from tests.optimize.test_bands import problem

from poise.domain.errors import ValidationError
from poise.optimize.bands import rebalance_bands
from poise.optimize.scenarios import (
    PRESETS,
    Scenario,
    choose,
    compare,
    optimize_settings,
    tradeoffs,
)
from poise.optimize.tax_aware import OptimizeSettings

D = Decimal


def test_choose_when_all_is_named_then_every_preset_comes_once_in_order() -> None:
    assert [s.name for s in choose(["all"])] == ["full", "no-gains", "harvest", "cash", "bands"]
    assert [s.name for s in choose(["bands", "all", "full"])] == [
        "bands",
        "full",
        "no-gains",
        "harvest",
        "cash",
    ]
    assert list(PRESETS) == ["full", "no-gains", "harvest", "cash", "bands"]


def test_choose_when_settings_are_given_then_each_preset_keeps_its_own() -> None:
    base = OptimizeSettings(risk=2.0, tax_budget=D(5000), min_trade=D(100))
    full, no_gains, harvest, cash, bands = choose(["all"], base)
    assert full.settings == base
    assert no_gains.settings.tax_budget == 0  # its budget of 0 wins over 5,000
    assert no_gains.settings.risk == 2.0
    assert harvest.settings.harvest_only
    assert harvest.settings.tax_budget == D(5000)
    assert (cash.method, bands.method) == ("cash", "bands")
    assert cash.settings.min_trade == D(100)


def test_choose_when_a_name_is_unknown_then_it_is_refused_with_the_names() -> None:
    with pytest.raises(ValidationError, match=r"no scenario 'nope'; scenarios: full, no-gains"):
        choose(["full", "nope"])
    with pytest.raises(ValidationError, match="at least one"):
        choose([])


def test_a_scenario_when_its_method_is_unknown_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="no method 'magic'"):
        Scenario.of_method("magic")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"risk": -0.5}, "the risk weight must not be negative"),
        ({"tax_budget": D(-1)}, "the tax budget must not be negative"),
        ({"max_turnover": D("-0.1")}, "the maximum turnover must not be negative"),
        ({"min_trade": D(-5)}, "the minimum trade must not be negative"),
        ({"min_trade_fraction": D("1.5")}, "the minimum trade fraction must not be above 1"),
    ],
)
def test_optimize_settings_when_a_value_is_out_of_range_then_it_is_refused(
    given: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        optimize_settings(**given)  # type: ignore[arg-type]


def test_optimize_settings_when_zero_then_it_is_a_budget_not_a_missing_one() -> None:
    settings = optimize_settings(tax_budget=D(0), max_turnover=D("0.2"), min_trade=D(250))
    assert (settings.tax_budget, settings.max_turnover, settings.min_trade) == (
        D(0),
        D("0.2"),
        D(250),
    )


def test_compare_when_bands_and_cash_run_on_one_account_then_each_is_measured_alike() -> None:
    """
    AAA 70% against 60% ± 5 and BBB 20% against 30%, $1,000 cash against a 10% target:
    bands sells AAA and buys BBB; cash has no cash to raise or invest, so does nothing.
    """
    account = problem()
    covariance = np.eye(len(account.holdings)) * 0.04  # 20% each, no correlation
    results = compare(account, covariance, choose(["bands", "cash"]))
    (_, by_bands), (_, by_cash) = results
    assert by_bands.trades == rebalance_bands(account).trades  # the method, unchanged
    # Tracking error before: ‖0.2 · (0.1, −0.1)‖ = 2.83%; after bands, nearly 0.
    assert by_bands.tracking_before == by_cash.tracking_before == D("0.0283")
    assert by_bands.tracking_after is not None
    assert by_bands.tracking_after < D("0.001")
    assert by_cash.tracking_after == by_cash.tracking_before
    rows = tradeoffs(results)
    assert [(r.scenario, r.method, r.trades) for r in rows] == [
        ("bands", "bands", 2),
        ("cash", "cash", 0),
    ]
    assert rows[0].turnover == D("2000.00")
    assert rows[0].estimated_tax == D("-84.00")  # a $200 short-term loss harvested
    assert rows[1].turnover == 0
