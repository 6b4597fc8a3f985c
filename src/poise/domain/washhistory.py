"""A household's wash sales from its books: its trades read as loss sales and
purchases, matched by :func:`poise.domain.washsales.find_washes`, and its lots as the
washes leave them (§1091, Treas. Reg. §1.1091-1 and §1.1091-2, IRS Publication 550).

The books are the household's accounts, its lots as the store holds them and its
transactions. How they are read:

* **A household is one taxpayer.** A loss is taken only in a taxable account
  (``taxable``, ``joint``, ``trust``); shares bought in any account of the household
  may replace it. A replacement in a tax-deferred or tax-exempt account (an IRA, a
  Roth, a 401(k), an HSA) loses the loss for good: Rev. Rul. 2008-5 rules so for an
  IRA and a Roth IRA, and poise treats every account whose gains are not taxed as
  realised the same way, since none of them has a basis the loss could move into.
* **A buy's lot.** The shares a buy made are the lots of the same account and
  security acquired on its trade date (``acquired`` is the trade date, docs/formats.md).
  One lot: it is that buy's (or that day's buys', together). Several lots: each is a
  purchase of its own. No lot: the books do not hold the shares, so nothing can be
  adjusted and it cannot be told whether they were still held after a loss sale; the
  buy is not taken as a replacement, and is reported (:class:`UnplacedBuy`) where it
  falls within 30 days of a loss of its identity. Only buys acquire shares: a transfer
  in, a split or a gift is no acquisition by purchase (§1.1091-1(a)).
* **The shares of a purchase** are the buy's quantity (with several lots on the day,
  each lot's shares now plus those sold from it). A lot the store holds split into
  ``<lot>.<n>`` parts by an earlier wash (a part carries a wash adjustment beside its
  lot, or beside another part, of the same security and day) is read as the one lot
  the custodian knows, its parts added back.
* **A sale's basis** is that of the shares it relieved, as the books hold their lot
  (:func:`poise.domain.transactions.sale_gain`): a sale of a lot the books do not hold
  with shares, of another security, acquired after the sale, or naming no lots at all,
  has no basis that can be known. It is reported (:class:`UnknownSale`), never taken
  as a loss or a gain. Proceeds are shared over the lots a sale relieved by shares.
* **Washes are the engine's, not inputs.** A lot bought in the history is read at its
  cost: whatever adjustment the books carry for it is what an earlier run of this
  engine wrote, and reading it back would add a loss twice. A replacement's shares
  carry the loss the engine moved into them to their own later sale, where it may be
  washed again. A lot bought before the history is read as the books hold it,
  adjustment and all: the engine never writes to it.
* **Shares bought and sold again before a loss sale do not replace it**, nor do shares
  sold the same day. §1091(d) moves the loss into the basis of the shares that replace
  the sold ones, which presupposes shares still held after the sale, and Rev. Rul.
  56-602 reads §1091 as aimed at a taxpayer who keeps his position; shares already
  gone keep nothing. ``find_washes`` takes its purchases as the shares still held, so
  each day's loss sales are matched against the shares held at the end of that day.
* **A replacement bought before the sold lot replaces it**, as long as it was bought
  within the 61-day period and is not the sold lot itself: the statute and
  §1.1091-1(a) look at the acquisition alone. Some practitioners read Rev. Rul. 56-602
  as also sparing shares bought before the sold ones; the IRS has not said so, and
  the engine does not guess a loss allowed.
* **Which shares of a lot leave first.** A sale from a lot that holds replacement
  shares sells its other shares first, then the replacement shares in the order of
  their washes; so the adjustment stays with the shares still held. Where the books
  hold fewer shares of a lot than its history explains (a sale the store does not have
  yet), the missing shares leave the same way.

Pure: accounts, lots, securities and transactions in; washes, the sales and buys that
could not be placed, and the household's lots as the books should hold them, out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, localcontext
from itertools import groupby

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.money import CONTEXT, ZERO, plain
from poise.domain.securities import Security
from poise.domain.transactions import LotRelieved, Transaction, TxnKind
from poise.domain.washsales import WINDOW_DAYS, LossSale, Purchase, Wash, apply_washes, find_washes

__all__ = [
    "BookedWash",
    "LotChanges",
    "UnknownSale",
    "UnplacedBuy",
    "WashHistory",
    "book_washes",
    "families",
    "lot_changes",
    "split_parts",
]

# A part an earlier wash split off a lot: ``<lot>.<n>``.
_PART = re.compile(r"^(?P<lot>.+)\.(?P<n>[1-9][0-9]*)$")
# Costs in the books have at most this many decimal places (docs/formats.md); a lot put
# back together from its parts is rounded to them, so that the sum of parts computed to
# 38 digits gives back the very cost they were computed from.
_PLACES = Decimal("1e-18")

Key = tuple[str, str]  # (account, lot id)


@dataclass(frozen=True, slots=True)
class BookedWash:
    """A wash as the books show it: the loss sale's transaction and security, the
    replacement's security, and where its shares are now — ``held`` of them still in
    the books, in the lot ``stored_as`` (``None`` when none are held, or the loss is
    lost for good and moved nothing)."""

    wash: Wash
    txn_id: str
    sold_security_id: str
    bought_security_id: str
    held: Decimal
    stored_as: str | None


@dataclass(frozen=True, slots=True)
class UnknownSale:
    """Shares a sale relieved whose basis the books cannot give: neither a loss nor a
    gain can be known, so the sale washes nothing and nothing is guessed."""

    txn_id: str
    account_id: str
    security_id: str
    sold: date
    lot_id: str  # empty when the sale names no lots
    shares: Decimal
    proceeds: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class UnplacedBuy:
    """A buy within 30 days of a loss of its identity whose shares no lot in the books
    holds: whether it replaces the loss cannot be told."""

    txn_id: str
    account_id: str
    security_id: str
    bought: date
    shares: Decimal


@dataclass(frozen=True, slots=True)
class WashHistory:
    """What a household's books say about its wash sales."""

    washes: tuple[BookedWash, ...]
    unknown: tuple[UnknownSale, ...]
    unplaced: tuple[UnplacedBuy, ...]
    lots: tuple[TaxLot, ...]  # every lot of the household, as the washes leave it


@dataclass(frozen=True, slots=True)
class LotChanges:
    """What to write to the books to make them hold ``desired`` lots."""

    write: tuple[TaxLot, ...]
    remove: tuple[Key, ...]

    def __len__(self) -> int:
        return len(self.write) + len(self.remove)


def _adjusted(lot: TaxLot) -> bool:
    return (
        lot.adjusted_basis is not None
        and lot.holding_start is not None
        and lot.disallowed_loss > ZERO
    )


def families(lots: Sequence[TaxLot]) -> dict[Key, list[TaxLot]]:
    """The rows of the books grouped by the lot the custodian knows: a part an earlier
    wash split off (``<lot>.<n>``, carrying a wash adjustment, beside ``<lot>`` or
    another part of it, all of one security and day) under ``<lot>``; every other row
    under its own id. Keys are (account, lot id), in the order first met."""
    by_key = {(lot.account_id, lot.lot_id): lot for lot in lots}
    parts: dict[Key, list[TaxLot]] = {}
    for lot in lots:
        if "." not in lot.lot_id or not _adjusted(lot):  # most rows: no part of a split
            continue
        found = _PART.match(lot.lot_id)
        if found is not None:
            parts.setdefault((lot.account_id, found["lot"]), []).append(lot)
    parent: dict[Key, str] = {}
    for (account_id, lot_id), rows in parts.items():
        kinds = {(row.security_id, row.acquired) for row in rows}
        head = by_key.get((account_id, lot_id))
        if len(kinds) != 1:
            continue
        if head is not None and {(head.security_id, head.acquired)} != kinds:
            continue
        if head is None and len(rows) < 2:
            continue
        for row in rows:
            parent[(account_id, row.lot_id)] = lot_id
    grouped: dict[Key, list[TaxLot]] = {}
    for lot in lots:
        base = parent.get((lot.account_id, lot.lot_id), lot.lot_id)
        grouped.setdefault((lot.account_id, base), []).append(lot)
    return grouped


def split_parts(lots: Sequence[TaxLot], of: Iterable[Key]) -> list[TaxLot]:
    """The parts an earlier wash split off the lots ``of`` (see :func:`families`)."""
    wanted = set(of)
    return [
        row
        for key, rows in families(lots).items()
        if key in wanted
        for row in rows
        if row.lot_id != key[1]
    ]


def _whole(key: Key, rows: Sequence[TaxLot]) -> TaxLot:
    """The lot the custodian knows, from its rows: the row itself, or its parts added
    back (shares exactly; cost to the books' decimal places)."""
    if len(rows) == 1 and rows[0].lot_id == key[1]:
        return rows[0]
    head = rows[0]
    with localcontext() as exact:
        exact.prec = 200  # sums of 38-digit parts, without rounding
        quantity = sum((row.quantity for row in rows), ZERO)
        cost = sum((row.cost_basis for row in rows), ZERO).quantize(_PLACES)
    return TaxLot(
        lot_id=key[1],
        account_id=key[0],
        security_id=head.security_id,
        quantity=Decimal(plain(quantity)),
        cost_basis=Decimal(plain(cost)),
        acquired=head.acquired,
    )


class _Shares:
    """The shares of a purchase over time: those no wash has taken (``free``) and each
    wash's (``used``, wash index → shares, in the order of the washes)."""

    __slots__ = ("free", "used")

    def __init__(self, shares: Decimal) -> None:
        self.free = shares
        self.used: dict[int, Decimal] = {}

    @property
    def held(self) -> Decimal:
        return self.free + sum(self.used.values(), ZERO)

    def claim(self, wash: int, shares: Decimal) -> None:
        self.free -= shares
        self.used[wash] = self.used.get(wash, ZERO) + shares

    def remove(self, shares: Decimal) -> list[tuple[int | None, Decimal]]:
        """Take ``shares`` out: free shares first, then each wash's in wash order."""
        pieces: list[tuple[int | None, Decimal]] = []
        take = min(shares, self.free)
        if take > ZERO:
            pieces.append((None, take))
            self.free -= take
            shares -= take
        for wash in sorted(self.used):
            if shares <= ZERO:
                break
            take = min(shares, self.used[wash])
            if take > ZERO:
                pieces.append((wash, take))
                self.used[wash] -= take
                shares -= take
        if shares > ZERO:  # more sold than the purchase made: shares beyond its history
            pieces.append((None, shares))
        return pieces


@dataclass(frozen=True, slots=True)
class _Bought:
    """A lot bought in the history: a purchase the engine follows."""

    lot: TaxLot  # as the custodian knows it
    identity: str
    retirement: bool
    per_share: Decimal  # cost a share


def _shared(amount: Decimal, parts: Sequence[Decimal]) -> list[Decimal]:
    """``amount`` shared over ``parts`` by their size, the last taking what is left so
    that the shares add up to it exactly."""
    if len(parts) < 2:
        return [amount] * len(parts)
    total = sum(parts, ZERO)
    shares = [amount * part / total if total else ZERO for part in parts[:-1]]
    return [*shares, amount - sum(shares, ZERO)]


def book_washes(
    *,
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    securities: Mapping[str, Security],
    transactions: Sequence[Transaction],
    closed: Sequence[TaxLot] = (),
) -> WashHistory:
    """A household's wash sales, and its lots as the washes leave them: see the module.

    ``accounts`` are the household's; ``lots`` and ``transactions`` those of its
    accounts (others are passed over), the whole history the books hold — a sale's
    basis can hang on washes years before it. ``closed``: lots the books no longer
    hold because a sale emptied them, each as it stood before that sale — read for
    their basis and dates (and as purchases, when bought in the history), never
    returned among the lots. Computed to 38 digits.
    """
    with localcontext(CONTEXT):
        return _Book(accounts, lots, securities, transactions, closed).run()


class _Book:
    """One household's history, read in order of trade date (the state of a fold)."""

    def __init__(
        self,
        accounts: Sequence[Account],
        lots: Sequence[TaxLot],
        securities: Mapping[str, Security],
        transactions: Sequence[Transaction],
        closed: Sequence[TaxLot] = (),
    ) -> None:
        self.registration = {a.account_id: a.registration for a in accounts}
        self.securities = securities
        self.rows = families([lot for lot in lots if lot.account_id in self.registration])
        self.whole = {key: _whole(key, rows) for key, rows in self.rows.items()}
        # A row's lot, and a lot's own id (a lot split into parts has no row of its id).
        self.row_of = {(r.account_id, r.lot_id): k for k, rows in self.rows.items() for r in rows}
        self.row_of |= {key: key for key in self.rows}
        # The shares each lot holds now: a closed lot's are gone.
        self.current = {key: lot.quantity for key, lot in self.whole.items()}
        for lot in closed:
            key = (lot.account_id, lot.lot_id)
            if lot.account_id in self.registration and key not in self.row_of:
                self.whole[key], self.current[key], self.row_of[key] = lot, ZERO, key
        mine = [
            t
            for t in transactions
            if t.account_id in self.registration and t.security_id is not None
        ]
        self.buys = [t for t in mine if t.kind is TxnKind.BUY]
        self.sells = sorted(
            (t for t in mine if t.kind is TxnKind.SELL),
            key=lambda t: (t.trade_date, t.account_id, t.txn_id),
        )
        self.washes: list[Wash] = []
        self.sale_of: dict[int, Transaction] = {}  # id(LossSale) → its sale
        self.unknown: list[UnknownSale] = []
        self.losses: list[LossSale] = []
        self.bought: dict[Key, _Bought] = {}
        self.shares: dict[Key, _Shares] = {}
        self.unplaced: list[Transaction] = []

    def identity(self, security_id: str) -> str:
        security = self.securities.get(security_id)
        return security.wash_sale_identity if security is not None else security_id

    def base(self, account_id: str, lot_id: str) -> Key | None:
        return self.row_of.get((account_id, lot_id))

    # ── purchases ────────────────────────────────────────────────────────────────

    def follow_buys(self) -> None:
        """Each buy to its lots (same account, security and day); see the module."""
        on_day: dict[tuple[str, str, date], list[Key]] = {}
        for whole, lot in self.whole.items():
            on_day.setdefault((whole[0], lot.security_id, lot.acquired), []).append(whole)
        buys: dict[tuple[str, str, date], list[Transaction]] = {}
        for buy in self.buys:
            buys.setdefault((buy.account_id, _security(buy), buy.trade_date), []).append(buy)
        sold: dict[Key, Decimal] = {}
        for sale in self.sells:
            for relieved in sale.lots:
                base = self.base(sale.account_id, relieved.lot_id)
                if base is not None and self._sells(sale, self.whole[base]):
                    sold[base] = sold.get(base, ZERO) + relieved.quantity
        for day, made in buys.items():
            keys = on_day.get(day, [])
            if not keys:
                self.unplaced.extend(made)
                continue
            bought = sum((b.quantity for b in made), ZERO)
            for key in keys:
                lot = self.whole[key]
                shares = bought if len(keys) == 1 else self.current[key] + sold.get(key, ZERO)
                if shares <= ZERO:
                    continue
                per_share = (
                    lot.cost_basis / lot.quantity
                    if lot.quantity > ZERO
                    else sum((b.amount for b in made), ZERO) / bought
                )
                self.bought[key] = _Bought(
                    lot=lot,
                    identity=self.identity(lot.security_id),
                    retirement=not self.registration[key[0]].taxable,
                    per_share=per_share,
                )
                self.shares[key] = _Shares(shares)

    @staticmethod
    def _sells(sale: Transaction, lot: TaxLot) -> bool:
        return lot.security_id == sale.security_id and lot.acquired <= sale.trade_date

    def purchases(self, day: date) -> tuple[list[Purchase], dict[int, Key]]:
        """The shares that may replace a loss of ``day``: those of purchases within the
        61-day period still held at the end of the day, that no earlier wash took."""
        found: list[Purchase] = []
        keys: dict[int, Key] = {}
        ordered = sorted(self.bought.items(), key=lambda kv: (kv[1].lot.acquired, kv[0]))
        for key, bought in ordered:
            free = self.shares[key].free
            if abs((bought.lot.acquired - day).days) > WINDOW_DAYS or free <= ZERO:
                continue
            purchase = Purchase(
                account_id=key[0],
                lot_id=key[1],
                identity=bought.identity,
                quantity=free,
                cost=bought.per_share * free,
                acquired=bought.lot.acquired,
                retirement=bought.retirement,
            )
            found.append(purchase)
            keys[id(purchase)] = key
        return found, keys

    # ── sales ────────────────────────────────────────────────────────────────────

    def sell(self, sale: Transaction) -> list[LossSale]:
        """The sale as loss sales, lot by lot (and, within a lot, by the wash its
        shares came from). The shares it relieved leave their purchase whether or not
        their basis can be known; only a taxable account's sale is a loss sale."""
        taxable = self.registration[sale.account_id].taxable
        if not sale.lots:
            if taxable:
                self._unknown(sale, "", sale.quantity, sale.amount, "the sale names no lots")
            return []
        found: list[LossSale] = []
        proceeds = _shared(sale.amount, [r.quantity for r in sale.lots])
        for relieved, amount in zip(sale.lots, proceeds, strict=True):
            key = self.base(sale.account_id, relieved.lot_id)
            pieces: list[tuple[int | None, Decimal]] = [(None, relieved.quantity)]
            if key in self.shares and self._sells(sale, self.whole[key]):
                pieces = self.shares[key].remove(relieved.quantity)
            reason = self._unknowable(sale, relieved, key)
            if not taxable:
                continue
            if reason or key is None:
                self._unknown(sale, relieved.lot_id, relieved.quantity, amount, reason)
                continue
            found.extend(self._losses(sale, key, pieces, amount))
        return found

    def _losses(
        self, sale: Transaction, key: Key, pieces: Sequence[tuple[int | None, Decimal]],
        proceeds: Decimal,
    ) -> list[LossSale]:  # fmt: skip
        """Shares of one lot a sale relieved, as loss sales: a lot bought in the history
        at its cost a share, plus the loss a wash carried into the shares it moved
        into; any other lot as the books hold it."""
        lot = self.whole[key]
        bought = self.bought.get(key)
        amounts = _shared(proceeds, [shares for _, shares in pieces])
        found = []
        for (index, shares), amount in zip(pieces, amounts, strict=True):
            if bought is None:
                basis, since = lot.basis_per_share * shares, lot.held_since
            else:
                basis, since = bought.per_share * shares, lot.acquired
                wash = self.washes[index] if index is not None else None
                if wash is not None and not wash.permanent:
                    basis += wash.disallowed * shares / wash.shares
                    since = wash.holding_start
            found.append(
                self._loss(sale, key, shares=shares, basis=basis, proceeds=amount, since=since)
            )
        return found

    def _unknowable(self, sale: Transaction, relieved: LotRelieved, key: Key | None) -> str:
        if key is None:
            return f"the books hold no lot {relieved.lot_id}"
        lot = self.whole[key]
        if lot.quantity <= ZERO:
            return f"lot {relieved.lot_id} holds no shares in the books"
        if lot.security_id != sale.security_id:
            return f"lot {relieved.lot_id} is of {lot.security_id}, not {sale.security_id}"
        if lot.acquired > sale.trade_date:
            return f"lot {relieved.lot_id} was acquired after the sale"
        if key not in self.bought and lot.held_since > sale.trade_date:
            return f"lot {relieved.lot_id} is held from after the sale"
        return ""

    def _loss(
        self, sale: Transaction, key: Key, *, shares: Decimal, basis: Decimal,
        proceeds: Decimal, since: date,
    ) -> LossSale:  # fmt: skip
        loss = LossSale(
            account_id=sale.account_id,
            lot_id=key[1],
            identity=self.identity(_security(sale)),
            quantity=shares,
            basis=basis,
            proceeds=proceeds,
            sold=sale.trade_date,
            held_since=since,
        )
        self.sale_of[id(loss)] = sale
        return loss

    def _unknown(
        self, sale: Transaction, lot_id: str, shares: Decimal, proceeds: Decimal, reason: str
    ) -> None:
        self.unknown.append(
            UnknownSale(
                sale.txn_id,
                sale.account_id,
                _security(sale),
                sale.trade_date,
                lot_id,
                shares,
                proceeds,
                reason,
            )
        )

    # ── the fold ─────────────────────────────────────────────────────────────────

    def run(self) -> WashHistory:
        self.follow_buys()
        for day, sales in groupby(self.sells, key=lambda t: t.trade_date):
            losses = [loss for sale in sales for loss in self.sell(sale)]
            if not any(loss.loss > ZERO for loss in losses):
                continue
            purchases, keys = self.purchases(day)
            for wash in find_washes(losses, purchases):
                self.shares[keys[id(wash.replacement)]].claim(len(self.washes), wash.shares)
                self.washes.append(wash)
            self.losses.extend(loss for loss in losses if loss.loss > ZERO)
        for key, shares in self.shares.items():  # shares gone from the books, not the history
            gone = shares.held - self.current[key]
            if gone > ZERO:
                shares.remove(gone)
        return self.history()

    def history(self) -> WashHistory:
        held: dict[Key, list[tuple[int, Wash]]] = {}
        for key, shares in self.shares.items():
            for index, count in sorted(shares.used.items()):
                wash = self.washes[index]
                if count > ZERO and not wash.permanent:
                    kept = wash if count == wash.shares else _part_of(wash, count)
                    held.setdefault(key, []).append((index, kept))
        stored_as: dict[int, str] = {}
        lots: list[TaxLot] = []
        for key, rows in self.rows.items():
            mine = held.get(key)
            if not mine:
                lots.extend(rows)
                continue
            parts = apply_washes([self.whole[key]], [wash for _, wash in mine])
            for (index, _), part in zip(mine, parts, strict=False):
                stored_as[index] = part.lot_id
            lots.extend(parts)
        booked = []
        for index, wash in enumerate(self.washes):
            sale = self.sale_of[id(wash.sale)]
            key = (wash.replacement.account_id, wash.replacement.lot_id)
            booked.append(
                BookedWash(
                    wash=wash,
                    txn_id=sale.txn_id,
                    sold_security_id=_security(sale),
                    bought_security_id=self.whole[key].security_id,
                    held=self.shares[key].used.get(index, ZERO),
                    stored_as=stored_as.get(index),
                )
            )
        return WashHistory(
            washes=tuple(booked),
            unknown=tuple(self.unknown),
            unplaced=tuple(self._unplaced()),
            lots=tuple(lots),
        )

    def _unplaced(self) -> list[UnplacedBuy]:
        """Buys no lot holds that fall within 30 days of a loss of their identity."""
        found = []
        for buy in sorted(self.unplaced, key=lambda t: (t.trade_date, t.account_id, t.txn_id)):
            identity = self.identity(_security(buy))
            if any(
                loss.identity == identity and abs((loss.sold - buy.trade_date).days) <= WINDOW_DAYS
                for loss in self.losses
            ):
                found.append(
                    UnplacedBuy(
                        buy.txn_id, buy.account_id, _security(buy), buy.trade_date, buy.quantity
                    )
                )
        return found


def _security(txn: Transaction) -> str:
    """The security of a buy or a sale (the book keeps only those that name one)."""
    return txn.security_id or ""


def _part_of(wash: Wash, shares: Decimal) -> Wash:
    """The part of ``wash`` on ``shares`` of its replacement shares, with its share of
    the loss: what the books still hold of it."""
    return replace(wash, shares=shares, disallowed=wash.disallowed * shares / wash.shares)


def lot_changes(stored: Sequence[TaxLot], desired: Sequence[TaxLot]) -> LotChanges:
    """The rows to write and the keys to remove so that the books holding ``stored``
    hold ``desired`` (lots compared by value: ``1050`` is ``1050.00``)."""
    before = {(lot.account_id, lot.lot_id): lot for lot in stored}
    after = {(lot.account_id, lot.lot_id): lot for lot in desired}
    return LotChanges(
        write=tuple(lot for key, lot in after.items() if before.get(key) != lot),
        remove=tuple(key for key in before if key not in after),
    )
