"""The after-tax backtest: a household simulated through a price history, one
rebalancing method at a time, with real lots, real taxes and the wash-sale rule.

Every method starts from the same household — its accounts' cash invested in the
model on the first day by the ``cash`` method — and lives through the same closes:

- ``buy_and_hold`` — never rebalances; new money is bought at the model's weights on
  the day it arrives, as an automatic investment plan would (it does not look at the
  wash-sale window: that is what such plans do, and the books apply the rule after);
- ``annual``, ``quarterly`` — on the first trading day of each year (quarter) every
  position goes back to its target (the ``bands`` method with no band);
- ``bands`` — whenever a position leaves its band (the model's, else the firm's 5/25),
  the ``bands`` method trades it back to target;
- ``cash`` — only cash flows: new money buys the most underweight positions, tax
  is raised from the cheapest lots in tax;
- ``optimize`` — the tax-aware optimum, with loss harvesting, whenever a position
  leaves its band, a lot becomes worth harvesting (the monitor's test), or cash comes
  in or must be raised.

Each method trades through :func:`poise.workflow.households.plan_household`, the very
function a firm-wide run calls, on the household as the books stand that day: the
risk model from the trailing ``lookback_days`` of prices, the household's wash-sale
window from its trades of the last 30 days. Trades fill at the day's close, paying
half the spread (the firm's :class:`~poise.optimize.check.Costs`), which is added to a
purchase's basis and taken from a sale's proceeds.

**The books** (:class:`Books`) keep each account's lots and cash, and apply the
wash-sale rule to whatever was traded, in both directions of the 61-day period, as
:mod:`poise.domain.washsales` states it: a loss sale is matched to shares of the same
identity acquired in any account of the household in the 30 days before, the earliest
first, and later to shares acquired in the 30 days after; the loss on the matched
shares is disallowed and added to the replacement shares' basis (their holding
period carried), or lost for good where they were bought in an IRA or a Roth.

**Taxes** are settled on each year's last trading day by
:func:`poise.domain.taxes.settle_year` — short- and long-term netting, $3,000 of net
loss against ordinary income, the rest carried forward — and paid (or refunded) from
the first taxable account on the next trading day; a method that lacks the cash
raises it that day. A wash that a purchase in January makes of a December loss is
counted in January's year, as an amended return would.

Pure: prices, model and household in, a :class:`MethodResult` per method out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.accounts import Account, Household, MinTrade, Registration, TaxRates
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ResolvedModel, position_band, resolve
from poise.domain.money import ZERO, cents
from poise.domain.recent import RecentTrade
from poise.domain.relief import Term, is_long_term
from poise.domain.securities import Security
from poise.domain.taxes import Carryforward, Realised, YearTax, settle_year
from poise.domain.transactions import CashFlow, CashFlowKind
from poise.domain.washsales import WINDOW_DAYS
from poise.ingest.history import PriceHistory
from poise.optimize import grid
from poise.optimize.check import Costs
from poise.optimize.history import PriceHistory as RiskHistory
from poise.optimize.household import HouseholdSettings
from poise.optimize.problem import HarvestMinimum
from poise.optimize.scenarios import Scenario
from poise.optimize.tax_aware import OptimizeSettings
from poise.optimize.trades import LotSale, Side, Trade, TradeReason
from poise.report.backtest import Summary, model_returns, summarise, year_rows
from poise.workflow.households import HouseholdBook, PlanOptions, Reference, plan_household

__all__ = [
    "CALENDARS",
    "METHODS",
    "Backtest",
    "Books",
    "Deposits",
    "MethodResult",
    "Opening",
    "Spec",
    "digest",
    "opening_value",
    "run_backtest",
    "series",
    "simulate",
]

Floats = npt.NDArray[np.float64]
METHODS = ("buy_and_hold", "annual", "quarterly", "bands", "cash", "optimize")
CALENDARS = {"annual": 12, "quarterly": 3}  # months between calendar rebalances
DEPOSIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}
HOUSEHOLD = "BACKTEST"
NO_BAND = Band(absolute=ZERO)
WINDOW = timedelta(days=WINDOW_DAYS)
FOREVER = timedelta(days=36500)  # no price in a price history is stale


# ── what is simulated ────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Opening:
    """An account of the simulated household, and the money it starts with."""

    registration: Registration
    amount: Decimal

    def __post_init__(self) -> None:
        if self.amount < ZERO:
            raise ValidationError(f"an account cannot start with {self.amount}")


@dataclass(frozen=True, slots=True)
class Deposits:
    """New money into the household's first account, on the first trading day of every
    month, quarter or year after the start."""

    amount: Decimal
    every: str = "month"

    def __post_init__(self) -> None:
        if self.every not in DEPOSIT_MONTHS:
            raise ValidationError(
                f"deposits come every {', '.join(DEPOSIT_MONTHS)}, not every {self.every!r}"
            )
        if self.amount <= ZERO:
            raise ValidationError(f"a deposit must be positive, not {self.amount}")


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything a backtest is asked: the same spec gives the same result."""

    history: PriceHistory
    start: int  # index of the first simulated day in the history
    end: int  # index of the last, inclusive
    model_id: str
    models: Mapping[str, Model]
    securities: Mapping[str, Security]
    accounts: tuple[Opening, ...]
    rates: TaxRates
    deposits: Deposits | None = None
    monthly: bool = False  # monitored on the first trading day of each month only
    liquidate: bool = False  # sell the taxable accounts on the last day, and pay the tax
    costs: Costs = field(default_factory=Costs)
    harvest: HarvestMinimum = field(default_factory=HarvestMinimum)
    min_trade: MinTrade = field(default_factory=lambda: MinTrade(Decimal(100), Decimal("0.0005")))
    firm_band: Band = field(
        default_factory=lambda: Band(absolute=Decimal("0.05"), relative=Decimal("0.25"))
    )
    lookback_days: int = 730  # calendar days of prices the risk model is estimated from
    optimize: OptimizeSettings = field(default_factory=lambda: OptimizeSettings(exact=False))

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValidationError("a backtest needs at least one account")
        if not 0 <= self.start <= self.end < len(self.history.days):
            raise ValidationError("the simulated days are not in the price history")
        if self.model_id not in self.models:
            raise ValidationError(f"no model {self.model_id!r} in the model file")

    @property
    def resolved(self) -> ResolvedModel:
        return resolve(self.model_id, self.models)


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method's life through the history."""

    method: str
    days: tuple[date, ...]
    value: Floats  # the household's value each day, after the taxes paid so far
    after_tax: Floats  # less the tax owed and not yet paid (on the last day: all of it)
    flows: Floats  # deposits each day (money in from outside)
    taxes_paid: Floats  # tax paid each day (negative: a refund)
    sold: Floats  # dollars of sales each day
    bought: Floats  # dollars of purchases each day
    trades: int
    losses_harvested: Decimal  # losses realised in taxable accounts and allowed
    disallowed: Decimal  # losses washed: deferred into a replacement, or lost for good
    years: tuple[YearTax, ...]
    final_tax: Decimal  # owed on the last day and not yet paid (the liquidation's, too)


# ── the books: lots, cash and the wash-sale rule ─────────────────────────────


@dataclass(slots=True)
class _OpenLoss:
    """A loss sale whose shares a purchase in the next 30 days may still replace."""

    account_id: str
    origin: str  # the purchase that made the sold shares
    identity: str
    sold: date
    held_since: date
    term: Term
    shares: Decimal  # not yet matched
    loss_a_share: Decimal


class Books:
    """A household's accounts as the simulation trades them."""

    def __init__(self, accounts: Sequence[Account], securities: Mapping[str, Security]) -> None:
        self.accounts = {a.account_id: a for a in accounts}
        self.securities = securities
        self.cash = {a.account_id: a.cash for a in accounts}
        self.lots: dict[str, dict[str, TaxLot]] = {a.account_id: {} for a in accounts}
        self.origin: dict[tuple[str, str], str] = {}  # lot → the purchase that made it
        self.replacing: set[tuple[str, str]] = set()  # lots already a wash's replacement
        self.open_losses: list[_OpenLoss] = []
        self.recent: list[RecentTrade] = []
        self.realised: list[Realised] = []
        self.losses = ZERO  # realised in taxable accounts, before any wash
        self.disallowed = ZERO
        self.trades = 0
        self.sold = 0.0  # dollars, for turnover
        self.bought = 0.0
        self._made = 0

    # what the books hold

    def identity(self, security_id: str) -> str:
        known = self.securities.get(security_id)
        return known.wash_sale_identity if known is not None else security_id

    def taxed(self, account_id: str) -> bool:
        return self.accounts[account_id].registration.taxable

    def all_lots(self) -> list[TaxLot]:
        return [lot for lots in self.lots.values() for lot in lots.values()]

    def shares(self, account_id: str) -> dict[str, Decimal]:
        held: dict[str, Decimal] = {}
        for lot in self.lots[account_id].values():
            held[lot.security_id] = held.get(lot.security_id, ZERO) + lot.quantity
        return held

    def value(self, prices: Mapping[str, Decimal], account_id: str | None = None) -> Decimal:
        ids = [account_id] if account_id is not None else list(self.accounts)
        return sum(
            (
                self.cash[a] + sum((q * prices[s] for s, q in self.shares(a).items()), ZERO)
                for a in ids
            ),
            ZERO,
        )

    def window(self, today: date) -> tuple[RecentTrade, ...]:
        self.recent = [t for t in self.recent if t.day >= today - WINDOW]
        return tuple(self.recent)

    # trading

    def execute(self, account_id: str, trades: Sequence[Trade], day: date, costs: Costs) -> None:
        """``trades`` of one account filled at their prices on ``day``: sales first."""
        for trade in sorted(trades, key=lambda t: t.side is Side.BUY):
            paid = costs.of(trade)
            value = cents(trade.value)
            if trade.side is Side.SELL:
                self._sell(account_id, trade, day, value - paid)
                self.cash[account_id] += value - paid
                self.sold += float(value)
            else:
                self._buy(account_id, trade, day, value + paid)
                self.cash[account_id] -= value + paid
                self.bought += float(value)
            self.trades += 1

    def _sell(self, account_id: str, trade: Trade, day: date, proceeds: Decimal) -> None:
        """A sale's lots relieved, its gains realised (net of its costs, which reduce
        the amount realised), and then its losses matched to replacements: shares
        sold in the sale itself never replace it."""
        lots = self.lots[account_id]
        named = {s.lot_id: s.quantity for s in trade.lots}
        if sum(named.values(), ZERO) != trade.quantity:
            raise ValidationError(
                f"a sale of {trade.quantity} {trade.security_id} names lots of"
                f" {sum(named.values(), ZERO)} shares"
            )
        losses = []
        for lot_id, quantity in named.items():
            lot = lots.get(lot_id)
            if lot is None or lot.quantity < quantity or lot.security_id != trade.security_id:
                raise ValidationError(
                    f"account {account_id} cannot sell {quantity} of lot {lot_id}"
                )
            gain = proceeds * quantity / trade.quantity - lot.basis * quantity / lot.quantity
            self._relieve(account_id, lot, quantity)
            loss = gain < ZERO and self.taxed(account_id)
            self.recent.append(
                RecentTrade(trade.security_id, day, bought=False, loss=loss, account_id=account_id)
            )
            if not self.taxed(account_id):
                continue
            term = Term.LONG if is_long_term(lot.held_since, day) else Term.SHORT
            self.realised.append(Realised(day, term, gain))
            if loss:
                losses.append((lot, quantity, -gain / quantity, term))
        for lot, quantity, loss_a_share, term in losses:
            self._loss(account_id, lot, quantity, loss=loss_a_share, term=term, day=day)

    def _relieve(self, account_id: str, lot: TaxLot, quantity: Decimal) -> None:
        lots, key = self.lots[account_id], (account_id, lot.lot_id)
        left = lot.quantity - quantity
        if left == ZERO:
            del lots[lot.lot_id]
            self.replacing.discard(key)
            return
        share = left / lot.quantity
        lots[lot.lot_id] = replace(
            lot,
            quantity=left,
            cost_basis=lot.cost_basis * share,
            adjusted_basis=None if lot.adjusted_basis is None else lot.adjusted_basis * share,
            disallowed_loss=lot.disallowed_loss * share,
        )

    def _loss(
        self, account_id: str, lot: TaxLot, quantity: Decimal, *, loss: Decimal, term: Term,
        day: date,
    ) -> None:  # fmt: skip
        """A loss sale: matched at once to shares of its identity bought in the 30 days
        before (the earliest first); what is left waits 30 days for purchases after."""
        origin = self.origin[(account_id, lot.lot_id)]
        identity = self.identity(lot.security_id)
        candidates = sorted(
            (
                (other.acquired, self._order(owner, other), owner, other)
                for owner, lots in self.lots.items()
                for other in lots.values()
                if self.identity(other.security_id) == identity
                and day - WINDOW <= other.acquired <= day
                and (owner, other.lot_id) not in self.replacing
                and self.origin[(owner, other.lot_id)] != origin
            ),
            key=lambda c: (c[0], c[1]),
        )
        left = quantity
        self.losses += loss * quantity
        for _, _, owner, other in candidates:
            if left <= ZERO:
                break
            shares = min(left, other.quantity)
            left -= shares
            self._wash(
                owner, other, shares, loss=loss, held=day - lot.held_since, day=day, term=term
            )
        if left > ZERO:
            self.open_losses.append(
                _OpenLoss(account_id, origin, identity, day, lot.held_since, term, left, loss)
            )

    def _order(self, account_id: str, lot: TaxLot) -> int:
        """The order its purchase was made in (ties of a day: the first bought first)."""
        return int(self.origin[(account_id, lot.lot_id)].removeprefix("B-"))

    def _buy(self, account_id: str, trade: Trade, day: date, cost: Decimal) -> None:
        self._made += 1
        lot_id = f"B-{self._made}"
        key = (account_id, lot_id)
        self.lots[account_id][lot_id] = TaxLot(
            lot_id, account_id, trade.security_id, trade.quantity, cost, day
        )
        self.origin[key] = lot_id
        self.recent.append(
            RecentTrade(trade.security_id, day, bought=True, account_id=account_id, lot_id=lot_id)
        )
        identity = self.identity(trade.security_id)
        self.open_losses = [o for o in self.open_losses if o.sold >= day - WINDOW and o.shares]
        for sale in sorted(self.open_losses, key=lambda o: (o.sold, o.held_since)):
            current = self.lots[account_id].get(lot_id)
            if current is None or key in self.replacing or sale.identity != identity:
                continue
            shares = min(sale.shares, current.quantity)
            sale.shares -= shares
            self._wash(
                account_id, current, shares, loss=sale.loss_a_share,
                held=sale.sold - sale.held_since, day=day, term=sale.term,
            )  # fmt: skip

    def _wash(
        self, owner: str, lot: TaxLot, shares: Decimal, *, loss: Decimal, held: timedelta,
        day: date, term: Term,
    ) -> None:  # fmt: skip
        """``shares`` of ``lot`` replace loss shares of ``term``: that loss is disallowed
        (counted back as a gain on ``day``) and added to their basis, their holding
        period carried — unless the lot is in an IRA or a Roth: lost for good."""
        disallowed = loss * shares
        self.disallowed += disallowed
        self.realised.append(Realised(day, term, disallowed))
        permanent = not self.taxed(owner)
        start = lot.acquired - held
        key = (owner, lot.lot_id)
        if shares == lot.quantity:
            self.lots[owner][lot.lot_id] = replace(
                lot,
                adjusted_basis=None if permanent else lot.basis + disallowed,
                holding_start=None if permanent else start,
                disallowed_loss=lot.disallowed_loss + (ZERO if permanent else disallowed),
            )
            self.replacing.add(key)
            return
        part = lot.cost_basis * shares / lot.quantity
        self._relieve(owner, lot, shares)
        self._made += 1
        new_id = f"{lot.lot_id}.w{self._made}"
        self.lots[owner][new_id] = TaxLot(
            new_id,
            owner,
            lot.security_id,
            shares,
            part,
            lot.acquired,
            adjusted_basis=None if permanent else part + disallowed,
            holding_start=None if permanent else start,
            disallowed_loss=ZERO if permanent else disallowed,
        )
        self.origin[(owner, new_id)] = self.origin[key]
        self.replacing.add((owner, new_id))

    def liquidate(self, prices: Mapping[str, Decimal], day: date, costs: Costs) -> None:
        """Every lot of every taxable account sold at ``prices``."""
        for account_id, lots in self.lots.items():
            if not self.taxed(account_id):
                continue
            for security_id, quantity in sorted(self.shares(account_id).items()):
                mine = [lot for lot in lots.values() if lot.security_id == security_id]
                trade = Trade(
                    security_id,
                    Side.SELL,
                    quantity,
                    prices[security_id],
                    TradeReason.CASH_NEED,
                    tuple(_whole_sale(lot, prices[security_id], day) for lot in mine),
                )
                self.execute(account_id, [trade], day, costs)


def _whole_sale(lot: TaxLot, price: Decimal, day: date) -> LotSale:
    term = Term.LONG if is_long_term(lot.held_since, day) else Term.SHORT
    return LotSale(lot.lot_id, lot.quantity, lot.basis, lot.quantity * price, term)


# ── the simulation ───────────────────────────────────────────────────────────


def _accounts(spec: Spec, method: str) -> list[Account]:
    calendar = method in CALENDARS
    return [
        Account(
            account_id=f"{n}-{opening.registration.value}",
            household_id=HOUSEHOLD,
            registration=opening.registration,
            model_id=spec.model_id,
            cash=opening.amount,
            tax_rates=spec.rates,
            harvest=method == "optimize" and opening.registration.taxable,
            tolerance=NO_BAND if calendar else Band(),
        )
        for n, opening in enumerate(spec.accounts, start=1)
    ]


def _month(day: date) -> int:
    return day.year * 12 + day.month - 1


@dataclass(slots=True)
class _Run:
    """One method's simulation: the books, and what it remembers between days."""

    spec: Spec
    method: str
    books: Books
    resolved: ResolvedModel
    bands: dict[str, tuple[Decimal, Decimal | None]]  # security → (target, band width)
    days: tuple[date, ...]
    harvest_seen: frozenset[str] = frozenset()  # lots worth harvesting when last weighed
    carried: Carryforward = field(default_factory=Carryforward)
    years: list[YearTax] = field(default_factory=list)
    tax_due: Decimal = ZERO  # settled, not yet due
    owing: Decimal = ZERO  # due, and more than the payer's cash: to be raised
    harvest_only: bool = False  # optimize woken by a harvest alone: sell only losses

    # the triggers

    def out_of_band(self, prices: Mapping[str, Decimal]) -> bool:
        for account_id in self.books.accounts:
            value = self.books.value(prices, account_id)
            if value <= ZERO:
                continue
            held = self.books.shares(account_id)
            for security_id, (target, width) in self.bands.items():
                weight = held.get(security_id, ZERO) * prices[security_id] / value
                if width is not None and abs(weight - target) > width:
                    return True
            if any(s not in self.bands for s, q in held.items() if q):
                return True  # a replacement left from a harvest: back to the model
        return False

    def worth_harvesting(self, prices: Mapping[str, Decimal]) -> frozenset[str]:
        harvest = self.spec.harvest
        return frozenset(
            f"{lot.account_id}/{lot.lot_id}"
            for account_id, lots in self.books.lots.items()
            if self.books.accounts[account_id].harvest
            for lot in lots.values()
            if harvest.worth(lot, prices[lot.security_id])
        )

    def cash_to_move(self, prices: Mapping[str, Decimal]) -> bool:
        """Tax owed, or new money above the model's cash by five minimum trades."""
        for account_id, cash in self.books.cash.items():
            value = self.books.value(prices, account_id)
            spare = cash - self.resolved.cash * value
            if spare > max(self.spec.min_trade.amount or ZERO, Decimal(1)) * 5:
                return True
        return self.owing > ZERO

    def wants_trade(self, i: int, prices: Mapping[str, Decimal], monitored: bool) -> bool:
        if i == self.spec.start:
            return True
        if self.owing > ZERO:
            return True  # tax to pay: every method raises it the day it is due
        return monitored and self.triggered(i, prices)

    def triggered(self, i: int, prices: Mapping[str, Decimal]) -> bool:
        """On a monitored day: whether the method's own trigger fires."""
        method = self.method
        if method in CALENDARS:
            return _new_period(self.days, i, CALENDARS[method])
        if method in ("cash", "buy_and_hold"):
            return self.cash_to_move(prices)
        if method == "bands":
            return self.out_of_band(prices)
        if method == "optimize":
            worth = self.worth_harvesting(prices)
            new = bool(worth - self.harvest_seen)
            self.harvest_only = not (self.out_of_band(prices) or self.cash_to_move(prices))
            self.harvest_seen = worth if new or not self.harvest_only else worth & self.harvest_seen
            return new or not self.harvest_only
        return False

    # trading

    def trade(self, i: int, prices: dict[str, Decimal]) -> None:
        day = self.days[i]
        method = self.method
        if method == "buy_and_hold" and i != self.spec.start:
            if self.owing > ZERO:
                self.plan(i, prices, "cash")
            self.invest_at_weights(day, prices)
            return
        if i == self.spec.start or (
            method in CALENDARS and not _new_period(self.days, i, CALENDARS[method])
        ):  # the first day's cash invested; a calendar method between its days: tax raised
            self.plan(i, prices, "cash")
            return
        self.plan(i, prices, "bands" if method in CALENDARS else method, self.harvest_only)

    def plan(
        self, i: int, prices: dict[str, Decimal], method: str, harvest_only: bool = False
    ) -> None:
        day, spec, books = self.days[i], self.spec, self.books
        as_of = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        first = spec.history.between(day - timedelta(days=spec.lookback_days), day)[0]
        ids = tuple(sorted(prices))
        columns = [spec.history.column(s) for s in ids]
        reference = Reference(
            as_of=as_of,
            securities=spec.securities,
            models=spec.models,
            prices=prices,
            price_times=dict.fromkeys(prices, as_of),
            implausible={},
            history=RiskHistory(
                ids, spec.history.days[first : i + 1], spec.history.closes[first : i + 1, columns]
            ),
        )
        book = HouseholdBook(
            household=Household(HOUSEHOLD, "backtest"),
            accounts=tuple(
                replace(account, cash=books.cash[account.account_id])
                for account in books.accounts.values()
            ),
            lots=tuple(books.all_lots()),
            recent=books.window(day),
            cash_flows=self._tax_flow(day),
        )
        options = PlanOptions(
            scenario=Scenario.of_method(
                method, replace(spec.optimize, costs=spec.costs, harvest_only=harvest_only)
            ),
            firm_band=spec.firm_band,
            max_price_age=FOREVER,
            harvest=spec.harvest,
            firm_min_trade=spec.min_trade,
            household=HouseholdSettings(location_weight=0.0),
        )
        plan = plan_household(reference, book, options)
        if plan.held:
            raise ValidationError(f"{day}: the household could not be rebalanced: {plan.held}")
        if plan.proposal is None:
            return
        for result in plan.proposal.accounts:
            account_id = result.problem.account.account_id
            books.execute(account_id, result.proposal.trades, day, spec.costs)
        self._pay_owing()

    def _payer(self) -> str:
        return next(a for a in self.books.accounts.values() if a.registration.taxable).account_id

    def _tax_flow(self, day: date) -> tuple[CashFlow, ...]:
        if self.owing <= ZERO:
            return ()
        return (
            CashFlow(
                f"tax-{day.year - 1}", self._payer(), CashFlowKind.WITHDRAWAL, self.owing, day, day
            ),
        )

    def _pay_owing(self) -> None:
        """What is owed, paid from the first taxable account as far as its cash goes (a
        refund, owed negative, paid into it whole)."""
        if self.owing:
            payer = self._payer()
            paid = min(self.owing, self.books.cash[payer])
            self.books.cash[payer] -= paid
            self.owing -= paid

    def invest_at_weights(self, day: date, prices: Mapping[str, Decimal]) -> None:
        """Buy-and-hold's new money: spent at the model's weights, whatever it holds."""
        costs, invested = self.spec.costs, self.resolved.securities
        total = sum(invested.values(), ZERO)
        for account_id, cash in self.books.cash.items():
            value = self.books.value(prices, account_id)
            spare = cash - self.resolved.cash * value
            if spare <= max(self.spec.min_trade.amount or ZERO, Decimal(1)) * 5 or total <= 0:
                continue
            trades = []
            for security_id, weight in sorted(invested.items()):
                security = self.spec.securities[security_id]
                amount = spare * weight / total / (1 + costs.half_spread)
                quantity = grid.down(security.trading, amount / prices[security_id])
                if quantity > ZERO:
                    trades.append(
                        Trade(
                            security_id, Side.BUY, quantity, prices[security_id],
                            TradeReason.CASH_INVEST,
                        )
                    )  # fmt: skip
            self.books.execute(account_id, trades, day, costs)

    # taxes

    def settle(self, year: int) -> None:
        mine = [r for r in self.books.realised if r.day.year == year]
        self.books.realised = [r for r in self.books.realised if r.day.year != year]
        settled = settle_year(year, mine, self.carried, self.spec.rates)
        self.carried = settled.carried_out
        self.years.append(settled)
        self.tax_due += settled.tax

    def owed(self, year: int) -> Decimal:
        """Tax owed and not yet paid: what is due, and the year so far's, settled now."""
        mine = [r for r in self.books.realised if r.day.year == year]
        if not mine:
            return self.tax_due
        return self.tax_due + settle_year(year, mine, self.carried, self.spec.rates).tax

    def pay(self) -> Decimal:
        """The tax due, paid from the first taxable account (a refund paid into it);
        what its cash cannot pay is owed until the method raises it, that day."""
        due, self.tax_due = self.tax_due, ZERO
        self.owing += due
        self._pay_owing()
        return due


def _new_period(days: Sequence[date], i: int, months: int) -> bool:
    """Whether ``days[i]`` is the first trading day of a period of ``months`` months
    (1: a month, 3: a quarter, 12: a year)."""
    return i > 0 and _month(days[i]) // months != _month(days[i - 1]) // months


def _deposit_day(spec: Spec, days: Sequence[date], i: int) -> bool:
    if spec.deposits is None or i == spec.start:
        return False
    return _new_period(days, i, DEPOSIT_MONTHS[spec.deposits.every])


def simulate(
    spec: Spec, method: str, *, progress: Callable[[int], None] | None = None
) -> MethodResult:
    """One method through the spec's days; ``progress(days done)`` now and then."""
    if method not in METHODS:
        raise ValidationError(f"no backtest method {method!r}; methods: {', '.join(METHODS)}")
    history = spec.history
    days = history.days
    resolved = spec.resolved
    books = Books(_accounts(spec, method), spec.securities)
    bands = {
        s: (target, position_band(resolved, s, firm=spec.firm_band).width(target))
        for s, target in resolved.securities.items()
    }
    needed = sorted(
        set(resolved.securities)
        | {r for s in resolved.securities for r in spec.securities[s].replacements}
    )
    needed = [s for s in needed if s in history.securities]

    def prices_at(i: int) -> dict[str, Decimal]:
        return {s: history.price(i, s) for s in needed}

    run = _Run(spec, method, books, resolved, bands, days)
    count = spec.end - spec.start + 1
    value, after_tax = np.zeros(count), np.zeros(count)
    flows, paid, sold, bought = (np.zeros(count) for _ in range(4))
    previous_month = -1
    for n, i in enumerate(range(spec.start, spec.end + 1)):
        day = days[i]
        prices = prices_at(i)
        if i > spec.start and days[i - 1].year != day.year:
            paid[n] = float(run.pay())
        if _deposit_day(spec, days, i):
            assert spec.deposits is not None
            first = next(iter(books.accounts))
            books.cash[first] += spec.deposits.amount
            flows[n] = float(spec.deposits.amount)
        monitored = not spec.monthly or _month(day) != previous_month
        previous_month = _month(day)
        before = books.sold, books.bought
        if run.wants_trade(i, prices, monitored):
            run.trade(i, prices)
        sold[n], bought[n] = books.sold - before[0], books.bought - before[1]
        last = i == spec.end
        trades, losses, washed = books.trades, books.losses, books.disallowed
        if last and spec.liquidate:
            books.liquidate(prices, day, spec.costs)
        if last or days[i + 1].year != day.year:
            run.settle(day.year)
        worth = books.value(prices)
        value[n] = float(worth)
        after_tax[n] = float(worth - run.owed(day.year))
        if progress is not None and (n % 64 == 0 or last):
            progress(n + 1)
    return MethodResult(
        method=method,
        days=tuple(days[spec.start : spec.end + 1]),
        value=value,
        after_tax=after_tax,
        flows=flows,
        taxes_paid=paid,
        sold=sold,
        bought=bought,
        trades=trades,
        losses_harvested=losses - washed,  # the method's, not the liquidation's
        disallowed=washed,
        years=tuple(run.years),
        final_tax=run.tax_due,
    )


# ── a whole backtest ─────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Backtest:
    """Every method's life, its figures, and the model's daily returns beside them."""

    spec: Spec
    results: Mapping[str, MethodResult]
    summaries: Mapping[str, Summary]


def opening_value(spec: Spec) -> Decimal:
    return sum((a.amount for a in spec.accounts), ZERO)


def run_backtest(
    spec: Spec, methods: Sequence[str], *, progress: Callable[[str, int], None] | None = None
) -> Backtest:
    """Each of ``methods`` simulated (``progress(method, days done)``) and summarised."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValidationError(
            f"no backtest method {', '.join(unknown) or '(none given)'};"
            f" methods: {', '.join(METHODS)}"
        )
    results = {}
    for method in dict.fromkeys(methods):

        def told(done: int, method: str = method) -> None:
            if progress is not None:
                progress(method, done)

        results[method] = simulate(spec, method, progress=told)
    resolved = spec.resolved
    ids = sorted(resolved.securities)
    columns = [spec.history.column(s) for s in ids]
    weights = np.array([float(resolved.securities[s]) for s in ids])
    first = max(spec.start - 1, 0)
    closes = spec.history.closes[first : spec.end + 1, columns]
    if spec.start == 0:  # no day before: the first day's return is nothing
        closes = np.vstack([closes[:1], closes])
    summaries = summarise(
        results,
        opening=float(opening_value(spec)),
        model=model_returns(closes, weights),
        start=spec.history.days[first],
    )
    return Backtest(spec, results, summaries)


def digest(backtest: Backtest) -> str:
    """A digest of the results — the figures, the years, the wealth day by day to the
    cent — so that two runs of the same inputs can be told the same."""
    document = {
        method: {
            "summary": backtest.summaries[method].json(),
            "years": year_rows(result.years),
            "series": series(result),
        }
        for method, result in sorted(backtest.results.items())
    }
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def series(result: MethodResult) -> dict[str, list[str] | list[float]]:
    """A method's wealth day by day, as kept: dates, and dollars to the cent."""
    return {
        "days": [d.isoformat() for d in result.days],
        "pre_tax": [round(float(v), 2) for v in result.value],
        "after_tax": [round(float(v), 2) for v in result.after_tax],
    }
