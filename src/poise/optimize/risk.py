"""The risk model: a covariance of returns, shrunk toward a scaled identity.

From daily returns of the securities (oldest first, one column each), the sample
covariance is shrunk toward ``m·I`` (``m`` the mean variance) by the Ledoit–Wolf
(2004) intensity — the one that minimises the expected squared error — and
annualised (252 trading days). A security with too little history gets the default
volatility and no correlation; so does every security when there are fewer than
``MIN_DAYS`` days of prices in common.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_VOLATILITY", "MIN_DAYS", "TRADING_DAYS", "shrunk_covariance"]

Floats = npt.NDArray[np.float64]
TRADING_DAYS = 252
MIN_DAYS = 60
DEFAULT_VOLATILITY = 0.20


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


def shrunk_covariance(prices: Floats) -> Floats:
    """Annual covariance from daily ``prices`` (days × securities; NaN where missing)."""
    n = prices.shape[1]
    fallback = np.eye(n) * DEFAULT_VOLATILITY**2
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = prices[1:] / prices[:-1] - 1.0
    complete = returns[~np.isnan(returns).any(axis=1)]
    if n == 0 or complete.shape[0] < MIN_DAYS:
        return fallback
    covariance, _ = ledoit_wolf(complete)
    return covariance * TRADING_DAYS
