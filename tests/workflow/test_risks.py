"""The risk models a process keeps while one price history is in use."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from poise.optimize.history import PriceHistory
from poise.optimize.risk import RiskModel
from poise.workflow import risks as memo
from poise.workflow.risks import risks


def _history(seed: int, days: int = 120) -> PriceHistory:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, size=(days, 3))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    prices[:100, 2] = np.nan  # C: too little history of its own
    start = date(2022, 1, 3)
    return PriceHistory(
        ("A", "B", "C"), tuple(start + timedelta(days=d) for d in range(days)), prices
    )


def test_risks_when_a_set_is_met_again_then_its_figures_are_the_ones_worked_out_directly() -> None:
    history = _history(1)
    kept = risks(history)
    covariance = kept.covariance(["B", "A"])
    direct = history.select(["B", "A"]).covariance()
    np.testing.assert_array_equal(covariance, direct)
    assert kept.covariance(("B", "A")) is covariance  # met again: kept, not worked out
    assert kept.model(["B", "A"]) is kept.model(("B", "A"))
    model = RiskModel.of(["B", "A"], direct)
    np.testing.assert_array_equal(kept.model(["B", "A"]).exposures, model.exposures)
    assert kept.model(["B", "A"]).ids == ("B", "A")
    selected = history.select(["A", "C"])
    assert kept.described(["A", "C"]) == (selected.describe(), selected.falls_back)
    assert kept.described(["A", "C"])[1]  # 20 days in common: the default covariance
    assert not kept.described(["A", "B"])[1]


def test_risks_when_a_kept_covariance_or_model_is_written_to_then_it_refuses() -> None:
    kept = risks(_history(2))
    covariance, model = kept.covariance(["A", "B"]), kept.model(["A", "B"])
    with pytest.raises(ValueError, match="read-only"):
        covariance[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.exposures[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.specific[0] = 1.0
    before = float(model.exposures[1, 0])
    restricted = model.restricted(["B"])  # what an account's problem is made from: a copy
    restricted.exposures[0, 0] = before + 1.0
    assert model.exposures[1, 0] == before


def test_risks_when_another_history_comes_then_nothing_of_the_first_is_used() -> None:
    first, second = _history(3), _history(4)
    one = risks(first)
    assert risks(first) is one  # the same history: the same memo
    other = risks(second)
    assert other is not one
    np.testing.assert_array_equal(
        other.covariance(["A", "B"]), second.select(["A", "B"]).covariance()
    )
    assert not np.array_equal(other.covariance(["A", "B"]), one.covariance(["A", "B"]))


def test_risks_when_it_holds_more_than_it_keeps_then_it_starts_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = _history(5)
    kept = risks(history)
    kept.covariance(["A"])
    kept.model(["A", "B"])
    # the covariances of A (1×1) and of A, B (2×2); the model: exposures 2×2, specific 2
    assert kept.kept_bytes == 8 * (1 + 4 + 4 + 2)
    assert risks(history) is kept
    monkeypatch.setattr(memo, "KEPT_BYTES", kept.kept_bytes)
    fresh = risks(history)
    assert fresh is not kept
    assert fresh.kept_bytes == 0
