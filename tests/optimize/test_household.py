"""A household rebalanced as one problem, on households whose best trades can be argued
by hand: wash sales across accounts prevented ahead, assets located over successive
rebalances, each account's cash its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from poise.domain.accounts import Account, CashReserve, Registration, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.securities import Security, SecurityKind
from poise.optimize.check import Costs, outcome
from poise.optimize.household import (
    HouseholdProblem,
    HouseholdProposal,
    HouseholdSettings,
    meetings,
    rebalance_household,
)
from poise.optimize.problem import Problem, build_problem
from poise.optimize.scenarios import Scenario, run
from poise.optimize.tax_aware import OptimizeSettings
from poise.optimize.trades import Side

D = Decimal
TODAY = date(2024, 6, 14)
VOL = 0.20


def etf(name: str, asset_class: str = "us_equity", **kw: object) -> Security:
    return Security(name, name, name, SecurityKind.ETF, asset_class, **kw)  # type: ignore[arg-type]


SECURITIES = {
    # SPY and VOO track the same index: substantially identical, one wash-sale identity.
    "SPY": etf("SPY", identity_group="SP500", replacements=("VTI",)),
    "VOO": etf("VOO", identity_group="SP500", replacements=("VTI",)),
    "VTI": etf("VTI"),
    "BND": etf("BND", "fixed_income"),
}
EQUITY = ("SPY", "VOO", "VTI")


def covariance(names: Sequence[str]) -> np.ndarray:
    """20% volatility each; the three equity funds move together (ρ 0.99), bonds apart
    at 5%."""
    n = len(names)
    matrix = np.zeros((n, n))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if a == b:
                matrix[i, j] = (0.05 if a == "BND" else VOL) ** 2
            elif a in EQUITY and b in EQUITY:
                matrix[i, j] = 0.99 * VOL**2
    return matrix


def model(model_id: str, targets: dict[str, str]) -> Model:
    cash = D(1) - sum((D(w) for w in targets.values()), D(0))
    return Model(
        model_id,
        model_id,
        (
            *(ModelTarget(TargetKind.SECURITY, s, D(w)) for s, w in targets.items()),
            ModelTarget(TargetKind.CASH, "", cash),
        ),
    )


def account(account_id: str, registration: Registration, cash: str, reserve: str = "0") -> Account:
    taxed = registration.taxable
    return Account(
        account_id,
        "H1",
        registration,
        model_id="M",
        cash=D(cash),
        reserve=CashReserve(amount=D(reserve)),
        tax_rates=TaxRates(D("0.37"), D("0.20"), D("0.05")) if taxed else TaxRates(),
        harvest=taxed,
    )


def problem(
    acct: Account, targets: dict[str, str], lots: list[TaxLot], prices: dict[str, str]
) -> Problem:
    return build_problem(
        account=acct,
        lots=lots,
        prices={s: D(p) for s, p in prices.items()},
        model=resolve("M", {"M": model("M", targets)}),
        securities=SECURITIES,
        today=TODAY,
        firm_band=Band(D("0.05"), D("0.25")),
    )


OPTIMIZE = Scenario.of_method("optimize", OptimizeSettings())
PRICES = {"SPY": "95", "VOO": "95", "VTI": "190", "BND": "100"}


def a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin() -> list[Problem]:
    # The taxable account holds 100 SPY bought at $120, now $95: a $2,500 short-term
    # loss, $1,050 at 42%. The IRA has $10,000 of cash and a model of VOO — SPY's twin —
    # and VTI.
    taxable = problem(
        account("TAX", Registration.TAXABLE, "500"),
        {"SPY": "0.95"},
        [TaxLot("L1", "TAX", "SPY", D(100), D(12000), date(2024, 1, 10))],
        PRICES,
    )
    ira = problem(
        account("IRA", Registration.TRADITIONAL_IRA, "10000"),
        {"VOO": "0.60", "VTI": "0.35"},
        [],
        PRICES,
    )
    return [taxable, ira]


def bought(proposal: HouseholdProposal, account_id: str) -> set[str]:
    (part,) = [r for r in proposal.accounts if r.problem.account.account_id == account_id]
    return {t.security_id for t in part.proposal.trades if t.side is Side.BUY}


def loss_sold(proposal: HouseholdProposal, account_id: str) -> set[str]:
    (part,) = [r for r in proposal.accounts if r.problem.account.account_id == account_id]
    return {t.security_id for t in part.proposal.trades if any(s.gain < 0 for s in t.lots)}


def test_accounts_alone_when_a_taxable_loss_meets_an_ira_buy_of_its_twin_then_it_is_a_wash() -> (
    None
):
    # The accounts rebalanced one at a time: the harvest and the IRA's purchase of VOO
    # in the same days — the loss is lost for good (Rev. Rul. 2008-5). This is what the
    # household run is for.
    taxable, ira = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    alone_tax = run(taxable, covariance([h.security_id for h in taxable.holdings]), OPTIMIZE)
    alone_ira = run(ira, covariance([h.security_id for h in ira.holdings]), OPTIMIZE)
    assert "SPY" in {t.security_id for t in alone_tax.trades if t.side is Side.SELL}
    assert "VOO" in {t.security_id for t in alone_ira.trades if t.side is Side.BUY}


def test_household_when_a_taxable_loss_meets_an_ira_buy_of_its_twin_then_the_ira_buys_else() -> (
    None
):
    problems = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    result = rebalance_household(HouseholdProblem("H1", tuple(problems)), covariance, OPTIMIZE)
    assert loss_sold(result, "TAX") == {"SPY"}  # the harvest wins: $1,050 of tax
    assert not bought(result, "IRA") & {"SPY", "VOO"}  # nothing of SPY's identity
    assert "VTI" in bought(result, "IRA")  # the IRA keeps its exposure through VTI
    assert meetings({r.problem.account.account_id: r for r in result.accounts}) == []
    (said,) = result.meetings
    for word in ("SP500", "TAX", "IRA", "lost for good"):
        assert word in said


def test_household_when_the_twin_is_all_the_ira_may_buy_then_the_cheaper_side_gives_way() -> None:
    # The IRA may buy only VOO, and holds $100,000 of cash: not buying it costs 19
    # points of tracking error on $100,000 — far more than the $1,050 the harvest saves.
    # So the position wins: the taxable account keeps its loss lots.
    taxable, _ = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    ira = problem(account("IRA", Registration.ROTH_IRA, "100000"), {"VOO": "0.95"}, [], PRICES)
    result = rebalance_household(HouseholdProblem("H1", (taxable, ira)), covariance, OPTIMIZE)
    assert "VOO" in bought(result, "IRA")
    assert loss_sold(result, "TAX") == set()
    assert "keeps its loss lots" in result.meetings[0]


@pytest.mark.parametrize("exact", [True, False])
def test_household_when_meetings_are_weighed_quickly_then_each_account_ends_as_its_own_solve(
    exact: bool,
) -> None:
    # Meetings are weighed with quick solves; whatever the household decided, each
    # account's proposal is then what the one-account engine gives for the constraints
    # it ended with — with the whole-share search where the settings ask for it.
    scenario = Scenario.of_method("optimize", OptimizeSettings(exact=exact))
    problems = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    result = rebalance_household(HouseholdProblem("H1", tuple(problems)), covariance, scenario)
    assert result.meetings  # the IRA was closed to SPY's identity
    for part in result.accounts:
        ids = [h.security_id for h in part.problem.holdings]
        alone = run(part.problem, covariance(ids), scenario)
        assert part.proposal.trades == alone.trades


def check_cash_is_each_accounts_own(result: HouseholdProposal) -> None:
    for part in result.accounts:
        p, proposal = part.problem, part.proposal
        after = outcome(p, proposal.trades, Costs())
        assert after.cash == proposal.cash_after  # what the trades pay, from this account
        assert proposal.cash_after >= p.reserve


def test_household_when_rebalanced_then_each_accounts_cash_pays_its_own_trades() -> None:
    problems = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    reserved = [replace(problems[0], reserve=D(400)), replace(problems[1], reserve=D(2000))]
    result = rebalance_household(HouseholdProblem("H1", tuple(reserved)), covariance, OPTIMIZE)
    check_cash_is_each_accounts_own(result)


# ── asset location ──────────────────────────────────────────────────────────


def applied(p: Problem, result: HouseholdProposal, day: date) -> list[TaxLot]:
    """The account's lots after its trades: sales relieve the lots named, buys are new
    lots at the trade price."""
    (part,) = [r for r in result.accounts if r.problem.account.account_id == p.account.account_id]
    lots = {lot.lot_id: lot for h in p.holdings for lot in h.lots}
    for n, trade in enumerate(part.proposal.trades):
        for sale in trade.lots:
            lot = lots[sale.lot_id]
            left = lot.quantity - sale.quantity
            lots[sale.lot_id] = replace(
                lot, quantity=left, cost_basis=lot.cost_basis * left / lot.quantity
            )
        if trade.side is Side.BUY:
            lot_id = f"{p.account.account_id}-{day}-{n}"
            lots[lot_id] = TaxLot(
                lot_id, p.account.account_id, trade.security_id, trade.quantity,
                trade.quantity * trade.price, day,
            )  # fmt: skip
    return [lot for lot in lots.values() if lot.quantity > 0]


def bonds_in(problems: Sequence[Problem], result: HouseholdProposal | None) -> dict[str, Decimal]:
    """Each account's bonds, in dollars, after the result's trades (None: now)."""
    found = {}
    for p in problems:
        quantity = (
            p.holding("BND").quantity if any(h.security_id == "BND" for h in p.holdings) else D(0)
        )
        if result is not None:
            (part,) = [
                r for r in result.accounts if r.problem.account.account_id == p.account.account_id
            ]
            quantity += sum(
                (t.signed_quantity for t in part.proposal.trades if t.security_id == "BND"), D(0)
            )
        found[p.account.account_id] = quantity * D(100)
    return found


HOUSEHOLD_MODEL = {"VTI": "0.58", "BND": "0.40"}  # and 2% cash


def located_household(taxable_lots: list[TaxLot], ira_lots: list[TaxLot]) -> list[Problem]:
    return [
        problem(
            account("TAX", Registration.TAXABLE, "1200"), HOUSEHOLD_MODEL, taxable_lots, PRICES
        ),
        problem(
            account("IRA", Registration.TRADITIONAL_IRA, "800"), HOUSEHOLD_MODEL, ira_lots, PRICES
        ),
    ]


def test_location_when_bonds_sit_in_the_taxable_account_then_they_move_into_the_ira() -> None:
    # $100,000 in all: the taxable account holds $60,000 — $40,000 of bonds bought at
    # today's price (no gain to realise) and $18,800 of VTI; the IRA $40,000 of VTI.
    # Bonds are the most tax-inefficient asset: the household's 40% of bonds belongs in
    # the IRA, its equity in the taxable account — and nothing taxable need be sold at a
    # gain to get there.
    taxable_lots = [
        TaxLot("T1", "TAX", "BND", D(400), D(40000), date(2023, 1, 3)),
        TaxLot("T2", "TAX", "VTI", D(99), D(9900), date(2015, 1, 3)),  # a large gain
    ]
    ira_lots = [TaxLot("I1", "IRA", "VTI", D(206), D(20000), date(2018, 1, 3))]
    problems = located_household(taxable_lots, ira_lots)
    hp = HouseholdProblem("H1", tuple(problems), joint=True)
    settings = HouseholdSettings(location_weight=0.01)
    first = rebalance_household(hp, covariance, OPTIMIZE, settings)
    before, after = bonds_in(problems, None), bonds_in(problems, first)
    assert before["IRA"] == 0
    assert after["IRA"] > D(30000)  # most of the bonds moved at once: no tax to pay
    assert sum(after.values()) == pytest.approx(sum(before.values()), rel=D("0.05"))
    check_cash_is_each_accounts_own(first)
    for part in first.accounts:  # no taxable gain realised to relocate
        if part.problem.account.registration.taxable:
            assert part.proposal.realised_short + part.proposal.realised_long <= 0
    assert any("fixed_income" in line and "tax-deferred 0% →" in line for line in first.location)

    # Rebalanced again on the books the first left: the bonds stay put, or move further in.
    day = date(2024, 7, 15)
    again = [
        replace(
            problem(p.account, HOUSEHOLD_MODEL, applied(p, first, day), PRICES),
            cash=next(
                r.proposal.cash_after for r in first.accounts if r.problem.account == p.account
            ),
        )
        for p in problems
    ]
    second = rebalance_household(
        HouseholdProblem("H1", tuple(again), joint=True), covariance, OPTIMIZE, settings
    )
    assert bonds_in(again, second)["IRA"] >= after["IRA"] - D(100)


def test_location_when_the_weight_is_zero_then_nothing_moves_for_location_alone() -> None:
    taxable_lots = [
        TaxLot("T1", "TAX", "BND", D(400), D(40000), date(2023, 1, 3)),
        TaxLot("T2", "TAX", "VTI", D(99), D(9900), date(2015, 1, 3)),
    ]
    ira_lots = [TaxLot("I1", "IRA", "VTI", D(206), D(20000), date(2018, 1, 3))]
    problems = located_household(taxable_lots, ira_lots)
    hp = HouseholdProblem("H1", tuple(problems), joint=True)
    result = rebalance_household(hp, covariance, OPTIMIZE, HouseholdSettings(location_weight=0.0))
    assert bonds_in(problems, result)["IRA"] < D(5000)


def test_household_problem_when_an_account_of_another_household_is_given_then_it_is_refused() -> (
    None
):
    taxable, ira = a_loss_in_the_taxable_account_and_an_ira_that_would_buy_its_twin()
    stranger = replace(ira, account=replace(ira.account, household_id="H2"))
    with pytest.raises(Exception, match="H2"):
        HouseholdProblem("H1", (taxable, stranger))


def test_location_when_bonds_carry_gains_then_new_money_moves_them_over_successive_rebalances() -> (
    None
):
    # The taxable account's bonds carry a large gain: selling them to relocate would
    # cost tax now for a saving a year, so they stay. Each quarter $10,000 of new money
    # arrives in the taxable account: it buys equity there, and the IRA sells equity to
    # buy bonds in step — the household's bonds move into the IRA a little each time,
    # and no taxable gain is ever realised.
    taxable_lots = [
        TaxLot("T1", "TAX", "BND", D(300), D(15000), date(2015, 1, 3)),  # cost $50, now $100
        TaxLot("T2", "TAX", "VTI", D(100), D(19000), date(2023, 1, 3)),
    ]
    ira_lots = [TaxLot("I1", "IRA", "VTI", D(200), D(20000), date(2018, 1, 3))]
    problems = located_household(taxable_lots, ira_lots)
    settings = HouseholdSettings(location_weight=0.01)
    shares = []
    for quarter in range(3):
        day = date(2024, 7, 15) + timedelta(days=91 * quarter)
        problems = [
            replace(p, cash=p.cash + D(10000), today=day)
            if p.account.account_id == "TAX"
            else replace(p, today=day)
            for p in problems
        ]
        result = rebalance_household(
            HouseholdProblem("H1", tuple(problems), joint=True), covariance, OPTIMIZE, settings
        )
        check_cash_is_each_accounts_own(result)
        for part in result.accounts:
            if part.problem.account.registration.taxable:
                assert part.proposal.realised_short + part.proposal.realised_long <= 0
        after = bonds_in(problems, result)
        shares.append(after["IRA"] / sum(after.values()))
        problems = [
            replace(
                problem(p.account, HOUSEHOLD_MODEL, applied(p, result, day), PRICES),
                cash=next(
                    r.proposal.cash_after for r in result.accounts if r.problem.account == p.account
                ),
                today=day,
            )
            for p in problems
        ]
    assert shares[0] > 0
    assert shares[0] < shares[1] < shares[2]  # converging, a step each quarter
