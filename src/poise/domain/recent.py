"""A household's recent trades as the wash-sale rule sees them, looking ahead: what
may not be bought today, and what may not be sold at a loss.

IRS Publication 550 looks at the household — a spouse's accounts, IRAs and Roths
included — over the 30 days either side of a loss sale. Looking ahead from today:

* a security **sold at a loss** in any account of the household in the last 30 days
  may not be bought, nor anything substantially identical to it (the same wash-sale
  identity), in any account: the purchase would disallow that loss;
* a security **bought** in any account of the household in the last 30 days may not
  be sold at a loss, nor anything substantially identical: the purchase would be the
  replacement. A lot acquired in the window counts as bought even without a buy on
  the books (a reinvested dividend); a lot's own purchase does not count against
  that lot (Rev. Rul. 56-602), which a caller deciding lot by lot may ask for.

The monitor's harvest screen and the rebalancer read the same :class:`WashWindow`,
so an opportunity the monitor raises is one the rebalancer may take. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, timedelta

from poise.domain.lots import TaxLot

__all__ = ["WASH_WINDOW", "RecentTrade", "WashWindow", "wash_window"]

WASH_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class RecentTrade:
    """A trade in an account of the household; ``loss`` for a sale at a loss (or one
    whose gain cannot be known: the safe side of the rule). ``lot_id`` is the lot a
    buy made, where the books name it."""

    security_id: str
    day: date
    bought: bool
    loss: bool = False
    account_id: str = ""
    lot_id: str = ""


@dataclass(frozen=True, slots=True)
class WashWindow:
    """A household's purchases and loss sales in the 30 days up to ``today``, by
    wash-sale identity."""

    today: date
    bought: dict[str, frozenset[str]] = field(default_factory=dict)  # identity → lots bought
    sold_at_loss: dict[str, frozenset[str]] = field(default_factory=dict)  # → accounts

    def blocks_buy(self, identity: str) -> bool:
        """A buy of ``identity`` today would disallow a recent loss."""
        return identity in self.sold_at_loss

    def blocks_loss_sale(self, identity: str, own: AbstractSet[str] = frozenset()) -> bool:
        """A loss sale of ``identity`` today would be washed by a recent purchase —
        other than of the lots in ``own``, the ones being sold."""
        return bool(self.bought.get(identity, frozenset()) - own)


def wash_window(
    trades: Iterable[RecentTrade],
    lots: Iterable[TaxLot],
    *,
    identity: Callable[[str], str],
    today: date,
) -> WashWindow:
    """The window of one household: its ``trades`` and ``lots`` (of every account of
    it). A buy that names no lot is the lots of that account, security and day, if the
    books have them (so a lot's own purchase can be told from another's)."""
    start = today - WASH_WINDOW
    lots = list(lots)
    made: dict[tuple[str, str, date], set[str]] = defaultdict(set)
    for lot in lots:
        made[(lot.account_id, lot.security_id, lot.acquired)].add(lot.lot_id)
    bought: dict[str, set[str]] = defaultdict(set)
    sold: dict[str, set[str]] = defaultdict(set)
    for trade in trades:
        if not start <= trade.day <= today:
            continue
        key = identity(trade.security_id)
        if trade.bought:
            lots_made = (
                {trade.lot_id}
                if trade.lot_id
                else made.get((trade.account_id, trade.security_id, trade.day))
            )
            bought[key].update(lots_made or {f"buy {trade.account_id} {trade.day}"})
        elif trade.loss:
            sold[key].add(trade.account_id)
    for lot in lots:  # a lot acquired in the window is a purchase too
        if start <= lot.acquired <= today:
            bought[identity(lot.security_id)].add(lot.lot_id)
    return WashWindow(
        today=today,
        bought={k: frozenset(v) for k, v in bought.items()},
        sold_at_loss={k: frozenset(v) for k, v in sold.items()},
    )
