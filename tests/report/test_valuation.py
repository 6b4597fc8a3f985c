"""Daily values walked back from the books, against the same days walked forward by
hand: shares at each close, cash after each day's transactions, and only deposits,
withdrawals, transfers (and, gross, fees) as external flows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.transactions import TxnKind
from poise.report.performance import daily_returns
from poise.report.valuation import Book, Move, value_book

DAYS = (date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4))


def test_value_book_when_a_buy_and_a_deposit_happen_then_values_and_flows_are_the_days() -> None:
    # At the end: 10 S at 12 and 1,045 cash. On 3 March 5 S were bought at 11 (55);
    # on 4 March 1,000 was deposited. So on 2 March: 5 S at 10 and 100 cash.
    book = Book(
        accounts=("A",), securities=("S",), days=DAYS,
        shares=np.array([[10.0]]), cash=np.array([1_045.0]),
        prices=np.array([[10.0, 11.0, 12.0]]),
        moves=(
            Move("A", DAYS[1], TxnKind.BUY, "S", 5, 55),
            Move("A", DAYS[2], TxnKind.DEPOSIT, amount=1_000),
        ),
    )  # fmt: skip

    done = value_book(book)

    assert done.start == pytest.approx([150.0])  # 5 × 10 + 100
    assert done.values == pytest.approx(
        np.array([[155.0, 1_165.0]])
    )  # 10 × 11 + 45; 10 × 12 + 1,045
    assert done.flows_net == pytest.approx(np.array([[0.0, 1_000.0]]))
    returns = daily_returns(done.values, done.flows_net, done.start)
    assert returns == pytest.approx(np.array([[155 / 150 - 1, 1_165 / 1_155 - 1]]))


def test_value_book_when_fees_and_transfers_happen_then_gross_counts_fees_as_flows() -> None:
    book = Book(
        accounts=("A",), securities=("S",), days=DAYS,
        shares=np.array([[4.0]]), cash=np.array([90.0]),
        prices=np.array([[10.0, 10.0, 10.0]]),
        moves=(
            Move("A", DAYS[1], TxnKind.FEE, amount=10),
            Move("A", DAYS[2], TxnKind.TRANSFER_OUT, "S", 1),
            Move("A", DAYS[2], TxnKind.DIVIDEND, "S", amount=0),
        ),
    )  # fmt: skip

    done = value_book(book)

    assert done.start == pytest.approx([150.0])  # 5 S and 100 cash
    assert done.values == pytest.approx(np.array([[140.0, 130.0]]))
    assert done.flows_net == pytest.approx(np.array([[0.0, -10.0]]))  # the transfer out
    assert done.flows_gross == pytest.approx(np.array([[-10.0, -10.0]]))  # and the fee


KINDS = [TxnKind.BUY, TxnKind.SELL, TxnKind.DEPOSIT, TxnKind.WITHDRAWAL, TxnKind.DIVIDEND,
         TxnKind.FEE, TxnKind.TRANSFER_IN, TxnKind.TRANSFER_OUT, TxnKind.SPLIT]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_value_book_when_walked_back_then_it_agrees_with_the_days_walked_forward(
    data: st.DataObject,
) -> None:
    days = tuple(date(2026, 1, 5) + timedelta(days=i) for i in range(data.draw(st.integers(2, 8))))
    # moves after the span: the books hold them, the span does not
    after = tuple(days[-1] + timedelta(days=i) for i in range(1, data.draw(st.integers(1, 3))))
    accounts, securities = ("A", "B"), ("S", "T")
    prices = np.array(
        data.draw(st.lists(st.lists(st.integers(1, 500), min_size=len(days), max_size=len(days)),
                           min_size=2, max_size=2)),
        dtype=float,
    )  # fmt: skip
    start_shares = np.array(data.draw(st.lists(st.lists(st.integers(0, 50), min_size=2,
                                                        max_size=2), min_size=2, max_size=2)),
                            dtype=float)  # fmt: skip
    start_cash = np.array(
        data.draw(st.lists(st.integers(0, 10_000), min_size=2, max_size=2)), float
    )
    moves = []
    for _ in range(data.draw(st.integers(0, 12))):
        kind = data.draw(st.sampled_from(KINDS))
        moves.append(
            Move(
                data.draw(st.sampled_from(accounts)),
                data.draw(st.sampled_from(days + after)),
                kind,
                data.draw(st.sampled_from(securities)),
                float(data.draw(st.integers(1, 20))),
                float(data.draw(st.integers(0, 1_000))),
            )
        )
    # forward, by hand: each close after the day's moves
    held, cash = start_shares.copy(), start_cash.copy()
    forward = np.zeros((2, len(days)))
    for d, day in enumerate(days + after):
        for m in moves:
            if m.day != day:
                continue
            a, s = accounts.index(m.account_id), securities.index(m.security_id or "S")
            held[a, s] += {
                TxnKind.BUY: 1,
                TxnKind.SELL: -1,
                TxnKind.TRANSFER_IN: 1,
                TxnKind.TRANSFER_OUT: -1,
                TxnKind.SPLIT: 1,
            }.get(m.kind, 0) * m.quantity
            cash[a] += {TxnKind.BUY: -1, TxnKind.SELL: 1, TxnKind.DIVIDEND: 1,
                        TxnKind.INTEREST: 1, TxnKind.DEPOSIT: 1, TxnKind.WITHDRAWAL: -1,
                        TxnKind.FEE: -1}.get(m.kind, 0) * m.amount  # fmt: skip
        if d < len(days):
            forward[:, d] = held @ prices[:, d] + cash
    # the day before the first: what the first day's moves started from
    book = Book(accounts, securities, days, held, cash, prices, tuple(moves))

    done = value_book(book)

    assert done.values == pytest.approx(forward[:, 1:])
    assert done.start == pytest.approx(forward[:, 0])
