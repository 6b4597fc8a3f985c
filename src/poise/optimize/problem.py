"""One account's rebalancing problem, in exact Decimal: what it holds, what it should
hold, and what it may and may not do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.accounts import Account
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, ResolvedModel, position_band
from poise.domain.money import ZERO, cents
from poise.domain.recent import WASH_WINDOW, RecentTrade, WashWindow, wash_window
from poise.domain.securities import Security
from poise.domain.transactions import CashFlow

__all__ = [
    "WASH_WINDOW",
    "HarvestMinimum",
    "Holding",
    "Problem",
    "RecentTrade",
    "WashWindow",
    "build_problem",
]

ONE = Decimal(1)
NO_BAND = Band()


@dataclass(frozen=True, slots=True)
class HarvestMinimum:
    """The smallest loss worth harvesting: at least ``loss`` dollars **and** at least
    ``fraction`` of the lot's basis — the monitor's test of an opportunity
    (``POISE_HARVEST_MIN_LOSS``, ``POISE_HARVEST_MIN_LOSS_FRACTION``), so the monitor
    and the rebalancer agree on what a harvest is."""

    loss: Decimal = ZERO
    fraction: Decimal = ZERO

    def worth(self, lot: TaxLot, price: Decimal) -> bool:
        loss = lot.basis - cents(lot.quantity * price)
        return loss > ZERO and loss >= self.loss and loss >= self.fraction * lot.basis


ANY_LOSS = HarvestMinimum()


@dataclass(frozen=True, slots=True)
class Holding:
    """One security of the problem: held, in the model, or both."""

    security: Security
    price: Decimal
    quantity: Decimal  # shares held now, the sum of the lots
    target: Decimal  # target weight, 0 outside the model
    band: Decimal | None  # half-width around the target; None: no band
    lots: tuple[TaxLot, ...]
    no_buy: str = ""  # why it may not be bought ("" if it may)
    no_sell: str = ""  # why it may not be sold
    no_loss_sale: str = ""  # why a lot of it may not be sold at a loss
    # The largest weight buying may take it to (the twin of a compliance limit, with
    # its id: most_why); None: no limit. Selling is never held back by it.
    most: Decimal | None = None
    most_why: str = ""

    @property
    def security_id(self) -> str:
        return self.security.security_id

    @property
    def value(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class Problem:
    account: Account
    today: date
    holdings: tuple[Holding, ...]  # by security id
    cash: Decimal
    cash_target: Decimal  # the model's cash weight
    reserve: Decimal  # cash that must remain: the reserve plus withdrawals asked for
    short_rate: Decimal  # federal short-term plus state
    long_rate: Decimal  # federal long-term plus state

    @property
    def value(self) -> Decimal:
        """Positions plus cash."""
        return self.cash + sum((h.value for h in self.holdings), ZERO)

    def holding(self, security_id: str) -> Holding:
        for h in self.holdings:
            if h.security_id == security_id:
                return h
        raise KeyError(security_id)


def build_problem(
    *,
    account: Account,
    lots: Sequence[TaxLot],
    prices: Mapping[str, Decimal],
    model: ResolvedModel,
    securities: Mapping[str, Security],
    cash_flows: Sequence[CashFlow] = (),
    recent: Sequence[RecentTrade] = (),
    wash: WashWindow | None = None,
    today: date,
    firm_band: Band = NO_BAND,
    harvest: HarvestMinimum = ANY_LOSS,
) -> Problem:
    """The problem of one account. Every security it holds or its model buys must be
    known and priced; the shell holds accounts where that is not so.

    A held security's harvest replacements join the problem only where a harvest is
    worth something: the account harvests (a taxable account with harvesting on) and
    one of the security's lots has a loss of at least ``harvest``'s minimum. Elsewhere
    a loss earns nothing worth a swap, and an unneeded security only tempts the solver
    to trade for a sliver of tracking error.

    What the wash-sale rule forbids comes from ``wash``, the household's window
    (:mod:`poise.domain.recent`); without one, from ``recent`` and ``lots`` alone."""
    mine = [lot for lot in lots if lot.account_id == account.account_id and lot.quantity]
    by_security: dict[str, list[TaxLot]] = defaultdict(list)
    for lot in mine:
        by_security[lot.security_id].append(lot)
    names = sorted(set(by_security) | set(model.securities))
    missing = [s for s in names if s not in securities or s not in prices]
    # A held security's harvest replacements may be bought to keep its exposure.
    names = sorted(
        set(names)
        | {
            r
            for held, held_lots in by_security.items()
            if held in securities and held in prices and account.harvest
            if any(harvest.worth(lot, prices[held]) for lot in held_lots)
            for r in securities[held].replacements
            if r in securities and r in prices
        }
    )
    if missing:
        raise ValidationError(f"account {account.account_id}: no security or price for {missing}")

    def identity(security_id: str) -> str:
        known = securities.get(security_id)
        return known.wash_sale_identity if known is not None else security_id

    if wash is None:
        wash = wash_window(recent, lots, identity=identity, today=today)
    restrictions = account.restrictions
    override = account.tolerance.width(ONE) is not None

    holdings = []
    for name in names:
        security = securities[name]
        target = model.securities.get(name, ZERO)
        band = account.tolerance if override else position_band(model, name, firm=firm_band)
        excluded = sorted(security.tags & restrictions.excluded_tags)
        no_buy = (
            "do not buy"
            if name in restrictions.do_not_buy
            else f"excluded tag {excluded[0]}"
            if excluded
            else "sold at a loss in the last 30 days"
            if wash.blocks_buy(identity(name))
            else ""
        )
        holdings.append(
            Holding(
                security=security,
                price=prices[name],
                quantity=sum((lot.quantity for lot in by_security.get(name, ())), ZERO),
                target=target,
                band=band.width(target),
                lots=tuple(by_security.get(name, ())),
                no_buy=no_buy,
                no_sell="do not sell" if name in restrictions.do_not_sell else "",
                no_loss_sale=(
                    "bought in the last 30 days" if wash.blocks_loss_sale(identity(name)) else ""
                ),
            )
        )
    withdrawals = sum(
        (f.amount for f in cash_flows if f.account_id == account.account_id and f.signed < 0), ZERO
    )
    value = account.cash + sum((h.value for h in holdings), ZERO)
    rates = account.tax_rates
    taxed = account.registration.taxable  # gains in an IRA or a Roth are not taxed now
    return Problem(
        account=account,
        today=today,
        holdings=tuple(holdings),
        cash=account.cash,
        cash_target=model.cash,
        reserve=account.reserve.required(value) + withdrawals,
        short_rate=rates.short_term + rates.state if taxed else ZERO,
        long_rate=rates.long_term + rates.state if taxed else ZERO,
    )
