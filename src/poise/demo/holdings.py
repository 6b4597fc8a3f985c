"""One account's history: its tax lots, and the transactions that made them.

Lots are bought on real trading days at that day's close. A lot's size is chosen by
what it should be worth today (so an account ends near its model), and its cost is
what those shares cost then: ``cost = round(quantity × close that day, 2)``. Early
adjusted closes are small, so old lots carry large gains; lots bought in 2021 and 2022
are often at a loss.

The transactions tell the same story in cash: a deposit funds each year's purchases,
every lot has its buy, the last year's dividends are paid on what was held, and one
last deposit or withdrawal brings the cash to the account's balance, so that
deposits − withdrawals + dividends − buys = cash, and cash is never negative on the way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from poise.demo.market import Market
from poise.domain.money import ZERO, cents
from poise.domain.transactions import TxnKind

__all__ = ["Lot", "Txn", "book_transactions", "draw_lots", "settlement_day"]

RECENT = date(2021, 1, 4)  # lots on or after this day are the "recent" ones
T2_FROM = date(2017, 9, 5)  # US equities settled T+3 before this day, T+2 from it
LOT_COUNTS = (1, 2, 3, 4, 5, 6)
LOT_COUNT_WEIGHTS = (0.30, 0.25, 0.18, 0.12, 0.09, 0.06)
RECENT_SHARE = 0.4  # chance that a later lot is bought in the recent window
FIRST_LOT_SPREAD = 60  # trading days after the account opens within which it first buys
SETTLE_ROOM = 4  # no lot in the last trading days, so every buy settles by the as-of day
RECORD_LAG = timedelta(days=14)  # a dividend goes to shares held this long before payment
DIVIDEND_MONTHS = (3, 6, 9, 12)
FUND_STEP = Decimal("0.001")
_LOT_COUNT_CUMULATIVE = np.cumsum(LOT_COUNT_WEIGHTS)[:-1]


@dataclass(frozen=True, slots=True)
class Lot:
    lot_id: str
    security_id: str
    quantity: Decimal
    cost: Decimal
    day: int  # index into market.dates


@dataclass(frozen=True, slots=True)
class Txn:
    txn_id: str
    kind: TxnKind
    day: int
    settle: int
    amount: Decimal
    security_id: str = ""
    quantity: Decimal = ZERO
    description: str = ""


def settlement_day(market: Market, day: int) -> int:
    """The settlement day of a trade: T+3 before 5 September 2017, T+2 after."""
    lag = 3 if market.dates[day] < T2_FROM else 2
    return min(day + lag, len(market.dates) - 1)


def _quantity(shares: float, *, whole: bool) -> Decimal:
    """Shares on the security's grid, rounded down for funds and to nearest for stocks."""
    if whole:
        return Decimal(round(shares))
    return Decimal(math.floor(shares * 1000)) * FUND_STEP


def _lot_days(rng: np.random.Generator, first: int, last: int, recent: int) -> list[int]:
    count = LOT_COUNTS[int(np.searchsorted(_LOT_COUNT_CUMULATIVE, rng.random(), side="right"))]
    days = [min(first + int(rng.integers(0, FIRST_LOT_SPREAD)), last)]
    for _ in range(count - 1):
        low = max(first, recent) if rng.random() < RECENT_SHARE else first
        days.append(int(rng.integers(low, last + 1)))
    return sorted(days)


def draw_lots(
    rng: np.random.Generator,
    market: Market,
    *,
    targets: Sequence[tuple[str, float]],
    opened: int,
    whole: frozenset[str],
) -> list[Lot]:
    """Lots for holdings worth ``targets`` (security id, dollars today) in an account
    opened on trading day ``opened``; no lot predates the account or its security.

    A lot whose share count would round to zero is left out.
    """
    last = len(market.dates) - SETTLE_ROOM
    recent = market.first_index_on_or_after(RECENT)
    drafts: list[tuple[int, str, Decimal, Decimal]] = []
    for security_id, value in targets:
        first = max(opened, market.listed[security_id])
        if first > last:
            continue
        days = _lot_days(rng, first, last, recent)
        shares = rng.dirichlet(np.full(len(days), 1.5)) * value / market.levels[security_id][-1]
        closes = market.closes[security_id]
        for day, share_count in zip(days, shares, strict=True):
            quantity = _quantity(float(share_count), whole=security_id in whole)
            cost = cents(quantity * closes[day])
            if quantity > ZERO and cost > ZERO:
                drafts.append((day, security_id, quantity, cost))
    drafts.sort(key=lambda d: (d[0], d[1]))
    return [
        Lot(f"L{number:05d}", security_id, quantity, cost, day)
        for number, (day, security_id, quantity, cost) in enumerate(drafts, start=1)
    ]


def _dividends(
    market: Market, lots: Sequence[Lot], yields: Mapping[str, Decimal], until: int
) -> list[Txn]:
    """Quarterly dividends of the as-of year on the shares held at each record date."""
    year = market.as_of.year
    paid: list[Txn] = []
    for month in DIVIDEND_MONTHS:
        day = market.first_index_on_or_after(date(year, month, 15))
        if day > until:
            continue
        record = market.dates[day] - RECORD_LAG
        held: dict[str, Decimal] = {}
        for lot in lots:
            if market.dates[lot.day] <= record:
                held[lot.security_id] = held.get(lot.security_id, ZERO) + lot.quantity
        for security_id in sorted(held):
            per_share = market.closes[security_id][day] * yields[security_id] / 4
            amount = cents(held[security_id] * per_share)
            if amount > ZERO:
                paid.append(
                    Txn(
                        "",
                        TxnKind.DIVIDEND,
                        day,
                        day,
                        amount,
                        security_id,
                        ZERO,
                        f"Dividend {security_id}",
                    )
                )
    return paid


def book_transactions(
    market: Market,
    lots: Sequence[Lot],
    *,
    cash: Decimal,
    yields: Mapping[str, Decimal],
    retirement: bool,
) -> list[Txn]:
    """The transactions behind ``lots`` and a cash balance of ``cash``, in date order."""
    txns: list[Txn] = []
    years: dict[int, tuple[int, Decimal]] = {}
    for lot in lots:
        settle = settlement_day(market, lot.day)
        txns.append(
            Txn(
                "",
                TxnKind.BUY,
                lot.day,
                settle,
                lot.cost,
                lot.security_id,
                lot.quantity,
                f"Buy {lot.security_id}",
            )
        )
        year = market.dates[lot.day].year
        first, total = years.get(year, (lot.day, ZERO))
        years[year] = (min(first, lot.day), total + lot.cost)
    into = "Contribution" if retirement else "Deposit"
    for first, total in years.values():
        txns.append(Txn("", TxnKind.DEPOSIT, first, first, total, description=into))

    settle_up = len(market.dates) - SETTLE_ROOM - 2
    dividends = _dividends(market, lots, yields, settle_up)
    txns.extend(dividends)
    difference = cash - sum((d.amount for d in dividends), ZERO)
    if difference > ZERO:
        txns.append(Txn("", TxnKind.DEPOSIT, settle_up, settle_up, difference, description=into))
    elif difference < ZERO:
        out = "Distribution" if retirement else "Withdrawal"
        txns.append(Txn("", TxnKind.WITHDRAWAL, settle_up, settle_up, -difference, description=out))

    order = {TxnKind.DEPOSIT: 0, TxnKind.BUY: 1, TxnKind.DIVIDEND: 2, TxnKind.WITHDRAWAL: 3}
    txns.sort(key=lambda t: (t.day, order[t.kind], t.security_id))
    return [
        Txn(
            f"T{n:06d}", t.kind, t.day, t.settle, t.amount, t.security_id, t.quantity, t.description
        )
        for n, t in enumerate(txns, start=1)
    ]
