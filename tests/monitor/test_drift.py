"""Drift and bands, checked against figures worked out by hand."""

from __future__ import annotations

import pytest
from tests.monitor.firm import (
    Scanned,
    account,
    book_of,
    holdings,
    model,
    withdrawal,
)

from poise.monitor.book import BandPolicy

PRICES = {"AAA": 100.0, "BBB": 100.0, "CCC": 50.0, "BND": 10.0}
BALANCED = model(
    "BAL",
    """
    security AAA 0.6 abs 0.05
    security BBB 0.3
    cash 0.1
    """,
)


def test_drift_when_an_account_runs_ahead_of_its_model_then_weights_and_drift_are_exact() -> None:
    # $7,000 AAA + $2,000 BBB + $1,000 cash = $10,000: AAA 70% (target 60%), BBB 20% (30%).
    book = book_of([account("A1", "BAL", "1000")], holdings("A1", "AAA 70, BBB 20"), [BALANCED])
    scanned = Scanned(book, PRICES)
    assert scanned.value("A1") == 10_000
    assert scanned.drift("A1", "AAA") == pytest.approx(0.10, abs=1e-12)
    assert scanned.drift("A1", "BBB") == pytest.approx(-0.10, abs=1e-12)
    # AAA has its own ±5-point band; BBB takes the firm's 5/25: min(0.05, 0.25 × 0.30).
    assert scanned.width("A1", "AAA") == pytest.approx(0.05)
    assert scanned.width("A1", "BBB") == pytest.approx(0.05)
    assert scanned.breached("A1") == {"AAA", "BBB"}


@pytest.mark.parametrize(
    ("aaa", "bbb", "breached"),
    [
        (6000, 3500, set()),  # BBB 35%: +5 points over 30%, on the 5/25 edge: inside
        (5999, 3501, {"BBB"}),  # BBB 35.01%: past it
        (6500, 2500, set()),  # AAA +5 on its own ±5 band, BBB −5: both on the edge
        (6501, 2499, {"AAA", "BBB"}),  # both past it
    ],
)
def test_bands_when_a_position_sits_on_its_absolute_edge_then_only_past_it_breaches(
    aaa: int, bbb: int, breached: set[str]
) -> None:
    # A $10,000 account with $1 prices: shares are dollars, dollars are basis points.
    book = book_of(
        [account("A1", "BAL", str(10_000 - aaa - bbb))],
        holdings("A1", f"AAA {aaa}, BBB {bbb}"),
        [BALANCED],
    )
    scanned = Scanned(book, {"AAA": 1.0, "BBB": 1.0})
    assert scanned.breached("A1") - {"cash excess", "cash short"} == breached


@pytest.mark.parametrize(
    ("weight_in_bps", "breaches"),
    [(1250, False), (1251, True), (750, False), (749, True)],
)
def test_bands_when_the_target_is_small_then_the_relative_half_of_5_25_applies(
    weight_in_bps: int, breaches: bool
) -> None:
    # Target 10%: 25% of it is ±2.5 points, narrower than 5. Edges: 7.5% and 12.5%.
    small = model("SMALL", "security AAA 0.1\nsecurity BBB 0.9 abs 1")
    book = book_of(
        [account("A1", "SMALL", "0")],
        holdings("A1", f"AAA {weight_in_bps}, BBB {10_000 - weight_in_bps}"),
        [small],
    )
    scanned = Scanned(book, {"AAA": 1.0, "BBB": 1.0})
    assert scanned.width("A1", "AAA") == pytest.approx(0.025)
    assert ("AAA" in scanned.breached("A1")) is breaches


@pytest.mark.parametrize(("target_pct", "width"), [(20, 0.05), (30, 0.05), (19, 0.0475), (4, 0.01)])
def test_bands_when_5_25_is_the_preset_then_width_is_5_points_at_20_percent_and_up(
    target_pct: int, width: float
) -> None:
    rest = 100 - target_pct
    m = model("M", f"security AAA 0.{target_pct:02d}\nsecurity BBB 0.{rest:02d}")
    book = book_of([account("A1", "M", "0")], holdings("A1", "AAA 1, BBB 1"), [m])
    assert Scanned(book, {"AAA": 1.0, "BBB": 1.0}).width("A1", "AAA") == pytest.approx(width)


def test_bands_when_the_account_overrides_them_then_its_pair_wins() -> None:
    book = book_of(
        [account("A1", "BAL", "1000", tolerance="abs 0.15")],
        holdings("A1", "AAA 70, BBB 20"),
        [BALANCED],
    )
    scanned = Scanned(book, PRICES)
    assert scanned.width("A1", "AAA") == pytest.approx(0.15)
    assert scanned.breached("A1") == set()


def test_drift_when_the_model_is_a_model_of_models_then_sleeves_are_resolved_and_bands_scaled() -> (
    None
):
    # CORE = 70% EQ + 30% FI; EQ = 50% AAA (±10 points) + 50% BBB; FI = 100% BND.
    # Resolved: AAA 35%, BBB 35%, BND 30%; AAA's band is 10 × 0.7 = ±7 points.
    eq = model("EQ", "security AAA 0.5 abs 0.10\nsecurity BBB 0.5 abs 0.10")
    fi = model("FI", "security BND 1 abs 0.05")
    core = model("CORE", "model EQ 0.7\nmodel FI 0.3\nasset_class us_equity abs 0.05")
    # $42,000 AAA, $28,000 BBB, $30,000 BND: AAA +7 points (on the edge), BBB −7.
    on_edge = holdings("A1", "AAA 420, BBB 280, BND 3000")
    past_edge = holdings("A2", "AAA 421, BBB 279, BND 3000")
    book = book_of(
        [account("A1", "CORE", "0"), account("A2", "CORE", "0")],
        on_edge + past_edge,
        [eq, fi, core],
    )
    scanned = Scanned(book, PRICES)
    assert scanned.drift("A1", "AAA") == pytest.approx(0.07, abs=1e-12)
    assert scanned.width("A1", "AAA") == pytest.approx(0.07)
    assert scanned.width("A1", "BND") == pytest.approx(0.015)  # 5 points × 30%
    assert scanned.breached("A1") == set()
    assert scanned.breached("A2") == {"AAA", "BBB"}
    # US equity as a class: 70% against 70%, inside its ±5 points.
    assert scanned.class_weight("A2", "us_equity") == pytest.approx(0.70)


def test_drift_when_an_asset_class_drifts_past_its_band_then_the_class_breaches() -> None:
    m = model(
        "M",
        """
        security AAA 0.3 abs 0.10
        security BBB 0.3 abs 0.10
        security BND 0.4 abs 0.10
        asset_class us_equity abs 0.05
        """,
    )
    # AAA 36%, BBB 30%, BND 34%: each position within ±10, US equity 66% vs 60%: out.
    book = book_of([account("A1", "M", "0")], holdings("A1", "AAA 36, BBB 30, BND 340"), [m])
    assert Scanned(book, PRICES).breached("A1") == {"class us_equity"}


def test_cash_when_below_reserve_plus_withdrawals_then_short_and_when_far_above_then_excess() -> (
    None
):
    m = model("M", "security AAA 0.98 abs 1\ncash 0.02 abs 0.01")
    accounts = [
        account("SHORT", "M", "700", reserve="500"),  # needs 500 + 300 withdrawal = 800
        account("EXACT", "M", "800", reserve="500"),
        account("EXCESS", "M", "3001"),  # 3,001 of 100,001 is 3.0% > 2% + 1 point
        account("FINE", "M", "2999"),
    ]
    lots = [
        *holdings("SHORT", "AAA 980"),
        *holdings("EXACT", "AAA 980"),
        *holdings("EXCESS", "AAA 970"),
        *holdings("FINE", "AAA 970"),
    ]
    flows = [withdrawal("SHORT", "300"), withdrawal("EXACT", "300")]
    scanned = Scanned(book_of(accounts, lots, [m], flows=flows), PRICES)
    assert "cash short" in scanned.breached("SHORT")
    assert "cash short" not in scanned.breached("EXACT")
    assert "cash excess" in scanned.breached("EXCESS")
    assert scanned.breached("FINE") == set()


def test_drift_when_an_account_holds_something_outside_its_model_then_it_is_out_of_band() -> None:
    book = book_of(
        [account("A1", "BAL", "1000")], holdings("A1", "AAA 60, BBB 29, CCC 2"), [BALANCED]
    )
    # CCC is $100 of $10,000: 1% against a target of 0; 5/25 gives it no room at all.
    assert Scanned(book, PRICES).breached("A1") == {"outside the model"}
    none_policy = book_of(
        [account("A1", "BAL", "1000")],
        holdings("A1", "AAA 60, BBB 29, CCC 2"),
        [BALANCED],
        preset="none",
    )
    assert Scanned(none_policy, PRICES).breached("A1") == set()


def test_book_when_a_model_does_not_resolve_then_its_accounts_are_left_out_of_the_scan() -> None:
    loop_a = model("LA", "model LB 1")
    loop_b = model("LB", "model LA 1")
    book = book_of(
        [account("A1", "LA", "10"), account("A2", "NOPE", "10"), account("A3", "BAL", "10")],
        [],
        [loop_a, loop_b, BALANCED],
    )
    assert book.unmodelled == ("A1", "A2")
    assert [b.account_ids for b in book.blocks] == [("A3",)]


def test_band_policy_when_the_preset_is_unknown_then_it_says_which_exist() -> None:
    with pytest.raises(ValueError, match="5/25"):
        BandPolicy.preset("10/10")


def test_cash_when_the_account_overrides_bands_then_its_band_applies_to_cash_too() -> None:
    m = model("M", "security AAA 0.98 abs 1\ncash 0.02 abs 0.01")
    accounts = [account("WIDE", "M", "15000", tolerance="abs 0.15"), account("USUAL", "M", "15000")]
    lots = [*holdings("WIDE", "AAA 850"), *holdings("USUAL", "AAA 850")]
    scanned = Scanned(book_of(accounts, lots, [m]), PRICES)
    # Cash 15% against 2%: 13 points over; inside the account's ±15, outside the model's ±1.
    assert "cash excess" not in scanned.breached("WIDE")
    assert "cash excess" in scanned.breached("USUAL")
