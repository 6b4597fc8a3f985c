"""The after-tax backtest on price files written here, small enough to follow by hand:
the annual rebalance's trades, the year's tax with the $3,000 deduction and the
carryforward, and wash sales in the simulation's books — both directions of the
61-day period, and a retirement account's purchase — checked against the wash-sale
engine the project validates on the IRS's examples."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from poise.domain.accounts import Account, MinTrade, Registration, TaxRates
from poise.domain.models import Model, ModelTarget, TargetKind
from poise.domain.relief import Term
from poise.domain.securities import Security, SecurityKind
from poise.domain.washsales import LossSale, Purchase, find_washes
from poise.ingest.history import PriceHistory
from poise.optimize.check import Costs
from poise.optimize.trades import LotSale, Side, Trade, TradeReason
from poise.workflow.backtest import Books, Deposits, Opening, Spec, run_backtest, simulate

D = Decimal
NO_COSTS = Costs(half_spread=D(0))
RATES = TaxRates(short_term=D("0.37"), long_term=D("0.20"))
SECURITIES = {s: Security(s, s, s, SecurityKind.STOCK, "us_equity") for s in "ABC"}


def weekdays(first: date, last: date) -> list[date]:
    """Trading days: weekdays but New Year's Day."""
    days, day = [], first
    while day <= last:
        if day.weekday() < 5 and (day.month, day.day) != (1, 1):
            days.append(day)
        day += timedelta(days=1)
    return days


def history(regimes: list[tuple[date, dict[str, float]]], last: date) -> PriceHistory:
    """Every weekday from the first regime's day to ``last``; each regime's prices hold
    from its day until the next regime's."""
    days = weekdays(regimes[0][0], last)
    closes = np.zeros((len(days), 3))
    for n, day in enumerate(days):
        prices = [p for start, p in regimes if start <= day][-1]
        closes[n] = [prices[s] for s in "ABC"]
    return PriceHistory(tuple(days), ("A", "B", "C"), closes)


def model(a: str, b: str, c: str) -> dict[str, Model]:
    targets = tuple(
        ModelTarget(TargetKind.SECURITY, s, D(w)) for s, w in zip("ABC", (a, b, c), strict=True)
    )
    return {"M": Model("M", "three stocks", targets)}


def spec(prices: PriceHistory, start: date, **kw: object) -> Spec:
    values: dict[str, object] = {
        "history": prices,
        "start": prices.index(start),
        "end": len(prices.days) - 1,
        "model_id": "M",
        "models": model("0.50", "0.25", "0.25"),
        "securities": SECURITIES,
        "accounts": (Opening(Registration.TAXABLE, D(1_000_000)),),
        "rates": RATES,
        "costs": NO_COSTS,
        "min_trade": MinTrade(D(0), D(0)),
    }
    values.update(kw)
    return Spec(**values)  # type: ignore[arg-type]


# ── the year's tax: a harvested loss, $3,000 against income, the rest carried ────

# 2020: A, B and C at $100: $1,000,000 buys 5,000 A, 2,500 B and 2,500 C.
# 2021: A falls to $80, B and C to $40. On 4 January the annual rebalance finds A at
#   $400,000 of $600,000 (target $300,000): it sells 1,250 A, held more than a year,
#   at a $20 loss a share — a $25,000 long-term loss — and buys 1,250 B and 1,250 C.
#   2021's tax: −$25,000 net; $3,000 against ordinary income (at 37%: −$1,110, a
#   refund), $22,000 carried forward, long-term.
# 2022: B and C at $160. On 3 January the $1,110 refund is paid in first; then A is
#   $300,000, B and C $600,000 each, of $1,501,110: B and C are each sold down to a
#   quarter, $375,277.50 — 1,404.5 shares, 1,404 in whole shares — from the lots
#   cheapest in tax: the 2020 lots (a $60 long-term gain a share, 20%) rather than
#   the 2021 ones (a $120 short-term gain, 37%, a day short of a year). Gains:
#   2 × 1,404 × $60 = $168,480 long-term, less the $22,000 carried: $146,480 at 20%,
#   $29,296.
REGIMES = [
    (date(2018, 1, 1), {"A": 100.0, "B": 100.0, "C": 100.0}),
    (date(2021, 1, 1), {"A": 80.0, "B": 40.0, "C": 40.0}),
    (date(2022, 1, 1), {"A": 80.0, "B": 160.0, "C": 160.0}),
]


def test_annual_when_a_loss_is_harvested_then_3000_goes_against_income_and_the_rest_offsets_a_later_gain() -> (  # noqa: E501
    None
):
    prices = history(REGIMES, date(2022, 1, 14))
    result = simulate(spec(prices, date(2020, 1, 2)), "annual")
    y2020, y2021, y2022 = result.years
    assert (y2020.short_gains, y2020.long_gains, y2020.tax) == (0, 0, 0)

    assert y2021.long_gains == D(-25_000)
    assert y2021.short_gains == 0
    assert y2021.deducted == D(3_000)
    assert (y2021.carried_out.short, y2021.carried_out.long) == (0, D(22_000))
    assert y2021.tax == D("-1110.00")

    assert y2022.long_gains == D(168_480)
    assert y2022.carried_in.long == D(22_000)
    assert y2022.taxed_long == D(146_480)
    assert y2022.taxed_short == 0
    assert y2022.tax == D("29296.00")

    assert result.losses_harvested == D(25_000)
    assert result.disallowed == 0
    # 2020's tax (none) and 2021's refund are paid on the next year's first trading
    # day; 2022's is owed at the end.
    paid = {result.days[n]: result.taxes_paid[n] for n in np.flatnonzero(result.taxes_paid)}
    assert paid == {date(2022, 1, 3): -1110.0}
    assert result.final_tax == D("29296.00")
    assert result.after_tax[-1] == pytest.approx(result.value[-1] - 29_296.0)


def test_annual_when_liquidated_then_every_taxable_lot_is_sold_and_taxed_at_the_end() -> None:
    # The same history, ending on 3 January 2022, after the rebalance: then every lot
    # is sold. A: 3,750 shares of 2020's at $20 a share below cost, $75,000 long-term,
    # and 5,629 bought that day, nothing. B and C each: 1,096 of 2020's, $60 a share
    # long-term, and 1,250 of 2021's, $120 a share short-term.
    # Long-term: 168,480 + 2 × 1,096 × 60 − 75,000 = 225,000, less the 22,000 carried:
    # 203,000 at 20% = 40,600. Short-term: 2 × 1,250 × 120 = 300,000 at 37% = 111,000.
    prices = history(REGIMES, date(2022, 1, 3))
    held = simulate(spec(prices, date(2020, 1, 2)), "annual")
    sold = simulate(spec(prices, date(2020, 1, 2), liquidate=True), "annual")
    last = sold.years[-1]
    assert last.long_gains == D(225_000)
    assert last.short_gains == D(300_000)
    assert last.tax == D("151600.00")
    assert sold.final_tax == D("151600.00")
    assert sold.value[-1] == pytest.approx(held.value[-1])  # no costs: the same wealth ...
    assert sold.after_tax[-1] == pytest.approx(held.value[-1] - 151_600.0)  # ... less tax


def test_backtest_when_run_twice_then_the_results_are_the_same() -> None:
    prices = history(REGIMES, date(2022, 1, 14))
    first = run_backtest(spec(prices, date(2020, 1, 2)), ["annual", "bands", "optimize"])
    again = run_backtest(spec(prices, date(2020, 1, 2)), ["annual", "bands", "optimize"])
    assert first.summaries == again.summaries
    for method in first.results:
        assert np.array_equal(first.results[method].after_tax, again.results[method].after_tax)


def test_buy_and_hold_when_deposits_come_then_they_are_bought_at_the_models_weights() -> None:
    prices = history(REGIMES[:1], date(2020, 3, 31))
    result = simulate(
        spec(prices, date(2020, 1, 2), deposits=Deposits(D(10_000), "month")), "buy_and_hold"
    )
    assert result.flows.sum() == 20_000.0  # February and March
    assert result.value[-1] == pytest.approx(1_020_000.0)  # at $100, nothing left over
    assert result.trades == 3 + 3 + 3


# ── wash sales in the books ──────────────────────────────────────────────────────

TAXABLE = Account("T", "H", Registration.TAXABLE, tax_rates=RATES)
IRA = Account("I", "H", Registration.TRADITIONAL_IRA)


def buy(security: str, shares: int, price: str) -> Trade:
    return Trade(security, Side.BUY, D(shares), D(price), TradeReason.DRIFT)


def sell(books: Books, account: str, security: str, shares: int, price: str) -> Trade:
    """A sale of the oldest lots first."""
    left, chosen = D(shares), []
    for lot in sorted(books.lots[account].values(), key=lambda lot: lot.acquired):
        if lot.security_id != security or left <= 0:
            continue
        take = min(left, lot.quantity)
        chosen.append(LotSale(lot.lot_id, take, lot.basis * take / lot.quantity, take * D(price),
                              Term.SHORT))  # fmt: skip
        left -= take
    return Trade(security, Side.SELL, D(shares), D(price), TradeReason.DRIFT, tuple(chosen))


def books(*accounts: Account) -> Books:
    cash = [a.__class__(**{**_fields(a), "cash": D(1_000_000)}) for a in accounts]
    return Books(cash, SECURITIES)


def _fields(account: Account) -> dict[str, object]:
    return {f: getattr(account, f) for f in account.__dataclass_fields__}


def test_books_when_a_loss_sale_is_followed_by_a_purchase_then_the_loss_moves_into_its_basis() -> (
    None
):
    # Publication 550's example: 100 shares bought for $1,000, sold for $750; 100
    # shares of the same bought 11 days later for $800. The $250 loss is disallowed
    # and added to the new shares' basis: $1,050; their holding period starts as
    # many days before their purchase as the old shares were held.
    b = books(TAXABLE)
    b.execute("T", [buy("A", 100, "10")], date(2024, 1, 2), NO_COSTS)
    b.execute("T", [sell(b, "T", "A", 100, "7.50")], date(2024, 9, 4), NO_COSTS)
    b.execute("T", [buy("A", 100, "8")], date(2024, 9, 15), NO_COSTS)
    (lot,) = b.lots["T"].values()
    assert lot.basis == D(1_050)
    assert lot.disallowed_loss == D(250)
    assert lot.held_since == date(2024, 9, 15) - (date(2024, 9, 4) - date(2024, 1, 2))
    assert sum(r.gain for r in b.realised) == 0  # the loss, then its disallowance
    assert b.disallowed == D(250)


def test_books_when_a_purchase_came_first_then_the_loss_sale_washes_into_it() -> None:
    b = books(TAXABLE)
    b.execute("T", [buy("A", 100, "10")], date(2024, 1, 2), NO_COSTS)
    b.execute("T", [buy("A", 40, "8")], date(2024, 8, 26), NO_COSTS)  # 9 days before
    b.execute("T", [sell(b, "T", "A", 100, "7.50")], date(2024, 9, 4), NO_COSTS)
    (lot,) = b.lots["T"].values()  # the 40 shares bought on 26 August replace 40 sold
    assert lot.quantity == 40
    assert lot.basis == 40 * D(8) + 40 * D("2.50")
    assert sum(r.gain for r in b.realised) == -60 * D("2.50")  # the rest is allowed


def test_books_when_an_ira_buys_back_then_the_loss_is_lost_for_good() -> None:
    b = books(TAXABLE, IRA)
    b.execute("T", [buy("A", 100, "10")], date(2024, 1, 2), NO_COSTS)
    b.execute("T", [sell(b, "T", "A", 100, "7.50")], date(2024, 9, 4), NO_COSTS)
    b.execute("I", [buy("A", 100, "8")], date(2024, 9, 10), NO_COSTS)
    (lot,) = b.lots["I"].values()
    assert lot.basis == D(800)  # no basis moves into an IRA (Rev. Rul. 2008-5)
    assert sum(r.gain for r in b.realised) == 0  # and the loss is gone
    assert b.disallowed == D(250)


def test_books_when_trades_are_random_then_their_washes_are_the_wash_engines() -> None:
    """Random sales and buys of two securities over a year, in a taxable account and
    an IRA; what the books disallow, and where it goes, is what :func:`find_washes` —
    the engine checked against the IRS's examples — finds in the same history. Sales
    come from lots bought long before (oldest first), so each purchase of the year
    is still held whole: the engine's input is then each purchase as made."""
    rng = random.Random(7)
    kinds: set[bool] = set()  # washes seen: into the taxable account, into the IRA
    for _ in range(40):
        b = books(TAXABLE, IRA)
        opened = date(2023, 1, 3)
        for account in ("T", "I"):
            b.execute(account, [buy("A", 5_000, "100"), buy("B", 5_000, "100")], opened, NO_COSTS)
        sales: list[LossSale] = []
        purchases: list[Purchase] = []
        day = date(2024, 1, 2)
        for _ in range(30):
            day += timedelta(days=rng.randint(1, 9))
            account = rng.choice(["T", "T", "I"])
            security = rng.choice("AB")
            price = D(rng.randint(60, 140))
            if rng.random() < 0.5:
                trade = sell(b, account, security, rng.randint(1, 80), str(price))
                assert all(b.origin[(account, s.lot_id)] in {"B-1", "B-2", "B-3", "B-4"}
                           for s in trade.lots)  # fmt: skip
                if account == "T":
                    sales += [
                        LossSale(account, b.origin[(account, s.lot_id)], security, s.quantity,
                                 s.quantity * D(100), s.quantity * price, day, opened)
                        for s in trade.lots
                    ]  # fmt: skip
                b.execute(account, [trade], day, NO_COSTS)
            else:
                shares = rng.randint(1, 60)
                b.execute(account, [buy(security, shares, str(price))], day, NO_COSTS)
                purchases.append(
                    Purchase(account, b.recent[-1].lot_id, security, D(shares),
                             shares * price, day, retirement=account == "I")
                )  # fmt: skip
        washes = find_washes(sales, purchases)
        kinds |= {w.permanent for w in washes}
        assert b.disallowed == sum((w.disallowed for w in washes), D(0))
        moved: dict[tuple[str, str], Decimal] = {}
        for w in washes:
            if not w.permanent:
                key = (w.replacement.account_id, w.replacement.lot_id)
                moved[key] = moved.get(key, D(0)) + w.disallowed
        for p in purchases:
            parts = [
                lot for (account, lot_id), origin in b.origin.items()
                if account == p.account_id and origin == p.lot_id
                for lot in [b.lots[account].get(lot_id)] if lot is not None
            ]  # fmt: skip
            assert sum((lot.quantity for lot in parts), D(0)) == p.quantity
            added = sum((lot.basis for lot in parts), D(0)) - p.cost
            assert added == moved.get((p.account_id, p.lot_id), D(0))
    assert kinds == {True, False}  # both kinds were met, many times over
