"""Watching a firm as prices move: a tick re-evaluates only the accounts it touches.

:class:`Watch` keeps the firm laid out as arrays and the latest price of every
security. A price tick for one security re-scans only the accounts that hold it,
screens only that security's lots for harvesting, and returns the rebalance
requests that are new: an account is asked for only when a reason appears that no
open request of it already gives (``requested`` seeds those from the store). It is
pure: no store, no bus, no clock — the time of each tick is passed in (in a replay,
the time of the price).

A tick is judged like a stored price (:mod:`poise.monitor.plausible`): against the
security's last price of an earlier day, with the volatility of the evaluation the
watch was built from. An implausible tick holds every account it touches until a
plausible one arrives — a corrected tick the same day, or the next day's price.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.securities import Security
from poise.monitor.book import AccountBlock, BandPolicy, Book, Floats, Ints
from poise.monitor.drift import BlockDrift, scan_block
from poise.monitor.harvest import Opportunity, Purchase, find_opportunities
from poise.monitor.holds import flag_prices
from poise.monitor.plausible import PriceCheck, Recent, implausible_prices
from poise.monitor.triggers import FLAG_ORDER, Reason, RebalanceRequest, requests_from_scan

__all__ = ["Watch", "WatchSettings", "rows_of"]


@dataclass(frozen=True, slots=True)
class WatchSettings:
    policy: BandPolicy
    max_price_age: timedelta = timedelta(days=4)
    min_loss: Decimal = Decimal(1000)
    min_loss_fraction: Decimal = Decimal("0.10")
    price_check: PriceCheck = field(default_factory=PriceCheck)


def rows_of(block: AccountBlock, rows: Ints) -> AccountBlock:
    """The same block, cut down to ``rows`` (the block itself when that is all of them)."""
    if rows.size == block.size:
        return block
    return replace(
        block,
        account_ids=tuple(block.account_ids[r] for r in rows.tolist()),
        quantity=block.quantity[rows],
        extra_security=block.extra_security[rows],
        extra_quantity=block.extra_quantity[rows],
        cash=block.cash[rows],
        reserve_amount=block.reserve_amount[rows],
        reserve_fraction=block.reserve_fraction[rows],
        pending_in=block.pending_in[rows],
        pending_out=block.pending_out[rows],
        band_abs=block.band_abs[rows],
        band_rel=block.band_rel[rows],
    )


@dataclass(frozen=True, slots=True)
class _LotScreen:
    """The harvestable lots of one security, as arrays for a quick first screen."""

    lots: tuple[TaxLot, ...]
    quantity: Floats
    basis: Floats


def _code(reasons: Iterable[Reason]) -> int:
    return sum(1 << FLAG_ORDER.index(r) for r in set(reasons) if r in FLAG_ORDER)


class Watch:
    """A firm under watch. Build it from a full evaluation; feed it ticks."""

    def __init__(
        self,
        *,
        book: Book,
        prices: Mapping[str, Decimal],
        price_times: Mapping[str, datetime],
        accounts: Sequence[Account],
        lots: Sequence[TaxLot],
        securities: Mapping[str, Security],
        purchases: Sequence[Purchase],
        other_holds: frozenset[str],
        settings: WatchSettings,
        requested: Mapping[str, frozenset[Reason]] | None = None,
        recent: Recent | None = None,
        implausible: Mapping[str, str] | None = None,
    ) -> None:
        """``recent`` is each security's previous price and volatility, ``implausible``
        the securities whose latest price is implausible now (from the evaluation)."""
        self.book = book
        self.settings = settings
        self.index = book.index()
        self.prices = dict(prices)
        self.price_times = dict(price_times)
        self.vector: Floats = np.array([float(prices.get(s, np.nan)) for s in book.securities])
        self.household_of = {a.account_id: a.household_id for a in accounts}
        self.accounts = accounts
        self.securities = securities
        self.purchases = purchases
        self.other_holds = other_holds
        self.sent: set[str] = set()
        self.day: date | None = None
        self.implausible = dict(implausible or {})
        self._volatility: dict[str, tuple[float, int]] = {}  # σ and the returns it rests on
        self._before: dict[str, tuple[date | None, Decimal]] = {}  # last price of an earlier day
        self._price_day = {s: at.date() for s, at in price_times.items()}
        if recent is not None:
            for i, security in enumerate(recent.security_ids):
                self._volatility[security] = (float(recent.sigma[i]), int(recent.returns[i]))
                if not np.isnan(recent.previous[i]):
                    previous = Decimal(repr(float(recent.previous[i])))
                    self._before[security] = (recent.previous_day[i], previous)
        self._holders = self._index_holders()
        self._touching = self._index_touching(lots)
        harvesting = frozenset(
            a.account_id for a in accounts if a.harvest and a.registration.taxable
        )
        self.harvesting = harvesting
        by_security: dict[str, list[TaxLot]] = defaultdict(list)  # lots that may be harvested
        every_lot: dict[str, list[TaxLot]] = defaultdict(list)  # purchases, for wash sales
        for lot in lots:
            every_lot[lot.security_id].append(lot)
            if lot.account_id in harvesting and lot.quantity:
                by_security[lot.security_id].append(lot)
        self._screens = {
            s: _LotScreen(
                tuple(found),
                np.array([float(lot.quantity) for lot in found]),
                np.array([float(lot.basis) for lot in found]),
            )
            for s, found in by_security.items()
        }
        self._lots_by_security = every_lot
        self._recent_cache: dict[tuple[str, date], list[Purchase]] = {}
        self._codes = [np.zeros(b.size, dtype=np.int64) for b in book.blocks]
        self._where = {
            account_id: (number, row)
            for number, block in enumerate(book.blocks)
            for row, account_id in enumerate(block.account_ids)
        }
        self._asked_to_harvest: set[str] = {  # open requests already ask these to harvest
            a for a, reasons in (requested or {}).items() if Reason.HARVEST in reasons
        }
        for account_id, reasons in (requested or {}).items():
            where = self._where.get(account_id)
            if where is not None:
                self._codes[where[0]][where[1]] = _code(reasons)

    def _index_holders(self) -> dict[int, list[tuple[int, Ints]]]:
        """For each security: the rows of each block that hold it."""
        holders: dict[int, list[tuple[int, Ints]]] = defaultdict(list)
        for number, block in enumerate(self.book.blocks):
            for j, security in enumerate(block.slot_security.tolist()):
                rows = np.flatnonzero(block.quantity[:, j] != 0)
                if rows.size:
                    holders[security].append((number, rows))
            if block.extra_security.size:
                rows_k, cols_k = np.nonzero(block.extra_security >= 0)
                extra = block.extra_security[rows_k, cols_k]
                for security in np.unique(extra).tolist():
                    holders[security].append((number, np.unique(rows_k[extra == security])))
        merged: dict[int, list[tuple[int, Ints]]] = {}
        for security, parts in holders.items():
            by_block: dict[int, list[Ints]] = defaultdict(list)
            for number, rows in parts:
                by_block[number].append(rows)
            merged[security] = [
                (n, np.unique(np.concatenate(r))) for n, r in sorted(by_block.items())
            ]
        return merged

    def _index_touching(self, lots: Sequence[TaxLot]) -> dict[str, set[str]]:
        """For each security: the accounts that hold it or whose model buys it."""
        touching: dict[str, set[str]] = defaultdict(set)
        for lot in lots:
            touching[lot.security_id].add(lot.account_id)
        for block in self.book.blocks:
            for security in block.layout.securities:
                touching[security].update(block.account_ids)
        return touching

    def held(self, at: datetime) -> frozenset[str]:
        """Accounts held now: the other holds, and every account a bad price touches."""
        flagged = flag_prices(
            self.price_times.keys() | set(self.book.securities),
            frozenset(self.securities),
            self.price_times,
            now=at,
            max_age=self.settings.max_price_age,
        )
        bad = set(flagged) | set(self.implausible)
        if not bad:
            return self.other_holds
        touched = set().union(*(self._touching.get(s, set()) for s in bad))
        return self.other_holds | frozenset(touched)

    def _judge(self, security: str, price: Decimal, at: datetime) -> None:
        """Flag ``security`` when its new price is implausible; clear it when not."""
        check = self.settings.price_check
        day, last = at.date(), self._price_day.get(security)
        if last is not None and day > last and security in self.prices:
            self._before[security] = (last, self.prices[security])  # a new day
        self._price_day[security] = day if last is None else max(day, last)
        previous_day, previous = self._before.get(security, (None, None))
        sigma, returns = self._volatility.get(security, (np.nan, 0))
        recent = Recent(
            security_ids=(security,),
            previous=np.array([np.nan if previous is None else float(previous)]),
            previous_day=(previous_day,),
            sigma=np.array([sigma]),
            returns=np.array([returns], dtype=np.int64),
        )
        found = implausible_prices(
            prices={security: price}, price_times={security: at}, recent=recent, check=check
        )
        if security in found:
            self.implausible[security] = found[security]
        else:
            self.implausible.pop(security, None)

    def _harvest(
        self, security: str, today: date, *, skip: AbstractSet[str] = frozenset()
    ) -> dict[str, list[Opportunity]]:
        """This security's lots worth harvesting, in accounts not already asked to."""
        screen = self._screens.get(security)
        if screen is None or security not in self.prices:
            return {}
        value = screen.quantity * float(self.prices[security])
        loss = screen.basis - value
        s = self.settings
        # A float screen with a cent of slack; the exact test below decides.
        maybe = (loss >= float(s.min_loss) - 0.01) & (
            loss >= float(s.min_loss_fraction) * screen.basis - 0.01
        )
        candidates = [
            lot
            for lot in (screen.lots[i] for i in np.flatnonzero(maybe).tolist())
            if lot.account_id not in skip
        ]
        if not candidates:
            return {}
        found: dict[str, list[Opportunity]] = defaultdict(list)
        for o in find_opportunities(
            household_of=self.household_of,
            harvesting=self.harvesting,
            lots=candidates,
            prices=self.prices,
            securities=self.securities,
            purchases=[*self.purchases, *self._recent(security, today)],
            today=today,
            min_loss=s.min_loss,
            min_loss_fraction=s.min_loss_fraction,
        ):
            found[o.account_id].append(o)
        return found

    def _identity(self, security: str) -> str:
        known = self.securities.get(security)
        return known.wash_sale_identity if known is not None else security

    def _recent(self, security: str, today: date) -> list[Purchase]:
        """Lots of substantially identical securities bought in the 30 days to ``today``."""
        key = (self._identity(security), today)
        if key not in self._recent_cache:
            self._recent_cache[key] = [
                Purchase(lot.account_id, lot.security_id, lot.acquired, lot.lot_id)
                for other, lots in self._lots_by_security.items()
                if self._identity(other) == key[0]
                for lot in lots
                if timedelta(0) <= today - lot.acquired <= timedelta(days=30)
            ]
        return self._recent_cache[key]

    def _new_day(self, at: datetime) -> None:
        if self.day != at.date():
            self.day, self.sent = at.date(), set()

    def _remember(self, requests: Sequence[RebalanceRequest]) -> None:
        """Every reason requested and still open, by account: only a new one asks again."""
        for request in requests:
            where = self._where.get(request.account_id or "")
            if where is not None:
                self._codes[where[0]][where[1]] |= _code(request.reasons)
            if Reason.HARVEST in request.reasons and request.account_id is not None:
                self._asked_to_harvest.add(request.account_id)

    def only_new(self, requests: list[RebalanceRequest], at: datetime) -> list[RebalanceRequest]:
        """Requests not already made today."""
        self._new_day(at)
        fresh = [r for r in requests if r.request_id not in self.sent]
        self.sent.update(r.request_id for r in fresh)
        self._remember(fresh)
        return fresh

    def tick(self, security: str, price: Decimal, at: datetime) -> list[RebalanceRequest]:
        """A new price: re-evaluate the accounts that hold ``security``."""
        self._judge(security, price, at)
        self.prices[security] = price
        self.price_times[security] = at
        number = self.index.get(security)
        if number is None:
            return []
        self.vector[number] = float(price)
        parts = self._holders.get(number, [])
        drifts: list[BlockDrift] = [
            scan_block(rows_of(self.book.blocks[b], rows), self.vector) for b, rows in parts
        ]
        opportunities = self._harvest(security, at.date(), skip=self._asked_to_harvest)
        harvest: dict[tuple[int, int], Sequence[Opportunity]] = {}
        for k, (b, rows) in enumerate(parts):
            if not opportunities:
                break
            ids = self.book.blocks[b].account_ids
            for row, r in enumerate(rows.tolist()):
                if ids[r] in opportunities:
                    harvest[(k, row)] = opportunities[ids[r]]
        return self._requests(drifts, harvest, at, [self._codes[b][rows] for b, rows in parts])

    def scan_all(self, at: datetime) -> list[RebalanceRequest]:
        """Every account, from scratch (at start-up, and on a calendar date)."""
        return self.requests_for([scan_block(b, self.vector) for b in self.book.blocks], at)

    def requests_for(self, drifts: Sequence[BlockDrift], at: datetime) -> list[RebalanceRequest]:
        """New requests from a scan of the whole book (one drift per block, in order)."""
        harvest: dict[tuple[int, int], Sequence[Opportunity]] = {}
        for security in self._screens:
            for account_id, found in self._harvest(security, at.date()).items():
                where = self._where.get(account_id)
                if where is not None:
                    harvest[where] = [*harvest.get(where, ()), *found]
        return self._requests(drifts, harvest, at, self._codes)

    def _requests(
        self,
        drifts: Sequence[BlockDrift],
        harvest: Mapping[tuple[int, int], Sequence[Opportunity]],
        at: datetime,
        previous: Sequence[Ints],
    ) -> list[RebalanceRequest]:
        self._new_day(at)
        found = requests_from_scan(
            drifts,
            household_of=self.household_of,
            held=self.held(at),
            harvest=harvest,
            as_of=at,
            previous=previous,
        )
        return self.only_new(found, at)
