"""A household's wash-sale meetings settled together — an identity sold at a loss in a
taxable account while any account of the household buys it — against every way of
settling them, each account solved through cvxpy (a modelling layer and a solve the
engine does not use)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
from bench.optimize_gap import Continuous as Cvxpy
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.optimize.test_optimize import covariance, make, security

from poise.domain.accounts import Registration
from poise.domain.lots import TaxLot
from poise.optimize.meetings import Part, settle_household
from poise.optimize.problem import Problem
from poise.optimize.program import Arrays, Continuous
from poise.optimize.risk import RiskModel
from poise.optimize.tax_aware import OptimizeSettings, _arrays, _limits

D = Decimal
NAMES = ["SPY", "VOO", "VTI", "AAA"]
SECURITIES = {
    # SPY and VOO are one identity (the same index); VTI moves with them (ρ 0.99).
    "SPY": security("SPY", group="SP500", replacements=("VTI",)),
    "VOO": security("VOO", group="SP500", replacements=("VTI",)),
    "VTI": security("VTI", replacements=("SPY",)),
    "AAA": security("AAA"),
}
ACCOUNTS = (
    ("TAX", Registration.TAXABLE),
    ("JNT", Registration.JOINT),
    ("IRA", Registration.TRADITIONAL_IRA),
)


def risk_of(problem: Problem) -> RiskModel:
    held = [h.security_id for h in problem.holdings]
    matrix = covariance(held) + covariance(held, ("SPY", "VOO")) - np.eye(len(held)) * 0.04
    matrix += covariance(held, ("VOO", "VTI")) - np.eye(len(held)) * 0.04
    return RiskModel.of(held, matrix)


@st.composite
def households(draw: st.DrawFn) -> list[Problem]:
    """Two or three accounts over four securities, each holding some of them in a lot
    at a gain and a lot at a loss, each with its own model weights and cash."""
    prices = {name: draw(st.integers(20, 400)) for name in NAMES}
    count = draw(st.integers(2, 3))
    problems = []
    for account_id, registration in ACCOUNTS[:count]:
        held = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        lots = []
        for name in held:
            for j, change in enumerate((draw(st.integers(5, 40)), -draw(st.integers(5, 60)))):
                shares = draw(st.integers(5, 60))
                basis = D(shares * prices[name] * (100 - change)) / 100
                lots.append(
                    TaxLot(f"{account_id}{name}{j}", "A1", name, D(shares), basis, date(2024, 1, 2))
                )
        wanted = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        weights = draw(st.lists(st.integers(10, 30), min_size=len(wanted), max_size=len(wanted)))
        total = sum(weights) + draw(st.integers(1, 20))
        problem = make(
            {name: str(D(w) / total) for name, w in zip(wanted, weights, strict=True)},
            lots,
            {name: str(p) for name, p in prices.items()},
            cash=str(draw(st.integers(0, 5000))),
            registration=registration,
            securities=SECURITIES,
        )
        problems.append(replace(problem, account=replace(problem.account, account_id=account_id)))
    return problems


def parts_of(problems: list[Problem]) -> list[Part]:
    names = sorted({h.security.wash_sale_identity for p in problems for h in p.holdings})
    number = {name: k for k, name in enumerate(names)}
    total = float(sum((p.value for p in problems), D(0)))
    settings_ = OptimizeSettings()
    return [
        Part(
            _arrays(p, risk_of(p), settings_, number),
            _limits(p, settings_),
            float(p.value) / total,
        )
        for p in problems
    ]


def masks(a: Arrays, decisions: dict[int, bool]) -> tuple[np.ndarray, np.ndarray]:
    """(securities not bought, lots not sold) for decisions on identities."""
    harvest = np.array([decisions.get(int(i)) is True for i in a.identity], dtype=bool)
    kept = np.array([decisions.get(int(i)) is False for i in a.identity], dtype=bool)
    return harvest, a.lot_loss & kept[a.lot_of]


def through_cvxpy(parts: list[Part], decisions: dict[int, bool]) -> float | None:
    """The household's value (in weights of the household) with ``decisions`` held in
    every account, each account solved through cvxpy; None when one has no solution."""
    total = 0.0
    for p in parts:
        forbid, keep = masks(p.a, decisions)
        found = Cvxpy(p.a, p.limits).solve(forbid=forbid, keep=keep)
        if found is None:
            return None
        total += p.scale * found[0]
    return total


def met(parts: list[Part]) -> list[int]:
    """Identities with a loss lot a taxable account may sell and a security some
    account may buy."""
    sold = {
        int(i) for p in parts for i in p.a.identity[p.a.lot_of[p.a.lot_loss & (p.a.lot_cap > 0)]]
    }
    bought = {int(i) for p in parts for i in p.a.identity[p.a.buy_cap > 0]}
    return sorted(sold & bought)


def clean(parts: list[Part], decisions: dict[int, bool]) -> bool:
    """Whether the engine's own solves, with the decisions held, leave no identity sold
    at a loss in a taxable account while any account buys it."""
    sold: set[int] = set()
    bought: set[int] = set()
    for p in parts:
        forbid, keep = masks(p.a, decisions)
        way = Continuous(p.a, p.limits).solve(forbid=forbid, keep=keep)
        assert way is not None
        half = p.a.unit / 2
        losses = (way.sell > half[p.a.lot_of]) & p.a.lot_loss
        sold |= set(p.a.identity[p.a.lot_of[losses]].tolist())
        bought |= set(p.a.identity[way.buy > half].tolist())
    return not sold & bought


@settings(max_examples=20, deadline=None)
@given(households())
def test_settle_household_property_then_it_finds_the_enumerated_optimum(
    problems: list[Problem],
) -> None:
    parts = parts_of(problems)
    settled = settle_household(parts)
    assert settled.proven
    identities = met(parts)
    ways = [
        through_cvxpy(parts, dict(zip(identities, sides, strict=True)))
        for sides in itertools.product((True, False), repeat=len(identities))
    ]
    best = min((w for w in ways if w is not None), default=None)
    found = through_cvxpy(parts, settled.decisions)
    if best is None:
        return
    assert found is not None
    assert found <= best + 1e-6
    assert clean(parts, settled.decisions)


def test_settle_household_when_an_ira_holds_a_loss_then_it_meets_no_purchase() -> None:
    # In an IRA a loss is no loss to the tax law: the IRA selling SPY below its cost
    # while the taxable account buys VOO is no meeting.
    ira = make(
        {"VTI": "0.95"},
        [TaxLot("I1", "A1", "SPY", D(100), D(12000), date(2024, 1, 10))],
        {"SPY": "95", "VOO": "95", "VTI": "190"},
        registration=Registration.TRADITIONAL_IRA,
        securities=SECURITIES,
    )
    taxable = make(
        {"VOO": "0.95"},
        [],
        {"SPY": "95", "VOO": "95", "VTI": "190"},
        cash="20000",
        securities=SECURITIES,
    )
    taxable = replace(taxable, account=replace(taxable.account, account_id="TAX"))
    settled = settle_household(parts_of([taxable, ira]))
    assert settled.decisions == {}
    assert settled.met == {}
