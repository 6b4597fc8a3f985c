"""A daily price history for a backtest: the files it arrives as, and the ones a backtest
cannot use.

Each reading test writes the file as a vendor or the firm's own export would — wide with a
``Date`` column, or poise's prices format — and checks the closes and the days. Each
refusal checks the words an analyst reads: what is wrong, where, and what to do.
"""

from __future__ import annotations

import gzip
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from poise.domain.errors import ValidationError
from poise.ingest.history import HistoryError, PriceHistory, check_history, read_price_history

DATA = Path(__file__).parents[3] / "shared" / "data"  # ../shared/data from the repo root
SP500 = DATA / "sp500_prices.csv.gz"

WIDE = """\
Date,MSFT,AAPL,BND
2024-01-02,370.87,185.64,72.18
2024-01-03,370.60,184.25,
2024-01-04,367.94,181.91,72.30
"""

PRICES = """\
security_id,as_of,price,source
AAPL,2024-01-02T21:00:00Z,185.64,close
MSFT,2024-01-02T16:00:00-05:00,370.87,close
BND,2024-01-02,72.18,nav
AAPL,2024-01-03T21:00:00Z,184.25,close
MSFT,2024-01-03T21:00:00Z,370.60,close
"""


def write(tmp_path: Path, text: str | bytes, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def refusal(tmp_path: Path, text: str | bytes, name: str = "prices.csv") -> str:
    with pytest.raises(HistoryError) as refused:
        read_price_history(write(tmp_path, text, name))
    return str(refused.value)


def trading_days(first: date, last: date) -> tuple[date, ...]:
    """Monday to Friday, no holidays."""
    count = (last - first).days + 1
    days = (first + timedelta(days=i) for i in range(count))
    return tuple(d for d in days if d.weekday() < 5)


def flat(days: tuple[date, ...], *securities: str, close: float = 100.0) -> PriceHistory:
    """A history in which every security closes at ``close`` every day."""
    return PriceHistory(
        days=days,
        securities=tuple(sorted(securities)),
        closes=np.full((len(days), len(securities)), close),
    )


def with_missing(history: PriceHistory, security: str, *days: date) -> PriceHistory:
    closes = history.closes.copy()
    for day in days:
        closes[history.index(day), history.column(security)] = np.nan
    return PriceHistory(days=history.days, securities=history.securities, closes=closes)


# --- reading the wide layout ----------------------------------------------------------


def test_read_when_file_is_wide_then_securities_are_sorted_and_an_empty_cell_is_no_price(
    tmp_path: Path,
):
    history = read_price_history(write(tmp_path, WIDE))

    assert history.days == (date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4))
    assert history.securities == ("AAPL", "BND", "MSFT")
    assert history.price(0, "MSFT") == Decimal("370.87")
    assert history.price(2, "BND") == Decimal("72.30")
    assert np.isnan(history.closes[1, history.column("BND")])
    assert history.closes.shape == (3, 3)


def test_read_when_wide_file_is_gzipped_then_it_reads_as_the_plain_file(tmp_path: Path):
    plain = read_price_history(write(tmp_path, WIDE))
    packed = read_price_history(write(tmp_path, WIDE, "prices.csv.gz"))

    assert packed.days == plain.days
    assert packed.securities == plain.securities
    np.testing.assert_array_equal(packed.closes, plain.closes)


def test_read_when_wide_rows_are_out_of_order_and_header_is_lower_case_then_days_ascend(
    tmp_path: Path,
):
    history = read_price_history(
        write(tmp_path, "date,VTI\r\n2024-01-03,236.10\r\n\r\n2024-01-02,237.22\r\n")
    )

    assert history.days == (date(2024, 1, 2), date(2024, 1, 3))
    assert history.securities == ("VTI",)  # an id keeps its case; only Date is any case
    assert [history.price(d, "VTI") for d in (0, 1)] == [Decimal("237.22"), Decimal("236.10")]


def test_price_when_file_wrote_short_decimals_then_price_is_exactly_the_written_decimal(
    tmp_path: Path,
):
    written = ["0.264", "0.1", "4.0", "1234.5678", "0.000123", "99999999.99", "0.3"]
    text = "Date," + ",".join(f"S{i}" for i in range(len(written))) + "\n"
    text += "2024-01-02," + ",".join(written) + "\n"
    history = read_price_history(write(tmp_path, text))

    prices = [history.price(0, f"S{i}") for i in range(len(written))]

    assert prices == [Decimal(w) for w in written]
    assert str(history.price(0, "S0")) == "0.264"


def test_price_when_the_file_has_no_price_that_day_then_it_is_refused(tmp_path: Path):
    history = read_price_history(write(tmp_path, WIDE))

    with pytest.raises(HistoryError) as refused:
        history.price(1, "BND")

    assert str(refused.value) == "the price history has no price for BND on 2024-01-03"
    assert isinstance(refused.value, ValidationError)


# --- reading the prices format --------------------------------------------------------


def test_read_when_file_is_in_the_prices_format_then_each_time_counts_on_its_utc_date(
    tmp_path: Path,
):
    history = read_price_history(write(tmp_path, PRICES))

    assert history.days == (date(2024, 1, 2), date(2024, 1, 3))
    assert history.securities == ("AAPL", "BND", "MSFT")
    assert history.price(0, "MSFT") == Decimal("370.87")  # 16:00 New York is 21:00 UTC
    assert history.price(0, "BND") == Decimal("72.18")  # a bare date is that day
    assert np.isnan(history.closes[1, history.column("BND")])


def test_read_when_a_security_has_several_prices_a_day_then_the_latest_as_of_wins(
    tmp_path: Path,
):
    """An intraday price and the close; a vendor's correction at the same time; a time
    late in New York that is already the next day in UTC."""
    history = read_price_history(
        write(
            tmp_path,
            "security_id,as_of,price,source\n"
            "AAPL,2024-01-02T21:00:00Z,185.64,close\n"
            "AAPL,2024-01-02T15:00:00Z,187.15,intraday\n"
            "MSFT,2024-01-02T21:00:00Z,370.00,close\n"
            "MSFT,2024-01-02T21:00:00Z,370.87,vendor\n"
            "MSFT,2024-01-02T21:00:00Z,370.50,close\n"
            "AAPL,2024-01-02T20:00:00-05:00,185.80,after_hours\n",
        )
    )

    assert history.days == (date(2024, 1, 2), date(2024, 1, 3))
    assert history.price(0, "AAPL") == Decimal("185.64")
    assert history.price(0, "MSFT") == Decimal("370.87")  # same time: the last source, a-z
    assert history.price(1, "AAPL") == Decimal("185.80")  # 01:00 UTC on the 3rd


def test_read_when_prices_file_is_gzipped_and_has_no_source_column_then_it_reads(
    tmp_path: Path,
):
    path = write(tmp_path, "Security_ID,As_Of,Price\nVTI,2024-01-02,237.22\n", "p.csv.gz")

    history = read_price_history(path)

    assert history.securities == ("VTI",)
    assert history.price(0, "VTI") == Decimal("237.22")


# --- the real file --------------------------------------------------------------------


def test_read_when_file_is_the_sp500_history_then_33_years_of_20_stocks_read_quickly():
    if not SP500.exists():
        pytest.skip(f"{SP500} is not there")

    began = time.perf_counter()
    history = read_price_history(SP500)
    took = time.perf_counter() - began

    assert took < 1.0, f"reading took {took:.2f} s"
    assert history.closes.shape == (8313, 20)
    assert (history.days[0], history.days[-1]) == (date(1990, 1, 2), date(2022, 12, 28))
    assert history.securities[:3] == ("AAPL", "AMD", "BAC")
    assert str(history.price(0, "AAPL")) == "0.264"
    assert history.price(history.index(date(2022, 12, 28)), "XOM") == Decimal("106.627")
    assert not np.isnan(history.closes).any()
    # A year's lookback, then the rest of the file: no gaps, 9/11's week is not a hole.
    assert check_history(
        history, securities=history.securities, start=None, end=None, lookback_days=252
    ) == (252, 8312)


# --- files that are refused -----------------------------------------------------------


def test_read_when_file_does_not_exist_then_it_is_refused(tmp_path: Path):
    path = tmp_path / "nowhere.csv"

    with pytest.raises(HistoryError) as refused:
        read_price_history(path)

    assert str(refused.value) == f"{path}: cannot read the price file (No such file or directory)"


@pytest.mark.parametrize("name", ["prices.csv", "prices.csv.gz"])
def test_read_when_file_is_empty_then_it_is_refused(tmp_path: Path, name: str):
    assert refusal(tmp_path, "\n", name) == f"{name}: the file is empty"


def test_read_when_file_has_only_a_header_then_it_is_refused(tmp_path: Path):
    assert refusal(tmp_path, "Date,AAPL\n") == "prices.csv: the file has a header but no prices"


@pytest.mark.parametrize(
    "header", ["ticker,date,close", "security_id,as_of,close", "AAPL,Date", "Date"]
)
def test_read_when_header_is_neither_layout_then_the_expected_headers_are_named(
    tmp_path: Path, header: str
):
    assert refusal(tmp_path, f"{header}\nx,y,z\n") == (
        "prices.csv: not a price history: a price history's header is either"
        " security_id,as_of,price (and optionally source; the prices format of"
        " docs/formats.md) or Date followed by one column per security id;"
        f" this one is {header}"
    )


def test_read_when_gzip_file_is_cut_short_then_it_is_refused(tmp_path: Path):
    path = tmp_path / "prices.csv.gz"
    path.write_bytes(gzip.compress(WIDE.encode())[:-12])

    with pytest.raises(HistoryError) as refused:
        read_price_history(path)

    assert str(refused.value) == (
        "prices.csv.gz: not a readable gzip file (cut short or damaged); send it again"
    )


def test_read_when_a_row_has_too_few_fields_then_the_file_is_refused_at_that_line(
    tmp_path: Path,
):
    assert refusal(tmp_path, "Date,AAPL,MSFT\n2024-01-02,185.64,370.87\n2024-01-03,184.25\n") == (
        "prices.csv, line 3: the row has 2 fields, the header has 3;"
        " every row of a price file must be read"
    )


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("2024/01/03", "Date '2024/01/03' is not a date (YYYY-MM-DD)"),
        ("2024-02-30", "Date '2024-02-30' is not a date (YYYY-MM-DD)"),
        ("", "the date is missing"),
    ],
)
def test_read_when_a_wide_date_does_not_parse_then_the_file_is_refused_at_its_line(
    tmp_path: Path, cell: str, words: str
):
    assert refusal(tmp_path, f"Date,AAPL\n2024-01-02,185.64\n{cell},184.25\n") == (
        f"prices.csv, line 3: {words}"
    )


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("n/a", "price 'n/a' is not a number"),
        ('"1,000.5"', "price '1,000.5' is not a number"),  # no thousands separators
        ("1e3", "price '1e3' is not a number"),
        ("NaN", "price 'NaN' is not a number"),
        ("0", "price '0' is not positive"),
        ("-3.20", "price '-3.20' is not positive"),
    ],
)
def test_read_when_a_wide_price_is_not_a_positive_number_then_the_cell_is_named(
    tmp_path: Path, cell: str, words: str
):
    text = f"Date,AAPL,MSFT\n2024-01-02,185.64,370.87\n2024-01-03,184.25,{cell}\n"

    assert refusal(tmp_path, text) == (
        f"prices.csv, line 3: MSFT on 2024-01-03: {words}; a close is a positive decimal"
        " such as 12.34 (an empty cell where there is no price)"
    )


def test_read_when_a_wide_file_has_a_day_twice_then_both_lines_are_named(tmp_path: Path):
    assert refusal(
        tmp_path,
        "Date,AAPL\n2024-01-02,185.64\n2024-01-03,184.25\n2024-01-02,185.64\n",
        "prices.csv.gz",
    ) == (
        "prices.csv.gz, line 4: 2024-01-02 again (first on line 2); a wide price file has"
        " one row a day: keep one of them"
    )


def test_read_when_several_lines_are_wrong_then_the_first_line_is_the_one_named(
    tmp_path: Path,
):
    """A bad price on line 3 and a bad date on line 4: line 3 is quoted; on one line the
    date comes before the prices, and the prices go left to right."""
    text = "Date,AAPL,MSFT\n2024-01-02,185.64,370.87\n2024-01-03,184.25,-1\n2024-01-0x,1,1\n"
    assert refusal(tmp_path, text).startswith("prices.csv, line 3: MSFT on 2024-01-03:")

    text = "Date,AAPL,MSFT\n2024-01-02,185.64,370.87\n2024-01-0x,0,0\n"
    assert refusal(tmp_path, text).startswith("prices.csv, line 3: Date '2024-01-0x'")

    text = "Date,AAPL,MSFT\n2024-01-02,185.64,370.87\n2024-01-03,0,0\n"
    assert refusal(tmp_path, text).startswith("prices.csv, line 3: AAPL on 2024-01-03:")


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (
            "AAPL,2024-01-03T21:00:00,184.25",
            "as_of '2024-01-03T21:00:00' is not a date (YYYY-MM-DD) or a time with an"
            " offset (2025-12-31T21:00:00Z, 2025-12-31T16:00:00-05:00)",
        ),
        (
            "AAPL,01/03/2024,184.25",
            "as_of '01/03/2024' is not a date (YYYY-MM-DD) or a time with an offset"
            " (2025-12-31T21:00:00Z, 2025-12-31T16:00:00-05:00)",
        ),
        ("AAPL,,184.25", "as_of is missing"),
        (",2024-01-03,184.25", "security_id is missing"),
        ("AAPL,2024-01-03,", "price is missing"),
        (
            "AAPL,2024-01-03,-184.25",
            "AAPL on 2024-01-03: price '-184.25' is not positive; a close is a positive"
            " decimal such as 12.34 (an empty cell where there is no price)",
        ),
    ],
)
def test_read_when_a_prices_row_is_wrong_then_the_file_is_refused_at_its_line(
    tmp_path: Path, row: str, words: str
):
    text = f"security_id,as_of,price\nAAPL,2024-01-02,185.64\n{row}\n"

    assert refusal(tmp_path, text) == f"prices.csv, line 3: {words}"


# --- the history's own questions -----------------------------------------------------


def test_index_and_between_when_days_are_asked_for_then_trading_days_answer():
    days = trading_days(date(2024, 1, 1), date(2024, 1, 12))  # two weeks, ten trading days
    history = flat(days, "VTI")

    assert history.index(date(2024, 1, 8)) == 5
    assert history.between(date(2024, 1, 3), date(2024, 1, 6)) == (2, 4)
    assert history.between(None, None) == (0, 9)
    with pytest.raises(KeyError):
        history.index(date(2024, 1, 6))  # a Saturday
    with pytest.raises(KeyError):
        history.column("BND")


def test_between_when_no_trading_day_falls_in_the_span_then_it_is_refused():
    history = flat(trading_days(date(2024, 1, 1), date(2024, 1, 12)), "VTI")

    with pytest.raises(HistoryError) as refused:
        history.between(date(2024, 1, 6), date(2024, 1, 7))

    assert (
        str(refused.value) == "the price history has no trading day from 2024-01-06 to 2024-01-07"
    )


@pytest.mark.parametrize(
    ("days", "securities", "closes", "words"),
    [
        ((date(2024, 1, 3), date(2024, 1, 2)), ("A",), [[1.0], [1.0]], "days"),
        ((date(2024, 1, 2),), ("B", "A"), [[1.0, 1.0]], "securities"),
        ((date(2024, 1, 2),), ("A",), [[0.0]], "not a positive number"),
        ((date(2024, 1, 2),), ("A",), [[1.0, 2.0]], "shape"),
    ],
)
def test_history_when_built_out_of_order_or_with_a_bad_close_then_it_is_refused(
    days: tuple[date, ...], securities: tuple[str, ...], closes: list[list[float]], words: str
):
    with pytest.raises(HistoryError, match=words):
        PriceHistory(days=days, securities=securities, closes=np.array(closes))


def test_history_when_built_then_its_closes_cannot_be_changed():
    history = flat((date(2024, 1, 2),), "VTI")

    with pytest.raises(ValueError, match="read-only"):
        history.closes[0, 0] = 1.0


# --- whether a history serves a backtest ----------------------------------------------

TWO_YEARS = trading_days(date(2020, 1, 1), date(2021, 12, 31))  # 523 weekdays
YEAR_2021 = (date(2021, 1, 1), date(2021, 12, 31))


def check(
    history: PriceHistory,
    *,
    securities: tuple[str, ...] = ("VTI", "BND"),
    start: date | None = YEAR_2021[0],
    end: date | None = YEAR_2021[1],
    lookback_days: int = 100,
    min_years: float = 1.0,
) -> tuple[int, int]:
    """A backtest of a model of VTI and BND over 2021, with a 100-day lookback, unless told."""
    return check_history(
        history,
        securities=securities,
        start=start,
        end=end,
        lookback_days=lookback_days,
        min_years=min_years,
    )


def refused(
    history: PriceHistory,
    *,
    securities: tuple[str, ...] = ("VTI", "BND"),
    start: date | None = YEAR_2021[0],
    end: date | None = YEAR_2021[1],
    lookback_days: int = 100,
    min_years: float = 1.0,
) -> str:
    with pytest.raises(HistoryError) as refusal:
        check(
            history,
            securities=securities,
            start=start,
            end=end,
            lookback_days=lookback_days,
            min_years=min_years,
        )
    return str(refusal.value)


def test_check_when_history_covers_lookback_and_period_then_the_period_is_returned():
    history = flat(TWO_YEARS, "VTI", "BND", "GLD")

    first, last = check(history)

    assert (history.days[first], history.days[last]) == (date(2021, 1, 1), date(2021, 12, 31))


def test_check_when_no_start_is_given_then_the_period_starts_after_the_lookback():
    history = flat(TWO_YEARS, "VTI", "BND")

    first, last = check(history, start=None, end=None, lookback_days=20)

    assert (first, last) == (20, len(TWO_YEARS) - 1)
    assert history.days[first] == date(2020, 1, 29)


def test_check_when_a_security_the_model_does_not_hold_has_gaps_then_they_are_ignored():
    history = with_missing(flat(TWO_YEARS, "VTI", "BND", "GLD"), "GLD", date(2021, 3, 1))

    assert check(history) == (history.index(date(2021, 1, 1)), history.index(date(2021, 12, 31)))


def test_check_when_the_file_lacks_securities_the_model_holds_then_they_are_named():
    history = flat(TWO_YEARS, "VTI")

    assert refused(history, securities=("VTI", "BBB", "AAA")) == (
        "the price file has no prices for AAA, BBB, which the model holds: add their closes"
        " to the file, or backtest a model without them"
    )


def test_check_when_the_lookback_reaches_before_the_file_then_the_first_possible_start_is_named():
    history = flat(TWO_YEARS, "VTI", "BND")

    assert refused(history, start=date(2020, 2, 3), lookback_days=100) == (
        "the price file has 23 trading days before the backtest starts on 2020-02-03"
        " (2020-01-01 to 2020-01-31); the risk model needs 100: start on 2020-05-20 or later,"
        " add earlier prices, or shorten the lookback"
    )
    assert refused(history, start=None, end=None, lookback_days=600) == (
        "the price file has 523 trading days (2020-01-01 to 2021-12-31); the risk model"
        " needs 600 before the backtest's first day: add earlier prices, or shorten the"
        " lookback"
    )


def test_check_when_the_period_is_shorter_than_a_year_then_its_length_and_the_minimum_are_said():
    history = flat(TWO_YEARS, "VTI", "BND")

    assert refused(history, end=date(2021, 6, 30)) == (
        "the simulated period, 2021-01-01 to 2021-06-30, is 0.49 years long (129 trading"
        " days); a backtest must run at least 1 year: start earlier or end later (the price"
        " file runs from 2020-01-01 to 2021-12-31)"
    )
    assert check(history, end=date(2021, 7, 2), min_years=0.5)  # 183 days of 365


@pytest.mark.parametrize(
    ("start", "end"),
    [(date(2021, 1, 1), date(2021, 12, 31)), (date(2020, 3, 1), date(2021, 2, 28))],
)
def test_check_when_the_period_is_a_calendar_year_then_it_is_long_enough(start: date, end: date):
    """A year from New Year's Day, and a year over a 29 February, are both a year."""
    history = flat(TWO_YEARS, "VTI", "BND")

    assert check(history, start=start, end=end, lookback_days=20)


def test_check_when_a_held_security_misses_closes_then_it_is_named_with_the_first_day():
    history = flat(TWO_YEARS, "VTI", "BND")
    history = with_missing(history, "BND", date(2021, 3, 1), date(2021, 3, 2), date(2021, 3, 3))
    history = with_missing(history, "VTI", date(2020, 9, 15))  # in the lookback

    assert refused(history) == (
        "the price file has no close for securities the model holds on days the backtest"
        " needs (2020-08-14, the first lookback day, to 2021-12-31):"
        " VTI: 1 trading day missing, the first 2020-09-15;"
        " BND: 3 trading days missing, the first 2021-03-01;"
        " fill the missing closes, or start the backtest on 2021-07-22 or later"
    )


def test_check_when_the_missing_closes_leave_no_later_start_then_only_filling_is_advised():
    history = with_missing(flat(TWO_YEARS, "VTI", "BND"), "VTI", date(2021, 12, 1))

    assert refused(history).endswith(
        "VTI: 1 trading day missing, the first 2021-12-01; fill the missing closes"
    )


def test_check_when_a_month_is_missing_from_the_file_then_both_sides_of_the_hole_are_named():
    kept = tuple(d for d in TWO_YEARS if not date(2020, 10, 1) <= d <= date(2020, 10, 31))
    history = flat(kept, "VTI", "BND")

    assert refused(history, end=date(2021, 12, 31)) == (
        "the price file has no trading day between 2020-09-30 and 2020-11-02 (33 days"
        " apart): a daily file with more than 10 days between two trading days is missing"
        " prices, not a holiday; add the missing days, or start the backtest on 2021-03-22"
        " or later"
    )


def test_check_when_trading_days_are_ten_days_apart_then_it_is_a_closure_not_a_hole():
    kept = tuple(d for d in TWO_YEARS if not date(2021, 3, 2) <= d <= date(2021, 3, 10))
    history = flat(kept, "VTI", "BND")

    assert check(history)


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (
            date(2021, 6, 1),
            date(2021, 1, 1),
            "the backtest starts on 2021-06-01, after it ends on 2021-01-01",
        ),
        (
            date(2022, 1, 3),
            None,
            "the backtest starts on 2022-01-03, after the price file runs from 2020-01-01 to"
            " 2021-12-31",
        ),
        (
            None,
            date(2019, 12, 31),
            "the backtest ends on 2019-12-31, before the price file runs from 2020-01-01 to"
            " 2021-12-31",
        ),
        (
            date(2019, 1, 2),
            None,
            "the backtest starts on 2019-01-02, before the price file runs from 2020-01-01 to"
            " 2021-12-31: start later, or add earlier prices",
        ),
        (
            date(2021, 1, 1),
            date(2022, 6, 30),
            "the backtest ends on 2022-06-30, after the price file runs from 2020-01-01 to"
            " 2021-12-31: end on 2021-12-31 or earlier, or add later prices",
        ),
        (
            None,
            date(2020, 3, 2),
            "the backtest ends on 2020-03-02, before its first day with 100 trading days"
            " before it for the risk model, 2020-05-20: end later, add earlier prices, or"
            " shorten the lookback",
        ),
        (
            date(2021, 1, 2),
            date(2021, 1, 3),
            "the price history has no trading day from 2021-01-02 to 2021-01-03",
        ),
    ],
)
def test_check_when_start_or_end_is_outside_the_file_or_out_of_order_then_it_is_refused(
    start: date | None, end: date | None, words: str
):
    assert refused(flat(TWO_YEARS, "VTI", "BND"), start=start, end=end) == words
