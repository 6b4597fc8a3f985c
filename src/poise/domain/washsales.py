"""Wash sales that already happened: which losses a household's purchases disallow,
and where each disallowed loss goes (26 U.S.C. §1091, Treas. Reg. §1.1091-1 and
§1.1091-2, IRS Publication 550).

A loss on a sale of shares is disallowed when, within the 61-day period — 30 days
before the sale, the day of the sale and 30 days after — substantially identical
shares were acquired in any account of the household (a spouse's, an IRA, a Roth).
The rules, as this module applies them:

* **Order of losses** (§1.1091-1(b)): losses are taken in the order the loss shares
  were disposed of, the earliest first; shares sold the same day, in the order they
  were originally acquired.
* **Order of replacements** (§1.1091-1(c)): the shares whose acquisition disallows a
  loss are those acquired first within the period; each replacement share absorbs
  at most one loss share, so a later loss is matched only to shares an earlier one
  left.
* **Fewer replacements than loss shares** (§1.1091-1(d)): only the loss on as many
  shares as were acquired is disallowed; the rest is allowed. The loss of a sale is
  spread evenly over its shares.
* **Basis and holding period** (§1091(d), §1.1091-2, §1223(3)): each replacement
  share's basis is its cost plus the loss disallowed on the share it replaces, and
  its holding period includes the sold share's — its holding period starts as many
  days before its acquisition as the sold share had been held.
* **A retirement account** (Rev. Rul. 2008-5): where the replacement shares were
  bought in an IRA or a Roth, the loss is disallowed for good and no basis moves.
* **Never its own replacement** (Rev. Rul. 56-602): the purchase that created the
  sold shares does not replace them — nor do the rest of that purchase's shares,
  still held (the ruling speaks of the purchase; brokers read it so on Form 1099-B) —
  and neither do shares sold before the loss sale or in it.

Pure: purchases and loss sales in, washes out. Gains are never netted against losses
within a sale: a sale is a loss sale lot by lot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO

__all__ = ["WINDOW_DAYS", "LossSale", "Purchase", "Wash", "apply_washes", "find_washes"]

WINDOW_DAYS = 30  # either side of the sale: the 61-day period


@dataclass(frozen=True, slots=True)
class Purchase:
    """Shares acquired: a lot, in an account of the household. ``retirement`` where
    the account is an IRA or a Roth: a loss washed into it is lost for good."""

    account_id: str
    lot_id: str
    identity: str  # the wash-sale identity: substantially identical securities share it
    quantity: Decimal
    cost: Decimal  # of all the lot's shares
    acquired: date
    retirement: bool = False

    def __post_init__(self) -> None:
        if self.quantity <= ZERO:
            raise ValidationError(f"purchase {self.lot_id}: quantity must be positive")
        if self.cost < ZERO:
            raise ValidationError(f"purchase {self.lot_id}: cost cannot be negative")


@dataclass(frozen=True, slots=True)
class LossSale:
    """Shares of one lot sold: ``basis`` is what those shares cost (adjusted, where an
    earlier wash added to it), ``held_since`` when their holding period began."""

    account_id: str
    lot_id: str
    identity: str
    quantity: Decimal
    basis: Decimal
    proceeds: Decimal
    sold: date
    held_since: date

    def __post_init__(self) -> None:
        if self.quantity <= ZERO:
            raise ValidationError(f"sale of {self.lot_id}: quantity must be positive")
        if self.held_since > self.sold:
            raise ValidationError(f"sale of {self.lot_id}: held from after it was sold")

    @property
    def loss(self) -> Decimal:
        """The loss on the sale (0 where it gained)."""
        return max(self.basis - self.proceeds, ZERO)


@dataclass(frozen=True, slots=True)
class Wash:
    """Shares of a loss sale matched to as many replacement shares of one purchase.

    ``disallowed`` is the loss on those shares; unless ``permanent`` (a replacement in
    a retirement account), it is added to the replacement shares' basis, and their
    holding period starts at ``holding_start``.
    """

    sale: LossSale
    replacement: Purchase
    shares: Decimal
    disallowed: Decimal
    permanent: bool
    holding_start: date

    @property
    def basis(self) -> Decimal:
        """The replacement shares' basis after the wash: their cost, plus the loss
        unless it is lost for good."""
        cost = self.replacement.cost * self.shares / self.replacement.quantity
        return cost if self.permanent else cost + self.disallowed


def _replaces(purchase: Purchase, sale: LossSale) -> bool:
    """Whether ``purchase`` may replace the shares of ``sale``: the same identity,
    within the 61-day period, and not the purchase that created them."""
    window = timedelta(days=WINDOW_DAYS)
    return (
        purchase.identity == sale.identity
        and sale.sold - window <= purchase.acquired <= sale.sold + window
        and not (purchase.account_id == sale.account_id and purchase.lot_id == sale.lot_id)
    )


def find_washes(sales: Sequence[LossSale], purchases: Sequence[Purchase]) -> list[Wash]:
    """Every wash among a household's ``sales`` and ``purchases``: see the module.

    ``sales`` may hold gains too (they are passed over). A purchase's shares that were
    sold before a loss sale, or in it, are not in ``purchases`` as replacements for
    it: the caller gives each purchase as the shares still held, or sold later.
    """
    left = {id(p): p.quantity for p in purchases}
    ordered = sorted(purchases, key=lambda p: p.acquired)  # stable: given order on a tie
    washes: list[Wash] = []
    for sale in sorted((s for s in sales if s.loss > ZERO), key=lambda s: (s.sold, s.held_since)):
        held = sale.sold - sale.held_since
        unmatched = sale.quantity
        counted = ZERO  # the loss disallowed so far: each wash takes its share of the rest
        for purchase in ordered:
            if unmatched <= ZERO:
                break
            if not _replaces(purchase, sale) or left[id(purchase)] <= ZERO:
                continue
            shares = min(unmatched, left[id(purchase)])
            left[id(purchase)] -= shares
            unmatched -= shares
            # The loss on the shares matched so far, less what earlier washes took: the
            # washes of a sale add up to its loss on those shares, to the last digit.
            so_far = (
                sale.loss
                if unmatched <= ZERO
                else sale.loss * (sale.quantity - unmatched) / sale.quantity
            )
            disallowed, counted = so_far - counted, so_far
            washes.append(
                Wash(
                    sale=sale,
                    replacement=purchase,
                    shares=shares,
                    disallowed=disallowed,
                    permanent=purchase.retirement,
                    holding_start=purchase.acquired - held,
                )
            )
    return washes


def apply_washes(lots: Sequence[TaxLot], washes: Sequence[Wash]) -> list[TaxLot]:
    """``lots`` with the washes' replacement shares adjusted: only those shares change
    (§1091(d), §1223(3)). A lot whose shares are all one wash's replacements keeps its
    id; otherwise each wash's shares become a lot of their own, ``<lot id>.<n>``, with
    their part of the cost, the loss added and the holding period carried, and the
    rest keeps the lot's id, cost share and dates. A loss lost for good (a retirement
    account's replacement) moves nothing.

    The adjustment is computed from each lot's cost, never added to a basis already
    adjusted: applying the washes of the same history twice gives the same lots.
    """
    by_lot: dict[tuple[str, str], list[Wash]] = {}
    for wash in washes:
        if not wash.permanent:
            key = (wash.replacement.account_id, wash.replacement.lot_id)
            by_lot.setdefault(key, []).append(wash)
    adjusted: list[TaxLot] = []
    for lot in lots:
        mine = by_lot.get((lot.account_id, lot.lot_id), [])
        if not mine:
            adjusted.append(lot)
            continue
        rest = lot.quantity - sum((w.shares for w in mine), ZERO)
        if rest < ZERO:
            raise ValidationError(f"lot {lot.lot_id}: washes replace more shares than it holds")
        whole = len(mine) == 1 and rest == ZERO
        for n, wash in enumerate(mine, start=1):
            cost = lot.cost_basis if whole else lot.cost_basis * wash.shares / lot.quantity
            adjusted.append(
                TaxLot(
                    lot_id=lot.lot_id if whole else f"{lot.lot_id}.{n}",
                    account_id=lot.account_id,
                    security_id=lot.security_id,
                    quantity=wash.shares,
                    cost_basis=cost,
                    acquired=lot.acquired,
                    adjusted_basis=cost + wash.disallowed,
                    holding_start=wash.holding_start,
                    disallowed_loss=wash.disallowed,
                )
            )
        if rest > ZERO:
            cost = lot.cost_basis - sum(
                (lot.cost_basis * w.shares / lot.quantity for w in mine), ZERO
            )
            adjusted.append(
                TaxLot(
                    lot_id=lot.lot_id,
                    account_id=lot.account_id,
                    security_id=lot.security_id,
                    quantity=rest,
                    cost_basis=cost,
                    acquired=lot.acquired,
                )
            )
    return adjusted
