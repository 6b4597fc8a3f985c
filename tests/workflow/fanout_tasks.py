"""Task functions for the fan-out's tests, in a module of their own so that a worker
process (the pool's, a Dask cluster's) imports them by name."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOADS: dict[str, int] = {}  # each run's token: how often this process unpickled its Firm


@dataclass
class Firm:
    """Shared data that counts, in each process, how often it arrives there."""

    rates: dict[str, int]
    token: str = ""  # one run's, to count its Firm's arrivals apart from other runs'
    failing: frozenset[str] = frozenset()
    release: str = ""  # a file that the task "wait" waits for
    die: str = ""  # the household whose task kills its worker process
    pause: float = 0.0  # seconds every other task takes

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        LOADS[self.token] = LOADS.get(self.token, 0) + 1


def tax(firm: Firm, household: str) -> int:
    """A household's figure from the shared rates; a failing household raises."""
    if household in firm.failing:
        raise ValueError(f"no lots for {household}")
    if household == firm.die:
        os._exit(3)
    time.sleep(firm.pause)
    return firm.rates[household[0]] * int(household[1:])


def arrivals(firm: Firm, household: str) -> tuple[int, int]:
    """This process, and how often the run's shared data has arrived in it."""
    time.sleep(0.02)  # long enough that every worker takes some tasks
    return os.getpid(), LOADS.get(firm.token, 0)


def wait(firm: Firm, household: str) -> str:
    """H0 returns only once the caller has seen another household's outcome (it
    makes the release file then); the others return at once."""
    if household == "H0":
        deadline = time.monotonic() + 10
        while not Path(firm.release).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the caller never saw another outcome first")
            time.sleep(0.01)
    return household


def unpicklable(firm: Firm, household: str) -> object:
    """A result that cannot travel back from a worker process."""
    return lambda: household


class Unwelcome:
    """Shared data that no worker can take: unpickling it fails, as when poise is not
    installed where the workers run."""

    def __init__(self) -> None:
        self.prices = {"AAA": 1}

    def __setstate__(self, state: dict[str, Any]) -> None:
        raise ModuleNotFoundError("No module named 'poise'")
