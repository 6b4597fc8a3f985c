"""No churn and no dust: a proposal never buys and sells one security, and never
trades less than the smallest trade worth a ticket."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from tests.optimize.test_bands import accounts
from tests.optimize.test_optimize import covariance, large_accounts, make

from poise.domain.lots import TaxLot
from poise.optimize.bands import sell_lots
from poise.optimize.check import Costs, violations
from poise.optimize.problem import Problem
from poise.optimize.tax_aware import rebalance_optimize
from poise.optimize.trades import Proposal, Side, Trade, TradeReason

D = Decimal


def both_ways(proposal: Proposal) -> set[str]:
    bought = {t.security_id for t in proposal.trades if t.side is Side.BUY}
    return bought & {t.security_id for t in proposal.trades if t.side is Side.SELL}


def optimised(problem: Problem) -> Proposal:
    names = [h.security_id for h in problem.holdings]
    return rebalance_optimize(problem, covariance(names, ("AAA", "FND")))


@settings(max_examples=80, deadline=None)
@given(accounts())
def test_optimize_property_when_any_account_is_optimised_then_no_security_is_bought_and_sold(
    problem: Problem,
) -> None:
    assert both_ways(optimised(problem)) == set()


@settings(max_examples=20, deadline=None)
@given(large_accounts())
def test_optimize_property_when_a_large_account_is_rounded_then_no_security_is_bought_and_sold(
    problem: Problem,
) -> None:
    assert both_ways(optimised(problem)) == set()


def test_violations_when_a_proposal_buys_and_sells_one_security_then_it_says_so() -> None:
    # 10 AAA sold from a long-held lot and 5 bought back: the spread paid twice for
    # nothing — no method may ship it.
    problem = make(
        {"AAA": "0.5", "BBB": "0.45"},
        [TaxLot("G1", "A1", "AAA", D(80), D(4000), date(2019, 3, 4))],
        {"AAA": "100", "BBB": "100"},
        cash="2000",
    )
    sale = sell_lots(
        problem.holding("AAA"), {"G1": D(10)}, problem=problem, reason=TradeReason.DRIFT
    )
    buy = Trade("AAA", Side.BUY, D(5), D(100), TradeReason.DRIFT)
    assert violations(problem, [sale, buy], Costs()) == ["AAA: bought and sold in one proposal"]
