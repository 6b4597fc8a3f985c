"""Fills into the books: an account's executions — its allocations of block fills and
its legs of internal crosses — as transactions, lots, realised gains and cash.

The rules, as this module applies them:

* **A buy** makes one lot: its id the execution's (deterministic, so booking the same
  execution twice is refused by the store, never doubled), acquired on the trade date,
  its basis what the account paid — the shares at the block's average price plus its
  share of the commission (``net``; IRS Publication 551, "Cost Basis": the basis of
  stock bought is its cost plus the costs of buying it).
* **A sale** relieves the lots its proposal named (specific identification, Treas.
  Reg. §1.1012-1(c)), when the books hold every one of them with the shares named and
  the names add up to the shares sold. When they do not — a lot sold meanwhile, a fill
  for other shares than the order — the sale relieves the holding by the account's
  relief method, and says so in its transaction's description. Its proceeds are what
  the account received, net of its share of the commission (``net``), shared over the
  lots it relieved by shares, in whole cents that add up to it exactly.
* **What a sale realised** is kept lot by lot: shares, proceeds, basis (as adjusted by
  earlier wash sales), cost, the holding period's start and its term (long when held
  more than a year, Publication 550). Wash sales are not judged here: the household's
  history is, once the books hold the sale (:mod:`poise.domain.washhistory`).
* **A lot a sale empties** leaves the open lots, and is kept as it stood before that
  sale, so its basis and dates stay readable.
* **Cash**: a buy takes ``net`` out, a sale brings ``net`` in, on the trade date; the
  transaction carries the settlement date, so cash settled by a day is known too.
* **Order**: a day's sales are booked before its buys, so a sale never relieves shares
  bought the same day; then by id.

An execution that cannot be booked (a sale of more shares than the books hold, or one
whose commission exceeds what it sold for) is refused with its reason and changes
nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents, share_cents
from poise.domain.orders import LotInstruction, Side
from poise.domain.relief import Method, Term, relieve
from poise.domain.transactions import LotRelieved, Transaction, TxnKind

__all__ = ["Booked", "Execution", "Realised", "Refused", "book"]


@dataclass(frozen=True, slots=True)
class Execution:
    """One account's part of what was executed: an allocation of a block's fills, or
    its leg of an internal cross. ``net`` is the cash it moves — ``gross`` plus the
    commission for a buy, less it for a sale."""

    txn_id: str
    account_id: str
    security_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    gross: Decimal
    commission: Decimal
    net: Decimal
    trade_date: date
    settle_date: date
    lots: tuple[LotInstruction, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        what = f"execution {self.txn_id}"
        if self.quantity <= ZERO:
            raise ValidationError(f"{what}: its quantity must be positive")
        if min(self.price, self.gross, self.commission) < ZERO:
            raise ValidationError(f"{what}: price, gross and commission are not negative")
        buy = self.side is Side.BUY
        expected = self.gross + self.commission if buy else self.gross - self.commission
        if self.net != expected or cents(self.net) != self.net:
            raise ValidationError(f"{what}: net {self.net} is not gross and commission")
        if self.lots and self.side is Side.BUY:
            raise ValidationError(f"{what}: only a sale names lots")
        if self.settle_date < self.trade_date:
            raise ValidationError(f"{what}: it settles before it trades")


@dataclass(frozen=True, slots=True)
class Realised:
    """What a sale realised on the shares of one lot."""

    account_id: str
    txn_id: str
    lot_id: str
    security_id: str
    quantity: Decimal
    proceeds: Decimal
    basis: Decimal
    cost: Decimal
    acquired: date
    held_since: date
    sold: date
    term: Term

    @property
    def gain(self) -> Decimal:
        """Negative for a loss."""
        return self.proceeds - self.basis


@dataclass(frozen=True, slots=True)
class Refused:
    """An execution the books could not take, and why; nothing of it was booked."""

    txn_id: str
    account_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Booked:
    """An account's executions booked: its transactions, its open lots after them, the
    lots they emptied (as they stood before), what its sales realised, the cash they
    moved, and what could not be booked."""

    transactions: tuple[Transaction, ...]
    lots: tuple[TaxLot, ...]
    closed: tuple[tuple[TaxLot, date, str], ...]  # the lot, the day, the sale
    realised: tuple[Realised, ...]
    cash: Decimal
    refused: tuple[Refused, ...] = field(default=())


def _named(execution: Execution, holding: Sequence[TaxLot]) -> dict[str, Decimal] | None:
    """The lots the sale named, if the books can relieve it as named."""
    if not execution.lots:
        return None
    named: dict[str, Decimal] = {}
    for instruction in execution.lots:
        named[instruction.lot_id] = named.get(instruction.lot_id, ZERO) + instruction.quantity
    held = {lot.lot_id: lot.quantity for lot in holding}
    if sum(named.values(), ZERO) != execution.quantity:
        return None
    if any(held.get(lot_id, ZERO) < shares for lot_id, shares in named.items()):
        return None
    return named


class _Account:
    def __init__(self, account_id: str, lots: Sequence[TaxLot], method: Method) -> None:
        self.account_id = account_id
        self.lots = [lot for lot in lots if lot.account_id == account_id]
        self.method = method
        self.transactions: list[Transaction] = []
        self.closed: list[tuple[TaxLot, date, str]] = []
        self.realised: list[Realised] = []
        self.refused: list[Refused] = []
        self.cash = ZERO

    def buy(self, execution: Execution) -> None:
        self.lots.append(
            TaxLot(
                lot_id=execution.txn_id,
                account_id=self.account_id,
                security_id=execution.security_id,
                quantity=execution.quantity,
                cost_basis=execution.net,
                acquired=execution.trade_date,
            )
        )
        self.cash -= execution.net
        self.transactions.append(_transaction(execution, TxnKind.BUY, (), execution.description))

    def sell(self, execution: Execution) -> None:
        if execution.net < ZERO:
            reason = f"its commission {execution.commission} exceeds its {execution.gross}"
            self.refused.append(Refused(execution.txn_id, self.account_id, reason))
            return
        holding = [lot for lot in self.lots if lot.security_id == execution.security_id]
        named = _named(execution, holding)
        method = Method.SPECIFIC if named is not None else self.method
        try:
            result = relieve(
                holding,
                execution.quantity,
                method=method,
                price=execution.price,
                sold=execution.trade_date,
                specific=named,
            )
        except ValidationError as exc:
            self.refused.append(Refused(execution.txn_id, self.account_id, str(exc)))
            return
        proceeds = share_cents(execution.net, [r.quantity for r in result.reliefs])
        before = {lot.lot_id: lot for lot in holding}
        for relief, amount in zip(result.reliefs, proceeds, strict=True):
            lot = before[relief.lot_id]
            self.realised.append(
                Realised(
                    account_id=self.account_id,
                    txn_id=execution.txn_id,
                    lot_id=relief.lot_id,
                    security_id=execution.security_id,
                    quantity=relief.quantity,
                    proceeds=amount,
                    basis=relief.basis,
                    cost=_cost_of(lot, relief.quantity, relief.basis),
                    acquired=lot.acquired,
                    held_since=lot.held_since,
                    sold=execution.trade_date,
                    term=relief.term,
                )
            )
        left = {lot.lot_id for lot in result.remaining}
        self.closed += [
            (lot, execution.trade_date, execution.txn_id)
            for lot in holding
            if lot.lot_id not in left
        ]
        others = [lot for lot in self.lots if lot.security_id != execution.security_id]
        self.lots = others + list(result.remaining)
        self.cash += execution.net
        relieved = tuple(LotRelieved(r.lot_id, r.quantity) for r in result.reliefs)
        note = execution.description
        if execution.lots and named is None:
            note = (
                f"{note}; " if note else ""
            ) + f"the lots named could not be relieved as named: relieved by {method.value}"
        self.transactions.append(_transaction(execution, TxnKind.SELL, relieved, note))


def _cost_of(lot: TaxLot, quantity: Decimal, basis_taken: Decimal) -> Decimal:
    """The unadjusted cost of ``quantity`` shares of ``lot``: the basis taken, when the
    lot carries no wash adjustment; else its share of the cost, to the cent."""
    if lot.adjusted_basis is None:
        return basis_taken
    if quantity == lot.quantity:
        return lot.cost_basis
    return min(cents(lot.cost_basis * quantity / lot.quantity), lot.cost_basis)


def _transaction(
    execution: Execution, kind: TxnKind, lots: tuple[LotRelieved, ...], description: str
) -> Transaction:
    return Transaction(
        txn_id=execution.txn_id,
        account_id=execution.account_id,
        kind=kind,
        trade_date=execution.trade_date,
        settle_date=execution.settle_date,
        amount=execution.net,
        security_id=execution.security_id,
        quantity=execution.quantity,
        lots=lots,
        description=description,
    )


def book(
    account_id: str, lots: Sequence[TaxLot], executions: Sequence[Execution], *, method: Method
) -> Booked:
    """Book ``executions`` of one account into its ``lots``: see the module.
    ``method`` relieves a sale that cannot be relieved as it named its lots."""
    if method is Method.SPECIFIC:
        raise ValidationError("an account's relief method cannot be specific: it names no lots")
    account = _Account(account_id, lots, method)
    ordered = sorted(executions, key=lambda e: (e.trade_date, e.side is not Side.SELL, e.txn_id))
    for execution in ordered:
        if execution.account_id != account_id:
            raise ValidationError(f"execution {execution.txn_id} is not of account {account_id}")
        if execution.side is Side.BUY:
            account.buy(execution)
        else:
            account.sell(execution)
    return Booked(
        transactions=tuple(account.transactions),
        lots=tuple(account.lots),
        closed=tuple(account.closed),
        realised=tuple(account.realised),
        cash=account.cash,
        refused=tuple(account.refused),
    )
