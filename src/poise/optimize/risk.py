"""The risk model: a covariance of returns, shrunk toward a scaled identity.

From daily returns of the securities (oldest first, one column each), the sample
covariance is shrunk toward ``m·I`` (``m`` the mean variance) by the Ledoit–Wolf
(2004) intensity — the one that minimises the expected squared error — and
annualised (252 trading days). A security with too little history gets the default
volatility and no correlation; so does every security when there are fewer than
``MIN_DAYS`` days of prices in common.

The optimiser works with the covariance as a statistical factor model,
``Σ ≈ B Bᵀ + diag(d)``: ``B`` the leading ``FACTORS`` principal components (scaled by
the square roots of their variances), ``d`` each security's variance left over, so
every security's own variance is exact and only small correlations between the
residuals are dropped. A covariance of up to ``FACTORS`` securities is kept whole.
A :class:`RiskModel` is built once for a universe and serves every account in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_VOLATILITY",
    "FACTORS",
    "MIN_DAYS",
    "TRADING_DAYS",
    "RiskModel",
    "complete_returns",
    "shrunk_covariance",
]

Floats = npt.NDArray[np.float64]
TRADING_DAYS = 252
MIN_DAYS = 60
DEFAULT_VOLATILITY = 0.20
FACTORS = 40


def ledoit_wolf(returns: Floats) -> tuple[Floats, float]:
    """The shrunk covariance of daily ``returns`` (days × securities) and the intensity."""
    days, n = returns.shape
    x = returns - returns.mean(axis=0)
    sample = x.T @ x / days
    mean_variance = float(np.trace(sample)) / n
    target = mean_variance * np.eye(n)
    distance = float(np.sum((sample - target) ** 2)) / n
    if distance <= 0.0:
        return sample, 0.0
    fourth = float(np.sum(np.sum(x**2, axis=1) ** 2))
    spread = (fourth / days - float(np.sum(sample**2))) / days / n
    intensity = min(max(spread, 0.0), distance) / distance
    return intensity * target + (1.0 - intensity) * sample, intensity


def complete_returns(prices: Floats) -> Floats:
    """Daily returns (days − 1 × securities) on which every security has a price on both
    days — what the covariance is estimated from."""
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = prices[1:] / prices[:-1] - 1.0
    complete: Floats = returns[~np.isnan(returns).any(axis=1)]
    return complete


def shrunk_covariance(prices: Floats) -> Floats:
    """Annual covariance from daily ``prices`` (days × securities; NaN where missing)."""
    n = prices.shape[1]
    fallback = np.eye(n) * DEFAULT_VOLATILITY**2
    complete = complete_returns(prices)
    if n == 0 or complete.shape[0] < MIN_DAYS:
        return fallback
    covariance, _ = ledoit_wolf(complete)
    return covariance * TRADING_DAYS


@dataclass(frozen=True, slots=True)
class RiskModel:
    """``Σ = B Bᵀ + diag(d)`` over the securities ``ids`` (annual, in weight units)."""

    ids: tuple[str, ...]
    exposures: Floats  # B: securities × factors
    specific: Floats  # d: securities

    @classmethod
    def of(cls, ids: tuple[str, ...] | list[str], covariance: Floats) -> RiskModel:
        """The factor model of ``covariance`` (aligned with ``ids``); see the module."""
        n = covariance.shape[0]
        if n == 0:
            return cls(tuple(ids), np.zeros((0, 0)), np.zeros(0))
        values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
        keep = min(n, FACTORS)
        values, vectors = values[-keep:], vectors[:, -keep:]
        exposures = vectors * np.sqrt(np.clip(values, 0.0, None))
        specific = np.clip(np.diag(covariance) - np.sum(exposures**2, axis=1), 0.0, None)
        if keep == n:  # kept whole: nothing is left over
            specific = np.zeros(n)
        return cls(tuple(ids), exposures, specific)

    def restricted(self, ids: tuple[str, ...] | list[str]) -> RiskModel:
        """The model of ``ids`` only (each must be in it), in that order."""
        where = {name: i for i, name in enumerate(self.ids)}
        missing = [name for name in ids if name not in where]
        if missing:
            raise KeyError(f"no risk for {missing}")
        rows = np.array([where[name] for name in ids], dtype=np.int64)
        return RiskModel(tuple(ids), self.exposures[rows], self.specific[rows])

    @property
    def covariance(self) -> Floats:
        """The covariance the model stands for."""
        matrix: Floats = self.exposures @ self.exposures.T + np.diag(self.specific)
        return matrix
