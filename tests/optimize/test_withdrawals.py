"""Cash a client asked for is raised by every method, before anything is bought."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.optimize.test_bands import account, accounts, problem, sellable_value, withdrawal

from poise.domain.lots import TaxLot
from poise.optimize.bands import rebalance_bands
from poise.optimize.cash import CashSettings, rebalance_cash
from poise.optimize.check import Costs, violations
from poise.optimize.problem import Problem
from poise.optimize.tax_aware import OptimizeSettings, rebalance_optimize
from poise.optimize.trades import Proposal, Side

D = Decimal


def covariance(given_problem: Problem) -> np.ndarray:
    """20% volatility each, independent."""
    return np.eye(len(given_problem.holdings)) * 0.04


def optimize(given_problem: Problem, **changes: object) -> Proposal:
    return rebalance_optimize(
        given_problem,
        covariance(given_problem),
        OptimizeSettings(**changes),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("tax_budget", [None, D(0)])
def test_optimize_when_a_withdrawal_is_asked_for_then_cash_ends_at_what_must_remain(
    tax_budget: Decimal | None,
) -> None:
    # $100 of cash against a $3,000 withdrawal; AAA's L2 is a $600 loss and can raise it
    # all without realising a gain, so even a tax budget of 0 is kept.
    asked = problem(account(cash=D(100)), cash_flows=[withdrawal("3000")])
    proposal = optimize(asked, tax_budget=tax_budget)
    assert proposal.cash_after >= D(3000)
    assert violations(asked, list(proposal.trades), Costs()) == []


@pytest.mark.parametrize("method", ["bands", "cash", "optimize"])
def test_every_method_when_a_withdrawal_is_asked_for_then_nothing_is_bought_with_it(
    method: str,
) -> None:
    asked = problem(account(cash=D(100)), cash_flows=[withdrawal("8000")])
    proposal = {
        "bands": rebalance_bands,
        "cash": rebalance_cash,
        "optimize": optimize,
    }[method](asked)
    assert proposal.cash_after >= D(8000)
    assert all(t.side is Side.SELL for t in proposal.trades)


@settings(max_examples=60, deadline=None)
@given(accounts(), st.decimals(0, 30_000, places=2))
def test_optimize_property_when_a_withdrawal_can_be_raised_then_cash_ends_at_what_must_remain(
    given_problem: Problem, asked: Decimal
) -> None:
    with_flow = replace(given_problem, reserve=given_problem.reserve + asked)
    proposal = optimize(with_flow)
    assert violations(with_flow, list(proposal.trades), Costs()) == []
    if sellable_value(with_flow) * D("0.99") > with_flow.reserve - with_flow.cash + 1000:
        assert proposal.cash_after >= with_flow.reserve


def test_raising_cash_when_the_need_is_below_the_smallest_trade_then_the_sale_is_the_smallest() -> (
    None
):
    # $2,970 of cash against a $3,000 withdrawal: $30 short. The account holds 100 of
    # FND at $50, a fund outside the model, traded in thousandths. Raising exactly $30
    # would be a $30 ticket; with a $100 minimum the sale is at least $100, and cash
    # ends a little above what must remain.
    fund = [TaxLot("F1", "A1", "FND", D(100), D(4000), date(2020, 1, 2))]
    short = problem(account(cash=D(2970)), lots=fund, cash_flows=[withdrawal("3000")])
    proposal = rebalance_cash(short, CashSettings(min_trade=D(100)))
    sales = [t for t in proposal.trades if t.side is Side.SELL]
    assert sales, proposal.binding
    assert all(t.quantity * t.price >= D(100) for t in proposal.trades)
    assert proposal.cash_after >= D(3000)
