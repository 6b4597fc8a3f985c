"""Each account's value on every day of a span, and its external flows, from the books as
they stand at the span's end and the transactions within it — for every account at
once, as arrays.

The books hold today's lots and cash; the days before are found by walking back
through the transactions (what a day's buy added, the day before did not hold). A
day's value is its shares at that day's close plus its cash, both after the day's
transactions (trade date). What moves value in or out from outside is an **external
flow** (GIPS): deposits and withdrawals, and shares transferred in or out at the day's
close; dividends and interest are the account's own return. A fee is an outflow for
returns **gross** of fees, and part of the return **net** of them.

Each kind of transaction moves shares and cash as :data:`poise.report.client.EFFECTS`
says: the household page's one-household history, in exact decimals, reads the books
the same way. Pure: arrays and plain records in, arrays out (float64: values for
returns, not money for the books).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from poise.domain.errors import ValidationError
from poise.domain.transactions import TxnKind
from poise.report.client import EFFECTS

__all__ = ["Book", "Move", "Valued", "grouped", "value_book"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Move:
    """One transaction, as valuation reads it."""

    account_id: str
    day: date  # trade date
    kind: TxnKind
    security_id: str | None = None
    quantity: float = 0.0
    amount: float = 0.0


@dataclass(frozen=True, slots=True)
class Book:
    """The books at the end of the span, and what happened within it.

    ``prices[s, d]``: the close of ``securities[s]`` on ``days[d]`` (trading days, in
    order; a day without a close carries the last one forward — the caller fills
    them)."""

    accounts: tuple[str, ...]
    securities: tuple[str, ...]
    days: tuple[date, ...]
    shares: Array  # accounts × securities, at the end of the last day
    cash: Array  # accounts, at the end of the last day
    prices: Array  # securities × days
    moves: tuple[Move, ...]


@dataclass(frozen=True, slots=True)
class Valued:
    """Each account's value at each day's close, its external flows each day (gross
    and net of fees), and its value at the close of the day before the first."""

    days: tuple[date, ...]  # the span less its first day: the days with a return
    start: Array  # accounts
    values: Array  # accounts × days
    flows_net: Array  # accounts × days: deposits, withdrawals, transfers
    flows_gross: Array  # the same, and fees as withdrawals


@dataclass(frozen=True, slots=True)
class _Moves:
    """The span's moves as arrays: account, security (−1: none) and day indices, and
    signed shares, cash, external flow and fee."""

    account: npt.NDArray[np.int64]
    security: npt.NDArray[np.int64]
    day: npt.NDArray[np.int64]
    shares: Array
    cash: Array
    flow: Array
    fee: Array


def _moves(book: Book) -> _Moves:
    """Each move from the span's first day on, indexed; one on a day with no close (a
    weekend) counts on the next trading day's, and one after the span's last day on a
    day of its own past it (index ``len(days)``): the books hold it, the span does not."""
    account = {a: i for i, a in enumerate(book.accounts)}
    security = {s: i for i, s in enumerate(book.securities)}
    day = {d: i for i, d in enumerate(book.days)}
    ordinals = np.array([d.toordinal() for d in book.days])
    first, last = book.days[0], book.days[-1]
    rows: list[tuple[int, int, int, float, float, float, float]] = []
    for move in book.moves:
        if move.day < first or move.account_id not in account:
            continue
        d = day.get(move.day)
        if d is None:
            d = (
                len(book.days)
                if move.day > last
                else int(np.searchsorted(ordinals, move.day.toordinal()))
            )
        s = security.get(move.security_id or "", -1)
        effect = EFFECTS[move.kind]
        shares = effect.shares * move.quantity
        if shares and s < 0:
            raise ValidationError(f"{move.kind.value} of {move.security_id}: no prices for it")
        external = 0.0
        if effect.added:  # money, or shares at the day's close, from outside
            close = book.prices[s, min(d, len(book.days) - 1)]
            external = shares * close if shares else effect.added * move.amount
        cash = effect.cash * move.amount
        fee = -move.amount if move.kind is TxnKind.FEE else 0.0
        rows.append((account[move.account_id], s, d, shares, cash, external, fee))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    return _Moves(
        account=np.array(columns[0], dtype=np.int64),
        security=np.array(columns[1], dtype=np.int64),
        day=np.array(columns[2], dtype=np.int64),
        shares=np.array(columns[3], dtype=float),
        cash=np.array(columns[4], dtype=float),
        flow=np.array(columns[5], dtype=float),
        fee=np.array(columns[6], dtype=float),
    )


def _held_values(book: Book, moves: _Moves) -> Array:
    """The shares' value at each close, walking back: a day's moves undone to reach
    the day before."""
    n, days = len(book.accounts), len(book.days)
    values = np.empty((n, days))
    held = np.array(book.shares, dtype=float, copy=True)
    trading = np.flatnonzero(moves.shares != 0)
    order = trading[np.argsort(moves.day[trading], kind="stable")]
    bounds = np.searchsorted(moves.day[order], np.arange(days + 2))
    for d in range(days, -1, -1):  # the day past the span: only undone
        if d < days:
            values[:, d] = held @ book.prices[:, d]
        chunk = order[bounds[d] : bounds[d + 1]]
        if chunk.size:
            np.subtract.at(held, (moves.account[chunk], moves.security[chunk]), moves.shares[chunk])
    return values


def value_book(book: Book) -> Valued:
    """Walk the books back from the span's last day to its first: see the module."""
    n, days = len(book.accounts), len(book.days)
    if days < 2:
        raise ValidationError("a span of values needs at least two days")
    if book.shares.shape != (n, len(book.securities)) or book.prices.shape != (
        len(book.securities),
        days,
    ):
        raise ValidationError("shares are accounts × securities, prices securities × days")
    moves = _moves(book)
    where = (moves.account, moves.day)
    flows_net = np.zeros((n, days + 1))
    np.add.at(flows_net, where, moves.flow)
    flows_gross = flows_net.copy()
    np.add.at(flows_gross, where, moves.fee)
    cash_moves = np.zeros((n, days + 1))
    np.add.at(cash_moves, where, moves.cash)
    # cash at each close: the books', less what each later day moved
    later = np.cumsum(cash_moves[:, ::-1], axis=1)[:, ::-1]
    cash = book.cash[:, None] - later[:, 1:]
    values = _held_values(book, moves) + cash
    return Valued(
        days=tuple(book.days[1:]),
        start=values[:, 0],
        values=values[:, 1:],
        flows_net=flows_net[:, 1:days],
        flows_gross=flows_gross[:, 1:days],
    )


def grouped(valued: Valued, groups: Sequence[str]) -> tuple[tuple[str, ...], Valued]:
    """Accounts added up by group (``groups[i]``: the group of account ``i`` — its
    household, its model, the firm): each group valued as one portfolio, its flows the
    sum of its accounts' (GIPS's aggregate method for a composite). The groups, in
    order, and their values."""
    names = tuple(sorted(set(groups)))
    index = {name: i for i, name in enumerate(names)}
    rows = np.array([index[g] for g in groups], dtype=np.int64)

    def add(table: Array) -> Array:
        out = np.zeros((len(names), *table.shape[1:]))
        np.add.at(out, rows, table)
        return out

    return names, Valued(
        days=valued.days,
        start=add(valued.start),
        values=add(valued.values),
        flows_net=add(valued.flows_net),
        flows_gross=add(valued.flows_gross),
    )
