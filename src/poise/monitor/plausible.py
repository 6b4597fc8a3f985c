"""Implausible prices: a price no market could have made holds the accounts it touches.

A security's latest price is **implausible** — with no corporate action to explain it —
when:

- it is not positive, or above ``PriceCheck.ceiling``;
- it moved from its **previous price** (its last price of an earlier day) by more than
  ``sigmas`` times its recent daily volatility, and by more than ``floor`` — so a very
  calm series (a money-market fund at 1.00) does not hold on an ordinary move; a move
  is a log return, ``|ln(price / previous)|`` (0.10 is about 10% either way);
- with too little history for a volatility (fewer than ``MIN_RETURNS`` daily returns
  in the ``LOOKBACK`` before the latest price's day), it moved by more than ``jump``
  times either way (a doubling or a halving, by default).

The volatility is the standard deviation of the daily log returns, each first clipped
at the move that would itself be implausible by a robust scale (1.4826 times the
median absolute deviation): a wrong price left in the history counts as one large move,
not as a crash, so it cannot blind the check for the weeks after it.

A corporate action — a split — changes the price without any market move. The store
keeps no corporate actions: ``factors`` is the seam for them (each security's price
factor between its previous price and its latest, 0.5 for a 2-for-1 split), and until
it is filled a split's jump holds like any other.

Pure: daily closes in, reasons out. The history's arithmetic is float64 — it decides
whether a price can be used, never an amount; the range is checked in Decimal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.money import plain

__all__ = [
    "LOOKBACK",
    "MIN_RETURNS",
    "PriceCheck",
    "Recent",
    "implausible_prices",
    "judge",
    "recent_prices",
]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
LOOKBACK = timedelta(days=90)  # of prices before the latest day: about 60 trading days
MIN_RETURNS = 20  # daily returns needed for a volatility
MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal variable, in σ


@dataclass(frozen=True, slots=True)
class PriceCheck:
    """What makes a price implausible (see the module's docstring); ``on=False`` turns
    the check off."""

    on: bool = True
    sigmas: float = 10.0  # the largest move, in recent daily volatilities
    floor: float = 0.10  # a move of at most this log return never holds
    jump: float = 2.0  # with too little history: the largest move, as a factor either way
    ceiling: Decimal = Decimal(10_000_000)  # the highest plausible price


@dataclass(frozen=True, slots=True)
class Recent:
    """Each security's previous price (its last of a day before its latest price's
    day) and its recent daily volatility (NaN with fewer than ``MIN_RETURNS`` returns);
    arrays aligned with ``security_ids``, NaN where there is none."""

    security_ids: tuple[str, ...]
    previous: Floats
    previous_day: tuple[date | None, ...]
    sigma: Floats
    returns: npt.NDArray[np.int64]  # daily returns the volatility rests on

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.security_ids)}


def _fill_forward(values: Floats) -> tuple[Floats, npt.NDArray[np.int64]]:
    """Each row's last non-NaN value at or above it, column by column, and its row."""
    rows = np.arange(values.shape[0])[:, None]
    last = np.where(np.isnan(values), -1, rows)
    last = np.maximum.accumulate(last, axis=0)
    filled = np.take_along_axis(values, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, filled, np.nan), last


def recent_prices(
    *,
    security_ids: Sequence[str],
    days: Sequence[date],
    closes: Floats,
    latest_days: Mapping[str, date],
    check: PriceCheck,
) -> Recent:
    """The previous price and the recent volatility of every security at once, from its
    daily closes (``closes[d, s]``, oldest first, NaN where none) — only the days before
    its latest price's day count."""
    ids = tuple(security_ids)
    n = len(ids)
    if not len(days) or not n:
        return Recent(ids, np.full(n, np.nan), (None,) * n, np.full(n, np.nan), np.zeros(n, int))
    day_numbers = np.array([d.toordinal() for d in days])
    cutoff = np.array([latest_days[s].toordinal() if s in latest_days else 0 for s in ids])
    before = day_numbers[:, None] < cutoff[None, :]
    logs = np.full(closes.shape, np.nan)
    usable = before & (closes > 0)
    np.log(closes, out=logs, where=usable)
    filled, last_row = _fill_forward(logs)
    # A day's return is from the security's previous price, however many days back.
    returns = logs[1:] - filled[:-1]
    counts = (~np.isnan(returns)).sum(axis=0)
    sigma = np.full(n, np.nan)
    enough = counts >= MIN_RETURNS
    if enough.any():
        sample = returns[:, enough]
        centre = np.nanmedian(sample, axis=0)
        scale = MAD_TO_SIGMA * np.nanmedian(np.abs(sample - centre), axis=0)
        clip = np.maximum(check.sigmas * scale, check.floor)
        sigma[enough] = np.nanstd(np.clip(sample, -clip, clip), axis=0, ddof=1)
    final = last_row[-1]
    previous = np.where(final >= 0, closes[np.maximum(final, 0), np.arange(n)], np.nan)
    return Recent(
        security_ids=ids,
        previous=previous,
        previous_day=tuple(days[r] if r >= 0 else None for r in final.tolist()),
        sigma=sigma,
        returns=counts.astype(np.int64),
    )


def judge(
    check: PriceCheck, price: Floats, previous: Floats, sigma: Floats, factor: Floats
) -> tuple[Bools, Floats]:
    """Which moves are implausible: each price against its previous one times its
    corporate-action factor. Returns the verdicts and the moves (log returns; NaN where
    there is no previous price, which is not judged here)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        move = np.log(price) - np.log(previous * factor)
    limit = np.where(
        np.isnan(sigma), math.log(check.jump), np.maximum(check.sigmas * sigma, check.floor)
    )
    bad = np.abs(np.nan_to_num(move, nan=0.0)) > limit
    return bad, move


def _decimal(value: float) -> str:
    """A float price as the decimal it was stored as (its shortest text)."""
    return plain(Decimal(repr(value)))


def _number(value: Decimal) -> str:
    """A ratio to four figures: a float's short form where a float can hold it."""
    return f"{float(value):,.4g}" if value < Decimal("1e300") else f"{value:.4g}"


def _ratio(move: float) -> str:
    """A move (a log return) as a person would say it."""
    ratio = Decimal(repr(move)).exp()  # a Decimal: a move of 800 overflows a float
    if ratio >= 2:
        return f"{_number(ratio)} times"
    if ratio <= Decimal("0.5"):
        return f"1/{_number(1 / ratio)} of"
    return f"{abs(ratio - 1):.1%} {'above' if ratio > 1 else 'below'}"


def _out_of_range(price: Decimal, check: PriceCheck) -> str | None:
    if price <= 0:
        return "is not positive"
    if price > check.ceiling:
        return f"is above the ceiling of {plain(check.ceiling)}"
    return None


def _why(
    check: PriceCheck,
    *,
    price: str,
    outside: str | None,
    previous: str | None,
    move: float,
    sigma: float,
    returns: int,
) -> str:
    """Why a price is implausible, in words: the price, the previous one, the move."""
    if outside is not None:
        if previous is None:
            return f"{price} {outside}"
        if math.isnan(move):
            return f"{price} {outside}; the previous was {previous}"
        return f"{price} {outside}, and {_ratio(move)} the previous {previous}"
    said = f"{price} is {_ratio(move)} the previous {previous}"
    if math.isnan(sigma):
        return (
            f"{said}; with {returns} daily returns, too few for a volatility, a move of"
            f" more than {check.jump:g} times either way is implausible"
        )
    if check.sigmas * sigma < check.floor:  # a calm series: the floor is the limit
        return (
            f"{said}: its recent daily volatility is only {sigma:.2%}, and a move of more"
            f" than {check.floor:g} (a log return) is implausible"
        )
    return (
        f"{said}: a move of {abs(move) / sigma:,.0f} times its recent daily volatility of"
        f" {sigma:.2%}; more than {check.sigmas:g} times is implausible"
    )


def implausible_prices(
    *,
    prices: Mapping[str, Decimal],
    price_times: Mapping[str, datetime],
    recent: Recent,
    check: PriceCheck,
    factors: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Every security whose latest price is implausible, and why (see the module's
    docstring); ``factors`` are corporate actions' price factors (none are kept yet).
    The moves of all the securities are judged at once."""
    if not check.on or not prices:
        return {}
    names = sorted(prices)
    where = recent.index()
    rows = np.array([where.get(s, -1) for s in names], dtype=np.int64)
    factor = np.array([(factors or {}).get(s, 1.0) for s in names])
    previous = np.append(recent.previous, np.nan)[rows]  # row -1, no history: NaN
    sigma = np.append(recent.sigma, np.nan)[rows]
    # A price the sanity range refuses is not a number to take a logarithm of.
    positive = np.array([float(prices[s]) if prices[s] > 0 else np.nan for s in names])
    bad, move = judge(check, positive, previous, sigma, factor)
    found: dict[str, str] = {}
    for k, security in enumerate(names):
        outside = _out_of_range(prices[security], check)
        if outside is None and not bad[k]:
            continue
        row = int(rows[k])
        before = None
        if not np.isnan(previous[k]):
            before = _decimal(float(previous[k] * factor[k]))
            day = recent.previous_day[row]
            before += "" if day is None else f" of {day:%Y-%m-%d}"
        taken = price_times[security].astimezone(UTC)
        found[security] = _why(
            check,
            price=f"price {plain(prices[security])} on {taken:%Y-%m-%d}",
            outside=outside,
            previous=before,
            move=float(move[k]),
            sigma=float(sigma[k]),
            returns=int(recent.returns[row]) if row >= 0 else 0,
        )
    return found
