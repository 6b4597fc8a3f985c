"""What is optimised and what is checked come from the same rule objects: the
engine, given the twins of a firm's rules, proposes nothing those rules block."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from poise.comply.findings import blocks
from poise.comply.rules import check
from poise.comply.rulesets import compose, parse
from poise.comply.twins import account_terms, problem_terms, settings
from poise.comply.views import Client, of_household
from poise.domain.accounts import Account, CashReserve, Registration, Restrictions, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.securities import Security, SecurityKind
from poise.optimize.household import HouseholdProblem, rebalance_household
from poise.optimize.problem import build_problem
from poise.optimize.scenarios import Scenario
from poise.optimize.tax_aware import OptimizeSettings

D = Decimal
TODAY = date(2024, 6, 14)

FIRM_RULES = """\
layer: firm
rules:
  - {id: restricted, kind: do_not_buy, securities: [FIRM]}
  - {id: esg, kind: excluded_tags, tags: [tobacco]}
  - {id: client, kind: client_exclusions}
  - {id: keep-legacy, kind: must_hold, securities: [LEG], accounts: [T1]}
  - {id: cash, kind: minimum_cash, amount: 200, fraction: 0.02}
  - {id: budget, kind: tax_budget, amount: 0}
  - {id: turnover, kind: turnover, max_turnover: 0.40}
  - {id: smallest, kind: minimum_trade, amount: 250}
  - {id: single, kind: security_weight, max_weight: 0.45}
  - {id: long, kind: long_only}
  - {id: cash-positive, kind: no_negative_cash}
  - {id: margin, kind: no_margin}
"""


def _security(sid: str, asset_class: str, **kw: object) -> Security:
    return Security(sid, sid, sid, SecurityKind.ETF, asset_class, **kw)  # type: ignore[arg-type]


SECURITIES = {
    s.security_id: s
    for s in (
        _security("VTI", "us_equity"),
        _security("VEA", "intl_equity"),
        _security("BND", "fixed_income"),
        _security("XLE", "us_equity", tags=frozenset({"fossil_fuels"})),
        _security("MO", "us_equity", tags=frozenset({"tobacco"})),
        _security("FIRM", "us_equity"),
        _security("LEG", "us_equity"),
    )
}
PRICES = {"VTI": D(250), "VEA": D(50), "BND": D(75), "XLE": D(90), "MO": D(45),
          "FIRM": D(30), "LEG": D(40)}  # fmt: skip
MODEL = Model(
    "GROWTH",
    "Growth",
    (
        ModelTarget(TargetKind.SECURITY, "VTI", D("0.40"), Band(D("0.02"))),
        ModelTarget(TargetKind.SECURITY, "VEA", D("0.20"), Band(D("0.02"))),
        ModelTarget(TargetKind.SECURITY, "BND", D("0.20"), Band(D("0.02"))),
        ModelTarget(TargetKind.SECURITY, "XLE", D("0.07")),
        ModelTarget(TargetKind.SECURITY, "MO", D("0.05")),
        ModelTarget(TargetKind.SECURITY, "FIRM", D("0.05")),
        ModelTarget(TargetKind.CASH, "", D("0.03")),
    ),
)


def _covariance(ids: Sequence[str]) -> np.ndarray:
    vol = {"BND": 0.05, "VEA": 0.17, "VTI": 0.16, "XLE": 0.28, "MO": 0.22, "FIRM": 0.3}
    v = np.array([vol.get(i, 0.2) for i in ids])
    return np.outer(v, v) * 0.5 + np.diag(v**2) * 0.5


def _household(seed: int) -> tuple[list[Account], list[TaxLot]]:
    rng = np.random.default_rng(seed)
    accounts = [
        Account("T1", "H1", Registration.TAXABLE, model_id="GROWTH",
                cash=D(int(rng.integers(500, 20_000))),
                tax_rates=TaxRates(D("0.35"), D("0.15"), D("0.05")), harvest=True),
        Account("I1", "H1", Registration.TRADITIONAL_IRA, model_id="GROWTH",
                cash=D(int(rng.integers(0, 5_000))), reserve=CashReserve(D(100))),
    ]  # fmt: skip
    lots = []
    for a in accounts:
        for k, sid in enumerate(("VTI", "VEA", "BND", "FIRM", "LEG")):
            if rng.random() < 0.8:
                shares = D(int(rng.integers(5, 200)))
                paid = PRICES[sid] * D(str(round(float(rng.uniform(0.6, 1.4)), 2)))
                acquired = date(2019 + int(rng.integers(0, 5)), 1 + k, 10)
                lots.append(TaxLot(f"{a.account_id}-{sid}", a.account_id, sid, shares,
                                   paid * shares, acquired))  # fmt: skip
    return accounts, lots


@pytest.mark.parametrize("seed", range(74))
def test_the_engine_when_given_the_rules_twins_then_no_twinned_rule_blocks_its_proposal(
    seed: int,
) -> None:
    rules = compose([parse(FIRM_RULES, "firm.yaml")]).rules()
    client = Client(exclusions=frozenset({"XLE"}))
    accounts, lots = _household(seed)
    model = resolve("GROWTH", {"GROWTH": MODEL})
    problems = tuple(
        problem_terms(
            rules,
            build_problem(
                account=account_terms(rules, a, client),
                lots=lots,
                prices=PRICES,
                model=model,
                securities=SECURITIES,
                today=TODAY,
            ),
        )
        for a in accounts
    )
    scenario = Scenario.of_method("optimize", settings(rules, OptimizeSettings(exact=False)))
    proposal = rebalance_household(HouseholdProblem("H1", problems), _covariance, scenario)
    pairs = [(r.problem, r.proposal) for r in proposal.accounts]
    before, after, trades = of_household(pairs, client=client)
    found = blocks(check(rules, before, after, trades))
    assert found == [], [f.explanation for f in found]
    assert trades, "the engine should have something to do"


def test_the_twins_when_built_then_they_are_the_rules_in_the_optimisers_terms() -> None:
    rules = compose([parse(FIRM_RULES, "firm.yaml")]).rules()
    client = Client(exclusions=frozenset({"XLE"}))
    taxable = account_terms(rules, Account("T1", "H1", Registration.TAXABLE), client)
    assert taxable.restrictions == Restrictions(
        do_not_buy=frozenset({"FIRM", "XLE"}),
        do_not_sell=frozenset({"LEG"}),
        excluded_tags=frozenset({"tobacco"}),
    )
    assert taxable.reserve == CashReserve(D(200), D("0.02"))
    ira = account_terms(rules, Account("I1", "H1", Registration.ROTH_IRA), client)
    assert ira.restrictions.do_not_sell == frozenset()  # must-hold binds T1 alone
    found = settings(rules, OptimizeSettings(max_turnover=D("0.25")))
    assert (found.tax_budget, found.max_turnover, found.min_trade) == (D(0), D("0.25"), D(250))


def test_the_engine_when_not_given_the_twins_then_the_same_rules_block_it() -> None:
    """The control: the rules above are not met by chance."""
    rules = compose([parse(FIRM_RULES, "firm.yaml")]).rules()
    accounts, lots = _household(1)
    model = resolve("GROWTH", {"GROWTH": MODEL})
    problems = tuple(
        build_problem(
            account=a, lots=lots, prices=PRICES, model=model, securities=SECURITIES, today=TODAY
        )
        for a in accounts
    )
    scenario = Scenario.of_method("optimize", OptimizeSettings(exact=False))
    proposal = rebalance_household(HouseholdProblem("H1", problems), _covariance, scenario)
    pairs = [(r.problem, r.proposal) for r in proposal.accounts]
    client = Client(exclusions=frozenset({"XLE"}))
    found = blocks(check(rules, *of_household(pairs, client=client)))
    assert {"client", "esg", "keep-legacy", "restricted"} <= {f.rule_id for f in found}


def test_the_engine_when_a_buy_crosses_the_single_security_limit_then_the_twin_holds() -> None:
    rules = compose([parse(FIRM_RULES, "firm.yaml")]).rules()
    client = Client(exclusions=frozenset({"XLE"}))
    accounts, lots = _household(29)  # VTI is bought to 47% of T1
    model = resolve("GROWTH", {"GROWTH": MODEL})
    problems = tuple(
        problem_terms(
            rules,
            build_problem(
                account=account_terms(rules, a, client), lots=lots, prices=PRICES, model=model,
                securities=SECURITIES, today=TODAY,
            ),
        )
        for a in accounts
    )  # fmt: skip
    scenario = Scenario.of_method("optimize", settings(rules, OptimizeSettings(exact=False)))
    proposal = rebalance_household(HouseholdProblem("H1", problems), _covariance, scenario)
    pairs = [(r.problem, r.proposal) for r in proposal.accounts]
    found = blocks(check(rules, *of_household(pairs, client=client)))
    assert [f.rule_id for f in found if f.kind == "security_weight"] == []
