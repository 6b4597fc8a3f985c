"""Scenarios: one account rebalanced several ways, and what each way costs and buys.

A :class:`Scenario` is a method and its settings under a name. The presets answer the
questions a reviewer asks of a proposal — what would the full optimum cost in tax
(``full``), how close can we get without realising a net gain (``no-gains``), what
would harvesting losses alone do (``harvest``), and the simple methods for comparison
(``cash``, ``bands``). :func:`compare` runs each on the same problem and risk model
and gives every proposal its tracking error before and after, so :func:`tradeoffs`
can set them side by side: estimated tax against tracking error, turnover, trades,
cost and drift.

Settings map onto each method as far as they mean something to it: the trade size
and costs to every method; the weights, turnover, tax budget and harvest-only to
``optimize`` alone. Pure: problem, covariance and settings in, proposals out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.accounts import MinTrade
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO, cents
from poise.optimize.bands import BandSettings, rebalance_bands
from poise.optimize.cash import CashSettings, rebalance_cash
from poise.optimize.check import Costs
from poise.optimize.names import ALL
from poise.optimize.problem import Problem
from poise.optimize.program import Continuous
from poise.optimize.risk import RiskModel
from poise.optimize.tax_aware import OptimizeSettings, Risk, rebalance_optimize, with_tracking
from poise.optimize.trades import Proposal

__all__ = [
    "ALL",
    "METHODS",
    "PRESETS",
    "Scenario",
    "Tradeoff",
    "choose",
    "compare",
    "optimize_settings",
    "run",
    "tradeoffs",
    "with_min_trade",
]

Floats = npt.NDArray[np.float64]
POINT_HUNDREDTH = Decimal("0.0001")  # a weight to a hundredth of a point, as tracking error
Method = Callable[[Problem, Risk, OptimizeSettings], Proposal]


def _smallest(problem: Problem, settings: OptimizeSettings) -> Decimal:
    """The smallest trade in dollars, for a method that knows no fraction: the larger
    of the amount and the fraction of the account."""
    return max(settings.min_trade, settings.min_trade_fraction * max(problem.value, ZERO))


def _bands(problem: Problem, risk: Risk, settings: OptimizeSettings) -> Proposal:
    del risk  # bands trades back into bands, whatever the risk
    return rebalance_bands(
        problem,
        BandSettings(
            costs=settings.costs,
            min_trade=settings.min_trade,
            min_trade_fraction=settings.min_trade_fraction,
        ),
    )


def _cash(problem: Problem, risk: Risk, settings: OptimizeSettings) -> Proposal:
    del risk
    return rebalance_cash(
        problem, CashSettings(costs=settings.costs, min_trade=_smallest(problem, settings))
    )


def _optimize(problem: Problem, risk: Risk, settings: OptimizeSettings) -> Proposal:
    return rebalance_optimize(problem, risk, settings)


# The methods, by the name a user gives, as the scenarios call them.
METHODS: Mapping[str, Method] = {
    "bands": _bands,
    "cash": _cash,
    "optimize": _optimize,
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A way to rebalance: a method and its settings, under a name ("" for a method
    run on its own, not as a named scenario)."""

    name: str
    method: str
    settings: OptimizeSettings = field(default_factory=OptimizeSettings)
    about: str = ""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValidationError(f"no method {self.method!r}; methods: {', '.join(METHODS)}")

    @classmethod
    def of_method(cls, method: str, settings: OptimizeSettings | None = None) -> Scenario:
        return cls("", method, settings or OptimizeSettings())


# The named scenarios, each made from the settings the user gave.
PRESETS: Mapping[str, Callable[[OptimizeSettings], Scenario]] = {
    "full": lambda base: Scenario(
        "full", "optimize", base, "the tax-aware optimum, with the settings as given"
    ),
    "no-gains": lambda base: Scenario(
        "no-gains", "optimize", replace(base, tax_budget=ZERO), "realise no net gain"
    ),
    "harvest": lambda base: Scenario(
        "harvest", "optimize", replace(base, harvest_only=True), "sell only lots at a loss"
    ),
    "cash": lambda base: Scenario("cash", "cash", base, "trade only to raise or invest cash"),
    "bands": lambda base: Scenario(
        "bands", "bands", base, "bring what is outside its band back inside"
    ),
}


def choose(names: Sequence[str], base: OptimizeSettings | None = None) -> list[Scenario]:
    """The scenarios ``names`` asks for (``all`` is every preset), in the order given,
    each once; a preset's own setting (no-gains' budget of 0) wins over ``base``."""
    base = base or OptimizeSettings()
    expanded = [p for name in names for p in (PRESETS if name == ALL else [name])]
    unknown = [name for name in expanded if name not in PRESETS]
    if unknown:
        raise ValidationError(
            f"no scenario {', '.join(map(repr, unknown))};"
            f" scenarios: {', '.join(PRESETS)} (or {ALL})"
        )
    if not expanded:
        raise ValidationError("name at least one scenario")
    return [PRESETS[name](base) for name in dict.fromkeys(expanded)]


def optimize_settings(
    *,
    risk: float = 1.0,
    tax: float = 1.0,
    cost: float = 1.0,
    costs: Costs | None = None,
    tax_budget: Decimal | None = None,
    max_turnover: Decimal | None = None,
    min_trade: Decimal = ZERO,
    min_trade_fraction: Decimal = ZERO,
    within_bands: bool = False,
    long_term_wait_days: int = 31,
    exact: bool = True,
) -> OptimizeSettings:
    """Settings a person gave, checked: no weight, budget or size below zero."""
    found = [
        f"the {what} must not be negative (got {value})"
        for what, value in (
            ("risk weight", risk),
            ("tax weight", tax),
            ("cost weight", cost),
            ("tax budget", tax_budget),
            ("maximum turnover", max_turnover),
            ("minimum trade", min_trade),
            ("minimum trade fraction", min_trade_fraction),
            ("long-term wait", long_term_wait_days),
        )
        if value is not None and value < 0
    ]
    if min_trade_fraction > 1:
        found.append(f"the minimum trade fraction must not be above 1 (got {min_trade_fraction})")
    if found:
        raise ValidationError("; ".join(found))
    return OptimizeSettings(
        risk=risk,
        tax=tax,
        cost=cost,
        costs=costs or Costs(),
        max_turnover=max_turnover,
        tax_budget=tax_budget,
        min_trade=min_trade,
        min_trade_fraction=min_trade_fraction,
        within_bands=within_bands,
        long_term_wait_days=long_term_wait_days,
        exact=exact,
    )


def with_min_trade(
    scenarios: Sequence[Scenario], account: MinTrade, *, run: MinTrade, firm: MinTrade
) -> list[Scenario]:
    """``scenarios`` with the smallest trade each of its two parts — dollars, and a
    fraction of the account — from the run where given, else from the account's own,
    else the firm's."""

    def first(*values: Decimal | None) -> Decimal:
        return next((v for v in values if v is not None), ZERO)

    amount = first(run.amount, account.amount, firm.amount)
    fraction = first(run.fraction, account.fraction, firm.fraction)
    return [
        replace(s, settings=replace(s.settings, min_trade=amount, min_trade_fraction=fraction))
        for s in scenarios
    ]


def run(
    problem: Problem, risk: Risk, scenario: Scenario, *, program: Continuous | None = None
) -> Proposal:
    """One scenario's proposal, with its tracking error before and after; ``risk`` is a
    risk model covering the holdings, or their covariance in holdings order. ``program``:
    for ``optimize``, the account's problem as a household's search left it
    (:func:`poise.optimize.tax_aware.rebalance_optimize`)."""
    if scenario.method == "optimize" and program is not None:
        proposal = rebalance_optimize(problem, risk, scenario.settings, program=program)
    else:
        proposal = METHODS[scenario.method](problem, risk, scenario.settings)
    if proposal.tracking_after is not None:  # the method gave it already
        return proposal
    return with_tracking(problem, proposal, risk)


def compare(
    problem: Problem, covariance: Floats, scenarios: Sequence[Scenario]
) -> list[tuple[Scenario, Proposal]]:
    """Every scenario's proposal for the same problem and risk model, in order (the
    covariance, aligned with the holdings, is factored once for all of them)."""
    risk = RiskModel.of([h.security_id for h in problem.holdings], covariance)
    return [(scenario, run(problem, risk, scenario)) for scenario in scenarios]


@dataclass(frozen=True, slots=True)
class Tradeoff:
    """One scenario's figures, for setting scenarios side by side."""

    scenario: str
    method: str
    trades: int
    turnover: Decimal  # dollars traded, buys and sells
    estimated_tax: Decimal  # negative: a benefit
    cost: Decimal
    tracking_before: Decimal | None  # annual, a fraction
    tracking_after: Decimal | None
    drift_before: Decimal  # largest |weight − target|, a fraction to four places
    drift_after: Decimal


def tradeoffs(results: Sequence[tuple[Scenario, Proposal]]) -> list[Tradeoff]:
    return [
        Tradeoff(
            scenario=scenario.name or scenario.method,
            method=scenario.method,
            trades=len(proposal.trades),
            turnover=cents(proposal.turnover),
            estimated_tax=proposal.estimated_tax,
            cost=proposal.cost,
            tracking_before=proposal.tracking_before,
            tracking_after=proposal.tracking_after,
            drift_before=proposal.drift_before.quantize(POINT_HUNDREDTH),
            drift_after=proposal.drift_after.quantize(POINT_HUNDREDTH),
        )
        for scenario, proposal in results
    ]
