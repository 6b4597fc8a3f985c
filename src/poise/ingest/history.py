"""Daily price history for a backtest: read a file of closes, and refuse one a backtest
cannot use, saying what is wrong, where, and what to do.

A file is CSV text, gzip-compressed or not (told from its bytes, not its name: a
``.csv.gz`` and a ``.csv`` are read alike). Its cells are read by
:mod:`poise.ingest.parse`, so quoting, line ends, a byte-order mark, blank lines and the
line numbers quoted back are as for every other poise file. Two layouts, told from the
header:

- **the prices format** (``security_id,as_of,price[,source]``, see docs/formats.md): a
  row's day is the UTC date of its ``as_of`` (a bare date is that day). Where one
  security has several rows on one day, the latest ``as_of`` wins; at the same time,
  the last ``source`` in alphabetical order (as the store's history has it); at the
  same time and source, the row further down.
- **a wide layout**, as price vendors and pandas write it: ``Date`` (ISO dates, one row
  a day), then one column per security id, each cell that day's close; an empty cell
  is no price.

The file is refused whole (:class:`HistoryError`) at the first line that is wrong: a
backtest on a history with a row quietly left out is a backtest of something else.

Closes are floats: a backtest's returns are estimates, not money.
:meth:`PriceHistory.price` turns one back into the decimal the file wrote — the
shortest decimal that reads as the same float, which is the file's own number for any
price of up to 15 significant digits.

:func:`check_history` says whether a history serves one backtest: every security the
model holds priced on every trading day from the risk model's first lookback day to the
end, no month missing from the calendar, and a simulated period long enough to mean
something.
"""

from __future__ import annotations

import csv
import gzip
import math
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from poise.domain.errors import FormatError, ValidationError
from poise.domain.money import D
from poise.ingest.parse import LINE, PARQUET_MAGIC, RawTable, read_table
from poise.ingest.validate import ANY_DECIMAL_RE, DATE_RE

__all__ = [
    "MAX_GAP_DAYS",
    "HistoryError",
    "PriceHistory",
    "check_history",
    "read_price_history",
]

Floats = npt.NDArray[np.float64]

# Consecutive trading days further apart than this are a hole in the file, not a
# weekend or a holiday (the longest closures of US exchanges since 1990 — 9/11, two
# presidents' funerals next to a weekend, Hurricane Sandy — are 7 days at most).
MAX_GAP_DAYS = 10

GZIP_MAGIC = b"\x1f\x8b"
PRICES_COLUMNS = frozenset({"security_id", "as_of", "price"})
DATE_COLUMN = "date"
EXPECTED = (
    "a price history's header is either security_id,as_of,price (and optionally source;"
    " the prices format of docs/formats.md) or Date followed by one column per security id"
)
LISTED = 5  # securities named in one message before "and N more"


class HistoryError(ValidationError):
    """A price history a backtest cannot use; the message says what is wrong, where
    (file, line, security, date) and what to do."""


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: == on an array has no one answer
class PriceHistory:
    """Daily closes, oldest first: ``closes[d, s]`` is ``securities[s]`` on ``days[d]``,
    NaN where the file has no price."""

    days: tuple[date, ...]  # trading days, ascending, unique
    securities: tuple[str, ...]  # sorted, unique
    closes: Floats  # len(days) × len(securities); read-only

    def __post_init__(self) -> None:
        closes = np.array(self.closes, dtype=np.float64)  # a copy, so no one else can change it
        if closes.shape != (len(self.days), len(self.securities)):
            raise HistoryError(
                f"closes of shape {closes.shape} for {len(self.days)} days"
                f" and {len(self.securities)} securities"
            )
        if any(a >= b for a, b in pairwise(self.days)):
            raise HistoryError("the days of a price history must be ascending and unique")
        if any(a >= b for a, b in pairwise(self.securities)):
            raise HistoryError("the securities of a price history must be sorted and unique")
        if not np.all(np.isnan(closes) | (np.isfinite(closes) & (closes > 0))):
            raise HistoryError("a close in a price history is not a positive number")
        closes.flags.writeable = False
        object.__setattr__(self, "closes", closes)

    def column(self, security: str) -> int:
        """The column of ``security``; KeyError if the history has none."""
        at = bisect_left(self.securities, security)
        if at == len(self.securities) or self.securities[at] != security:
            raise KeyError(f"the price history has no security {security}")
        return at

    def index(self, day: date) -> int:
        """The position of a trading day; KeyError if ``day`` is not one."""
        at = bisect_left(self.days, day)
        if at == len(self.days) or self.days[at] != day:
            raise KeyError(f"{day} is not a trading day of the price history")
        return at

    def between(self, start: date | None, end: date | None) -> tuple[int, int]:
        """The first trading day on or after ``start`` and the last on or before ``end``
        (``None``: the history's first or last day), as indices, both included."""
        first = 0 if start is None else bisect_left(self.days, start)
        last = len(self.days) - 1 if end is None else bisect_right(self.days, end) - 1
        if first > last:
            raise HistoryError(f"the price history has no trading day {_span(start, end)}")
        return first, last

    def price(self, day: int, security: str) -> Decimal:
        """The close of ``security`` on ``days[day]``, as the decimal the file wrote."""
        close = float(self.closes[day, self.column(security)])
        if np.isnan(close):
            raise HistoryError(f"the price history has no price for {security} on {self.days[day]}")
        return D(repr(close))  # the shortest text that reads back as this float


# ── reading ──────────────────────────────────────────────────────────────────────────


def read_price_history(path: Path) -> PriceHistory:
    """Read a daily price history (either layout, gzip-compressed or not); refuse a file
    that is not one, at its first wrong line."""
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the price file ({exc.strerror})") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise HistoryError(
                f"{name}: not a readable gzip file (cut short or damaged); send it again"
            ) from None
    if data[:4] == PARQUET_MAGIC:
        raise HistoryError(f"{name}: a Parquet file; a price history is CSV text (.csv or .csv.gz)")
    try:
        table = read_table(data, name=name)
    except FormatError as exc:
        raise HistoryError(str(exc)) from None
    columns = table.columns
    wide = columns[0] == DATE_COLUMN and len(columns) > 1
    if not wide and not PRICES_COLUMNS <= set(columns) <= PRICES_COLUMNS | {"source"}:
        raise HistoryError(f"{name}: not a price history: {EXPECTED}; this one is {_header(data)}")
    if table.rejects:
        reject = table.rejects[0]
        raise HistoryError(
            f"{name}, line {reject.line}: {reject.reason}; every row of a price file must be read"
        )
    if table.frame.height == 0:
        raise HistoryError(f"{name}: the file has a header but no prices")
    if wide:
        return _read_wide(table, name=name, ids=_original_header(data)[1:])
    return _read_prices(table, name=name)


def _original_header(data: bytes) -> tuple[str, ...]:
    """The header's column names as written (the parser lower-cases them; security ids
    keep their case)."""
    line = data.split(b"\n", 1)[0].decode("utf-8-sig").removesuffix("\r")
    return tuple(field.strip() for field in next(csv.reader([line])))


def _header(data: bytes) -> str:
    text = ",".join(_original_header(data))
    return text if len(text) <= 80 else text[:79] + "…"


Problem = tuple[int, int, str]  # (line, rank within the line, message): the least is reported


def _refuse_first(problems: Sequence[Problem]) -> None:
    if problems:
        raise HistoryError(min(problems)[2])


def _first(frame: pl.DataFrame, bad: pl.Expr, *shown: pl.Expr) -> tuple[int, tuple[object, ...]]:
    """The line and the ``shown`` values of the first row of ``frame`` where ``bad``;
    line 0 (and no values) if there is none."""
    hit = (
        frame.filter(bad.fill_null(False))
        .select(LINE, *(value.alias(f"_shown{i}") for i, value in enumerate(shown)))
        .head(1)
    )
    if not hit.height:
        return 0, (None,) * len(shown)
    line, *values = hit.row(0)
    return int(line), tuple(values)


def _price_problems(
    frame: pl.DataFrame, column: str, *, security: pl.Expr, name: str, rank: int
) -> list[Problem]:
    """The first cell of ``column`` that is not a positive number, if any."""
    text = pl.col(column)
    number = text.str.contains(ANY_DECIMAL_RE)
    not_number = text.is_not_null() & ~number
    not_positive = number & (text.cast(pl.Float64, strict=False) <= 0)
    why = pl.when(not_number).then(pl.lit("is not a number")).otherwise(pl.lit("is not positive"))
    line, (sec, day, value, reason) = _first(
        frame, not_number | not_positive, security, pl.col("_day"), text, why
    )
    if not line:
        return []
    return [
        (
            line,
            rank,
            f"{name}, line {line}: {sec} on {day}: price '{value}' {reason}; a close is a"
            " positive decimal such as 12.34 (an empty cell where there is no price)",
        )
    ]


def _read_wide(table: RawTable, *, name: str, ids: tuple[str, ...]) -> PriceHistory:
    day_text = pl.col(DATE_COLUMN)
    day = pl.when(day_text.str.contains(DATE_RE)).then(
        day_text.str.to_date("%Y-%m-%d", strict=False)
    )
    frame = table.frame.select(
        LINE,
        day_text,
        day.alias("_day"),
        *(pl.col(low).alias(sid) for low, sid in zip(table.columns[1:], ids, strict=True)),
    )

    problems: list[Problem] = []
    line, _ = _first(frame, day_text.is_null())
    if line:
        problems.append((line, 0, f"{name}, line {line}: the date is missing"))
    line, (text,) = _first(frame, day_text.is_not_null() & pl.col("_day").is_null(), day_text)
    if line:
        problems.append((line, 0, f"{name}, line {line}: Date '{text}' is not a date (YYYY-MM-DD)"))
    line, (again, first) = _first(
        frame.with_columns(pl.col(LINE).min().over("_day").alias("_once")),
        pl.col("_day").is_not_null() & (pl.col(LINE) != pl.col("_once")),
        pl.col("_day"),
        pl.col("_once"),
    )
    if line:
        problems.append(
            (
                line,
                0,
                f"{name}, line {line}: {again} again (first on line {first}); a wide price"
                " file has one row a day: keep one of them",
            )
        )
    for i, sid in enumerate(ids):
        problems.extend(_price_problems(frame, sid, security=pl.lit(sid), name=name, rank=1 + i))
    _refuse_first(problems)

    securities = tuple(sorted(ids))
    frame = frame.sort("_day")
    closes = frame.select(pl.col(s).cast(pl.Float64) for s in securities).to_numpy()
    return PriceHistory(
        days=tuple(frame["_day"].to_list()),
        securities=securities,
        closes=np.asarray(closes, dtype=np.float64).reshape(frame.height, len(securities)),
    )


def _as_of(text: pl.Expr) -> pl.Expr:
    """A date (midnight UTC) or an ISO 8601 time with an offset, as a UTC time; null
    where the text is neither (the prices format's time column)."""
    as_date = text.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us", "UTC"))
    as_time = text.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_zone="UTC", time_unit="us"
    )
    return pl.when(text.str.contains(DATE_RE)).then(as_date).otherwise(as_time)


def _read_prices(table: RawTable, *, name: str) -> PriceHistory:
    as_of = pl.col("as_of")
    source = pl.col("source") if "source" in table.columns else pl.lit(None, dtype=pl.Utf8)
    frame = table.frame.with_columns(
        _as_of(as_of).alias("_when"), source.fill_null("").alias("_source")
    ).with_columns(pl.col("_when").dt.date().alias("_day"))

    problems: list[Problem] = []
    for rank, column in enumerate(("security_id", "as_of", "price")):
        line, _ = _first(frame, pl.col(column).is_null())
        if line:
            problems.append((line, rank, f"{name}, line {line}: {column} is missing"))
    line, (text,) = _first(frame, as_of.is_not_null() & pl.col("_when").is_null(), as_of)
    if line:
        problems.append(
            (
                line,
                1,
                f"{name}, line {line}: as_of '{text}' is not a date (YYYY-MM-DD) or a time"
                " with an offset (2025-12-31T21:00:00Z, 2025-12-31T16:00:00-05:00)",
            )
        )
    problems.extend(
        _price_problems(frame, "price", security=pl.col("security_id"), name=name, rank=3)
    )
    _refuse_first(problems)

    # One close a security and day: its day's latest row (see the module's docstring).
    closes = (
        frame.sort("_when", "_source", LINE)
        .unique(subset=["security_id", "_day"], keep="last")
        .select(
            (pl.col("_day").rank("dense") - 1).alias("_d"),
            (pl.col("security_id").rank("dense") - 1).alias("_s"),
            pl.col("price").cast(pl.Float64),
        )
    )
    days = frame["_day"].unique().sort()
    securities = frame["security_id"].unique().sort()
    table_of = np.full((days.len(), securities.len()), np.nan)
    table_of[closes["_d"].to_numpy(), closes["_s"].to_numpy()] = closes["price"].to_numpy()
    return PriceHistory(
        days=tuple(days.to_list()), securities=tuple(securities.to_list()), closes=table_of
    )


# ── checking one backtest ────────────────────────────────────────────────────────────


def check_history(
    history: PriceHistory,
    *,
    securities: Collection[str],
    start: date | None,
    end: date | None,
    lookback_days: int,
    min_years: float = 1.0,
) -> tuple[int, int]:
    """The indices of the simulated period's first and last trading days; refuse a
    history that cannot serve a backtest of a model holding ``securities`` from
    ``start`` to ``end`` (``None``: as early as the lookback allows, as late as the
    file goes) with a risk model estimated from ``lookback_days`` trading days before
    each day. Securities in the file that the model does not hold are not checked.
    """
    if lookback_days < 0:
        raise HistoryError(f"lookback_days is {lookback_days}; it cannot be negative")
    days = history.days
    if not days:
        raise HistoryError("the price history has no trading days")
    held = sorted(set(securities))
    absent = [s for s in held if not _has(history, s)]
    if absent:
        raise HistoryError(
            f"the price file has no prices for {_names(absent)}, which the model holds:"
            " add their closes to the file, or backtest a model without them"
        )
    _check_range(days, start=start, end=end)
    first = _first_day(days, start=start, lookback_days=lookback_days)
    if start is None and end is not None and end < days[first]:
        raise HistoryError(
            f"the backtest ends on {end}, before its first day with {lookback_days} trading"
            f" days before it for the risk model, {days[first]}: end later, add earlier"
            " prices, or shorten the lookback"
        )
    first, last = history.between(days[first] if start is None else start, end)
    _check_length(days, first, last, start=start, end=end, min_years=min_years)
    _check_holes(days, first - lookback_days, last, lookback_days=lookback_days)
    _check_missing(history, held, first - lookback_days, last, lookback_days=lookback_days)
    return first, last


def _has(history: PriceHistory, security: str) -> bool:
    try:
        history.column(security)
    except KeyError:
        return False
    return True


def _check_range(days: tuple[date, ...], *, start: date | None, end: date | None) -> None:
    first, last = days[0], days[-1]
    runs = f"the price file runs from {first} to {last}"
    if start is not None and end is not None and start > end:
        raise HistoryError(f"the backtest starts on {start}, after it ends on {end}")
    if start is not None and start > last:
        raise HistoryError(f"the backtest starts on {start}, after {runs}")
    if end is not None and end < first:
        raise HistoryError(f"the backtest ends on {end}, before {runs}")
    if start is not None and start < first:
        raise HistoryError(
            f"the backtest starts on {start}, before {runs}: start later, or add earlier prices"
        )
    if end is not None and end > last + timedelta(days=MAX_GAP_DAYS):  # a weekend, a holiday
        raise HistoryError(
            f"the backtest ends on {end}, after {runs}: end on {last} or earlier,"
            " or add later prices"
        )


def _first_day(days: tuple[date, ...], *, start: date | None, lookback_days: int) -> int:
    """The simulated period's first trading day, with ``lookback_days`` before it."""
    if start is None:
        if len(days) <= lookback_days:
            raise HistoryError(
                f"the price file has {_count(len(days), 'trading day')} ({days[0]} to"
                f" {days[-1]}); the risk model needs {lookback_days} before the backtest's"
                " first day: add earlier prices, or shorten the lookback"
            )
        return lookback_days
    first = bisect_left(days, start)
    if first < lookback_days:
        before = f" ({days[0]} to {days[first - 1]})" if first else ""
        later = f"start on {days[lookback_days]} or later, " if lookback_days < len(days) else ""
        raise HistoryError(
            f"the price file has {_count(first, 'trading day')} before the backtest starts on"
            f" {start}{before}; the risk model needs {lookback_days}: {later}add earlier"
            " prices, or shorten the lookback"
        )
    return first


def _check_length(
    days: tuple[date, ...],
    first: int,
    last: int,
    *,
    start: date | None,
    end: date | None,
    min_years: float,
) -> None:
    """The period asked for (or, where not asked, the trading days it gets), its first
    and last days both included, is at least ``min_years`` calendar years."""
    begins = start if start is not None else days[first]
    ends = end if end is not None else days[last]
    years = _calendar_years(begins, ends)
    if years < min_years:
        raise HistoryError(
            f"the simulated period, {begins} to {ends}, is {_years(years)} long"
            f" ({_count(last - first + 1, 'trading day')}); a backtest must run at least"
            f" {_years(min_years)}: start earlier or end later (the price file runs from"
            f" {days[0]} to {days[-1]})"
        )


def _check_holes(days: tuple[date, ...], first: int, last: int, *, lookback_days: int) -> None:
    """No two consecutive trading days from ``first`` to ``last`` more than
    :data:`MAX_GAP_DAYS` apart."""
    ordinals = np.array([d.toordinal() for d in days[first : last + 1]], dtype=np.int64)
    holes = np.flatnonzero(np.diff(ordinals) > MAX_GAP_DAYS) + first
    if not holes.size:
        return
    before, after = days[holes[0]], days[holes[0] + 1]
    more = f" (and {_count(holes.size - 1, 'more such hole')})" if holes.size > 1 else ""
    raise HistoryError(
        f"the price file has no trading day between {before} and {after}"
        f" ({(after - before).days} days apart){more}: a daily file with more than"
        f" {MAX_GAP_DAYS} days between two trading days is missing prices, not a holiday;"
        f" add the missing days{_or_start(days, int(holes[-1]) + 1, last, lookback_days)}"
    )


def _check_missing(
    history: PriceHistory, held: Sequence[str], first: int, last: int, *, lookback_days: int
) -> None:
    """Every security the model holds has a close on every day from ``first`` to ``last``."""
    if not held:
        return
    window = np.isnan(history.closes[first : last + 1, [history.column(s) for s in held]])
    counts = window.sum(axis=0)
    bad = [k for k in range(len(held)) if counts[k]]
    if not bad:
        return
    first_missing = {k: first + int(np.argmax(window[:, k])) for k in bad}
    last_missing = max(last - int(np.argmax(window[::-1, k])) for k in bad)
    bad.sort(key=lambda k: (first_missing[k], held[k]))
    listed = [
        f"{held[k]}: {_count(int(counts[k]), 'trading day')} missing, the first"
        f" {history.days[first_missing[k]]}"
        for k in bad[:LISTED]
    ]
    if len(bad) > LISTED:
        listed.append(f"and {_count(len(bad) - LISTED, 'more security', 'more securities')}")
    days = history.days
    raise HistoryError(
        f"the price file has no close for securities the model holds on days the backtest"
        f" needs ({days[first]}, the first lookback day, to {days[last]}): {'; '.join(listed)};"
        f" fill the missing closes{_or_start(days, last_missing + 1, last, lookback_days)}"
    )


def _or_start(days: tuple[date, ...], clear: int, last: int, lookback_days: int) -> str:
    """Advice to start late enough that the lookback begins at ``clear``, if that leaves
    a simulated period."""
    begins = clear + lookback_days
    return f", or start the backtest on {days[begins]} or later" if begins <= last else ""


# ── words ────────────────────────────────────────────────────────────────────────────


def _calendar_years(first: date, last: date) -> float:
    """How many calendar years from the start of ``first`` to the end of ``last``:
    2021-01-01 to 2021-12-31 is 1, and so is 2020-01-01 to 2020-12-31."""
    end = last + timedelta(days=1)
    whole = end.year - first.year
    if _add_years(first, whole) > end:
        whole -= 1
    since = _add_years(first, whole)
    year = (_add_years(first, whole + 1) - since).days
    return whole + (end - since).days / year


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February, in a year without one
        return day.replace(year=day.year + years, day=28)


def _years(years: float) -> str:
    """Years to two places, rounded down: a period just short of a year is not "1 year"."""
    text = f"{math.floor(years * 100) / 100:.2f}".rstrip("0").rstrip(".")
    return f"{text} year" if text == "1" else f"{text} years"


def _count(n: int, what: str, plural: str | None = None) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {plural or what + 's'}"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown if len(names) <= LISTED else f"{shown} and {len(names) - LISTED} more"


def _span(start: date | None, end: date | None) -> str:
    if start is not None and end is not None:
        return f"from {start} to {end}"
    if start is not None:
        return f"on or after {start}"
    if end is not None:
        return f"on or before {end}"
    return "at all"
