"""Value over time, for any history: undoing the transactions after a day gives the
household as it stood that day.

A household starts from some shares and cash, trades, is paid, pays, adds and takes
out money and splits over a few weeks, worked forward here kind by kind; its value
rebuilt backward from where it ended must be, every day, what it was going forward —
and on the last day, what its books are worth now. With prices that never move, a
day's change is exactly the money added, the income and the fees: nothing else moves
the value (a split aside: its price halves, and there it is left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.money import ZERO
from poise.domain.transactions import MOVES_SHARES, Transaction, TxnKind
from poise.report.client import value_over_time

SECURITIES = ("AAA", "BBB")
FIRST = date(2022, 3, 1)

cents_ = st.integers(min_value=1, max_value=5_000_000).map(lambda n: Decimal(n) / 100)
shares_ = st.integers(min_value=1, max_value=200_000).map(lambda n: Decimal(n) / 1000)


@dataclass(frozen=True)
class Story:
    start_shares: dict[str, Decimal]
    start_cash: Decimal
    days: list[date]
    closes: dict[date, dict[str, Decimal]]
    transactions: list[Transaction]


def forward(shares: dict[str, Decimal], cash: Decimal, t: Transaction) -> Decimal:
    """What ``t`` does, going forward, said kind by kind; the cash after it."""
    s, q, amount = t.security_id or "", t.quantity, t.amount
    if t.kind is TxnKind.BUY:
        shares[s] += q
        return cash - amount
    if t.kind is TxnKind.SELL:
        shares[s] -= q
        return cash + amount
    if t.kind in (TxnKind.SPLIT, TxnKind.TRANSFER_IN):
        shares[s] += q
        return cash
    if t.kind is TxnKind.TRANSFER_OUT:
        shares[s] -= q
        return cash
    if t.kind in (TxnKind.DEPOSIT, TxnKind.DIVIDEND, TxnKind.INTEREST):
        return cash + amount
    return cash - amount  # a withdrawal, a fee


@st.composite
def stories(draw: st.DrawFn, *, still: bool = False) -> Story:
    count = draw(st.integers(min_value=1, max_value=12))
    days = [FIRST + timedelta(days=n) for n in range(count)]
    if still:
        fixed = {s: draw(cents_) for s in SECURITIES}
        closes = {day: dict(fixed) for day in days}
    else:
        closes = {
            day: {s: draw(cents_) for s in SECURITIES if draw(st.integers(0, 9)) > 0}
            for day in days
        }
    transactions = []
    for n in range(draw(st.integers(min_value=0, max_value=25))):
        kind = draw(st.sampled_from([k for k in TxnKind if not (still and k is TxnKind.SPLIT)]))
        security = draw(st.sampled_from(SECURITIES))
        quantity = draw(shares_) if kind in MOVES_SHARES else ZERO
        day = draw(st.sampled_from(days))
        amount = draw(cents_)
        if still and kind in (TxnKind.BUY, TxnKind.SELL):
            amount = quantity * closes[day][security]  # at the close: value moves nowhere
        transactions.append(
            Transaction(
                txn_id=f"T{n}", account_id="A1", kind=kind, trade_date=day, settle_date=day,
                amount=ZERO if kind in (TxnKind.SPLIT, TxnKind.TRANSFER_IN,
                                        TxnKind.TRANSFER_OUT) else amount,
                security_id=security, quantity=quantity,
            )
        )  # fmt: skip
    start = {s: draw(shares_) for s in SECURITIES}
    return Story(start, draw(cents_), days, closes, transactions)


def worth(shares: dict[str, Decimal], cash: Decimal, closes: dict[date, dict[str, Decimal]],
          day: date) -> Decimal:  # fmt: skip
    """Shares at the close on or before ``day`` (none: nothing), and cash."""
    total = cash
    for security, quantity in shares.items():
        known = [d for d in closes if d <= day and security in closes[d]]
        if known and quantity:
            total += quantity * closes[max(known)][security]
    return total


def lived(story: Story) -> tuple[list[Decimal], dict[str, Decimal], Decimal]:
    """The story lived forward: each day's value, and the shares and cash it ends with."""
    shares, cash = dict(story.start_shares), story.start_cash
    values = []
    for day in story.days:
        for t in story.transactions:
            if t.trade_date == day:
                cash = forward(shares, cash, t)
        values.append(worth(shares, cash, story.closes, day))
    return values, shares, cash


@settings(max_examples=150, deadline=None)
@given(stories())
def test_value_over_time_when_rebuilt_backward_then_today_is_what_the_books_are_worth(
    story: Story,
) -> None:
    _, shares, cash = lived(story)
    found = value_over_time(
        held=shares, cash=cash, transactions=story.transactions, closes=story.closes,
        days=story.days,
    )  # fmt: skip
    assert found.points[-1].value == worth(shares, cash, story.closes, story.days[-1])


@settings(max_examples=150, deadline=None)
@given(stories())
def test_value_over_time_when_rebuilt_backward_then_every_day_is_as_it_was_lived(
    story: Story,
) -> None:
    values, shares, cash = lived(story)
    found = value_over_time(
        held=shares, cash=cash, transactions=story.transactions, closes=story.closes,
        days=story.days,
    )  # fmt: skip
    assert [p.value for p in found.points] == values


@settings(max_examples=150, deadline=None)
@given(stories(still=True))
def test_value_over_time_when_prices_never_move_then_a_days_change_is_money_income_and_fees(
    story: Story,
) -> None:
    _, shares, cash = lived(story)
    found = value_over_time(
        held=shares, cash=cash, transactions=story.transactions, closes=story.closes,
        days=story.days,
    )  # fmt: skip
    sign = {TxnKind.DIVIDEND: 1, TxnKind.INTEREST: 1, TxnKind.FEE: -1}
    for before, after in zip(found.points, found.points[1:], strict=False):
        income = sum(
            (sign[t.kind] * t.amount for t in story.transactions
             if t.trade_date == after.day and t.kind in sign),
            ZERO,
        )  # fmt: skip
        assert after.value - before.value == after.added + income
