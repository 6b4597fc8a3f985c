"""Loss-harvest opportunities: lots worth selling at a loss, and free to be sold now.

A lot is an opportunity when its account harvests (a taxable account with
harvesting on), its unrealised loss is at least ``min_loss`` dollars **and** at least
``min_loss_fraction`` of its basis, and selling it today would not be a wash sale:
no security substantially identical to it (the same identity group) was bought in
**any** account of the household — IRAs included — in the 30 days up to today
(IRS Publication 550). The lot's own purchase does not count against it.

The test is conservative: any such purchase blocks the whole holding, even one
smaller than the lot. Purchases in the 30 days *after* the sale are the
rebalancer's to avoid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents
from poise.domain.recent import WASH_WINDOW, RecentTrade, wash_window
from poise.domain.relief import Term, is_long_term
from poise.domain.securities import Security

__all__ = [
    "WASH_WINDOW",
    "Opportunity",
    "Purchase",
    "find_opportunities",
    "harvest_opportunities",
]


@dataclass(frozen=True, slots=True)
class Purchase:
    """A purchase in some account: a buy, or a lot acquired (a reinvested dividend)."""

    account_id: str
    security_id: str
    day: date
    lot_id: str = ""  # the lot it made, when known


@dataclass(frozen=True, slots=True)
class Opportunity:
    account_id: str
    lot_id: str
    security_id: str
    quantity: Decimal
    basis: Decimal
    value: Decimal
    term: Term

    @property
    def loss(self) -> Decimal:
        return self.basis - self.value

    @property
    def loss_fraction(self) -> Decimal:
        return self.loss / self.basis if self.basis else ZERO


def harvest_opportunities(
    *,
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    prices: Mapping[str, Decimal],
    securities: Mapping[str, Security],
    purchases: Sequence[Purchase],
    today: date,
    min_loss: Decimal,
    min_loss_fraction: Decimal,
) -> list[Opportunity]:
    """Lots to harvest today, largest loss first."""
    return find_opportunities(
        household_of={a.account_id: a.household_id for a in accounts},
        harvesting=frozenset(
            a.account_id for a in accounts if a.harvest and a.registration.taxable
        ),
        lots=lots,
        prices=prices,
        securities=securities,
        purchases=purchases,
        today=today,
        min_loss=min_loss,
        min_loss_fraction=min_loss_fraction,
    )


def find_opportunities(
    *,
    household_of: Mapping[str, str],
    harvesting: AbstractSet[str],
    lots: Sequence[TaxLot],
    prices: Mapping[str, Decimal],
    securities: Mapping[str, Security],
    purchases: Sequence[Purchase],
    today: date,
    min_loss: Decimal,
    min_loss_fraction: Decimal,
) -> list[Opportunity]:
    """:func:`harvest_opportunities`, for a caller that already knows each account's
    household and which accounts harvest."""

    def identity(security_id: str) -> str:
        known = securities.get(security_id)
        return known.wash_sale_identity if known is not None else security_id

    # Each household's wash-sale window: the same view the rebalancer reads.
    wanted = {household_of[lot.account_id] for lot in lots if lot.account_id in household_of}
    trades: dict[str, list[RecentTrade]] = defaultdict(list)
    for p in purchases:
        if household_of.get(p.account_id) in wanted:
            trades[household_of[p.account_id]].append(
                RecentTrade(
                    p.security_id, p.day, bought=True, account_id=p.account_id, lot_id=p.lot_id
                )
            )
    held: dict[str, list[TaxLot]] = defaultdict(list)
    for lot in lots:
        if lot.account_id in household_of:
            held[household_of[lot.account_id]].append(lot)
    windows = {
        h: wash_window(trades.get(h, ()), held.get(h, ()), identity=identity, today=today)
        for h in wanted
    }

    found = []
    for lot in lots:
        if (
            lot.account_id not in harvesting
            or lot.account_id not in household_of
            or lot.security_id not in prices
            or not lot.quantity
        ):
            continue
        value = cents(lot.quantity * prices[lot.security_id])
        loss = lot.basis - value
        if loss <= ZERO or loss < min_loss or loss < min_loss_fraction * lot.basis:
            continue
        window = windows[household_of[lot.account_id]]
        if window.blocks_loss_sale(identity(lot.security_id), own={lot.lot_id}):
            continue  # a substantially identical purchase in the last 30 days
        term = Term.LONG if is_long_term(lot.held_since, today) else Term.SHORT
        found.append(
            Opportunity(
                lot.account_id, lot.lot_id, lot.security_id, lot.quantity, lot.basis, value, term
            )
        )
    return sorted(found, key=lambda o: (-o.loss, o.account_id, o.lot_id))
