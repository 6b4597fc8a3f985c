"""The cash method: raising a withdrawal, investing a deposit, checked by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.optimize.test_bands import TWO_GAINS, account, accounts, problem, sellable_value

from poise.domain.accounts import CashReserve, Restrictions
from poise.domain.relief import Term
from poise.domain.transactions import CashFlow, CashFlowKind
from poise.optimize.cash import rebalance_cash
from poise.optimize.check import Costs, outcome, violations
from poise.optimize.problem import Problem
from poise.optimize.trades import Side, TradeReason

D = Decimal


def withdrawal(amount: str) -> CashFlow:
    return CashFlow("W1", "A1", CashFlowKind.WITHDRAWAL, D(amount), date(2024, 6, 10))


def test_cash_when_a_withdrawal_is_asked_for_then_it_is_raised_from_the_highest_basis_lots() -> (
    None
):
    # $100 cash against a $3,000 withdrawal: $2,900 to raise. AAA is the overweight one
    # (77% against 60%), and its $120-a-share lot L2 is a loss: sold before the $50 lot.
    proposal = rebalance_cash(problem(account(cash=D(100)), cash_flows=[withdrawal("3000")]))
    [sale] = proposal.trades
    assert (sale.security_id, sale.side, sale.quantity, sale.reason) == (
        "AAA",
        Side.SELL,
        D(30),
        TradeReason.CASH_NEED,
    )
    assert [(s.lot_id, s.quantity, s.term) for s in sale.lots] == [("L2", D(30), Term.SHORT)]
    assert proposal.realised_short == D(-600)
    assert proposal.cash_after == D("3098.50")  # $100 + $3,000 − $1.50 of cost
    assert proposal.binding == ()


def test_cash_when_the_overweight_cannot_be_sold_then_the_cheapest_lots_elsewhere_go() -> None:
    restricted = account(cash=D(100), restrictions=Restrictions(do_not_sell=frozenset({"AAA"})))
    proposal = rebalance_cash(problem(restricted, cash_flows=[withdrawal("1000")]))
    [sale] = proposal.trades
    assert (sale.security_id, sale.quantity) == ("BBB", D(10))  # $900 needed, plus costs
    assert proposal.cash_after >= D(1000)


def test_cash_when_not_enough_may_be_sold_then_it_raises_what_it_can_and_says_so() -> None:
    restricted = account(
        cash=D(100), restrictions=Restrictions(do_not_sell=frozenset({"AAA", "BBB"}))
    )
    proposal = rebalance_cash(problem(restricted, cash_flows=[withdrawal("1000")]))
    assert proposal.trades == ()
    assert proposal.binding == ("short by 900.00: nothing more may be sold",)


def test_cash_when_there_is_spare_cash_then_the_most_underweight_is_bought_first() -> None:
    # $12,000 in all; keep 10% = $1,200; $1,800 to invest. BBB is $1,600 under target,
    # AAA $200 under: 16 BBB, then 1 AAA with what is left.
    proposal = rebalance_cash(problem(account(cash=D(3000))))
    assert [(t.security_id, t.side, t.quantity) for t in proposal.trades] == [
        ("BBB", Side.BUY, D(16)),
        ("AAA", Side.BUY, D(1)),
    ]
    assert all(t.reason is TradeReason.CASH_INVEST for t in proposal.trades)
    assert proposal.cash_after == D("1299.15")


def test_cash_when_the_most_underweight_may_not_be_bought_then_the_next_one_is() -> None:
    restricted = account(cash=D(3000), restrictions=Restrictions(do_not_buy=frozenset({"BBB"})))
    proposal = rebalance_cash(problem(restricted))
    # AAA is $200 under its target: 2 shares.
    assert [(t.security_id, t.quantity) for t in proposal.trades] == [("AAA", D(2))]
    assert "BBB is underweight but do not buy" in proposal.binding


def test_cash_when_cash_is_within_its_range_then_nothing_trades() -> None:
    assert rebalance_cash(problem(account(cash=D(1000)))).trades == ()


def test_cash_when_there_is_a_reserve_then_it_is_kept_back_from_investing() -> None:
    kept = rebalance_cash(problem(account(cash=D(3000), reserve=CashReserve(amount=D(2500)))))
    assert [(t.security_id, t.quantity) for t in kept.trades] == [("BBB", D(4))]
    assert kept.cash_after >= D(2500)


@settings(max_examples=150, deadline=None)
@given(accounts(), st.decimals(0, 30_000, places=2))
def test_cash_property_when_any_account_raises_or_invests_then_every_rule_holds(
    given_problem: Problem, asked: Decimal
) -> None:
    costs = Costs()
    with_flow = replace(given_problem, reserve=given_problem.reserve + asked)
    proposal = rebalance_cash(with_flow)
    trades = list(proposal.trades)
    assert violations(with_flow, trades, costs) == []
    after = outcome(with_flow, trades, costs)
    assert proposal.cash_after == after.cash
    sellable = sellable_value(with_flow)
    if (
        with_flow.cash < with_flow.reserve
        and sellable * D("0.99") > with_flow.reserve - with_flow.cash + 1000
    ):
        assert after.cash >= with_flow.reserve  # enough could be sold: the need is met


def test_cash_when_a_short_term_lot_gains_little_then_it_is_sold_before_a_long_term_one() -> None:
    # $900 to raise from AAA at $100: L1 ($20 a share, long-term) would cost $20 a share in
    # tax at 20% + 5%, L2 ($90, short-term) $4.20 a share at 37% + 5%. L2 goes.
    proposal = rebalance_cash(
        problem(account(cash=D(100)), lots=TWO_GAINS, cash_flows=[withdrawal("1000")])
    )
    [sale] = proposal.trades
    assert [(s.lot_id, s.quantity, s.term) for s in sale.lots] == [("L2", D(10), Term.SHORT)]
    assert proposal.estimated_tax == D("42.00")  # not $200 from the long-term lot
    assert proposal.cash_after >= D(1000)
