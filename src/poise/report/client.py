"""A client's household as its client reads it: its allocation against its model's
target, its value over the past year, and the gains its sales realised this year.

Pure: lots, cash, transactions, models and closes in, figures out — the shell
(:mod:`poise.web.client`) reads them from the store.

**Value over time** is reconstructed from what the books hold now: today's shares and
cash, with every transaction after a day undone, valued at that day's closes. A day's
transactions count at the end of it, on their trade dates. Each kind moves shares, cash
or both (:data:`EFFECTS`); money added from outside — deposits, withdrawals, shares
transferred in or out (at that day's close) — is kept apart, since money a client adds
is not a gain. A security held on a day without a close of its own is valued at its
last close before (carried forward, and said); one with no close at all, at nothing.
Closes are taken as they traded, as the store holds them: a split's shares are undone
before it, so a history adjusted for later splits would show the days before one at
too little.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from poise.domain.accounts import Account, Household, Registration, model_of
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Model, resolve
from poise.domain.money import ZERO
from poise.domain.relief import Term, is_long_term
from poise.domain.transactions import Transaction, TxnKind, sale_gain

__all__ = [
    "CASH",
    "EFFECTS",
    "AgainstTarget",
    "ClassWeight",
    "DayValue",
    "Effect",
    "Realised",
    "RealisedGains",
    "ValueHistory",
    "against_target",
    "chart_days",
    "realised_gains",
    "shares_of",
    "value_over_time",
]

CASH = "cash"  # the asset class of cash, as the household's page names it
OTHER = "other"  # a security the store has no asset class for


# ── value over time ──────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Effect:
    """What a transaction of one kind does, forward in time: ``shares`` and ``cash``
    are +1 (adds its quantity, its amount), -1 (takes them away) or 0; ``added`` is
    +1 or -1 where it is money added to (taken from) the household from outside."""

    shares: int
    cash: int
    added: int = 0


EFFECTS: Mapping[TxnKind, Effect] = {
    TxnKind.BUY: Effect(shares=+1, cash=-1),
    TxnKind.SELL: Effect(shares=-1, cash=+1),
    TxnKind.SPLIT: Effect(shares=+1, cash=0),  # quantity: the shares the split added
    TxnKind.TRANSFER_IN: Effect(shares=+1, cash=0, added=+1),
    TxnKind.TRANSFER_OUT: Effect(shares=-1, cash=0, added=-1),
    TxnKind.DEPOSIT: Effect(shares=0, cash=+1, added=+1),
    TxnKind.WITHDRAWAL: Effect(shares=0, cash=-1, added=-1),
    TxnKind.DIVIDEND: Effect(shares=0, cash=+1),
    TxnKind.INTEREST: Effect(shares=0, cash=+1),
    TxnKind.FEE: Effect(shares=0, cash=-1),
}


@dataclass(frozen=True, slots=True)
class DayValue:
    """The household at the end of one day. ``added``: money added less money taken
    out since the point before (on this day, for the first point)."""

    day: date
    value: Decimal  # its shares at the day's closes, and its cash; exact
    added: Decimal
    carried: tuple[str, ...] = ()  # held, no close that day: the last close before
    unpriced: tuple[str, ...] = ()  # held, no close on or before that day: valued at nothing


@dataclass(frozen=True, slots=True)
class ValueHistory:
    points: tuple[DayValue, ...]

    @property
    def change(self) -> Decimal:
        return self.points[-1].value - self.points[0].value if self.points else ZERO

    @property
    def added(self) -> Decimal:
        """Money added less money taken out after the first day."""
        return sum((p.added for p in self.points[1:]), ZERO)

    @property
    def earned(self) -> Decimal:
        """The change that is not money added: the markets and income, after fees."""
        return self.change - self.added

    @property
    def carried_days(self) -> int:
        return sum(1 for p in self.points if p.carried)


class _Closes:
    """Each security's closes in day order, for the close on or before any day."""

    def __init__(self, closes: Mapping[date, Mapping[str, Decimal]]) -> None:
        by_security: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for day in sorted(closes):
            for security_id, price in closes[day].items():
                by_security[security_id].append((day, price))
        self._days = {s: [d for d, _ in rows] for s, rows in by_security.items()}
        self._prices = {s: [p for _, p in rows] for s, rows in by_security.items()}

    def on(self, security_id: str, day: date) -> tuple[Decimal | None, bool]:
        """The close on ``day`` or the last before it (None: none), and whether it
        was carried from an earlier day."""
        days = self._days.get(security_id, [])
        n = bisect_right(days, day)
        if n == 0:
            return None, False
        return self._prices[security_id][n - 1], days[n - 1] != day


def shares_of(lots: Iterable[TaxLot]) -> dict[str, Decimal]:
    """The shares held of each security."""
    held: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for lot in lots:
        held[lot.security_id] += lot.quantity
    return dict(held)


def chart_days(priced: Iterable[date], *, since: date, until: date) -> list[date]:
    """The days to show from ``since`` to ``until``: every day with a close, and
    ``until``. A year of them is a few hundred points: each is shown."""
    return sorted({d for d in priced if since <= d <= until} | {until})


def value_over_time(
    *,
    held: Mapping[str, Decimal],
    cash: Decimal,
    transactions: Iterable[Transaction],
    closes: Mapping[date, Mapping[str, Decimal]],
    days: Sequence[date],
) -> ValueHistory:
    """The household's value at the end of each of ``days``, from the shares ``held``
    and the ``cash`` it has now and its ``transactions`` (any after a day undone),
    at ``closes`` (day → security → close). See the module for what counts how."""
    shown = sorted(set(days))
    if not shown:
        return ValueHistory(())
    prices = _Closes(closes)
    shares: dict[str, Decimal] = defaultdict(lambda: ZERO, held)
    balance = cash
    newest_first = sorted(transactions, key=lambda x: x.trade_date, reverse=True)
    added_on: dict[date, Decimal] = defaultdict(lambda: ZERO)
    undone = 0
    found: list[DayValue] = []  # newest first; what each adds comes after
    for day in reversed(shown):
        while undone < len(newest_first) and newest_first[undone].trade_date > day:
            txn = newest_first[undone]
            balance = _undo(txn, shares, balance)
            added_on[txn.trade_date] += _added(txn, prices)
            undone += 1
        value = balance
        carried: list[str] = []
        unpriced: list[str] = []
        for security_id, quantity in shares.items():
            if quantity == ZERO:
                continue
            price, stale = prices.on(security_id, day)
            if price is None:
                unpriced.append(security_id)
                continue
            value += quantity * price
            if stale:
                carried.append(security_id)
        found.append(DayValue(day, value, ZERO, tuple(sorted(carried)), tuple(sorted(unpriced))))
    for txn in newest_first[undone:]:  # on or before the first day: only its own day counts
        if txn.trade_date == shown[0]:
            added_on[txn.trade_date] += _added(txn, prices)
    points: list[DayValue] = []
    for point in reversed(found):
        before = points[-1].day if points else None
        added = sum(
            (v for d, v in added_on.items() if (before is None or d > before) and d <= point.day),
            ZERO,
        )
        points.append(replace(point, added=added))
    return ValueHistory(tuple(points))


def _undo(txn: Transaction, shares: dict[str, Decimal], cash: Decimal) -> Decimal:
    """Undo ``txn`` in ``shares`` (in place); the cash before it. A transfer that
    names no security moved cash."""
    effect = EFFECTS[txn.kind]
    moves_cash = effect.cash
    if effect.shares and txn.security_id:
        shares[txn.security_id] -= effect.shares * txn.quantity
    elif effect.shares:
        moves_cash = effect.shares
    return cash - moves_cash * txn.amount


def _added(txn: Transaction, prices: _Closes) -> Decimal:
    """The money ``txn`` added from outside (negative: took out); shares at the
    close of their day."""
    effect = EFFECTS[txn.kind]
    if not effect.added:
        return ZERO
    if effect.shares and txn.security_id:
        price, _ = prices.on(txn.security_id, txn.trade_date)
        return ZERO if price is None else effect.added * txn.quantity * price
    return effect.added * txn.amount


# ── allocation against target ────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class ClassWeight:
    asset_class: str
    target: Decimal  # a fraction of the modelled accounts' value
    actual: Decimal

    @property
    def difference(self) -> Decimal:
        return self.actual - self.target


@dataclass(frozen=True, slots=True)
class AgainstTarget:
    """By asset class, the household's weights against its target: its model's, or
    its accounts' models weighted by their values (:func:`against_target`)."""

    rows: tuple[ClassWeight, ...]
    models: tuple[str, ...]  # the models the target is made of
    unmodelled: tuple[str, ...]  # accounts with no model (or one that does not resolve): left out


def against_target(
    *,
    household: Household,
    accounts: Sequence[Account],
    lots: Iterable[TaxLot],
    prices: Mapping[str, Decimal],
    models: Mapping[str, Model],
    asset_class: Mapping[str, str],
) -> AgainstTarget:
    """Each asset class's weight in the household against its target. Each account is
    held to the model the engine holds it to (:func:`poise.domain.accounts.model_of`:
    the household's, else its own), resolved to securities; the target is every
    account's model by asset class, weighted by the account's value (equally when
    none has any). Accounts with no model are left out of both sides; lots without a
    price are valued at nothing, as the household's value counts them."""
    by_account: dict[str, dict[str, Decimal]] = {a.account_id: {CASH: a.cash} for a in accounts}
    for lot in lots:
        price = prices.get(lot.security_id)
        if price is None or lot.account_id not in by_account:
            continue
        held = by_account[lot.account_id]
        kind = asset_class.get(lot.security_id, OTHER)
        held[kind] = held.get(kind, ZERO) + lot.quantity * price
    targets: dict[str, dict[str, Decimal]] = {}
    unmodelled = []
    for account in accounts:
        model_id = model_of(household, account)
        try:
            if model_id is None or model_id not in models:
                raise ValidationError(f"account {account.account_id} has no model")
            resolved = resolve(model_id, models)
        except ValidationError:
            unmodelled.append(account.account_id)
            continue
        weights: dict[str, Decimal] = {CASH: resolved.cash}
        for security_id, weight in resolved.securities.items():
            kind = asset_class.get(security_id, OTHER)
            weights[kind] = weights.get(kind, ZERO) + weight
        targets[account.account_id] = weights
    values = {i: sum(by_account[i].values(), ZERO) for i in targets}
    total = sum(values.values(), ZERO)
    share = {i: (v / total if total > 0 else Decimal(1) / len(values)) for i, v in values.items()}
    target: dict[str, Decimal] = defaultdict(lambda: ZERO)
    actual: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for account_id, weights in targets.items():
        for kind, weight in weights.items():
            target[kind] += share[account_id] * weight
        for kind, value in by_account[account_id].items():
            actual[kind] += value / total if total > 0 else ZERO
    rows = [
        ClassWeight(kind, target[kind], actual[kind])
        for kind in set(target) | set(actual)
        if target[kind] != ZERO or actual[kind] != ZERO
    ]
    rows.sort(key=lambda r: (r.asset_class == CASH, -r.target, -r.actual, r.asset_class))
    used = sorted({model_of(household, a) or "" for a in accounts if a.account_id in targets})
    return AgainstTarget(tuple(rows), tuple(used), tuple(unmodelled))


# ── realised gains ───────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Realised:
    """One sale: what it brought and the gain it realised, short- and long-term by
    the holding start of each lot it relieved. ``gain`` None: the books no longer hold
    the basis of a lot it relieved (or it names none), so its gain is not known."""

    day: date
    account_id: str
    registration: Registration
    security_id: str
    quantity: Decimal
    proceeds: Decimal
    gain: Decimal | None
    short: Decimal = ZERO
    long: Decimal = ZERO
    terms: frozenset[Term] = frozenset()

    @property
    def taxable(self) -> bool:
        return self.registration.taxable

    @property
    def term(self) -> str:
        """The terms of its gain: short, long, "short and long"; "" when not known."""
        return " and ".join(t.value for t in (Term.SHORT, Term.LONG) if t in self.terms)


@dataclass(frozen=True, slots=True)
class RealisedGains:
    """The sales from ``since`` to ``until``, and the taxable accounts' gains: only
    they owe tax on a gain as it is realised (an IRA's, a Roth's are not taxed so)."""

    since: date
    until: date
    sales: tuple[Realised, ...]

    @property
    def short(self) -> Decimal:
        """Short-term gains of the taxable accounts' sales whose gain is known."""
        return sum((s.short for s in self.sales if s.taxable and s.gain is not None), ZERO)

    @property
    def long(self) -> Decimal:
        return sum((s.long for s in self.sales if s.taxable and s.gain is not None), ZERO)

    @property
    def unknown(self) -> int:
        """Taxable accounts' sales whose basis the books no longer hold: not in the totals."""
        return sum(1 for s in self.sales if s.taxable and s.gain is None)


def realised_gains(
    *,
    sales: Iterable[Transaction],
    lots: Iterable[TaxLot],
    accounts: Sequence[Account],
    since: date,
    until: date,
) -> RealisedGains:
    """Every sale of ``accounts`` traded from ``since`` to ``until`` (both included),
    newest first, with its gain as :func:`~poise.domain.transactions.sale_gain` finds
    it from the books' ``lots``; the gain split into short and long term by each
    relieved lot's holding start against the sale's trade date (its proceeds shared
    between the lots by shares)."""
    kinds = {a.account_id: a.registration for a in accounts}
    held: dict[str, dict[str, TaxLot]] = defaultdict(dict)
    for lot in lots:
        held[lot.account_id][lot.lot_id] = lot
    found = []
    for sale in sales:
        if sale.kind is not TxnKind.SELL or sale.account_id not in kinds:
            continue
        if not since <= sale.trade_date <= until:
            continue
        books = held.get(sale.account_id, {})
        gain = sale_gain(sale, books)
        short, long_, terms = ZERO, ZERO, frozenset[Term]()
        if gain is not None:
            by_term = _by_term(sale, books)
            terms = frozenset(by_term)
            long_ = by_term.get(Term.LONG, ZERO) if Term.SHORT in terms else gain
            short = gain - long_ if Term.SHORT in terms else ZERO
        found.append(
            Realised(
                day=sale.trade_date, account_id=sale.account_id,
                registration=kinds[sale.account_id], security_id=sale.security_id or "",
                quantity=sale.quantity, proceeds=sale.amount, gain=gain,
                short=short, long=long_, terms=terms,
            )
        )  # fmt: skip
    found.sort(key=lambda r: (r.day, r.account_id), reverse=True)
    return RealisedGains(since, until, tuple(found))


def _by_term(sale: Transaction, books: Mapping[str, TaxLot]) -> dict[Term, Decimal]:
    """The gain of the shares of each term a sale relieved (its proceeds shared by
    shares, the last lot taking what the division leaves)."""
    out: dict[Term, Decimal] = {}
    left = sale.amount
    for n, relieved in enumerate(sale.lots):
        lot = books[relieved.lot_id]
        last = n == len(sale.lots) - 1
        proceeds = left if last else sale.amount * relieved.quantity / sale.quantity
        left -= proceeds
        term = Term.LONG if is_long_term(lot.held_since, sale.trade_date) else Term.SHORT
        gain = proceeds - relieved.quantity * lot.basis_per_share
        out[term] = out.get(term, ZERO) + gain
    return out
