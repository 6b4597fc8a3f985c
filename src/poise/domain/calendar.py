"""When a US equity trade settles: the settlement cycle of its trade date, counted in
days on which both the exchanges and the banks are open.

Sources and the rules as applied:

* **The cycle** is SEC Rule 15c6-1: T+1 for trades from 28 May 2024 (the amendments of
  February 2023), T+2 from 5 September 2017, T+3 before.
* **A settlement day** is a weekday on which the New York Stock Exchange trades and the
  Federal Reserve Banks are open (DTC settles on neither an exchange holiday nor a
  bank holiday: a trade on the Friday before Columbus Day settles on the Tuesday).
* **NYSE holidays** (NYSE Rule 7.2): New Year's Day, Martin Luther King Jr. Day (third
  Monday of January), Washington's Birthday (third Monday of February), Good Friday,
  Memorial Day (last Monday of May), Juneteenth (19 June, from 2022), Independence
  Day, Labor Day (first Monday of September), Thanksgiving (fourth Thursday of
  November) and Christmas. A holiday on a Sunday is kept on the Monday, one on a
  Saturday on the Friday before — except New Year's Day, which on a Saturday is not
  kept at all. And the days the exchange closed for an event (11–14 September 2001,
  the national days of mourning, Hurricane Sandy).
* **Federal Reserve holidays**: the federal holidays (5 U.S.C. §6103) — the NYSE's
  less Good Friday, plus Columbus Day (second Monday of October) and Veterans Day (11
  November). The Reserve Banks keep a Sunday holiday on the Monday and open on the
  Friday before a Saturday one.

Pure.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from poise.domain.errors import ValidationError

__all__ = ["TRADING_ZONE", "is_settlement_day", "settlement_cycle", "settlement_date", "trade_date"]

# US equities trade, and their trade dates turn, in New York.
TRADING_ZONE = ZoneInfo("America/New_York")

T1_FROM = date(2024, 5, 28)
T2_FROM = date(2017, 9, 5)

# Days the exchange closed for an event, not a holiday of its calendar.
_CLOSED = frozenset(
    {
        date(2001, 9, 11), date(2001, 9, 12), date(2001, 9, 13), date(2001, 9, 14),
        date(2004, 6, 11),  # President Reagan's funeral
        date(2007, 1, 2),  # President Ford
        date(2012, 10, 29), date(2012, 10, 30),  # Hurricane Sandy
        date(2018, 12, 5),  # President George H. W. Bush
        date(2025, 1, 9),  # President Carter
    }
)  # fmt: skip


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Monday 0) of the month; ``n`` = -1: the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous Gregorian algorithm, as
    Meeus gives it)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month = (h + el - 7 * m + 114) // 31
    day = (h + el - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _kept(day: date, *, saturday_to_friday: bool) -> date | None:
    """Where a fixed-date holiday is kept: Sunday's on Monday; Saturday's on Friday, or
    nowhere."""
    if day.weekday() == 6:
        return day + timedelta(days=1)
    if day.weekday() == 5:
        return day - timedelta(days=1) if saturday_to_friday else None
    return day


@lru_cache(maxsize=256)
def nyse_holidays(year: int) -> frozenset[date]:
    days = {
        _kept(date(year, 1, 1), saturday_to_friday=False),
        _nth_weekday(year, 1, 0, 3) if year >= 1998 else None,
        _nth_weekday(year, 2, 0, 3),
        easter(year) - timedelta(days=2),
        _nth_weekday(year, 5, 0, -1),
        _kept(date(year, 6, 19), saturday_to_friday=True) if year >= 2022 else None,
        _kept(date(year, 7, 4), saturday_to_friday=True),
        _nth_weekday(year, 9, 0, 1),
        _nth_weekday(year, 11, 3, 4),
        _kept(date(year, 12, 25), saturday_to_friday=True),
    }
    return frozenset(day for day in days if day is not None)


@lru_cache(maxsize=256)
def bank_holidays(year: int) -> frozenset[date]:
    days = {
        _kept(date(year, 1, 1), saturday_to_friday=False),
        _nth_weekday(year, 1, 0, 3),
        _nth_weekday(year, 2, 0, 3),
        _nth_weekday(year, 5, 0, -1),
        _kept(date(year, 6, 19), saturday_to_friday=False) if year >= 2022 else None,
        _kept(date(year, 7, 4), saturday_to_friday=False),
        _nth_weekday(year, 9, 0, 1),
        _nth_weekday(year, 10, 0, 2),
        _kept(date(year, 11, 11), saturday_to_friday=False),
        _nth_weekday(year, 11, 3, 4),
        _kept(date(year, 12, 25), saturday_to_friday=False),
    }
    return frozenset(day for day in days if day is not None)


def is_settlement_day(day: date) -> bool:
    return (
        day.weekday() < 5
        and day not in _CLOSED
        and day not in nyse_holidays(day.year)
        and day not in bank_holidays(day.year)
    )


def settlement_cycle(trade_date: date) -> int:
    """Settlement days from trade to settlement for a trade on ``trade_date``."""
    return 1 if trade_date >= T1_FROM else 2 if trade_date >= T2_FROM else 3


def settlement_date(trade_date: date) -> date:
    """The day a trade made on ``trade_date`` settles.

    >>> settlement_date(date(2024, 10, 11))  # Friday; Monday is Columbus Day
    datetime.date(2024, 10, 15)
    """
    day, left = trade_date, settlement_cycle(trade_date)
    while left:
        day += timedelta(days=1)
        if is_settlement_day(day):
            left -= 1
    return day


def trade_date(at: datetime) -> date:
    """The trade date of something done at ``at`` (aware): its day in New York."""
    if at.tzinfo is None:
        raise ValidationError("a trade's time is timezone-aware")
    return at.astimezone(TRADING_ZONE).date()
