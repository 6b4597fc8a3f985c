"""The risk model: the sample covariance of daily returns, as a statistical factor model.

From daily simple returns of the securities (oldest first, one column each; only the
days on which every security has a price on both ends), each demeaned, the covariance
is the sample one (divided by the number of days) annualised by 252 trading days. It
is not shrunk: two securities that move together — SPY and VOO, an index and a fund
that tracks it — keep a tracking error near zero between them, as they had in the
data and go on having. Shrinking toward a scaled identity (Ledoit–Wolf, kept here as
:func:`shrunk_covariance` for comparison) lifts every near-zero direction to about the
average variance, and so priced a swap of VOO for SPY at 5% tracking error a year;
``bench/risk_oos.py`` measures the estimators against each other out of sample. A
security with too little history gets the default volatility and no correlation; so
does every security when there are fewer than ``MIN_DAYS`` days of prices in common.

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
    "TWIN_CORRELATION",
    "RiskModel",
    "annual_covariance",
    "complete_returns",
    "ledoit_wolf",
    "sample_covariance_of_returns",
    "shrunk_covariance",
]

Floats = npt.NDArray[np.float64]
TRADING_DAYS = 252
MIN_DAYS = 60
DEFAULT_VOLATILITY = 0.20
FACTORS = 40
TWIN_CORRELATION = 0.95  # securities this correlated keep their residuals' covariance


def sample_covariance_of_returns(returns: Floats) -> Floats:
    """The sample covariance of daily ``returns`` (days × securities), each demeaned,
    divided by the number of days: daily, not annualised."""
    x = returns - returns.mean(axis=0)
    covariance: Floats = x.T @ x / returns.shape[0]
    return covariance


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


def annual_covariance(prices: Floats) -> Floats:
    """The risk model's annual covariance from daily ``prices`` (days × securities; NaN
    where missing): the sample covariance of the returns in common, × 252."""
    n = prices.shape[1]
    complete = complete_returns(prices)
    if n == 0 or complete.shape[0] < MIN_DAYS:
        return np.eye(n) * DEFAULT_VOLATILITY**2
    covariance: Floats = sample_covariance_of_returns(complete) * TRADING_DAYS
    return covariance


def shrunk_covariance(prices: Floats) -> Floats:
    """Annual covariance from daily ``prices``, shrunk toward a scaled identity
    (Ledoit–Wolf): the estimator the risk model is compared against."""
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
        if keep == n:  # kept whole: nothing is left over
            return cls(tuple(ids), exposures, np.zeros(n))
        exposures = np.hstack([exposures, _twin_factors(covariance, exposures)])
        specific = np.clip(np.diag(covariance) - np.sum(exposures**2, axis=1), 0.0, None)
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


def _twin_factors(covariance: Floats, exposures: Floats) -> Floats:
    """Factor columns that keep the residual covariance within each group of twins.

    Twins are securities correlated at ``TWIN_CORRELATION`` or more (linked in chains:
    SPY with VOO, VOO with IVV); what the leading factors leave of their covariance
    goes into one column per component of the group's residual, so the tracking error
    between twins is the one in the covariance, not the sum of their left-over
    variances."""
    n = covariance.shape[0]
    variance = np.diag(covariance)
    scale = np.sqrt(np.where(variance > 0.0, variance, np.inf))
    correlated = covariance / np.outer(scale, scale) >= TWIN_CORRELATION
    np.fill_diagonal(correlated, False)
    group = np.arange(n)
    for i, j in zip(*np.nonzero(np.triu(correlated)), strict=True):
        a, b = _root(group, int(i)), _root(group, int(j))
        group[max(a, b)] = min(a, b)
    roots = np.array([_root(group, i) for i in range(n)])
    columns: list[Floats] = []
    for root in np.unique(roots):
        members = np.flatnonzero(roots == root)
        if len(members) < 2:
            continue
        common = exposures[members] @ exposures[members].T
        residual = covariance[np.ix_(members, members)] - common
        values, vectors = np.linalg.eigh((residual + residual.T) / 2)
        for value, vector in zip(values, vectors.T, strict=True):
            if value > 0.0:
                column = np.zeros(n)
                column[members] = vector * np.sqrt(value)
                columns.append(column)
    if not columns:
        return np.zeros((n, 0))
    stacked: Floats = np.column_stack(columns)
    return stacked


def _root(group: npt.NDArray[np.int64], i: int) -> int:
    while group[i] != i:
        i = int(group[i])
    return i
