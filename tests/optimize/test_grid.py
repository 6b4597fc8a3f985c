"""Quantities on the grid: every trade any method proposes is a whole number of its
security's steps, written with the step's decimal places — never a float's binary
noise inside a Decimal, never ``1.5E+29`` — whatever the prices, absurd ones too.

The grids of these tests:

    STK  a stock, whole shares           step 1
    FND  a fund, to a thousandth         step 0.001
    CTS  a fund, to a hundredth          step 0.01
    LOT  a bond in round lots of 100     step 100
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.accounts import Account, CashReserve, Registration, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.optimize.bands import rebalance_bands
from poise.optimize.cash import rebalance_cash
from poise.optimize.grid import canonical, down, nearest, steps
from poise.optimize.problem import Problem, build_problem
from poise.optimize.tax_aware import rebalance_optimize
from poise.optimize.trades import Proposal

D = Decimal
TODAY = date(2024, 6, 14)
GRIDS = {
    "STK": Trading(),
    "FND": Trading(TradeUnit.FRACTION, D("0.001")),
    "CTS": Trading(TradeUnit.FRACTION, D("0.01")),
    "LOT": Trading(TradeUnit.ROUND_LOT, D(100)),
}
SECURITIES = {
    s: Security(s, s, s, SecurityKind.ETF, "us_equity", trading=grid) for s, grid in GRIDS.items()
}
WIDE = decimal.Context(prec=200)  # room to check a quantity of any size exactly


def on_grid(quantity: Decimal, grid: Trading) -> bool:
    """A whole number of steps, written with exactly the step's decimal places."""
    whole = WIDE.remainder(quantity, grid.step) == 0
    places = int(quantity.as_tuple().exponent) == min(int(grid.step.as_tuple().exponent), 0)
    return whole and places


# --- the boundary itself -------------------------------------------------------------


def test_nearest_when_the_solver_says_1_506e29_shares_then_the_quantity_has_no_binary_noise() -> (
    None
):
    # The float 1.506e29 is 150599999999999999307302305792 in binary; its shortest text,
    # what the solver meant, is 1.506e29. Through round() and the default context it was
    # 1.505999999999999993073023058E+29.
    assert nearest(GRIDS["STK"], 1.506e29) == D("150600000000000000000000000000")
    assert str(nearest(GRIDS["STK"], 1.506e29)) == "150600000000000000000000000000"


@pytest.mark.parametrize(
    ("grid", "solved", "quantity"),
    [
        ("STK", 12.4999999, "12"),
        ("STK", 12.5, "12"),  # half to even
        ("STK", 13.5, "14"),
        ("FND", 20.1250000001, "20.125"),
        ("FND", 0.1 + 0.2, "0.300"),  # 0.30000000000000004: the float's noise goes
        ("CTS", 7.0, "7.00"),
        ("LOT", 249.9, "200"),
        ("LOT", 250.1, "300"),
        ("STK", 1.2047999999999999e19, "12048000000000000000"),
    ],
)
def test_nearest_when_a_solver_count_is_rounded_then_it_is_written_on_the_grid(
    grid: str, solved: float, quantity: str
) -> None:
    found = nearest(GRIDS[grid], solved)
    assert str(found) == quantity
    assert on_grid(found, GRIDS[grid])


def test_down_and_steps_when_a_quantity_has_more_than_28_digits_then_it_stays_exact() -> None:
    huge = D("270000000000000000183089700000.999")
    assert down(GRIDS["STK"], huge) == D("270000000000000000183089700000")
    assert str(down(GRIDS["FND"], huge)) == "270000000000000000183089700000.999"
    assert str(down(GRIDS["LOT"], huge)) == "270000000000000000183089700000"
    assert str(steps(GRIDS["FND"], 10**30 + 1)) == "1000000000000000000000000000.001"
    assert str(down(GRIDS["FND"], D(20))) == "20.000"


def test_canonical_when_a_whole_lot_of_a_fund_is_sold_then_it_is_written_with_its_places() -> None:
    assert str(canonical(GRIDS["FND"], D(100))) == "100.000"
    assert str(canonical(GRIDS["STK"], D("100.000"))) == "100"
    assert canonical(GRIDS["STK"], D("10.5")) == D("10.5")  # off the grid: left for the check


# --- every method, every price --------------------------------------------------------


def make(
    lots: list[tuple[str, str, str]], prices: dict[str, str], cash: str, targets: dict[str, str]
) -> Problem:
    """``lots``: (security, shares, cost) bought on 2 March 2020."""
    model = Model(
        "M",
        "M",
        (
            *(ModelTarget(TargetKind.SECURITY, s, D(w)) for s, w in targets.items()),
            ModelTarget(TargetKind.CASH, "", D(1) - sum((D(w) for w in targets.values()), D(0))),
        ),
    )
    account = Account(
        "A1",
        "H1",
        Registration.TAXABLE,
        model_id="M",
        cash=D(cash),
        tax_rates=TaxRates(D("0.37"), D("0.20"), D("0.05")),
        reserve=CashReserve(D(0), D(0)),
        harvest=True,
    )
    return build_problem(
        account=account,
        lots=[
            TaxLot(f"L{k}", "A1", s, D(q), D(c), date(2020, 3, 2))
            for k, (s, q, c) in enumerate(lots)
        ],
        prices={s: D(p) for s, p in prices.items()},
        model=resolve("M", {"M": model}),
        securities=SECURITIES,
        today=TODAY,
        firm_band=Band(D("0.05"), D("0.25")),
    )


def proposals(problem: Problem) -> dict[str, Proposal]:
    covariance = np.eye(len(problem.holdings)) * 0.04
    return {
        "bands": rebalance_bands(problem),
        "cash": rebalance_cash(problem),
        "optimize": rebalance_optimize(problem, covariance),
    }


@pytest.mark.parametrize(
    "feed",
    [
        pytest.param(
            {"STK": "100000000000000000000", "FND": "0.00000001"}, id="STK 1e20, FND 1e-8"
        ),
        pytest.param({"STK": "100000000000000000000", "FND": "381.20"}, id="STK 1e20"),
    ],
)
def test_methods_when_a_feed_prices_stk_at_1e20_then_every_quantity_stays_exact(
    feed: dict[str, str],
) -> None:
    """
    150 STK (a $15,000 position until the feed said 1e20), 20.125 FND, $2,500 cash; the
    model wants 30% STK, 30% FND, 40% CTS. Nothing holds these prices here (that is the
    monitor's check): at them, a method sells STK and buys billions of billions of FND
    or CTS — absurd, but each quantity is exact, on its grid, in plain digits.
    """
    problem = make(
        [("STK", "100", "15000"), ("STK", "50", "8750.50"), ("FND", "20.125", "8050")],
        {**feed, "CTS": "381.20", "LOT": "98.5"},
        "2500",
        {"STK": "0.3", "FND": "0.3", "CTS": "0.4"},
    )
    traded = {}
    for method, proposal in proposals(problem).items():
        for trade in proposal.trades:
            assert on_grid(trade.quantity, GRIDS[trade.security_id]), (method, trade)
            assert "E" not in str(trade.quantity), (method, trade)
            traded[method, trade.security_id, trade.side.value] = trade.quantity
    # Bands sells STK back to 30% of the $15,000,000,000,000,000,002,500 account:
    # ($15,000,000,000,000,000,000,000 − 30% of it) / 1e20 a share = 104.99…, 104 shares.
    assert traded["bands", "STK", "sell"] == D(104)
    assert traded["bands", "FND", "buy"] > D("1e10")


@dataclass(frozen=True)
class Drawn:
    lots: list[tuple[str, str, str]]
    prices: dict[str, str]
    cash: str
    targets: dict[str, str]


def _price(draw: st.DrawFn) -> str:
    """An ordinary price, or a feed's absurd one (from 1e-12 to 1e20)."""
    if draw(st.booleans()):
        return str(D(draw(st.integers(1, 999))).scaleb(draw(st.integers(-12, 18))))
    return str(draw(st.decimals("0.5", 2000, places=2)))


@st.composite
def accounts(draw: st.DrawFn) -> Drawn:
    prices = {s: _price(draw) for s in GRIDS}
    lots = []
    for security, grid in GRIDS.items():
        for _ in range(draw(st.integers(0, 2))):
            count = draw(st.integers(1, 400))
            shares = steps(grid, count) if security != "LOT" else steps(grid, count % 5 + 1)
            lots.append((security, str(shares), str(draw(st.decimals(1, 50_000, places=2)))))
    weights = [draw(st.integers(0, 25)) for _ in GRIDS]  # at most 100% in all
    targets = {s: str(D(w) / 100) for s, w in zip(GRIDS, weights, strict=True) if w}
    return Drawn(lots, prices, str(draw(st.decimals(0, 50_000, places=2))), targets)


@settings(max_examples=200, deadline=None)
@given(accounts())
def test_methods_property_when_any_account_at_any_price_is_rebalanced_then_quantities_are_on_grid(
    drawn: Drawn,
) -> None:
    problem = make(drawn.lots, drawn.prices, drawn.cash, drawn.targets)
    for method, proposal in proposals(problem).items():
        for trade in proposal.trades:
            assert on_grid(trade.quantity, GRIDS[trade.security_id]), (method, trade)
