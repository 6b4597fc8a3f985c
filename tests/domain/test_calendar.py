"""Settlement dates against the exchanges' and the Federal Reserve's published
calendars, and the changes of the settlement cycle as the SEC dated them."""

from __future__ import annotations

from datetime import date

import pytest

from poise.domain.calendar import (
    bank_holidays,
    easter,
    is_settlement_day,
    nyse_holidays,
    settlement_date,
)

# The NYSE's holidays as it published them (nyse.com, "Holidays & Trading Hours").
NYSE = {
    2022: ["01-17", "02-21", "04-15", "05-30", "06-20", "07-04", "09-05", "11-24", "12-26"],
    2023: ["01-02", "01-16", "02-20", "04-07", "05-29", "06-19", "07-04", "09-04", "11-23",
           "12-25"],
    2024: ["01-01", "01-15", "02-19", "03-29", "05-27", "06-19", "07-04", "09-02", "11-28",
           "12-25"],
    2026: ["01-01", "01-19", "02-16", "04-03", "05-25", "06-19", "07-03", "09-07", "11-26",
           "12-25"],
}  # fmt: skip

# The Federal Reserve's holidays (federalreserve.gov, "Holidays Observed").
FED = {
    2023: ["01-02", "01-16", "02-20", "05-29", "06-19", "07-04", "09-04", "10-09", "11-23",
           "12-25"],
    2024: ["01-01", "01-15", "02-19", "05-27", "06-19", "07-04", "09-02", "10-14", "11-11",
           "11-28", "12-25"],
}  # fmt: skip


def _days(year: int, days: list[str]) -> frozenset[date]:
    return frozenset(date.fromisoformat(f"{year}-{day}") for day in days)


@pytest.mark.parametrize("year", sorted(NYSE))
def test_nyse_holidays_when_computed_then_they_are_the_published_ones(year: int) -> None:
    assert nyse_holidays(year) == _days(year, NYSE[year])


@pytest.mark.parametrize("year", sorted(FED))
def test_bank_holidays_when_computed_then_they_are_the_federal_reserves(year: int) -> None:
    assert bank_holidays(year) == _days(year, FED[year])


@pytest.mark.parametrize(
    ("year", "sunday"),
    [(2000, "04-23"), (2019, "04-21"), (2024, "03-31"), (2025, "04-20"), (2038, "04-25")],
)
def test_easter_when_computed_then_it_is_the_calendars(year: int, sunday: str) -> None:
    assert easter(year) == date.fromisoformat(f"{year}-{sunday}")


@pytest.mark.parametrize(
    ("traded", "settles"),
    [
        ("2024-10-11", "2024-10-15"),  # T+1 over Columbus Day, when the exchange is open
        ("2024-10-14", "2024-10-15"),  # traded on Columbus Day itself
        ("2024-05-24", "2024-05-29"),  # the last T+2 trades, over Memorial Day ...
        ("2024-05-28", "2024-05-29"),  # ... and the first T+1 ones: the double settlement
        ("2024-03-28", "2024-04-02"),  # T+2 over Good Friday
        ("2022-12-28", "2022-12-30"),  # T+2
        ("2022-12-29", "2023-01-03"),  # T+2 over a New Year's Day kept on the Monday
        ("2016-12-28", "2017-01-03"),  # T+3 over New Year's Day
        ("2025-01-08", "2025-01-10"),  # the exchanges closed for President Carter
        ("2026-12-24", "2026-12-28"),  # Christmas on a Friday
    ],
)
def test_settlement_date_when_traded_then_it_settles_as_the_cycle_and_calendars_say(
    traded: str, settles: str
) -> None:
    assert settlement_date(date.fromisoformat(traded)) == date.fromisoformat(settles)


def test_settlement_day_when_a_weekend_or_holiday_then_not() -> None:
    assert not is_settlement_day(date(2026, 12, 5))  # Saturday
    assert not is_settlement_day(date(2026, 11, 11))  # Veterans Day, a Wednesday
    assert is_settlement_day(date(2026, 12, 7))
