"""The optimize method, on accounts whose best trades can be argued by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from tests.optimize.test_bands import accounts

from poise.domain.accounts import Account, Registration, Restrictions, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.securities import Security, SecurityKind
from poise.optimize.bands import rebalance_bands
from poise.optimize.check import Costs, violations
from poise.optimize.problem import Problem, RecentTrade, build_problem
from poise.optimize.tax_aware import OptimizeSettings, objective, rebalance_optimize
from poise.optimize.trades import Side, TradeReason

D = Decimal
TODAY = date(2024, 6, 14)
VOL = 0.20


def security(name: str, *, group: str = "", replacements: tuple[str, ...] = ()) -> Security:
    return Security(
        name,
        name,
        name,
        SecurityKind.ETF,
        "us_equity",
        identity_group=group,
        replacements=replacements,
    )


SECURITIES = {
    "SPY": security("SPY", group="SP500", replacements=("VTI",)),
    "VTI": security("VTI"),
    "AAA": security("AAA"),
    "BBB": security("BBB"),
}


def covariance(names: list[str], correlated: tuple[str, str] = ("SPY", "VTI")) -> np.ndarray:
    """20% volatility each; the two named move together (ρ = 0.99), the rest apart."""
    matrix = np.eye(len(names)) * VOL**2
    if correlated[0] in names and correlated[1] in names:
        i, j = names.index(correlated[0]), names.index(correlated[1])
        matrix[i, j] = matrix[j, i] = 0.99 * VOL**2
    return matrix


def make(
    targets: dict[str, str],
    lots: list[TaxLot],
    prices: dict[str, str],
    *,
    cash: str = "500",
    registration: Registration = Registration.TAXABLE,
    restrictions: Restrictions | None = None,
    recent: list[RecentTrade] | None = None,
) -> Problem:
    cash_weight = D(1) - sum((D(w) for w in targets.values()), D(0))
    model = Model(
        "M",
        "M",
        (
            *(ModelTarget(TargetKind.SECURITY, s, D(w)) for s, w in targets.items()),
            ModelTarget(TargetKind.CASH, "", cash_weight),
        ),
    )
    taxed = registration.taxable
    account = Account(
        "A1",
        "H1",
        registration,
        model_id="M",
        cash=D(cash),
        tax_rates=TaxRates(D("0.37"), D("0.20"), D("0.05")) if taxed else TaxRates(),
        restrictions=restrictions or Restrictions(),
        harvest=taxed,
    )
    return build_problem(
        account=account,
        lots=lots,
        prices={s: D(p) for s, p in prices.items()},
        model=resolve("M", {"M": model}),
        securities=SECURITIES,
        today=TODAY,
        recent=recent or [],
        firm_band=Band(D("0.05"), D("0.25")),
    )


def cov_of(problem: Problem) -> np.ndarray:
    return covariance([h.security_id for h in problem.holdings])


def test_optimize_when_a_lot_is_at_a_loss_then_it_is_harvested_and_the_replacement_bought() -> None:
    # 100 SPY bought at $120, now $95: a $2,500 short-term loss, worth $1,050 at 42% —
    # 10.5% of a $10,000 account. Swapping into VTI (ρ 0.99) costs 2.7 points of
    # tracking error: the harvest wins, and VTI, not SPY, keeps the exposure.
    problem = make(
        {"SPY": "0.95"},
        [TaxLot("L1", "A1", "SPY", D(100), D(12000), date(2024, 1, 10))],
        {"SPY": "95", "VTI": "190"},
    )
    proposal = rebalance_optimize(problem, cov_of(problem))
    by = {(t.security_id, t.side): t for t in proposal.trades}
    assert by[("SPY", Side.SELL)].quantity == D(100)
    assert by[("SPY", Side.SELL)].reason is TradeReason.HARVEST
    assert ("SPY", Side.BUY) not in by  # buying it back would be a wash sale
    assert by[("VTI", Side.BUY)].reason is TradeReason.REPLACEMENT
    assert by[("VTI", Side.BUY)].quantity >= D(47)  # about $9,000 of VTI
    assert proposal.realised_short == D(-2500)
    assert proposal.estimated_tax == D("-1050.00")


def test_optimize_when_the_account_is_not_taxed_then_nothing_is_harvested() -> None:
    problem = make(
        {"SPY": "0.95"},
        [TaxLot("L1", "A1", "SPY", D(100), D(12000), date(2024, 1, 10))],
        {"SPY": "95", "VTI": "190"},
        registration=Registration.ROTH_IRA,
    )
    assert rebalance_optimize(problem, cov_of(problem)).trades == ()


OVERWEIGHT = [TaxLot("G1", "A1", "AAA", D(80), D(4000), date(2019, 3, 4))]  # a $4,000 gain, long


def test_optimize_when_the_tax_budget_is_zero_then_a_gain_lot_is_kept() -> None:
    # AAA 80% against 50%, BBB 0% against 45%: unconstrained, AAA is sold and BBB bought.
    prices = {"AAA": "100", "BBB": "100"}
    problem = make({"AAA": "0.5", "BBB": "0.45"}, OVERWEIGHT, prices, cash="2000")
    free = rebalance_optimize(problem, cov_of(problem))
    assert any(t.security_id == "AAA" and t.side is Side.SELL for t in free.trades)
    capped = rebalance_optimize(problem, cov_of(problem), OptimizeSettings(tax_budget=D(0)))
    assert [t.security_id for t in capped.trades if t.side is Side.SELL] == []
    assert capped.realised_long + capped.realised_short <= 0
    assert [t.security_id for t in capped.trades] == ["BBB"]  # the cash still goes to work


def test_optimize_when_short_and_long_term_lots_gain_alike_then_the_long_term_one_is_sold() -> None:
    lots = [
        TaxLot("LT", "A1", "AAA", D(40), D(2000), date(2020, 2, 3)),  # $50 a share, long
        TaxLot("ST", "A1", "AAA", D(40), D(2000), date(2024, 2, 5)),  # $50 a share, short
    ]
    problem = make({"AAA": "0.5", "BBB": "0.45"}, lots, {"AAA": "100", "BBB": "100"}, cash="2000")
    proposal = rebalance_optimize(problem, cov_of(problem))
    [sale] = [t for t in proposal.trades if t.side is Side.SELL]
    assert {s.lot_id for s in sale.lots} == {"LT"}  # 25% tax, not 42%


def test_optimize_when_a_security_is_restricted_then_it_is_never_bought() -> None:
    problem = make(
        {"AAA": "0.5", "BBB": "0.45"},
        OVERWEIGHT,
        {"AAA": "100", "BBB": "100"},
        cash="2000",
        restrictions=Restrictions(do_not_buy=frozenset({"BBB"})),
    )
    proposal = rebalance_optimize(problem, cov_of(problem))
    assert all(t.security_id != "BBB" for t in proposal.trades if t.side is Side.BUY)


def test_optimize_when_it_was_sold_at_a_loss_in_the_last_30_days_then_it_is_not_bought() -> None:
    recent = [RecentTrade("BBB", date(2024, 6, 1), bought=False, loss=True)]
    problem = make(
        {"AAA": "0.5", "BBB": "0.45"}, OVERWEIGHT, {"AAA": "100", "BBB": "100"}, cash="2000",
        recent=recent,
    )  # fmt: skip
    proposal = rebalance_optimize(problem, cov_of(problem))
    assert all(t.security_id != "BBB" for t in proposal.trades if t.side is Side.BUY)


@settings(max_examples=40, deadline=None)
@given(accounts())
def test_optimize_property_when_any_account_is_optimised_then_every_rule_holds(
    given_problem: Problem,
) -> None:
    names = [h.security_id for h in given_problem.holdings]
    proposal = rebalance_optimize(given_problem, covariance(names, ("AAA", "FND")))
    assert violations(given_problem, list(proposal.trades), Costs()) == []


@settings(max_examples=60, deadline=None)
@given(accounts())
def test_optimize_property_when_any_account_is_optimised_then_it_beats_bands(
    given_problem: Problem,
) -> None:
    names = [h.security_id for h in given_problem.holdings]
    matrix = covariance(names, ("AAA", "FND"))
    proposal = rebalance_optimize(given_problem, matrix)
    bands = rebalance_bands(given_problem)
    # Never worse than bands on its own objective, to the solvers' tolerance (10⁻⁵ of
    # the account: 50 cents in these): their whole-share rounding is solved exactly.
    slack = 1e-5
    assert objective(given_problem, proposal.trades, matrix) <= (
        objective(given_problem, bands.trades, matrix) + slack
    )
