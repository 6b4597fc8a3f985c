"""Daily price history for the risk model, and how much of it there is, in words.

The shell reads the prices (one per security and day: the day's last) into a
:class:`PriceHistory`; the covariance comes from :func:`poise.optimize.risk.annual_covariance`.
A covariance estimated from too little history is the default one (20% volatility, no
correlation), and tracking errors made with it are rough: :meth:`PriceHistory.describe`
says which it is, so every proposal can say what its tracking errors rest on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from poise.domain.errors import ValidationError
from poise.optimize.risk import DEFAULT_VOLATILITY, MIN_DAYS, annual_covariance, complete_returns

__all__ = ["PriceHistory"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """Daily prices, oldest first: ``prices[d, s]`` is security ``s`` on ``days[d]``
    (NaN where it has none that day)."""

    security_ids: tuple[str, ...]
    days: tuple[date, ...]
    prices: Floats  # days × securities

    def __post_init__(self) -> None:
        if self.prices.shape != (len(self.days), len(self.security_ids)):
            raise ValidationError(
                f"price history of shape {self.prices.shape} for {len(self.days)} days"
                f" and {len(self.security_ids)} securities"
            )

    def select(self, security_ids: Sequence[str], *, after: date | None = None) -> PriceHistory:
        """The history of ``security_ids`` only (NaN for one it lacks), on the days after
        ``after`` on which any of them has a price — the history the store would give
        for them alone, so that a firm read once serves each account as its own read."""
        where = {s: i for i, s in enumerate(self.security_ids)}
        columns = np.full((len(self.days), len(security_ids)), np.nan)
        for j, name in enumerate(security_ids):
            if name in where:
                columns[:, j] = self.prices[:, where[name]]
        rows = (
            ~np.all(np.isnan(columns), axis=1)
            if len(security_ids)
            else np.zeros(len(self.days), bool)
        )
        if after is not None:
            rows &= np.array([d > after for d in self.days], dtype=bool)
        if rows.all():
            return PriceHistory(tuple(security_ids), self.days, columns)
        kept = np.flatnonzero(rows)
        return PriceHistory(tuple(security_ids), tuple(self.days[i] for i in kept), columns[kept])

    @property
    def returns_in_common(self) -> int:
        """Daily returns on which every security has a price on both days — what the
        covariance is estimated from."""
        if not self.security_ids or len(self.days) < 2:
            return 0
        return int(complete_returns(self.prices).shape[0])

    @property
    def falls_back(self) -> bool:
        """True when there is too little history and the default covariance is used."""
        return self.returns_in_common < MIN_DAYS

    def covariance(self) -> Floats:
        """The annual covariance, aligned with ``security_ids``."""
        return annual_covariance(self.prices)

    def describe(self) -> str:
        """What the risk model rests on, for the people reading a tracking error."""
        common = self.returns_in_common
        if common >= MIN_DAYS:
            return (
                f"risk model: {_days(common)} of prices in common,"
                f" {self.days[0]:%Y-%m-%d} to {self.days[-1]:%Y-%m-%d}"
            )
        counts = (~np.isnan(self.prices)).sum(axis=0) if self.days else np.zeros(0)
        shortest = (
            f"; shortest: {self.security_ids[int(np.argmin(counts))]}, {_days(int(counts.min()))}"
            if len(counts)
            else ""
        )
        return (
            f"risk model: default volatility ({DEFAULT_VOLATILITY:.0%}, no correlation)"
            f" — too little price history ({_days(common)} in common,"
            f" {MIN_DAYS} needed{shortest})"
        )


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"
