"""Performance: returns, risk and attribution, vectorised over accounts.

Returns are ratios, kept as float64 (the money they are made from is exact in the
store; a return is not money). The rules, with their sources:

* **Time-weighted return** (GIPS 2020 for Firms, provisions 2.A.15–2.A.18 and the
  definitions of "time-weighted return" and "external cash flow"): the portfolio is
  valued on every day with an external cash flow, each day's return is computed from
  the value before the flow, and the days are linked geometrically. Here a day's
  external flow comes at the **start** of the day: a day's return is
  ``V_t / (V_{t-1} + F_t) − 1``, so a deposit earns from the day it arrives. Linking
  telescopes: over days without flows, TWR is the ratio of the end value to the
  start value.
* **Modified Dietz** (the GIPS approximation where only period-end values exist):
  ``(V_end − V_start − ΣF) / (V_start + Σ w_i F_i)``, each flow weighted by the part
  of the period it was invested, ``w_i = (CD − D_i) / CD`` for a flow ``D_i`` days
  into a period of ``CD`` days.
* **Money-weighted return** (IRR; GIPS's "money-weighted return"): the annual rate at
  which the discounted flows — the start value and each deposit in, each withdrawal
  and the end value out — sum to nothing, days counted Actual/365 as spreadsheets'
  XIRR counts them; solved by bracketing (Brent's method, scipy).
* **Annualising** (GIPS 2020, 5.A.4): a return over a period of a year or more is
  annualised, ``(1 + R)^(365 / days) − 1``; one shorter is never.
* **Risk**: volatility, the standard deviation of daily returns (sample, ``ddof=1``)
  times √252; tracking error, the same of the daily difference from a benchmark;
  maximum drawdown, the largest fall of the growth of a dollar from its running peak.
* **Attribution** (Brinson and Fachler, 1985): against a benchmark whose total return
  is ``R_b = Σ w_b r_b``, each segment's allocation effect is ``(w_p − w_b)(r_b −
  R_b)``, its selection effect ``w_b (r_p − r_b)`` and its interaction ``(w_p − w_b)(r_p
  − r_b)``; over all segments they add up to the active return ``R_p − R_b``.

Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from poise.domain.errors import ValidationError

__all__ = [
    "Attribution",
    "annualised",
    "brinson_fachler",
    "daily_returns",
    "irr",
    "link",
    "max_drawdown",
    "modified_dietz",
    "period_returns",
    "period_table",
    "tracking_error",
    "twr",
    "volatility",
]

Array = npt.NDArray[np.float64]
TRADING_DAYS = 252
_LONGEST_CLOSURE = 4  # days from a period's eve to its first trading day, at most


def daily_returns(values: Array, flows: Array, start: Array) -> Array:
    """Each day's time-weighted return, for each account (rows).

    ``values``: each day's closing value (accounts × days); ``flows``: each day's
    external flow, in at the start of the day (deposits positive, withdrawals
    negative); ``start``: the value before the first day. A day with nothing invested
    (no value before it, nothing deposited) returns 0."""
    values, flows = np.asarray(values, dtype=float), np.asarray(flows, dtype=float)
    if values.shape != flows.shape:
        raise ValidationError(f"values {values.shape} and flows {flows.shape} differ in shape")
    before = np.concatenate([np.asarray(start, dtype=float)[..., None], values[..., :-1]], -1)
    invested = before + flows
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(invested > 0, values / np.where(invested > 0, invested, 1.0) - 1, 0.0)


def link(returns: Array, axis: int = -1) -> Array:
    """Returns linked geometrically: ``Π(1 + r) − 1`` along ``axis``."""
    growth: Array = np.prod(1.0 + np.asarray(returns, dtype=float), axis=axis)
    return growth - 1.0


def twr(values: Array, flows: Array, start: Array) -> Array:
    """The time-weighted return of the whole span, for each account."""
    return link(daily_returns(values, flows, start))


def modified_dietz(start: Array, end: Array, flows: Array) -> Array:
    """Modified Dietz returns over a period of ``flows.shape[-1]`` days, for each
    account: ``flows[..., d]`` came in at the start of day ``d`` (0: the first), so it
    is weighted ``(days − d) / days``."""
    flows = np.asarray(flows, dtype=float)
    days = flows.shape[-1]
    weights = (days - np.arange(days)) / days
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    invested = start + flows @ weights
    gain = end - start - flows.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(invested > 0, gain / np.where(invested > 0, invested, 1.0), 0.0)


def irr(days: Sequence[date], amounts: Sequence[float]) -> float:
    """The money-weighted return, annual: the rate at which ``amounts`` (out of the
    investor positive, back to them negative — or the other way round) on ``days``
    discount to nothing, Actual/365. ``ValidationError`` when the flows do not change
    sign or no rate between −99.99% and 10⁶% balances them."""
    if len(days) != len(amounts) or len(days) < 2:
        raise ValidationError("an IRR needs at least two flows, each on a day")
    first = min(days)
    years = np.array([(d - first).days / 365.0 for d in days])
    cash = np.array(amounts, dtype=float)
    if not (cash > 0).any() or not (cash < 0).any():
        raise ValidationError("an IRR needs flows both ways")

    def npv(rate: float) -> float:
        return float(np.sum(cash / (1.0 + rate) ** years))

    low, high = -0.9999, 10_000.0
    if npv(low) * npv(high) > 0:
        raise ValidationError("no rate balances these flows")
    return float(brentq(npv, low, high, xtol=1e-12, rtol=1e-12, maxiter=500))


def annualised(total: float, days: int) -> float:
    """A return over ``days`` days as an annual rate; a period under a year is not
    annualised (GIPS): its return is given as it is."""
    if days < 365:
        return total
    return float((1.0 + total) ** (365.0 / days) - 1.0)


def volatility(returns: Array, axis: int = -1) -> Array:
    """Annualised: the sample standard deviation of daily returns × √252."""
    spread: Array = np.std(np.asarray(returns, dtype=float), axis=axis, ddof=1)
    return spread * math.sqrt(TRADING_DAYS)


def tracking_error(returns: Array, benchmark: Array, axis: int = -1) -> Array:
    """Annualised standard deviation of the daily difference from the benchmark."""
    return volatility(np.asarray(returns, dtype=float) - np.asarray(benchmark, dtype=float), axis)


def max_drawdown(returns: Array, axis: int = -1) -> Array:
    """The largest fall from a running peak of the growth of a dollar (0 to 1)."""
    growth = np.cumprod(1.0 + np.asarray(returns, dtype=float), axis=axis)
    peak = np.maximum.accumulate(np.maximum(growth, 1.0), axis=axis)
    drawdown: Array = np.max(1.0 - growth / peak, axis=axis)
    return drawdown


def period_returns(days: Sequence[date], returns: Array, as_of: date) -> dict[str, float | None]:
    """Month, quarter and year to date, 1, 3 and 5 years (annualised) and since
    inception (annualised past a year), from ``returns`` (one per day of ``days``, in
    order) up to ``as_of``. A period the history does not cover is None."""
    table = period_table(days, np.asarray(returns, dtype=float)[None, :], as_of)
    return {name: None if found is None else float(found[0]) for name, found in table.items()}


def period_table(days: Sequence[date], returns: Array, as_of: date) -> dict[str, Array | None]:
    """:func:`period_returns` for each row of ``returns`` (accounts × days) at once."""
    series = np.asarray(returns, dtype=float)
    if len(days) != series.shape[-1]:
        raise ValidationError("one return for each day")
    stamps = np.array([d.toordinal() for d in days])
    upto = stamps <= as_of.toordinal()
    first = days[0] if days else as_of

    def since(after: date) -> Array | None:
        """Linked over the days after ``after`` up to ``as_of``; None if the history
        starts later than the period's first trading day can be (a weekend and a
        Monday holiday after ``after``)."""
        if (first - after).days > _LONGEST_CLOSURE:
            return None
        return link(series[:, upto & (stamps > after.toordinal())])

    quarter_start = date(as_of.year, 3 * ((as_of.month - 1) // 3) + 1, 1)
    found: dict[str, Array | None] = {
        "mtd": since(date(as_of.year, as_of.month, 1) - timedelta(days=1)),
        "qtd": since(quarter_start - timedelta(days=1)),
        "ytd": since(date(as_of.year, 1, 1) - timedelta(days=1)),
    }
    for years in (1, 3, 5):
        try:
            back = as_of.replace(year=as_of.year - years)
        except ValueError:  # 29 February
            back = as_of.replace(year=as_of.year - years, day=28)
        total = since(back)
        found[f"{years}y"] = None if total is None else _annualised(total, (as_of - back).days)
    inception = link(series[:, upto])
    found["inception"] = _annualised(inception, (as_of - first).days + 1)  # from its eve
    return found


def _annualised(total: Array, days: int) -> Array:
    if days < 365:
        return total
    grown: Array = (1.0 + total) ** (365.0 / days) - 1.0
    return grown


@dataclass(frozen=True, slots=True)
class Attribution:
    """Brinson–Fachler effects by segment, and the returns they explain."""

    segments: tuple[str, ...]
    allocation: tuple[float, ...]
    selection: tuple[float, ...]
    interaction: tuple[float, ...]
    portfolio: float  # R_p
    benchmark: float  # R_b

    @property
    def active(self) -> float:
        return self.portfolio - self.benchmark

    @property
    def explained(self) -> float:
        """Σ allocation + selection + interaction: the active return."""
        return float(sum(self.allocation) + sum(self.selection) + sum(self.interaction))


def brinson_fachler(
    segments: Sequence[str],
    portfolio_weights: Sequence[float],
    benchmark_weights: Sequence[float],
    portfolio_returns: Sequence[float],
    benchmark_returns: Sequence[float],
) -> Attribution:
    """Brinson–Fachler attribution of one period (see the module). Weights are each
    side's shares of its value at the start of the period, adding up to 1."""
    wp, wb = np.array(portfolio_weights, float), np.array(benchmark_weights, float)
    rp, rb = np.array(portfolio_returns, float), np.array(benchmark_returns, float)
    if not len(segments) == len(wp) == len(wb) == len(rp) == len(rb):
        raise ValidationError("one weight and one return on each side for each segment")
    for name, weights in (("portfolio", wp), ("benchmark", wb)):
        if not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-9):
            raise ValidationError(f"the {name}'s weights add up to {weights.sum()}, not 1")
    total_b = float(wb @ rb)
    return Attribution(
        segments=tuple(segments),
        allocation=tuple(float(x) for x in (wp - wb) * (rb - total_b)),
        selection=tuple(float(x) for x in wb * (rp - rb)),
        interaction=tuple(float(x) for x in (wp - wb) * (rp - rb)),
        portfolio=float(wp @ rp),
        benchmark=total_b,
    )
