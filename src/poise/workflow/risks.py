"""Each set of securities' risk model, worked out once while one price history is in use.

A run's worker plans household after household from the same reference, and most of
its accounts hold one of a few sets of securities (742 accounts of the demo firm held
58 sets among them): what a set's tracking errors rest on, its covariance and its
factor model are the same for every account that holds it, so they are worked out the
first time a set is met and kept — for as long as the process plans from that
history. A different history (the next run's read) starts afresh, and so does a memo
that has come to hold ``KEPT_BYTES`` of arrays (a firm whose accounts each hold a set
of their own gains nothing from it, and must not pay for it in memory).

What is kept is shared between households, so its arrays are read-only: a covariance,
and a risk model's exposures and specific variances.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from poise.optimize.history import PriceHistory
from poise.optimize.risk import RiskModel

__all__ = ["KEPT_BYTES", "Risks", "risks"]

Floats = npt.NDArray[np.float64]
KEPT_BYTES = 64 * 2**20  # arrays a memo holds at most; beyond, it starts afresh


def _shared(array: Floats) -> Floats:
    array.flags.writeable = False
    return array


class Risks:
    """One price history's risk models, by set of securities (in the order given)."""

    def __init__(self, history: PriceHistory) -> None:
        self.history = history
        self.kept_bytes = 0
        self._sets: dict[tuple[str, ...], tuple[tuple[str, bool], Floats]] = {}
        self._models: dict[tuple[str, ...], RiskModel] = {}

    def _set(self, ids: Sequence[str]) -> tuple[tuple[str, bool], Floats]:
        """``ids``'s description and covariance, from its history selected once."""
        key = tuple(ids)
        found = self._sets.get(key)
        if found is None:
            history = self.history.select(list(key))
            covariance = _shared(history.covariance())
            found = self._sets[key] = ((history.describe(), history.falls_back), covariance)
            self.kept_bytes += covariance.nbytes
        return found

    def described(self, ids: Sequence[str]) -> tuple[str, bool]:
        """What ``ids``'s tracking errors rest on, in words, and whether it is the
        default covariance (too little history)."""
        return self._set(ids)[0]

    def covariance(self, ids: Sequence[str]) -> Floats:
        """The annual covariance of ``ids``, in that order (read-only: it is shared)."""
        return self._set(ids)[1]

    def model(self, ids: Sequence[str]) -> RiskModel:
        """The factor model of ``ids``'s covariance (:meth:`RiskModel.of`; its arrays
        read-only: it is shared)."""
        key = tuple(ids)
        found = self._models.get(key)
        if found is None:
            found = RiskModel.of(list(key), self.covariance(key))
            _shared(found.exposures)
            _shared(found.specific)
            self.kept_bytes += found.exposures.nbytes + found.specific.nbytes
            self._models[key] = found
        return found


_lock = threading.Lock()
_in_use: list[Risks] = []  # the memo of the history in use, if any


def risks(history: PriceHistory) -> Risks:
    """The risk models of ``history``: those kept, while it is the history in use (the
    same object) and they are not too many; else a fresh memo, kept instead."""
    with _lock:
        if not _in_use or _in_use[0].history is not history or _in_use[0].kept_bytes >= KEPT_BYTES:
            _in_use[:] = [Risks(history)]
        return _in_use[0]
