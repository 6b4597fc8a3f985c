"""Performance from the store (``poise report performance``): the books read once for
every account wanted — today's lots and cash, the transactions since the span began,
the daily closes — valued day by day as arrays (:mod:`poise.report.valuation`), and
returns and risk for each account, household, model and the firm
(:mod:`poise.report.performance`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa

from poise.domain.accounts import model_of
from poise.domain.errors import NotFoundError, ValidationError
from poise.domain.models import resolve
from poise.domain.money import ZERO, cents
from poise.domain.relief import Term
from poise.domain.transactions import TxnKind
from poise.report.attribution import model_sleeves, sleeves
from poise.report.performance import (
    Array,
    Attribution,
    brinson_fachler,
    daily_returns,
    irr,
    link,
    max_drawdown,
    period_table,
    volatility,
)
from poise.report.tax import Sold
from poise.report.valuation import Book, Move, Valued, grouped, value_book
from poise.store import repo
from poise.store import tables as t

__all__ = ["AttributionReport", "Performance", "attribution_of", "load_book", "performance"]

FIRM = "firm"
LEVELS = ("account", "household", "model", "firm")


@dataclass(frozen=True, slots=True)
class Performance:
    """Returns and risk of each portfolio of one level (accounts, households, models
    or the firm) over a span, net or gross of fees."""

    level: str
    names: tuple[str, ...]
    days: tuple[date, ...]
    start: Array  # value the day before the first
    end: Array  # value at the last day's close
    flows: Array  # external flows over the span, net
    twr: Array  # the whole span
    periods: dict[str, Array | None]  # mtd, qtd, ytd, 1y, 3y, 5y, inception
    volatility: Array
    drawdown: Array
    daily: Array  # portfolios × days
    flows_daily: Array  # portfolios × days: external flows, net

    def money_weighted(self, i: int) -> float | None:
        """Portfolio ``i``'s IRR over the span: its start value in, its flows, its
        end value out; None where no rate balances them."""
        first = self.days[0] - timedelta(days=1)
        flows = self.flows_daily[i]
        days = [first, *(d for d, f in zip(self.days, flows, strict=True) if f), self.days[-1]]
        amounts = [
            -float(self.start[i]),
            *(-float(f) for f in flows if f),
            float(self.end[i]),
        ]
        try:
            return irr(days, amounts)
        except ValidationError:
            return None


def closes_of(
    connection: sa.Connection, securities: Sequence[str], start: date, end: date
) -> tuple[tuple[date, ...], Array]:
    """The trading days from ``start`` to ``end`` (days with any close) and each
    security's close on them, the last one before carried forward."""
    p = t.prices
    names = sorted(set(securities))
    index = {s: i for i, s in enumerate(names)}
    since = datetime.combine(start - timedelta(days=10), time(), tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    rows = connection.execute(
        sa.select(p.c.security_id, p.c.as_of, p.c.price)
        .where((p.c.as_of >= since) & (p.c.as_of < until))
        .order_by(p.c.as_of, p.c.source)
    ).all()
    days = sorted({r.as_of.date() for r in rows if r.as_of.date() >= start})
    at = {d: i for i, d in enumerate(days)}
    closes = np.full((len(names), len(days)), np.nan)
    opening = np.full(len(names), np.nan)
    for security_id, as_of, price in rows:
        s = index.get(security_id)
        if s is None:
            continue
        d = at.get(as_of.date())
        if d is None:
            opening[s] = float(price)
        else:
            closes[s, d] = float(price)
    # carried forward; a security never priced is worth nothing
    for d in range(len(days)):
        column = closes[:, d]
        before = opening if d == 0 else closes[:, d - 1]
        closes[:, d] = np.where(np.isnan(column), before, column)
    return tuple(days), np.nan_to_num(closes, nan=0.0)


def load_book(
    connection: sa.Connection,
    *,
    start: date,
    end: date,
    account_ids: Sequence[str] | None = None,
) -> tuple[Book, dict[str, tuple[str, str]]]:
    """The books of ``account_ids`` (None: every account) for the span from ``start``
    to ``end``, and each account's household and model. Today's lots and cash are the
    span's end, so ``end`` is the last day priced: a span that ends earlier is cut
    from it by the caller."""
    a, lt, x = t.accounts, t.lots, t.transactions
    query = sa.select(a.c.account_id, a.c.household_id, a.c.model_id, a.c.cash).order_by(
        a.c.account_id
    )
    if account_ids is not None:
        query = query.where(a.c.account_id.in_(sorted(set(account_ids))))
    rows = connection.execute(query).all()
    if not rows:
        raise NotFoundError("no accounts to report on")
    accounts = tuple(r.account_id for r in rows)
    wanted = set(accounts)
    groups = {r.account_id: (r.household_id, r.model_id or "") for r in rows}
    held: dict[tuple[str, str], float] = {}
    lot_query: sa.Select[Any] = sa.select(lt.c.account_id, lt.c.security_id, lt.c.quantity)
    move_query: sa.Select[Any] = sa.select(
        x.c.account_id, x.c.trade_date, x.c.kind, x.c.security_id, x.c.quantity, x.c.amount
    ).where(x.c.trade_date >= start)
    if account_ids is None:  # the whole firm: each table read once
        lot_queries, move_queries = [lot_query], [move_query]
    else:  # some accounts: theirs alone, in ranges SQLite takes
        ids = sorted(wanted)
        ranges = [ids[i : i + 500] for i in range(0, len(ids), 500)]
        lot_queries = [lot_query.where(lt.c.account_id.in_(r)) for r in ranges]
        move_queries = [move_query.where(x.c.account_id.in_(r)) for r in ranges]
    for query in lot_queries:
        for lot in connection.execute(query):
            if lot.account_id in wanted:
                key = (lot.account_id, lot.security_id)
                held[key] = held.get(key, 0.0) + float(lot.quantity)
    moves = []
    for query in move_queries:
        for row in connection.execute(query):
            if row.account_id in wanted:
                moves.append(
                    Move(row.account_id, row.trade_date, TxnKind(row.kind), row.security_id,
                         float(row.quantity), float(row.amount))
                )  # fmt: skip
    securities = sorted({s for _, s in held} | {m.security_id for m in moves if m.security_id})
    days, prices = closes_of(connection, securities, start, end)
    index = {s: i for i, s in enumerate(securities)}
    row_of = {acc: i for i, acc in enumerate(accounts)}
    shares = np.zeros((len(accounts), len(securities)))
    for (owner, security_id), quantity in held.items():
        shares[row_of[owner], index[security_id]] = quantity
    book = Book(
        accounts=accounts,
        securities=tuple(securities),
        days=days,
        shares=shares,
        cash=np.array([float(r.cash) for r in rows]),
        prices=prices,
        moves=tuple(moves),
    )
    return book, groups


def _measured(
    level: str, names: tuple[str, ...], valued: Valued, *, gross: bool, until: date | None
) -> Performance:
    keep = len(valued.days) if until is None else sum(1 for d in valued.days if d <= until)
    if keep < 1:
        raise ValidationError("the span ends before its first day with a return")
    days = valued.days[:keep]
    values = valued.values[:, :keep]
    flows_net = valued.flows_net[:, :keep]
    flows = (valued.flows_gross if gross else valued.flows_net)[:, :keep]
    daily = daily_returns(values, flows, valued.start)
    return Performance(
        level=level,
        names=names,
        days=days,
        start=valued.start,
        end=values[:, -1],
        flows=flows_net.sum(axis=1),
        twr=link(daily),
        periods=period_table(days, daily, days[-1]),
        volatility=volatility(daily) if keep > 1 else np.zeros(len(names)),
        drawdown=max_drawdown(daily),
        daily=daily,
        flows_daily=flows_net,
    )


def performance(
    book: Book,
    groups: dict[str, tuple[str, str]],
    *,
    level: str = "account",
    gross: bool = False,
    until: date | None = None,
    valued: Valued | None = None,
) -> Performance:
    """Each portfolio of ``level`` over the book's span (to ``until``, where the span
    is to end before the books' last day): accounts as they are; households, models
    and the firm as their accounts added up. ``valued``: the book already valued
    (:func:`~poise.report.valuation.value_book`), for several levels."""
    valued = valued if valued is not None else value_book(book)
    if level == "account":
        return _measured(level, book.accounts, valued, gross=gross, until=until)
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: one of {', '.join(LEVELS)}")
    labels = [
        FIRM if level == "firm" else groups[a][0 if level == "household" else 1] or "(none)"
        for a in book.accounts
    ]
    names, added = grouped(valued, labels)
    return _measured(level, names, added, gross=gross, until=until)


@dataclass(frozen=True, slots=True)
class AttributionReport:
    """A household's period against its model by asset class, and what tax did."""

    household_id: str
    model_id: str | None
    start: date
    end: date
    attribution: Attribution
    portfolio_weights: tuple[float, ...]  # by segment, as the attribution's
    model_weights: tuple[float, ...]
    portfolio_returns: tuple[float, ...]
    model_returns: tuple[float, ...]
    realised: Decimal  # gains less losses its sales realised in the period
    harvested: Decimal  # the losses among them
    estimated_tax: Decimal  # at each account's rates: short-term and long-term, and state


def attribution_of(
    connection: sa.Connection, *, household_id: str, start: date, end: date
) -> AttributionReport:
    """Brinson–Fachler of the household against its model (:mod:`poise.report.attribution`),
    over the period from the eve ``start`` to ``end``."""
    household = repo.household(connection, household_id=household_id)
    accounts = repo.accounts(connection, household_id=household_id)
    if not accounts:
        raise NotFoundError(f"household {household_id} has no accounts")
    ids = [a.account_id for a in accounts]
    book, _ = load_book(connection, start=start, end=end, account_ids=ids)
    if len(book.days) < 2:
        raise ValidationError(f"fewer than two days priced from {start} to {end}")
    known = repo.securities(connection)
    classes = {s: x.asset_class for s, x in known.items()}
    mine = sleeves(book, classes)
    model_id = next((model_of(household, a) for a in accounts if model_of(household, a)), None)
    models = repo.models(connection)
    labels = set(mine.classes)
    weights: dict[str, Decimal] = {}
    cash = Decimal(1)
    if model_id is not None and model_id in models:
        resolved = resolve(model_id, models)
        weights, cash = dict(resolved.securities), resolved.cash
        labels |= {classes.get(s, "other") for s in weights}
    ordered = tuple(sorted(labels))
    names = sorted(weights)
    _, closes = closes_of(connection, names, book.days[0], book.days[-1])
    theirs = model_sleeves(weights, cash=cash, classes=classes, securities=tuple(names),
                           prices=closes, labels=ordered)  # fmt: skip
    held = dict(zip(mine.classes, zip(mine.weights, mine.returns, strict=True), strict=True))
    portfolio_weights = tuple(held.get(c, (0.0, 0.0))[0] for c in ordered)
    portfolio_returns = tuple(held.get(c, (0.0, 0.0))[1] for c in ordered)
    found = brinson_fachler(
        ordered, portfolio_weights, theirs.weights, portfolio_returns, theirs.returns
    )
    rates = {a.account_id: a for a in accounts}
    sold = [s for s in _realised(connection, ids) if start < s.sold <= end]
    tax = ZERO
    for s in sold:
        rate = rates[s.account_id].tax_rates
        gain = s.proceeds - s.basis
        tax += gain * ((rate.short_term if s.term is Term.SHORT else rate.long_term) + rate.state)
    gains = [s.proceeds - s.basis for s in sold]
    return AttributionReport(
        household_id=household_id, model_id=model_id, start=book.days[0], end=book.days[-1],
        attribution=found, portfolio_weights=portfolio_weights, model_weights=theirs.weights,
        portfolio_returns=portfolio_returns, model_returns=theirs.returns,
        realised=sum(gains, ZERO),
        harvested=sum((g for g in gains if g < ZERO), ZERO), estimated_tax=cents(tax),
    )  # fmt: skip


def _realised(connection: sa.Connection, ids: list[str]) -> list[Sold]:
    from poise.workflow.taxes import realised_sales  # noqa: PLC0415 - it imports washsales

    return realised_sales(connection, account_ids=ids)
