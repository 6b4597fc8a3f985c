"""Custodian reconciliation: the custodian's snapshot of an account — its positions,
prices and cash on a day — against the books, as typed breaks with their likely causes.

What is compared, and how a cause is told:

* **Quantity** (``quantity``): each security the books or the custodian hold, share for
  share. Where the difference is the shares of fills allocated to the account but not
  yet booked, the cause is *an unbooked fill*. Where the custodian holds a whole ratio
  of the books' shares (2, 3, 3/2, 1/2, …), it is *a corporate action the books do not
  know*: a split or a reverse split. Otherwise no cause is named.
* **Unknown position** (``unknown_position``): the custodian holds a security the
  security master does not know.
* **Cash** (``cash``): to the cent. The custodian's trade-date cash, where its file
  gives it, against the books' (which move on the trade date); else its settled cash
  against the books' less what is still to settle (trades after the snapshot's day's
  settlement). Where the difference is what unbooked fills move, the cause is *an
  unbooked fill*; where it is what trades still to settle move, *a pending
  settlement* (the custodian's balance is a different one from what the file said);
  otherwise *a deposit, withdrawal, fee or dividend the books do not have*.
* **Price** (``price``): the custodian's price, where its file gives one, against the
  store's latest, relatively; past ``tolerance`` it is a break.

Pure.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from poise.domain.money import ZERO, plain

__all__ = ["Break", "BreakKind", "Pending", "Snapshot", "compare"]

# Split ratios a quantity difference is read as (custodian shares : books shares).
SPLITS = (
    Fraction(2), Fraction(3), Fraction(4), Fraction(5), Fraction(10), Fraction(3, 2),
    Fraction(5, 4), Fraction(1, 2), Fraction(1, 3), Fraction(1, 4), Fraction(1, 5),
    Fraction(1, 10), Fraction(2, 3),
)  # fmt: skip


class BreakKind(enum.StrEnum):
    QUANTITY = "quantity"
    UNKNOWN_POSITION = "unknown_position"
    CASH = "cash"
    PRICE = "price"


@dataclass(frozen=True, slots=True)
class Break:
    """What does not agree, in one account: its kind, the security (None for cash), the
    books' figure and the custodian's, and the likely cause (empty: none found)."""

    account_id: str
    kind: BreakKind
    security_id: str | None
    books: Decimal
    custodian: Decimal
    cause: str

    @property
    def difference(self) -> Decimal:
        return self.custodian - self.books

    @property
    def description(self) -> str:
        what = "cash" if self.security_id is None else self.security_id
        said = {
            BreakKind.QUANTITY: f"{what}: the books hold {plain(self.books)}, the custodian"
            f" {plain(self.custodian)}",
            BreakKind.UNKNOWN_POSITION: f"the custodian holds {plain(self.custodian)} {what},"
            " a security the master does not know",
            BreakKind.CASH: f"cash: the books {self.books:,.2f}, the custodian"
            f" {self.custodian:,.2f}",
            BreakKind.PRICE: f"{what}: the store's price {plain(self.books)}, the custodian's"
            f" {plain(self.custodian)}",
        }[self.kind]
        return f"{said} — {self.cause}" if self.cause else said


@dataclass(frozen=True, slots=True)
class Pending:
    """Something the books will do that the custodian may have done already: a fill
    not yet booked, or a booked trade not yet settled — its shares and cash, signed as
    they move the account."""

    account_id: str
    ref: str
    security_id: str | None
    shares: Decimal
    cash: Decimal


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The custodian's view of one account on one day."""

    account_id: str
    positions: Mapping[str, Decimal]
    prices: Mapping[str, Decimal]
    cash: Decimal | None  # settled
    trade_date_cash: Decimal | None


def _split(books: Decimal, custodian: Decimal) -> str:
    if books <= ZERO or custodian <= ZERO:
        return ""
    ratio = Fraction(custodian) / Fraction(books)
    if ratio not in SPLITS:
        return ""
    kind = "split" if ratio > 1 else "reverse split"
    return (
        f"a corporate action the books do not know: a {ratio.numerator}-for-"
        f"{ratio.denominator} {kind}"
    )


def _unbooked(found: Sequence[Pending], what: str) -> str:
    refs = ", ".join(p.ref for p in found)
    return f"{what}: {refs}"


def compare(
    snapshot: Snapshot,
    *,
    books: Mapping[str, Decimal],
    books_cash: Decimal,
    known: frozenset[str] | set[str],
    unbooked: Sequence[Pending] = (),
    unsettled: Sequence[Pending] = (),
    prices: Mapping[str, Decimal] | None = None,
    tolerance: Decimal = Decimal("0.01"),
) -> list[Break]:
    """One account's breaks: see the module. ``books`` its shares by security and
    ``books_cash`` its trade-date cash; ``unbooked`` its fills not yet in the books,
    ``unsettled`` its booked trades settling after the snapshot's day; ``prices`` the
    store's latest; ``known`` the securities the master knows."""
    account = snapshot.account_id
    found: list[Break] = []
    for security in sorted(set(books) | set(snapshot.positions)):
        mine, theirs = books.get(security, ZERO), snapshot.positions.get(security, ZERO)
        if security not in known and theirs != ZERO:
            found.append(
                Break(account, BreakKind.UNKNOWN_POSITION, security, mine, theirs,
                      "a security to add to the master, or one the custodian names otherwise")
            )  # fmt: skip
            continue
        if mine == theirs:
            continue
        waiting = [p for p in unbooked if p.security_id == security]
        if waiting and sum((p.shares for p in waiting), ZERO) == theirs - mine:
            cause = _unbooked(waiting, "an unbooked fill")
        else:
            cause = _split(mine, theirs)
        found.append(Break(account, BreakKind.QUANTITY, security, mine, theirs, cause))
    found += _cash(snapshot, books_cash, unbooked, unsettled)
    for security, theirs in sorted(snapshot.prices.items()):
        ours = (prices or {}).get(security)
        if ours is None or ours <= ZERO:
            continue
        off = abs(theirs - ours) / ours
        if off > tolerance:
            found.append(
                Break(account, BreakKind.PRICE, security, ours, theirs,
                      f"the prices differ by {off:.2%}: the store's may be stale or wrong")
            )  # fmt: skip
    return found


def _cash(
    snapshot: Snapshot,
    books_cash: Decimal,
    unbooked: Sequence[Pending],
    unsettled: Sequence[Pending],
) -> list[Break]:
    to_settle = sum((p.cash for p in unsettled), ZERO)
    if snapshot.trade_date_cash is not None:
        mine, theirs, other = books_cash, snapshot.trade_date_cash, -to_settle
    elif snapshot.cash is not None:
        mine, theirs, other = books_cash - to_settle, snapshot.cash, to_settle
    else:
        return []
    if mine == theirs:
        return []
    moved = sum((p.cash for p in unbooked), ZERO)
    if unbooked and moved == theirs - mine:
        cause = _unbooked([p for p in unbooked if p.cash], "an unbooked fill")
    elif unsettled and other == theirs - mine:
        cause = _unbooked(list(unsettled), "a pending settlement")
    else:
        cause = "a deposit, withdrawal, fee or dividend the books do not have"
    return [Break(snapshot.account_id, BreakKind.CASH, None, mine, theirs, cause)]
