"""The bands method, on accounts small enough to check by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.accounts import Account, CashReserve, Registration, Restrictions, TaxRates
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.relief import Term
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.domain.transactions import CashFlow, CashFlowKind
from poise.optimize.bands import BandSettings, rebalance_bands, repair
from poise.optimize.check import Costs, outcome, violations
from poise.optimize.problem import Problem, RecentTrade, build_problem
from poise.optimize.selling import lot_tax, sell
from poise.optimize.trades import Side, Trade, TradeReason

D = Decimal
TODAY = date(2024, 6, 14)
FIRM = Band(D("0.05"), D("0.25"))  # 5/25
SECURITIES = {
    "AAA": Security("AAA", "AAA", "AAA Corp", SecurityKind.STOCK, "us_equity"),
    "BBB": Security(
        "BBB", "BBB", "BBB Corp", SecurityKind.STOCK, "us_equity", tags=frozenset({"tobacco"})
    ),
    "FND": Security(
        "FND",
        "FND",
        "A fund",
        SecurityKind.ETF,
        "us_equity",
        trading=Trading(TradeUnit.FRACTION, D("0.001")),
    ),
}
PRICES = {"AAA": D(100), "BBB": D(100), "FND": D("50.00")}
MODEL = Model(
    "BAL",
    "Balanced",
    (
        ModelTarget(TargetKind.SECURITY, "AAA", D("0.6"), Band(D("0.05"))),
        ModelTarget(TargetKind.SECURITY, "BBB", D("0.3")),
        ModelTarget(TargetKind.CASH, "", D("0.1")),
    ),
)


def account(**changes: object) -> Account:
    base = {
        "account_id": "A1",
        "household_id": "H1",
        "registration": Registration.TAXABLE,
        "model_id": "BAL",
        "cash": D(1000),
        "tax_rates": TaxRates(D("0.37"), D("0.20"), D("0.05")),
        "harvest": True,
    }
    return Account(**{**base, **changes})  # type: ignore[arg-type]


# $7,000 of AAA in two lots (one long-term gain, one short-term loss), $2,000 of BBB.
LOTS = [
    TaxLot("L1", "A1", "AAA", D(40), D(2000), date(2020, 3, 2)),  # $50 a share: gain, long
    TaxLot("L2", "A1", "AAA", D(30), D(3600), date(2024, 1, 8)),  # $120 a share: loss, short
    TaxLot("L3", "A1", "BBB", D(20), D(1600), date(2021, 5, 3)),
]


def problem(acct: Account | None = None, lots: list[TaxLot] | None = None, **kw: object) -> Problem:
    return build_problem(
        account=acct or account(),
        lots=LOTS if lots is None else lots,
        prices=PRICES,
        model=resolve("BAL", {"BAL": MODEL}),
        securities=SECURITIES,
        today=TODAY,
        firm_band=FIRM,
        **kw,  # type: ignore[arg-type]
    )


def test_bands_when_over_its_band_then_the_loss_lot_is_sold_and_the_underweight_bought() -> None:
    # AAA 70% against 60% ± 5: sell $1,000 (10 shares) — from L2, a $20-a-share loss.
    # BBB 20% against 30% ± 5 (5/25): buy $1,000 (10 shares).
    proposal = rebalance_bands(problem())
    [sale, buy] = proposal.trades
    assert (sale.security_id, sale.side, sale.quantity) == ("AAA", Side.SELL, D(10))
    assert [(s.lot_id, s.quantity, s.gain, s.term) for s in sale.lots] == [
        ("L2", D(10), D(-200), Term.SHORT)
    ]
    assert (buy.security_id, buy.side, buy.quantity) == ("BBB", Side.BUY, D(10))
    assert proposal.realised_short == D(-200)
    assert proposal.estimated_tax == D("-84.00")  # a $200 short-term loss at 37% + 5%: a benefit
    assert proposal.cost == D("1.00")  # half a 10 bp spread on $2,000
    assert proposal.cash_after == D("999.00")
    assert proposal.drift_before == D("0.1")
    assert proposal.drift_after < D("0.001")
    assert proposal.binding == ()


def test_bands_when_the_loss_lot_was_bought_within_30_days_then_the_gain_lot_is_sold_instead() -> (
    None
):
    recent = [
        TaxLot(lot.lot_id, "A1", lot.security_id, lot.quantity, lot.cost_basis, date(2024, 6, 1))
        if lot.lot_id == "L2"
        else lot
        for lot in LOTS
    ]
    proposal = rebalance_bands(problem(lots=recent))
    [sale, _] = proposal.trades
    assert [(s.lot_id, s.quantity, s.gain, s.term) for s in sale.lots] == [
        ("L1", D(10), D(500), Term.LONG)
    ]
    assert proposal.estimated_tax == D("125.00")  # $500 long-term at 20% + 5%


def test_bands_when_the_position_may_not_be_sold_then_only_cash_buys_and_it_says_why() -> None:
    proposal = rebalance_bands(
        problem(account(restrictions=Restrictions(do_not_sell=frozenset({"AAA"}))))
    )
    [buy] = proposal.trades
    # $1,000 of cash cannot pay for $1,000 of BBB plus its cost: 9 shares.
    assert (buy.security_id, buy.quantity) == ("BBB", D(9))
    assert proposal.binding == (
        "AAA is above its band but do not sell",
        "the cash there is, after the reserve and withdrawals, buys only part",
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"restrictions": Restrictions(do_not_buy=frozenset({"BBB"}))}, "do not buy"),
        (
            {"restrictions": Restrictions(excluded_tags=frozenset({"tobacco"}))},
            "excluded tag tobacco",
        ),
    ],
)
def test_bands_when_a_restricted_security_is_under_its_band_then_it_is_never_bought(
    changes: dict[str, object], reason: str
) -> None:
    proposal = rebalance_bands(problem(account(**changes)))
    assert [t.security_id for t in proposal.trades if t.side is Side.BUY] == []
    assert f"BBB is below its band but {reason}" in proposal.binding


def test_bands_when_the_security_was_sold_at_a_loss_within_30_days_then_it_is_not_bought_back() -> (
    None
):
    recent = [RecentTrade("BBB", date(2024, 5, 30), bought=False, loss=True)]
    proposal = rebalance_bands(problem(recent=recent))
    assert [t.side for t in proposal.trades] == [Side.SELL]
    assert "BBB is below its band but sold at a loss in the last 30 days" in proposal.binding
    # 31 days ago is outside the window.
    older = [RecentTrade("BBB", date(2024, 5, 14), bought=False, loss=True)]
    assert [t.side for t in rebalance_bands(problem(recent=older)).trades] == [Side.SELL, Side.BUY]


def test_bands_when_a_reserve_must_remain_then_buys_stop_at_it() -> None:
    # $1,000 cash + $999.50 raised − $1,500 reserve leaves $499.50: 4 shares of BBB.
    proposal = rebalance_bands(problem(account(reserve=CashReserve(amount=D(1500)))))
    assert [(t.security_id, t.quantity) for t in proposal.trades] == [("AAA", D(10)), ("BBB", D(4))]
    assert proposal.cash_after >= D(1500)


def test_repair_when_a_buy_is_trimmed_below_the_minimum_trade_then_it_goes() -> None:
    # $1,000 of cash, $750 of it to remain: a buy of 5 BBB ($500) leaves cash $250 and
    # its cost short, so it is trimmed to 2 shares ($200) — below a $250 minimum trade,
    # so it goes rather than ship a ticket the firm's policy forbids.
    p = problem(account(reserve=CashReserve(amount=D(750))))
    buy = Trade("BBB", Side.BUY, D(5), D(100), TradeReason.DRIFT)
    assert [t.quantity for t in repair(p, [buy], Costs())] == [D(2)]
    assert repair(p, [buy], Costs(), D(250)) == []


def test_bands_when_trading_to_the_edge_then_only_the_excess_over_the_band_goes() -> None:
    proposal = rebalance_bands(problem(), BandSettings(to_edge=True))
    assert [(t.security_id, t.quantity) for t in proposal.trades] == [("AAA", D(5)), ("BBB", D(5))]


def test_bands_when_the_account_is_inside_every_band_then_nothing_trades() -> None:
    lots = [
        TaxLot("L1", "A1", "AAA", D(62), D(3000), date(2020, 3, 2)),
        TaxLot("L3", "A1", "BBB", D(28), D(1600), date(2021, 5, 3)),
    ]
    proposal = rebalance_bands(problem(lots=lots))
    assert proposal.trades == ()
    assert proposal.cash_after == proposal.cash_before


def test_bands_when_the_account_is_an_ira_then_gains_carry_no_tax() -> None:
    proposal = rebalance_bands(problem(account(registration=Registration.ROTH_IRA, harvest=False)))
    assert proposal.realised_short == D(-200)
    assert proposal.estimated_tax == D(0)


# --- which lots are sold: the cheapest in tax at the account's own rates ------------------------
#
# AAA at $100, 37% short-term, 20% long-term, 5% state. Selling 10 shares of it (70% against
# 60% ± 5) from L1, $20 a share held since 2020, would cost 10 × $80 × 25% = $200; from L2,
# $90 a share bought in January, 10 × $10 × 42% = $42. The short-term lot is the cheaper.
TWO_GAINS = [
    TaxLot("L1", "A1", "AAA", D(40), D(800), date(2020, 3, 2)),  # $20 a share: long, $20 tax
    TaxLot("L2", "A1", "AAA", D(30), D(2700), date(2024, 1, 8)),  # $90 a share: short, $4.20
    TaxLot("L3", "A1", "BBB", D(20), D(1600), date(2021, 5, 3)),
]


def test_bands_when_a_short_term_lot_gains_little_then_it_is_sold_before_a_long_term_one() -> None:
    proposal = rebalance_bands(problem(lots=TWO_GAINS))
    sale = proposal.trades[0]
    assert [(s.lot_id, s.quantity, s.gain, s.term) for s in sale.lots] == [
        ("L2", D(10), D(100), Term.SHORT)
    ]
    assert proposal.estimated_tax == D("42.00")  # not $200 from the long-term lot


def test_bands_when_the_account_is_not_taxed_then_the_highest_basis_lot_is_sold_first() -> None:
    roth = account(registration=Registration.ROTH_IRA, harvest=False)
    [sale, _] = rebalance_bands(problem(roth, lots=TWO_GAINS)).trades
    assert [(s.lot_id, s.quantity) for s in sale.lots] == [("L2", D(10))]


def test_bands_when_a_wash_sale_adjusted_a_lot_then_its_adjusted_basis_and_start_count() -> None:
    # L1 cost $20 a share, but a wash sale raised its basis to $95 and moved its holding
    # start to March: a $5 short-term gain, $2.10 a share — cheaper than L2's long-term
    # $20 gain at $5.00 a share.
    lots = [
        TaxLot(
            "L1", "A1", "AAA", D(40), D(800), date(2020, 3, 2),
            adjusted_basis=D(3800), holding_start=date(2024, 3, 1), disallowed_loss=D(3000),
        ),
        TaxLot("L2", "A1", "AAA", D(30), D(2400), date(2021, 1, 8)),
        TaxLot("L3", "A1", "BBB", D(20), D(1600), date(2021, 5, 3)),
    ]  # fmt: skip
    proposal = rebalance_bands(problem(lots=lots))
    assert [(s.lot_id, s.quantity, s.gain, s.term) for s in proposal.trades[0].lots] == [
        ("L1", D(10), D(50), Term.SHORT)
    ]
    assert proposal.estimated_tax == D("21.00")


def test_sell_when_the_demo_account_sells_66_lly_then_the_long_held_lot_stays() -> None:
    """The demo firm's account 97349948 on 2022-12-28, LLY at $363.098; 32% short-term,
    15% long-term, 4.95% state::

        L00003  2012-08-31  45 sh  cost  1,558.80   $34.64 a share, long   $65.53 tax a share
        L00035  2022-04-27  63 sh  cost 17,689.08  $280.78 a share, short  $30.42
        L00036  2022-06-28  22 sh  cost  6,905.16  $313.87 a share, short  $18.19

    Selling 66 shares takes L00036 and 44 of L00035 ($1,738.51 of tax), not L00003
    because it is long-term ($3,330.71 — $1,592.20 more)."""
    lly = Security("LLY", "LLY", "Eli Lilly", SecurityKind.STOCK, "us_equity")
    lots = [
        TaxLot("L00003", "A1", "LLY", D(45), D("1558.80"), date(2012, 8, 31)),
        TaxLot("L00035", "A1", "LLY", D(63), D("17689.08"), date(2022, 4, 27)),
        TaxLot("L00036", "A1", "LLY", D(22), D("6905.16"), date(2022, 6, 28)),
    ]
    demo = build_problem(
        account=account(tax_rates=TaxRates(D("0.32"), D("0.15"), D("0.0495"))),
        lots=lots,
        prices={**PRICES, "LLY": D("363.098")},
        model=resolve("BAL", {"BAL": MODEL}),
        securities={**SECURITIES, "LLY": lly},
        today=date(2022, 12, 28),
    )
    sale = sell(demo.holding("LLY"), D(66), problem=demo, reason=TradeReason.DRIFT)
    assert sale is not None
    assert [(s.lot_id, s.quantity) for s in sale.lots] == [("L00036", D(22)), ("L00035", D(44))]
    tax = sum((s.gain for s in sale.lots), D(0)) * demo.short_rate
    assert tax.quantize(D("0.01")) == D("1738.51")


# --- a withdrawal asked for is raised before anything is bought ------------------------------


def withdrawal(amount: str) -> CashFlow:
    return CashFlow("W1", "A1", CashFlowKind.WITHDRAWAL, D(amount), date(2024, 6, 10))


def test_bands_when_a_withdrawal_is_asked_for_then_it_is_raised_before_anything_is_bought() -> None:
    # $100 of cash against a $3,000 withdrawal. AAA is over its band: its 10 shares back
    # to target raise $1,000; the rest comes from AAA still overweight and then the lots
    # cheapest in tax — L2, a loss — and nothing is bought while the client waits.
    proposal = rebalance_bands(problem(account(cash=D(100)), cash_flows=[withdrawal("3000")]))
    [sale] = proposal.trades
    assert (sale.security_id, sale.side) == ("AAA", Side.SELL)
    assert [(s.lot_id, s.term) for s in sale.lots] == [("L2", Term.SHORT)]
    assert proposal.cash_after >= D(3000)
    # BBB stays under its band: the cash is the client's.
    assert proposal.binding == (
        "the cash there is, after the reserve and withdrawals, buys only part",
    )


def test_bands_when_the_withdrawal_cannot_be_raised_then_it_says_by_how_much() -> None:
    restricted = account(
        cash=D(100), restrictions=Restrictions(do_not_sell=frozenset({"AAA", "BBB"}))
    )
    proposal = rebalance_bands(problem(restricted, cash_flows=[withdrawal("1000")]))
    assert proposal.trades == ()
    assert "short by 900.00: nothing more may be sold" in proposal.binding


# --- properties ----------------------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=500, places=0)
money = st.decimals(min_value=1, max_value=50_000, places=2)


@st.composite
def accounts(draw: st.DrawFn) -> Problem:
    lots = []
    for i, security in enumerate(("AAA", "BBB", "FND")):
        for k in range(draw(st.integers(0, 3))):
            shares = draw(quantities) if security != "FND" else draw(st.decimals(0, 500, places=3))
            if shares > 0:
                day = date(2018 + draw(st.integers(0, 6)), draw(st.integers(1, 12)), 1)
                lots.append(
                    TaxLot(f"L{i}{k}", "A1", security, shares, draw(money), min(day, TODAY))
                )
    reserve = CashReserve(
        draw(st.decimals(0, 5000, places=2)), draw(st.decimals(0, "0.1", places=2))
    )
    cash = draw(st.decimals(0, 20_000, places=2))
    return problem(account(cash=cash, reserve=reserve), lots=lots)


@settings(max_examples=150, deadline=None)
@given(accounts(), st.booleans())
def test_bands_property_when_any_account_is_rebalanced_then_every_rule_holds(
    given_problem: Problem, to_edge: bool
) -> None:
    costs = Costs()
    proposal = rebalance_bands(given_problem, BandSettings(to_edge=to_edge, costs=costs))
    trades = list(proposal.trades)
    assert violations(given_problem, trades, costs) == []
    after = outcome(given_problem, trades, costs)
    # Cash is conserved to the cent: what sales raise less what buys cost less costs.
    moved = sum((t.value if t.side is Side.SELL else -t.value for t in trades), D(0))
    assert after.cash == given_problem.cash + moved - after.cost
    assert proposal.cash_after == after.cash
    # Shares are conserved, no lot is oversold, nothing goes short.
    for h in given_problem.holdings:
        traded = sum((t.signed_quantity for t in trades if t.security_id == h.security_id), D(0))
        assert after.quantities[h.security_id] == h.quantity + traded >= 0
    for t in trades:
        lots = {lot.lot_id: lot for lot in given_problem.holding(t.security_id).lots}
        for sale in t.lots:
            assert sale.quantity <= lots[sale.lot_id].quantity
    # Cash never ends below what must remain, unless it started below it and fell no further.
    assert after.cash >= min(given_problem.reserve, given_problem.cash)


@st.composite
def one_holding(draw: st.DrawFn) -> tuple[Problem, Decimal]:
    """One security in two to four small lots, any rates, and a quantity to sell."""
    lots = [
        TaxLot(
            f"L{k}",
            "A1",
            "AAA",
            D(draw(st.integers(1, 4))),
            draw(st.decimals(0, 1000, places=2)),
            date(2022 + draw(st.integers(0, 1)), draw(st.integers(1, 12)), 1),
        )
        for k in range(draw(st.integers(2, 4)))
    ]
    rate = st.decimals(0, "0.5", places=2)
    rates = TaxRates(draw(rate), draw(rate), draw(st.decimals(0, "0.15", places=2)))
    registration = draw(st.sampled_from([Registration.TAXABLE, Registration.TRADITIONAL_IRA]))
    acct = account(tax_rates=rates, registration=registration, harvest=False)
    held = sum((lot.quantity for lot in lots), D(0))
    return problem(acct, lots=lots), D(draw(st.integers(1, int(held))))


@settings(max_examples=200, deadline=None)
@given(one_holding())
def test_sell_property_when_any_lots_are_sold_then_no_other_choice_of_lots_pays_less_tax(
    case: tuple[Problem, Decimal],
) -> None:
    given_problem, quantity = case
    holding = given_problem.holding("AAA")
    trade = sell(holding, quantity, problem=given_problem, reason=TradeReason.DRIFT)
    assert trade is not None
    assert trade.quantity == quantity
    tax = {lot.lot_id: lot_tax(given_problem, lot, holding.price) for lot in holding.lots}
    paid = sum((sale.quantity * tax[sale.lot_id] for sale in trade.lots), D(0))
    # Every way of taking ``quantity`` whole shares from the lots, by brute force.
    choices = [{}]  # type: list[dict[str, int]]
    for lot in holding.lots:
        choices = [{**c, lot.lot_id: k} for c in choices for k in range(int(lot.quantity) + 1)]
    cheapest = min(
        sum((k * tax[name] for name, k in c.items()), D(0))
        for c in choices
        if sum(c.values()) == quantity
    )
    assert paid <= cheapest + D("1e-12")


def sellable_value(given_problem: Problem) -> Decimal:
    """What may be sold: not restricted, and no loss lot inside its wash-sale window."""
    return sum(
        (
            lot.quantity * h.price
            for h in given_problem.holdings
            if not h.no_sell
            for lot in h.lots
            if not (h.no_loss_sale and lot.basis_per_share > h.price)
        ),
        D(0),
    )


@settings(max_examples=150, deadline=None)
@given(accounts(), st.decimals(0, 30_000, places=2), st.booleans())
def test_bands_property_when_a_withdrawal_can_be_raised_then_cash_ends_at_what_must_remain(
    given_problem: Problem, asked: Decimal, to_edge: bool
) -> None:
    costs = Costs()
    with_flow = replace(given_problem, reserve=given_problem.reserve + asked)
    proposal = rebalance_bands(with_flow, BandSettings(to_edge=to_edge, costs=costs))
    assert violations(with_flow, list(proposal.trades), costs) == []
    sellable = sellable_value(with_flow)
    if sellable * D("0.99") > with_flow.reserve - with_flow.cash + 1000:
        assert proposal.cash_after >= with_flow.reserve
