"""Each set of securities' risk model, worked out once while one price history is in use.

A run's worker plans household after household from the same reference, and most of
its accounts hold one of a few sets of securities (742 accounts of the demo firm held
58 sets among them): the history selected for a set, what its tracking errors rest on,
its covariance and its factor model are the same for every account that holds it, so
they are worked out the first time a set is met and kept — for as long as the process
plans from that history. A different history (the next run's read) starts afresh, and
at most ``SETS`` sets are kept at a time.

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

__all__ = ["SETS", "Risks", "risks"]

Floats = npt.NDArray[np.float64]
SETS = 4096  # sets of securities kept; beyond, the memo starts afresh


class Risks:
    """One price history's risk models, by set of securities (in the order given)."""

    def __init__(self, history: PriceHistory) -> None:
        self.history = history
        self._selected: dict[tuple[str, ...], PriceHistory] = {}
        self._described: dict[tuple[str, ...], tuple[str, bool]] = {}
        self._covariances: dict[tuple[str, ...], Floats] = {}
        self._models: dict[tuple[str, ...], RiskModel] = {}

    def selected(self, ids: Sequence[str]) -> PriceHistory:
        """The history of ``ids`` alone (:meth:`PriceHistory.select`)."""
        key = tuple(ids)
        found = self._selected.get(key)
        if found is None:
            found = self._selected[key] = self.history.select(list(key))
        return found

    def described(self, ids: Sequence[str]) -> tuple[str, bool]:
        """What ``ids``'s tracking errors rest on, in words, and whether it is the
        default covariance (too little history)."""
        key = tuple(ids)
        found = self._described.get(key)
        if found is None:
            history = self.selected(key)
            found = self._described[key] = (history.describe(), history.falls_back)
        return found

    def covariance(self, ids: Sequence[str]) -> Floats:
        """The annual covariance of ``ids``, in that order (read-only: it is shared)."""
        key = tuple(ids)
        found = self._covariances.get(key)
        if found is None:
            found = self.selected(key).covariance()
            found.flags.writeable = False
            self._covariances[key] = found
        return found

    def model(self, ids: Sequence[str]) -> RiskModel:
        """The factor model of ``ids``'s covariance (:meth:`RiskModel.of`; its arrays
        read-only: it is shared)."""
        key = tuple(ids)
        found = self._models.get(key)
        if found is None:
            found = RiskModel.of(list(key), self.covariance(key))
            found.exposures.flags.writeable = False
            found.specific.flags.writeable = False
            self._models[key] = found
        return found

    @property
    def sets(self) -> int:
        return len(self._selected)


_lock = threading.Lock()
_in_use: list[Risks] = []  # the memo of the history in use, if any


def risks(history: PriceHistory) -> Risks:
    """The risk models of ``history``: those kept, while it is the history in use (the
    same object); else a fresh memo, which is kept instead."""
    with _lock:
        if not _in_use or _in_use[0].history is not history or _in_use[0].sets >= SETS:
            _in_use[:] = [Risks(history)]
        return _in_use[0]
