"""Python's cyclic garbage collector, kept out of the way of work on many objects.

Each collection of the collector's oldest generation walks every object the process
holds. A firm's read or a large booking makes hundreds of thousands of objects (lots,
rows, transactions), enough to set off such a collection again and again as they pile
up; none of them is cyclic garbage, so the walks find nothing and cost a fifth to a
third of the work (``bench/RESULTS.md``)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["paused", "set_apart"]


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off while the block runs (on again after, if it was on): for work
    that makes many objects and keeps most of them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def set_apart() -> Iterator[None]:
    """What the process holds now left out of the collections while the block runs
    (:func:`gc.freeze`): for long work beside a large body of data read before it, such
    as a firm-wide run's firm."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
