"""Drift against the model, and band checks, for every account at once.

For each block of accounts on one model (see :mod:`poise.monitor.book`):

- a position's weight is its value over the account's value (positions plus cash);
  its drift is weight minus target, in weight points;
- its band is a half-width around the target: ``min(absolute, relative × target)``
  from the account's override, else the position's own band, else the model's
  default, else the firm's; a position with no band at all never breaches;
- a position **breaches** when ``|drift| > width``. A drift within ``EDGE`` (10⁻⁹ of
  the account, a cent on ten million dollars) of the edge counts as inside, so an
  account sitting exactly on its band edge is not traded back and forth by float noise;
- asset classes are checked the same way, against the sum of their targets, where
  the model gives them a band;
- cash is **short** when it is below the reserve (the larger of the amount and the
  fraction of value) plus the withdrawals asked for, and in **excess** when its
  weight is above ``max(cash target, reserve)`` by more than the cash band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from poise.monitor.book import AccountBlock, Book, Floats

__all__ = ["EDGE", "BlockDrift", "scan", "scan_block", "widths"]

EDGE = 1e-9
Bools = npt.NDArray[np.bool_]


def widths(target: Floats, absolute: Floats, relative: Floats) -> Floats:
    """Band half-widths: the narrower of the absolute and the relative band; NaN for none."""
    with np.errstate(invalid="ignore"):
        return np.fmin(absolute, relative * target)


@dataclass(frozen=True, slots=True)
class BlockDrift:
    """Drift of every account of one block; arrays have one row per account."""

    block: AccountBlock
    value: Floats  # (n,) positions plus cash
    weight: Floats  # (n, T)
    drift: Floats  # (n, T) weight − target
    width: Floats  # (n, T) band half-width, NaN: no band
    breach: Bools  # (n, T)
    extra_weight: Floats  # (n, E) holdings outside the model (target 0)
    extra_breach: Bools  # (n, E)
    class_weight: Floats  # (n, C)
    class_breach: Bools  # (n, C)
    cash_weight: Floats  # (n,)
    cash_target: Floats  # (n,) max(model cash target, reserve / value)
    cash_short: Bools  # (n,)
    cash_excess: Bools  # (n,)

    @property
    def out_of_band(self) -> Bools:
        """Accounts with any position or asset class outside its band."""
        found = self.breach.any(axis=1) | self.extra_breach.any(axis=1)
        return np.asarray(found | self.class_breach.any(axis=1), dtype=np.bool_)

    @property
    def max_drift(self) -> Floats:
        """The largest absolute drift of any position, in weight points."""
        worst: Floats = np.abs(self.drift).max(axis=1, initial=0.0)
        outside: Floats = self.extra_weight.max(axis=1, initial=0.0)
        return np.maximum(worst, outside)


def _account_widths(block: AccountBlock, target: Floats, own: Floats) -> Floats:
    """Per-account band widths: the account's override pair where it has one. With no
    override in the block, the shared widths come back as they are (they broadcast)."""
    n = block.size
    overridden = ~(np.isnan(block.band_abs) & np.isnan(block.band_rel))
    if not overridden.any():
        return own
    result = np.array(np.broadcast_to(own, (n, own.shape[-1])))
    rows = np.flatnonzero(overridden)
    rows_target = target[rows] if target.ndim == 2 else target  # per-account targets (cash)
    result[rows] = widths(rows_target, block.band_abs[rows, None], block.band_rel[rows, None])
    return result


def scan_block(block: AccountBlock, prices: Floats) -> BlockDrift:
    """Weights, drift and breaches of one block at ``prices`` (one per book security)."""
    layout = block.layout
    values = block.quantity * prices[block.slot_security]
    extra_prices = np.where(block.extra_security >= 0, prices[block.extra_security], 0.0)
    extra_values = block.extra_quantity * extra_prices
    total = values.sum(axis=1) + extra_values.sum(axis=1) + block.cash
    safe = np.where(total > 0, total, np.inf)  # an empty account has weight 0 everywhere
    scale = 1.0 / safe
    weight = values * scale[:, None]
    drift = weight - layout.target
    width = _account_widths(
        block, layout.target, widths(layout.target, layout.band_abs, layout.band_rel)
    )
    breach = np.abs(drift) > (width + EDGE)

    extra_weight = extra_values * scale[:, None]
    zero = np.zeros(1)
    extra_width = _account_widths(
        block, zero, widths(zero, np.array([layout.default_abs]), np.array([layout.default_rel]))
    )
    extra_breach = extra_weight > (extra_width + EDGE)

    onehot = np.zeros((len(layout.securities), len(layout.classes)))
    onehot[np.arange(len(layout.securities)), layout.class_of] = 1.0
    class_weight = weight @ onehot
    class_width = widths(layout.class_target, layout.class_abs, layout.class_rel)
    class_breach = np.abs(class_weight - layout.class_target) > class_width + EDGE

    reserve = np.maximum(block.reserve_amount, block.reserve_fraction * total) + block.pending_out
    cash_weight = block.cash * scale
    cash_target = np.maximum(layout.cash_target, reserve * scale)
    cash_width = np.broadcast_to(
        _account_widths(
            block,
            cash_target[:, None],
            widths(cash_target[:, None], np.array([layout.cash_abs]), np.array([layout.cash_rel])),
        ),
        (block.size, 1),
    )[:, 0]
    return BlockDrift(
        block=block,
        value=total,
        weight=weight,
        drift=drift,
        width=np.broadcast_to(width, drift.shape),
        breach=breach,
        extra_weight=extra_weight,
        extra_breach=extra_breach,
        class_weight=class_weight,
        class_breach=class_breach,
        cash_weight=cash_weight,
        cash_target=cash_target,
        cash_short=block.cash < reserve - EDGE * np.maximum(total, 1.0),
        cash_excess=cash_weight - cash_target > cash_width + EDGE,
    )


def scan(book: Book, prices: Floats) -> tuple[BlockDrift, ...]:
    """Every block of the firm at ``prices``, aligned to ``book.securities``."""
    return tuple(scan_block(block, prices) for block in book.blocks)
