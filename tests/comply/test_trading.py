"""Orders, trading, data: order size and share of volume, smallest trade, turnover,
number of trades, stale prices and prices that moved before release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.comply.book import breaches, findings

from poise.comply.rules.base import Scope
from poise.comply.rules.data import PriceMoved, StalePrice
from poise.comply.rules.orders import MaxOrderValue, MaxShareOfVolume
from poise.comply.rules.trading import MinimumTrade, TradeCount, Turnover
from poise.comply.views import Reference

D = Decimal
NOW = datetime(2024, 6, 14, 20, 0, tzinfo=UTC)

HOUSEHOLD = """
account A1 taxable cash 10000
account A2 roth_ira cash 10000
A1 AAPL 50       # $10,000: A1 is $20,000
A2 BND 40        # $3,000: A2 is $13,000
"""


def test_max_order_value_when_accounts_buy_the_same_security_then_the_block_is_summed() -> None:
    text = HOUSEHOLD + "trade A1 buy MSFT 10\ntrade A2 buy MSFT 10"  # $4,000 + $4,000
    assert findings(MaxOrderValue(rule_id="x", amount=D(8000)), text) == []
    [f] = breaches(MaxOrderValue, {"amount": D(5000)}, text)
    assert (f.measured, f.limit, f.accounts) == (D(8000), D(5000), ("A1", "A2"))
    assert f.explanation == (
        "the order to buy MSFT would be $8,000.00, above the $5,000.00 max-order-value limit"
    )


def test_max_share_of_volume_when_the_order_is_large_against_adv_then_it_is_found() -> None:
    text = HOUSEHOLD + "trade A1 sell AAPL 30"
    reference = Reference(adv={"AAPL": D(1000)})
    assert findings(MaxShareOfVolume(rule_id="x", max_share=0.05), text) == []  # no ADV: unjudged
    assert findings(MaxShareOfVolume(rule_id="x", max_share=0.05, adv={"AAPL": D(600)}), text) == []
    [f] = breaches(MaxShareOfVolume, {"max_share": 0.01}, text, reference=reference)
    assert f.measured == 0.03
    assert f.explanation == (
        "the order to sell 30 AAPL would be 3.0% of its average daily volume (1000 shares), "
        "above the 1.0% max-share-of-volume limit"
    )


def test_minimum_trade_when_a_trade_is_below_the_dollars_or_the_fraction_then_it_is_found() -> None:
    text = HOUSEHOLD + "trade A1 buy MO 4\ntrade A2 buy MO 20"  # $200 and $1,000
    assert findings(MinimumTrade(rule_id="x", amount=D(200)), text) == []
    [f] = breaches(MinimumTrade, {"amount": D(100), "fraction": 0.05}, text)  # 5% of $20,000
    assert (f.measured, f.limit, f.accounts) == (D(200), D("1000.00"), ("A1",))
    assert f.explanation == (
        "account A1's buy of MO is $200.00, below the $1,000.00 minimum-trade size"
    )
    assert MinimumTrade(rule_id="x", amount=D(100), fraction=0.05).settings() == {
        "min_trade": D(100),
        "min_trade_fraction": D("0.05"),
    }


def test_turnover_when_an_account_trades_too_much_of_its_value_then_it_is_found() -> None:
    text = HOUSEHOLD + "trade A1 sell AAPL 20\ntrade A1 buy MSFT 10"  # $8,000 of $20,000
    assert findings(Turnover(rule_id="x", max_turnover=0.40), text) == []
    [f] = breaches(Turnover, {"max_turnover": 0.25}, text)
    assert f.explanation == (
        "account A1 would trade $8,000.00, 40.0% of its value, above the 25.0% turnover limit"
    )
    # of the household's $33,000 it is 24.2%
    assert findings(Turnover(rule_id="x", max_turnover=0.25, scope=Scope.HOUSEHOLD), text) == []


def test_trade_count_when_there_are_too_many_trades_then_it_is_found() -> None:
    text = HOUSEHOLD + "trade A1 buy MO 4\ntrade A2 buy MO 20\ntrade A1 buy XOM 1"
    assert findings(TradeCount(rule_id="x", max_trades=3), text) == []
    [f] = breaches(TradeCount, {"max_trades": 2}, text)
    assert (f.measured, f.limit) == (3, 2)
    assert f.explanation == (
        "household H1's proposal has 3 trades, more than the 2 the trade-count rule allows"
    )


def test_stale_price_when_a_traded_price_is_older_than_allowed_then_it_is_found() -> None:
    times = {"MSFT": NOW - timedelta(days=3), "AAPL": NOW - timedelta(hours=2)}
    text = HOUSEHOLD + "trade A1 buy MSFT 1\ntrade A1 sell AAPL 1"
    rule = {"max_age_days": timedelta(days=4)}
    assert findings(StalePrice(rule_id="x", **rule), text, as_of=NOW, price_times=times) == []
    [f] = breaches(
        StalePrice, {"max_age_days": timedelta(days=1)}, text, as_of=NOW, price_times=times
    )
    assert (f.securities, f.measured, f.limit) == (("MSFT",), 3.0, 1.0)
    assert f.explanation == (
        "MSFT's price is 3.0 days old, older than the stale-price rule allows a trade on"
    )


def test_price_moved_when_the_price_at_release_is_far_from_the_proposal_then_it_is_found() -> None:
    text = HOUSEHOLD + "trade A1 buy MSFT 1"
    rule = PriceMoved(rule_id="price-moved", max_move=0.05)
    assert findings(rule, text) == []  # not at release: nothing to compare
    assert findings(rule.at_release({"MSFT": D(416)}), text) == []  # 4%
    [f] = breaches(PriceMoved, {"max_move": 0.05, "release_prices": {"MSFT": D(376)}}, text)
    assert f.measured == 0.06
    assert f.explanation == (
        "MSFT is at 376, 6.0% from the 400 the proposal was made at, more than the 5.0% the "
        "price-moved rule allows"
    )
