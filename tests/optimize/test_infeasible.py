"""When two limits the user set cannot both be kept, nothing is traded and the proposal
says exactly which two meet."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
from tests.optimize.test_bands import account, problem, withdrawal

from poise.domain.lots import TaxLot
from poise.optimize.infeasible import least_gain_to_raise
from poise.optimize.tax_aware import OptimizeSettings, rebalance_optimize

D = Decimal
# 50 AAA at $100, bought for $50 a share: every dollar raised realises 50 cents of gain.
GAINS = [TaxLot("G1", "A1", "AAA", D(50), D(2500), date(2020, 1, 2))]


def test_optimize_when_a_withdrawal_needs_gains_and_the_budget_is_0_then_it_says_so() -> None:
    # $100 of cash against a $1,100 withdrawal: $1,000 short, and raising it realises at
    # least $500 of gain — more than a tax budget of 0 allows. Neither limit is broken:
    # nothing is traded, and the proposal says exactly why.
    short = problem(account(cash=D(100)), lots=GAINS, cash_flows=[withdrawal("1100")])
    risk = np.eye(len(short.holdings)) * 0.04  # 20% volatility each, independent
    proposal = rebalance_optimize(short, risk, OptimizeSettings(tax_budget=D(0)))
    assert proposal.trades == ()
    assert proposal.binding == (
        "the cash that must remain (1,100.00) is 1,000.00 short and cannot be raised within"
        " the tax budget of 0.00: the least gain that raises it is 500.00",
    )


def test_least_gain_when_a_loss_lot_is_there_then_it_is_taken_first() -> None:
    # A loss lot (basis $120 a share) raises its $1,000 at a $200 loss before any gain.
    lots = [*GAINS, TaxLot("L1", "A1", "AAA", D(10), D(1200), date(2023, 1, 2))]
    short = problem(account(cash=D(100)), lots=lots)
    assert least_gain_to_raise(short, D(1000)) == D(-200)
    assert least_gain_to_raise(short, D(2000)) == D(300)  # then $1,000 at 50 cents
    assert least_gain_to_raise(short, D(7000)) is None  # $6,000 is all there is
