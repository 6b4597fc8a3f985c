"""Restricted lists, long only, no negative cash, no margin."""

from __future__ import annotations

from decimal import Decimal

from tests.comply.book import breaches, findings

from poise.comply.rules.positions import LongOnly, NoMargin, NoNegativeCash
from poise.comply.rules.restricted import DoNotBuy, DoNotSell, ExcludedTags, MustHold
from poise.domain.accounts import Restrictions

D = Decimal

HOUSEHOLD = """
account A1 taxable cash 5000
account A2 traditional_ira cash 5000
A1 FIRM 100
A1 AAPL 10
A2 MSFT 5
"""


def test_do_not_buy_when_firm_wide_then_a_buy_in_any_account_is_found() -> None:
    rule = {"securities": frozenset({"FIRM"})}
    assert findings(DoNotBuy(rule_id="x", **rule), HOUSEHOLD + "trade A1 sell FIRM 10") == []
    [f] = breaches(DoNotBuy, rule, HOUSEHOLD + "trade A2 buy FIRM 40")
    assert f.explanation == (
        "account A2 buys 40 FIRM ($1,000.00), a purchase forbidden by the do-not-buy rule"
    )
    assert (f.measured, f.limit, f.securities, f.accounts) == (D(1000), D(0), ("FIRM",), ("A2",))


def test_do_not_buy_when_bound_to_one_account_then_the_others_may_buy() -> None:
    rule = {"securities": frozenset({"AAPL"}), "accounts": frozenset({"A1"})}
    assert findings(DoNotBuy(rule_id="x", **rule), HOUSEHOLD + "trade A2 buy AAPL 1") == []
    [f] = breaches(DoNotBuy, rule, HOUSEHOLD + "trade A1 buy AAPL 1")
    assert f.accounts == ("A1",)
    assert DoNotBuy(rule_id="x", **rule).restrictions("A2") == Restrictions()
    assert DoNotBuy(rule_id="x", **rule).restrictions("A1") == Restrictions(
        do_not_buy=frozenset({"AAPL"})
    )


def test_do_not_sell_when_a_sale_is_proposed_then_it_is_found() -> None:
    rule = {"securities": frozenset({"AAPL"})}
    assert findings(DoNotSell(rule_id="x", **rule), HOUSEHOLD + "trade A1 buy AAPL 1") == []
    [f] = breaches(DoNotSell, rule, HOUSEHOLD + "trade A1 sell AAPL 5")
    assert f.explanation == (
        "account A1 sells 5 AAPL ($1,000.00), a sale forbidden by the do-not-sell rule"
    )


def test_excluded_tags_when_a_tagged_security_is_bought_then_the_tag_is_named() -> None:
    rule = {"tags": frozenset({"tobacco", "fossil_fuels"})}
    assert findings(ExcludedTags(rule_id="x", **rule), HOUSEHOLD + "trade A1 buy AAPL 1") == []
    [f] = breaches(ExcludedTags, rule, HOUSEHOLD + "trade A1 buy MO 10")
    assert f.explanation == (
        "account A1 buys MO ($500.00), tagged tobacco, which the excluded-tags rule excludes"
    )


def test_must_hold_when_a_sale_empties_the_position_then_it_is_found() -> None:
    rule = {"securities": frozenset({"FIRM"})}
    assert findings(MustHold(rule_id="x", **rule), HOUSEHOLD + "trade A1 sell FIRM 99") == []
    [f] = breaches(MustHold, rule, HOUSEHOLD + "trade A1 sell FIRM 100")
    assert f.explanation == (
        "account A1 would no longer hold FIRM, which the must-hold rule says it must keep"
    )
    assert (f.measured, f.limit) == (D(0), D(100))
    # bound to other accounts, A1 may sell it; an account that never held it need not buy
    bound = MustHold(rule_id="x", securities=frozenset({"FIRM"}), accounts=frozenset({"A2"}))
    assert findings(bound, HOUSEHOLD + "trade A1 sell FIRM 100") == []


def test_long_only_when_more_is_sold_than_held_then_the_short_is_found() -> None:
    assert findings(LongOnly(rule_id="x"), HOUSEHOLD + "trade A1 sell AAPL 10") == []
    [f] = breaches(LongOnly, {}, HOUSEHOLD + "trade A1 sell AAPL 12")
    assert f.explanation == (
        "account A1 would be short 2 AAPL; the long-only rule allows no short position"
    )
    assert f.measured == D(-2)


def test_no_negative_cash_when_a_buy_spends_more_than_the_cash_then_it_is_found() -> None:
    assert findings(NoNegativeCash(rule_id="x"), HOUSEHOLD + "trade A1 buy MSFT 12") == []
    [f] = breaches(NoNegativeCash, {}, HOUSEHOLD + "trade A1 buy MSFT 13")
    assert f.measured == D(-200)
    assert f.explanation == (
        "account A1 would hold -$200.00 in cash; the no-negative-cash rule allows no negative cash"
    )


def test_no_margin_when_purchases_exceed_cash_and_sales_then_the_borrowing_is_found() -> None:
    text = HOUSEHOLD + "trade A2 sell MSFT 5\ntrade A2 buy AAPL 35"  # $2,000 + $5,000 < $7,000
    assert findings(NoMargin(rule_id="x"), text) == []
    [f] = breaches(NoMargin, {}, text + "\ntrade A2 buy MO 1")
    assert f.measured == D(50)
    assert f.explanation == (
        "account A2's purchases exceed its cash and sales by $50.00: bought on margin, which "
        "the no-margin rule forbids"
    )


def test_a_finding_when_written_as_json_then_its_money_is_exact_text() -> None:
    [f] = findings(DoNotBuy(rule_id="restricted", securities=frozenset({"FIRM"})),
                   HOUSEHOLD + "trade A2 buy FIRM 40.5")  # fmt: skip
    assert f.as_json() == {
        "rule_id": "restricted",
        "kind": "do_not_buy",
        "severity": "block",
        "measured": "1012.5",
        "limit": "0",
        "explanation": "account A2 buys 40.5 FIRM ($1,012.50), a purchase forbidden by the "
        "restricted rule",
        "securities": ["FIRM"],
        "accounts": ["A2"],
    }
