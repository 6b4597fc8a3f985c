"""Concentration: single security, issuer, sector, top holdings, asset-class range,
minimum cash — each passing, warning and blocking on a household in a few lines."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.comply.book import breaches, findings, household

from poise.comply.rules.base import Scope
from poise.comply.rules.concentration import (
    AssetClassRange,
    IssuerWeight,
    MinimumCash,
    SectorWeight,
    SecurityWeight,
    TopHoldings,
)
from poise.comply.views import Reference, nothing

D = Decimal

# $20,000: AAPL $2,480 (12.4%), MSFT $4,000 (20%), BND $7,500 (37.5%), SPY $5,000, cash $1,020
ACCOUNT = """
account 10000001 taxable cash 1020
10000001 AAPL 12.4
10000001 MSFT 10
10000001 BND 100
10000001 SPY 10
"""


def test_security_weight_when_a_buy_takes_it_over_then_the_security_and_account_are_named() -> None:
    # $20,000: AAPL $480 and cash; buying $2,000 more makes AAPL $2,480, 12.4%.
    text = """
    account 10000001 taxable cash 19520
    10000001 AAPL 2.4
    """
    assert findings(SecurityWeight(rule_id="x", max_weight=0.10), text) == []
    [f] = breaches(SecurityWeight, {"max_weight": 0.10}, text + "trade 10000001 buy AAPL 10")
    assert f.explanation == (
        "AAPL would be 12.4% of account 10000001, above the 10.0% security-weight limit"
    )
    assert (f.securities, f.accounts) == (("AAPL",), ("10000001",))
    assert f.limit == 0.10
    assert f.measured == pytest.approx(0.124)


def test_security_weight_when_household_scope_then_the_accounts_are_weighed_together() -> None:
    text = """
    account A1 taxable cash 12000
    account A2 roth_ira cash 0
    A1 AAPL 10        # $2,000 of $14,000
    A2 AAPL 10        # $2,000 of $4,000
    A2 MO 40          # $2,000
    """
    # AAPL is half of A2, but $4,000 of the household's $18,000: 22.2%
    household_wide = {"scope": Scope.HOUSEHOLD}
    assert findings(SecurityWeight(rule_id="x", max_weight=0.30, **household_wide), text) == []
    [f] = breaches(SecurityWeight, {"max_weight": 0.20, **household_wide}, text)
    assert f.explanation == (
        "AAPL would be 22.2% of household H1, above the 20.0% security-weight limit"
    )
    assert f.accounts == ("A1", "A2")
    assert len(findings(SecurityWeight(rule_id="x", max_weight=0.30), text)) == 2  # A2's two


def test_issuer_weight_when_two_share_classes_share_an_issuer_then_they_add_up() -> None:
    text = """
    account A1 taxable cash 4000
    A1 GOOG 20       # $3,000
    A1 GOOGL 20      # $3,000
    """
    reference = Reference(issuer={"GOOG": "Alphabet", "GOOGL": "Alphabet"})
    assert findings(IssuerWeight(rule_id="x", max_weight=0.35), text) == []  # each its own
    [f] = breaches(IssuerWeight, {"max_weight": 0.35}, text, reference=reference)
    assert f.explanation == (
        "issuer Alphabet would be 60.0% of account A1, above the 35.0% issuer-weight limit"
    )
    assert set(f.securities) == {"GOOG", "GOOGL"}


def test_sector_weight_when_technology_is_too_much_then_it_is_found() -> None:
    text = """
    account A1 taxable cash 0
    A1 AAPL 10     # $2,000 technology
    A1 MSFT 5      # $2,000 technology
    A1 BND 40      # $3,000 fixed income
    """
    text = text.replace("cash 0", "cash 3000")
    assert findings(SectorWeight(rule_id="x", max_weight=0.45), text) == []
    [f] = breaches(SectorWeight, {"max_weight": 0.35}, text)
    assert f.explanation == (
        "sector technology would be 40.0% of account A1, above the 35.0% sector-weight limit"
    )


def test_top_holdings_when_the_largest_two_are_too_much_then_both_are_named() -> None:
    assert findings(TopHoldings(rule_id="x", count=2, max_weight=0.65), ACCOUNT) == []
    [f] = breaches(TopHoldings, {"count": 2, "max_weight": 0.5}, ACCOUNT)
    assert f.explanation == (
        "the 2 largest holdings of account 10000001 would be 62.5% of it, above the 50.0% "
        "top-holdings limit"
    )
    assert f.securities == ("BND", "SPY")


def test_asset_class_range_when_below_or_above_then_the_side_is_said() -> None:
    rule = {"asset_class": "fixed_income", "min_weight": 0.20, "max_weight": 0.40}
    assert findings(AssetClassRange(rule_id="x", **rule), ACCOUNT) == []  # 37.5%
    [low] = breaches(AssetClassRange, rule, ACCOUNT + "trade 10000001 sell BND 80")
    assert low.explanation == (
        "fixed_income would be 7.5% of account 10000001, below the 20.0% asset-class-range limit"
    )
    assert low.limit == 0.20
    [high] = breaches(AssetClassRange, {**rule, "max_weight": 0.30}, ACCOUNT)
    assert "above the 30.0%" in high.explanation


def test_minimum_cash_when_a_buy_spends_the_reserve_then_the_cash_and_the_need_are_money() -> None:
    assert findings(MinimumCash(rule_id="x", amount=D(1000)), ACCOUNT) == []
    [f] = breaches(
        MinimumCash, {"amount": D(500), "fraction": 0.03}, ACCOUNT + "trade 10000001 buy AAPL 4"
    )
    assert f.measured == D(220)  # $1,020 less $800 of AAPL
    assert f.limit == D(600)  # 3% of $20,000, more than $500
    assert f.explanation == (
        "account 10000001 would hold $220.00 in cash, below the $600.00 the minimum-cash rule keeps"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=8),
    st.integers(min_value=0, max_value=5000),
)
def test_concentration_when_every_holding_is_under_the_limit_then_nothing_is_found(
    quantities: list[int], cash: int
) -> None:
    names = ["AAPL", "MSFT", "MO", "XOM", "GOOG", "BND", "SPY", "FIRM"]
    text = f"account A1 taxable cash {cash}\n" + "\n".join(
        f"A1 {n} {q}" for n, q in zip(names, quantities, strict=False)
    )
    _, after, _ = household(text)
    largest = float(max(after.weight))
    assert SecurityWeight(rule_id="x", max_weight=largest).check(nothing(after), after, ()) == []
    assert SecurityWeight(rule_id="x", max_weight=largest * 0.99).check(nothing(after), after, ())


def test_concentration_when_a_breach_was_there_before_then_only_trades_into_it_are_found() -> None:
    # MSFT is 20% before; the limit is 15%. Selling BND leaves MSFT alone: the
    # proposal made no breach. Buying MSFT adds to it: found.
    rule = SecurityWeight(rule_id="single-security", max_weight=0.15)
    assert findings(rule, ACCOUNT + "trade 10000001 sell BND 10") == []
    [f] = findings(rule, ACCOUNT + "trade 10000001 buy MSFT 1")
    assert f.securities == ("MSFT",)
    # and a check of the holdings alone finds it, as the markets made it
    assert {f.securities for f in findings(rule, ACCOUNT)} == {("MSFT",), ("BND",), ("SPY",)}


def test_minimum_cash_when_short_before_then_only_trades_that_spend_from_it_are_found() -> None:
    # $1,020 of $20,000 is short of a $1,500 reserve before any trade.
    rule = MinimumCash(rule_id="cash", amount=D(1500))
    assert findings(rule, ACCOUNT + "trade 10000001 sell BND 1") == []  # raises $75
    [f] = findings(rule, ACCOUNT + "trade 10000001 buy AAPL 1")  # spends $200 of it
    assert f.measured == D(820)
    [f] = findings(rule, ACCOUNT)  # and the daily check of holdings finds the shortfall
    assert f.measured == D(1020)
