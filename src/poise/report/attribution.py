"""A portfolio's return over a period by asset class, against its model's: the inputs
of a Brinson–Fachler attribution (:func:`poise.report.performance.brinson_fachler`).

* **The portfolio's side.** Each asset class is a sleeve: the securities of that class
  the accounts hold, and cash a sleeve of its own. A sleeve's weight is its share of the
  portfolio's value on the period's eve; its return is its Modified Dietz return over the
  period (:func:`~poise.report.performance.modified_dietz`) — its value on the eve and at
  the end, and the money that moved into it on each day: a buy of its securities is money
  in, a sale money out, shares transferred in or out at the day's close, a dividend paid
  out of it into cash; into the cash sleeve, deposits and withdrawals, sales' proceeds and
  buys' cost, dividends. So a security's income is its class's return; interest with no
  security and fees are cash's (returns net of fees).
* **The model's side.** Each class's weight is the model's target for it (its securities'
  weights added up; its cash weight for cash); its return is the model's securities of
  that class held at their weights within the class, rebalanced daily, linked over the
  period; cash returns nothing.

Pure: a book of arrays in, weights and returns by class out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from poise.domain.transactions import TxnKind
from poise.report.client import EFFECTS
from poise.report.performance import Array, link, modified_dietz
from poise.report.valuation import Book, value_book

__all__ = ["CASH", "Sleeves", "model_sleeves", "sleeves"]

CASH = "cash"


@dataclass(frozen=True, slots=True)
class Sleeves:
    """Weights on the eve and returns over the period, by asset class."""

    classes: tuple[str, ...]
    weights: tuple[float, ...]
    returns: tuple[float, ...]


def _class_flows(book: Book, classes: Mapping[str, str], label: str, days: int) -> Array:
    """Money into the sleeve ``label`` on each day of the span (after its first)."""
    flows = np.zeros(days)
    first, day = book.days[0], {d: i for i, d in enumerate(book.days)}
    index = {s: i for i, s in enumerate(book.securities)}
    for move in book.moves:
        d = day.get(move.day)
        if d is None or move.day <= first:
            continue
        effect = EFFECTS[move.kind]
        of = classes.get(move.security_id or "", "other")
        income = move.kind in (TxnKind.DIVIDEND, TxnKind.INTEREST) and bool(move.security_id)
        if label == CASH:  # a trade of a cash-like security stays inside the sleeve
            external = move.kind in (TxnKind.DEPOSIT, TxnKind.WITHDRAWAL)
            trade = move.kind in (TxnKind.BUY, TxnKind.SELL) and of != CASH
            if external or trade or (income and of != CASH):
                flows[d - 1] += effect.cash * move.amount
        elif of == label:
            if move.kind in (TxnKind.BUY, TxnKind.SELL):
                flows[d - 1] += effect.shares * move.amount
            elif income:  # paid out of the sleeve into cash: the sleeve's return
                flows[d - 1] -= move.amount
            elif move.kind in (TxnKind.TRANSFER_IN, TxnKind.TRANSFER_OUT):
                price = book.prices[index[move.security_id or ""], d]
                flows[d - 1] += effect.shares * move.quantity * price
    return flows


def sleeves(book: Book, classes: Mapping[str, str]) -> Sleeves:
    """The book's sleeves over its span (its first day the eve): see the module."""
    labels = sorted({classes.get(s, "other") for s in book.securities} | {CASH})
    values: dict[str, tuple[float, float]] = {}
    flows: dict[str, Array] = {}
    days = len(book.days) - 1
    for label in labels:
        keep = np.array([classes.get(s, "other") == label for s in book.securities], dtype=bool)
        if label == CASH:  # the balance, and any cash-like security (a money market fund)
            masked = replace(book, prices=book.prices * keep[:, None])
        else:
            masked = replace(
                book,
                prices=book.prices * keep[:, None],
                cash=np.zeros_like(book.cash),
                # the shares walked back, no cash: the sleeve is its securities alone
                moves=tuple(replace(m, amount=0.0) for m in book.moves if EFFECTS[m.kind].shares),
            )
        valued = value_book(masked)
        values[label] = (float(valued.start.sum()), float(valued.values[:, -1].sum()))
        flows[label] = _class_flows(book, classes, label, days)
    total = sum(start for start, _ in values.values())
    weights = tuple(values[c][0] / total if total else 0.0 for c in labels)
    returns = tuple(
        float(modified_dietz(np.array([values[c][0]]), np.array([values[c][1]]),
                            flows[c][None, :])[0])
        for c in labels
    )  # fmt: skip
    return Sleeves(tuple(labels), weights, returns)


def model_sleeves(
    weights: Mapping[str, Decimal],
    *,
    cash: Decimal,
    classes: Mapping[str, str],
    securities: tuple[str, ...],
    prices: Array,
    labels: tuple[str, ...],
) -> Sleeves:
    """The model's weights and returns for ``labels``: its securities' ``weights`` (and
    ``cash``), each class's securities rebalanced daily within the class over the closes
    ``prices`` (securities × days, the eve first)."""
    index = {s: i for i, s in enumerate(securities)}
    class_weight: dict[str, float] = dict.fromkeys(labels, 0.0)
    class_return: dict[str, float] = dict.fromkeys(labels, 0.0)
    for label in labels:
        mine = {s: float(w) for s, w in weights.items()
                if classes.get(s, "other") == label and s in index}  # fmt: skip
        held = float(cash) if label == CASH else 0.0  # the cash target earns nothing
        total = sum(mine.values()) + held
        class_weight[label] = held + float(
            sum((w for s, w in weights.items() if classes.get(s, "other") == label), Decimal(0))
        )
        if not mine or total <= 0:
            continue
        rows = prices[[index[s] for s in mine]]
        with np.errstate(divide="ignore", invalid="ignore"):
            daily = np.where(rows[:, :-1] > 0, rows[:, 1:] / rows[:, :-1] - 1, 0.0)
        share = np.array([w / total for w in mine.values()])
        class_return[label] = float(link(share @ daily))
    return Sleeves(labels, tuple(class_weight[c] for c in labels),
                   tuple(class_return[c] for c in labels))  # fmt: skip
