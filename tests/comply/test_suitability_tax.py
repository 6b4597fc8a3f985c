"""Suitability and tax: risk within the client's tolerance, complex products, the
client's exclusions, wash sales across the household, the tax budget and short-term
gains."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from tests.comply.book import SECURITIES, breaches, findings, household

from poise.comply.rules.base import Scope
from poise.comply.rules.suitability import (
    ClientExclusions,
    ComplexProducts,
    RiskWithinTolerance,
    volatility,
)
from poise.comply.rules.tax import ShortTermGains, TaxBudget, WashSale
from poise.comply.views import Client
from poise.domain.accounts import Restrictions
from poise.domain.clients import RiskTolerance
from poise.domain.recent import RecentTrade, wash_window
from poise.optimize.risk import RiskModel

D = Decimal
TODAY = date(2024, 6, 14)

HOUSEHOLD = """
account A1 taxable cash 2000
account A2 roth_ira cash 2000
A1 SPY 10        # $5,000
A1 AAPL 10       # $2,000
A2 BND 40        # $3,000
"""


def _risk() -> RiskModel:
    ids = sorted(SECURITIES)
    vol = {s: 0.05 if s == "BND" else 0.30 if s in {"TQQQ"} else 0.18 for s in ids}
    covariance = np.diag([vol[s] ** 2 for s in ids])
    return RiskModel.of(ids, covariance)


def test_risk_tolerance_when_the_portfolio_is_too_volatile_for_the_client_then_it_is_found() -> (
    None
):
    risk = _risk()
    limits = {RiskTolerance.CONSERVATIVE: 0.06, RiskTolerance.AGGRESSIVE: 0.25}
    conservative = Client(risk_tolerance=RiskTolerance.CONSERVATIVE)
    _, after, _ = household(HOUSEHOLD, risk=risk, client=conservative)
    # $5,000 and $2,000 at 18%, $3,000 at 5%, of $14,000, no correlation
    expected = np.sqrt((5 / 14 * 0.18) ** 2 + (2 / 14 * 0.18) ** 2 + (3 / 14 * 0.05) ** 2)
    assert volatility(after) == pytest.approx(expected)
    aggressive = Client(risk_tolerance=RiskTolerance.AGGRESSIVE)
    assert findings(
        RiskWithinTolerance(rule_id="x", max_volatility=limits), HOUSEHOLD, risk=risk,
        client=aggressive,
    ) == []  # fmt: skip
    [f] = breaches(
        RiskWithinTolerance, {"max_volatility": limits}, HOUSEHOLD, risk=risk, client=conservative
    )
    assert f.explanation == (
        "household H1 would have a volatility of 7.0% a year, above the 6.0% the "
        "risk-tolerance rule allows a conservative client"
    )
    # no tolerance known, or no risk model: not judged
    assert findings(RiskWithinTolerance(rule_id="x", max_volatility=limits), HOUSEHOLD) == []


def test_complex_products_when_the_client_is_not_eligible_then_a_buy_is_found() -> None:
    text = HOUSEHOLD + "trade A1 buy TQQQ 10"
    eligible = Client(complex_eligible=True)
    assert findings(ComplexProducts(rule_id="x"), text, client=eligible) == []
    [f] = breaches(ComplexProducts, {}, text)
    assert f.explanation == (
        "account A1 buys TQQQ (leveraged), a complex product, for a client not eligible for "
        "them under the complex-products rule"
    )


def test_client_exclusions_when_a_buy_is_of_an_excluded_name_or_tag_then_it_is_found() -> None:
    client = Client(exclusions=frozenset({"XOM"}), excluded_tags=frozenset({"tobacco"}))
    text = HOUSEHOLD + "trade A1 buy AAPL 1"
    assert findings(ClientExclusions(rule_id="x"), text, client=client) == []
    found = breaches(
        ClientExclusions, {}, text + "\ntrade A1 buy XOM 1\ntrade A2 buy MO 2", client=client
    )
    assert [f.explanation for f in found] == [
        "account A1 buys XOM ($100.00), which the client has excluded (by name)",
        "account A2 buys MO ($100.00), which the client has excluded (tagged tobacco)",
    ]
    assert ClientExclusions(rule_id="x").restrictions(client) == Restrictions(
        do_not_buy=frozenset({"XOM"}), excluded_tags=frozenset({"tobacco"})
    )


def test_wash_sale_when_one_account_sells_at_a_loss_and_another_buys_its_twin_then_found() -> None:
    # A1 sells SPY at a $1,000 loss; A2 (a Roth) buys VOO, substantially identical.
    sale = "trade A1 sell SPY 10 lot L1 basis 6000 short"
    assert findings(WashSale(rule_id="x"), HOUSEHOLD + sale) == []
    [f] = breaches(WashSale, {}, HOUSEHOLD + sale + "\ntrade A2 buy VOO 5")
    assert f.measured == D(1000)
    assert f.accounts == ("A1", "A2")
    assert f.explanation == (
        "account A1 sells SPY at a loss while account A2 buys VOO in the same proposal: a "
        "wash sale, which the wash-sale rule forbids"
    )


def test_wash_sale_when_the_household_window_forbids_then_a_buy_or_a_loss_sale_is_found() -> None:
    identity = {s: SECURITIES[s].wash_sale_identity for s in SECURITIES}.__getitem__
    sold = wash_window(
        [RecentTrade("SPY", date(2024, 6, 1), bought=False, loss=True, account_id="A2")],
        [],
        identity=identity,
        today=TODAY,
    )
    [f] = breaches(WashSale, {}, HOUSEHOLD + "trade A1 buy VOO 1", wash=sold)
    assert f.explanation == (
        "account A1 buys VOO, sold at a loss in the household in the last 30 days: a wash "
        "sale, which the wash-sale rule forbids"
    )
    bought = wash_window(
        [RecentTrade("VOO", date(2024, 6, 10), bought=True, account_id="A2", lot_id="X9")],
        [],
        identity=identity,
        today=TODAY,
    )
    sale = "trade A1 sell SPY 10 lot L1 basis 6000 short"
    [f] = breaches(WashSale, {}, HOUSEHOLD + sale, wash=bought)
    assert f.explanation.startswith(
        "account A1 sells SPY at a loss, bought in the household in the last 30 days"
    )
    # a gain is no wash sale, whatever was bought
    assert findings(WashSale(rule_id="x"), HOUSEHOLD + "trade A1 sell SPY 10 lot L1 basis 100",
                    wash=bought) == []  # fmt: skip


def test_tax_budget_when_gains_exceed_it_then_the_net_gain_is_found_in_taxable_accounts() -> None:
    text = HOUSEHOLD + (
        "trade A1 sell AAPL 5 lot L2 basis 400 long\n"  # $600 gain
        "trade A1 sell SPY 1 lot L1 basis 600 short\n"  # $100 loss
        "trade A2 sell BND 40 lot L9 basis 10 long"  # a Roth's gain counts for nothing
    )
    assert findings(TaxBudget(rule_id="x", amount=D(500)), text) == []
    [f] = breaches(TaxBudget, {"amount": D(400)}, text)
    assert (f.measured, f.limit, f.accounts) == (D(500), D(400), ("A1",))
    assert f.explanation == (
        "account A1 would realise a net gain of $500.00, above the $400.00 tax-budget limit"
    )
    assert TaxBudget(rule_id="x", amount=D(400)).tax_budget() == D(400)
    assert TaxBudget(rule_id="x", amount=D(400), scope=Scope.HOUSEHOLD).tax_budget() is None


def test_short_term_gains_when_above_the_limit_then_only_short_term_counts() -> None:
    text = HOUSEHOLD + (
        "trade A1 sell AAPL 5 lot L2 basis 400 long\n"  # $600 long-term
        "trade A1 sell SPY 2 lot L1 basis 700 short"  # $300 short-term
    )
    assert findings(ShortTermGains(rule_id="x", amount=D(300)), text) == []
    [f] = breaches(ShortTermGains, {"amount": D(250), "scope": Scope.HOUSEHOLD}, text)
    assert f.explanation == (
        "household H1 would realise a net short-term gain of $300.00, above the $250.00 "
        "short-term-gains limit"
    )
