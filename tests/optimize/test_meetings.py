"""Where a loss sale meets a buy of the same identity: which side wins, decided for
every meeting together — against every way of settling them, solved one by one
through cvxpy (a modelling layer and a solve the engine does not use)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
from bench.optimize_gap import enumerate_optimum
from bench.optimize_gap import meetings as meetings_of
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.optimize.test_optimize import covariance, make, security

from poise.domain.lots import TaxLot
from poise.optimize.meetings import clash, settle, value
from poise.optimize.program import Arrays, Limits, Weights
from poise.optimize.risk import RiskModel
from poise.optimize.tax_aware import OptimizeSettings, _arrays, _limits, rebalance_optimize
from poise.optimize.trades import Side, TradeReason

D = Decimal

TWINS = {
    "SPY": security("SPY", group="SP500", replacements=("VTI",)),
    "VTI": security("VTI", group="US-TOTAL", replacements=("SPY",)),
    "AAA": security("AAA"),
    "BBB": security("BBB"),
}


def test_optimize_when_twins_both_hold_losses_then_the_larger_is_harvested_into_the_other() -> None:
    # SPY and VTI (ρ 0.99) are each the other's replacement, both in the model at 45%,
    # both at a loss: SPY $3,000, VTI $500. Harvesting both leaves nothing to hold the
    # exposure; keeping both harvests nothing. The best is to sell SPY at its loss and
    # hold the whole 90% in VTI — VTI's own loss kept, so buying more of it is no wash
    # sale. Deciding each identity alone by where the first solution moved it (both
    # are bought there: the cash is to be invested) keeps both losses.
    problem = make(
        {"SPY": "0.45", "VTI": "0.45"},
        [
            TaxLot("L1", "A1", "SPY", D(40), D(7000), date(2024, 2, 1)),
            TaxLot("L2", "A1", "VTI", D(20), D(4300), date(2024, 2, 1)),
        ],
        {"SPY": "100", "VTI": "190"},
        cash="2200",
        securities=TWINS,
    )
    names = [h.security_id for h in problem.holdings]
    proposal = rebalance_optimize(problem, covariance(names))
    by = {(t.security_id, t.side): t for t in proposal.trades}
    assert by[("SPY", Side.SELL)].quantity == D(40)
    assert by[("SPY", Side.SELL)].reason is TradeReason.HARVEST
    assert ("SPY", Side.BUY) not in by
    assert ("VTI", Side.SELL) not in by
    assert by[("VTI", Side.BUY)].quantity >= D(27)  # $5,200 more: 90% of $10,000 in VTI
    assert proposal.realised_short == D(-3000)


def enumerated(a: Arrays, limits: Limits) -> float:
    """The best objective over every way of settling the meetings, each solved through
    cvxpy (``bench/optimize_gap.py``)."""
    optimum = enumerate_optimum(a, limits, meetings_of(a))
    assert optimum is not None
    return optimum.value


@st.composite
def tangled(draw: st.DrawFn) -> tuple[Arrays, Limits]:
    """A taxable account of four securities in two pairs of twins, each holding a lot
    at a loss and one at a gain, with cash to invest."""
    names = ["SPY", "VTI", "AAA", "BBB"]
    securities = {
        "SPY": security("SPY", group="SP500", replacements=("VTI",)),
        "VTI": security("VTI", group="US-TOTAL", replacements=("SPY",)),
        "AAA": security("AAA", replacements=("BBB",)),
        "BBB": security("BBB", replacements=("AAA",)),
    }
    prices = {name: draw(st.integers(20, 400)) for name in names}
    lots = []
    for k, name in enumerate(names):
        for j, change in enumerate((draw(st.integers(5, 40)), -draw(st.integers(5, 60)))):
            shares = draw(st.integers(5, 60))
            basis = D(shares * prices[name] * (100 - change)) / 100
            lots.append(TaxLot(f"L{k}{j}", "A1", name, D(shares), basis, date(2024, 1, 2)))
    weights = draw(st.lists(st.integers(10, 30), min_size=4, max_size=4))
    total = sum(weights) + draw(st.integers(1, 20))
    problem = make(
        {name: str(D(w) / total) for name, w in zip(names, weights, strict=True)},
        lots,
        {name: str(p) for name, p in prices.items()},
        cash=str(draw(st.integers(0, 5000))),
        securities=securities,
    )
    held = [h.security_id for h in problem.holdings]
    matrix = covariance(held) + covariance(held, ("AAA", "BBB")) - np.eye(len(held)) * 0.04
    risk = RiskModel.of(held, matrix)
    return _arrays(problem, risk, OptimizeSettings()), _limits(problem, OptimizeSettings())


@settings(max_examples=25, deadline=None)
@given(tangled())
def test_settle_property_when_meetings_are_tangled_then_it_finds_the_enumerated_optimum(
    case: tuple[Arrays, Limits],
) -> None:
    a, limits = case
    settled = settle(a, limits)
    assert settled.proven
    assert settled.weights is not None
    assert not clash(a, settled.weights).any()
    assert value(a, limits, settled.weights) <= enumerated(a, limits) + 1e-6


def test_settle_when_there_are_many_meetings_then_the_dives_decide_and_say_so() -> None:
    # Beyond EXACT_MEETINGS the search is not run: the answer is still free of wash
    # sales, and marked unproven.
    rng = np.random.default_rng(3)
    n = 24
    exposures = rng.normal(0, 0.05, (n, 3))
    a = Arrays(
        held=np.full(n, 1 / (n + 1)),
        target=np.full(n, 1 / n),
        unit=np.full(n, 1e-4),
        lot_of=np.repeat(np.arange(n), 2),
        lot_cap=np.full(2 * n, 0.5 / (n + 1)),
        lot_tax=np.tile([0.05, -0.08], n),
        lot_gain=np.tile([0.2, -0.3], n),
        lot_loss=np.tile([False, True], n),
        buy_cap=np.full(n, np.inf),
        identity=np.arange(n),
        cash=1 / (n + 1),
        half_spread=0.0005,
        exposures=exposures,
        specific=np.full(n, 0.01),
    )
    limits = Limits(risk=1.0, tax=1.0, cost=1.0, turnover=None, gain=None, min_trade=0.0)
    settled = settle(a, limits)
    assert settled.weights is not None
    assert not clash(a, settled.weights).any()
    assert settled.proven is False
    assert isinstance(settled.weights, Weights)
