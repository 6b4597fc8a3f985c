"""A backtest's figures, per method: returns before and after tax, tax alpha, tracking
error, turnover, trades, losses harvested and tax by year.

- **Returns** are time-weighted: each day's return is ``(V_t − F_t) / V_(t−1) − 1``
  with ``F_t`` the day's external flows, chained, and annualised over calendar time,
  ``growth ** (365.25 / days) − 1``. The first day's return is measured from the
  money the household opened with, so the first purchases' costs count.
- **Pre-tax**: ``V`` is the household's value; tax paid leaves it as a flow to the
  tax authority (a refund comes in as one), so taxes do not lower the pre-tax return.
- **After-tax**: ``V`` is the value less the tax owed and not yet paid — on the last
  day, all of it, the liquidation's included when asked for; tax is no flow: it is
  a cost of the method. Deposits are flows in both.
- **Tax alpha**: a method's annualised after-tax return less the ``bands`` method's.
- **Tracking error**: the annualised standard deviation (√252) of the daily
  difference between the household's pre-tax return and the model's — the model held
  at its weights every day, its cash earning nothing.
- **Turnover**: sales over the average value, a year — what was sold, not what was
  bought, so new money does not count as turnover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from poise.domain.money import cents
from poise.domain.taxes import YearTax

__all__ = [
    "Lived",
    "Summary",
    "annualised",
    "model_returns",
    "summarise",
    "time_weighted",
    "tracking_error",
    "year_rows",
]

Floats = npt.NDArray[np.float64]
TRADING_DAYS = 252
BENCHMARK = "bands"


def time_weighted(values: Floats, flows: Floats, opening: float) -> Floats:
    """Each day's return, the day's ``flows`` taken out; the first from ``opening``."""
    before = np.concatenate([[opening], values[:-1]])
    safe = np.where(before > 0, before, 1.0)
    returns: Floats = np.where(before > 0, (values - flows) / safe - 1, 0.0)
    return returns


def annualised(returns: Floats, days: Sequence[date], start: date | None = None) -> float:
    """The chained ``returns`` as a yearly rate over the calendar time they span (from
    the day before the first, or ``start``)."""
    if not len(returns):
        return 0.0
    growth = float(np.prod(1 + returns))
    first = start or days[0]
    span = max((days[-1] - first).days, 1)
    return float(growth ** (365.25 / span) - 1) if growth > 0 else -1.0


def model_returns(closes: Floats, weights: Floats) -> Floats:
    """The model's daily return, held at ``weights`` every day (``closes``: the days
    × the model's securities, the day before the first included)."""
    daily = closes[1:] / closes[:-1] - 1
    returns: Floats = daily @ weights
    return returns


def tracking_error(returns: Floats, model: Floats) -> float:
    """Annualised standard deviation of the daily difference."""
    if len(returns) < 2:
        return 0.0
    return float(np.std(returns - model, ddof=1) * np.sqrt(TRADING_DAYS))


@dataclass(frozen=True, slots=True)
class Summary:
    """One method's figures (fractions: 0.071 is 7.1% a year)."""

    method: str
    pre_tax_return: float
    after_tax_return: float
    tax_alpha: float | None  # against bands; None when bands was not run
    tracking_error: float
    turnover: float  # a year
    trades: int
    losses_harvested: Decimal
    losses_disallowed: Decimal
    tax_paid: Decimal  # over the whole run, the tax owed at the end included
    final_value: Decimal
    final_after_tax: Decimal

    def json(self) -> dict[str, Any]:
        found = asdict(self)
        for key in ("losses_harvested", "losses_disallowed", "tax_paid", "final_value",
                    "final_after_tax"):  # fmt: skip
            found[key] = str(found[key])
        return found


def year_rows(years: Sequence[YearTax]) -> list[dict[str, Any]]:
    """The tax of each year, as JSON: exact decimals as strings."""
    return [
        {
            "year": y.year,
            "short_gains": str(cents(y.short_gains)),
            "long_gains": str(cents(y.long_gains)),
            "carried_in": str(cents(y.carried_in.short + y.carried_in.long)),
            "taxed_short": str(cents(y.taxed_short)),
            "taxed_long": str(cents(y.taxed_long)),
            "deducted": str(cents(y.deducted)),
            "carried_out": str(cents(y.carried_out.short + y.carried_out.long)),
            "tax": str(y.tax),
        }
        for y in years
    ]


class Lived(Protocol):
    """What a method's simulation gives (``poise.workflow.backtest.MethodResult``)."""

    @property
    def days(self) -> tuple[date, ...]: ...
    @property
    def value(self) -> Floats: ...
    @property
    def after_tax(self) -> Floats: ...
    @property
    def flows(self) -> Floats: ...
    @property
    def taxes_paid(self) -> Floats: ...
    @property
    def sold(self) -> Floats: ...
    @property
    def trades(self) -> int: ...
    @property
    def losses_harvested(self) -> Decimal: ...
    @property
    def disallowed(self) -> Decimal: ...
    @property
    def years(self) -> tuple[YearTax, ...]: ...
    @property
    def final_tax(self) -> Decimal: ...


def summarise(
    results: Mapping[str, Lived], *, opening: float, model: Floats, start: date
) -> dict[str, Summary]:
    """Each method's :class:`Summary`. ``model``: the model's daily returns over the
    same days; ``start``: the day before the first (the opening)."""
    found: dict[str, Summary] = {}
    for method, result in results.items():
        pre = time_weighted(result.value, result.flows - result.taxes_paid, opening)
        after = time_weighted(result.after_tax, result.flows, opening)
        years = max((result.days[-1] - start).days / 365.25, 1 / 365.25)
        tax = sum((y.tax for y in result.years), Decimal(0))
        found[method] = Summary(
            method=method,
            pre_tax_return=annualised(pre, result.days, start),
            after_tax_return=annualised(after, result.days, start),
            tax_alpha=None,
            tracking_error=tracking_error(pre, model),
            turnover=float(result.sold.sum() / max(float(result.value.mean()), 1.0) / years),
            trades=result.trades,
            losses_harvested=cents(result.losses_harvested),
            losses_disallowed=cents(result.disallowed),
            tax_paid=tax,
            final_value=Decimal(repr(float(result.value[-1]))).quantize(Decimal("0.01")),
            final_after_tax=Decimal(repr(float(result.after_tax[-1]))).quantize(Decimal("0.01")),
        )
    if BENCHMARK in found:
        base = found[BENCHMARK].after_tax_return
        found = {m: replace(s, tax_alpha=s.after_tax_return - base) for m, s in found.items()}
    return found
