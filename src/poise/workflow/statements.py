"""Quarterly statements (``poise report statement``): a household's quarter read from the
store — holdings, allocation against target, performance against its model and a
benchmark, activity, realised gains, fees, the trades made and why — rendered by
:mod:`poise.report.statement` and printed to PDF by WeasyPrint; many households over a
process pool, a PDF each."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from poise.domain.accounts import Account, Household, model_of
from poise.domain.errors import NotFoundError, ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Model, resolve
from poise.domain.money import ZERO, cents
from poise.domain.relief import Term
from poise.domain.securities import Security
from poise.report.client import against_target
from poise.report.performance import daily_returns, link, period_table
from poise.report.statement import (
    Activity,
    Allocation,
    Holding,
    StatementData,
    TradeMade,
    quarter_of,
    render_html,
)
from poise.report.valuation import Book, grouped, value_book
from poise.store import repo
from poise.store import tables as t
from poise.workflow.performance import closes_of, load_book
from poise.workflow.taxes import realised_sales, tax_year

__all__ = [
    "Written",
    "latest_quarter",
    "quarter_named",
    "statement_data",
    "statement_pdf",
    "write_statements",
]

YEARS = 3  # of history the performance is measured over
NO_RETURNS: dict[str, float | None] = {"quarter": None, "ytd": None, "1y": None, "inception": None}


def quarter_named(text: str) -> tuple[date, date]:
    """``2022Q4`` as its first and last day."""
    year, _, number = text.upper().partition("Q")
    if not (year.isdigit() and len(year) == 4 and number in {"1", "2", "3", "4"}):
        raise ValidationError(f"{text!r}: a quarter is written 2022Q4")
    return quarter_of(date(int(year), 3 * int(number) - 2, 1))


def latest_quarter(connection: sa.Connection) -> tuple[date, date]:
    """The quarter of the latest day the store knows: its last close, or a later trade."""
    priced = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
    traded = connection.execute(sa.select(sa.func.max(t.transactions.c.trade_date))).scalar()
    days = [d for d in (priced.date() if priced else None, traded) if d is not None]
    if not days:
        raise NotFoundError("the store holds no prices and no transactions: no quarter to state")
    return quarter_of(max(days))


def _periods(
    days: tuple[date, ...], returns: np.ndarray, start: date, end: date
) -> dict[str, float | None]:
    """Quarter, year to date, one year and since inception, up to ``end``."""
    keep = np.array([d <= end for d in days])
    if keep.sum() < 1:
        return dict(NO_RETURNS)
    shown = tuple(d for d in days if d <= end)
    table = period_table(shown, returns[None, keep], end)
    quarter = np.array([start <= d <= end for d in shown])

    def one(name: str) -> float | None:
        found = table.get(name)
        return None if found is None else round(float(found[0]), 6)

    return {
        "quarter": round(float(link(returns[keep][quarter])), 6) if quarter.any() else None,
        "ytd": one("ytd"),
        "1y": one("1y"),
        "inception": one("inception"),
    }


def _index_returns(
    weights: dict[str, Decimal], securities: Sequence[str], prices: np.ndarray
) -> np.ndarray | None:
    """Daily returns of a portfolio held at ``weights`` (by security, rebalanced daily)
    from the closes ``prices`` (securities × days, the day before the first included)."""
    index = {s: i for i, s in enumerate(securities)}
    held = {s: float(w) for s, w in weights.items() if s in index and w > 0}
    total = sum(held.values())
    if not held or total <= 0:
        return None
    rows = prices[[index[s] for s in held]]
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = np.where(rows[:, :-1] > 0, rows[:, 1:] / rows[:, :-1] - 1, 0.0)
    return np.array([w / total for w in held.values()]) @ daily


def statement_data(
    connection: sa.Connection, *, household_id: str, start: date, end: date, benchmark: str
) -> StatementData:
    """The household's statement of the quarter ``start`` to ``end``."""
    household = repo.household(connection, household_id=household_id)
    accounts = repo.accounts(connection, household_id=household_id)
    ids = [a.account_id for a in accounts]
    lots = repo.lots(connection, account_ids=ids)
    securities = repo.securities(connection)
    models = repo.models(connection)
    day_end = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    names = {lot.security_id for lot in lots} | {benchmark}
    latest = repo.latest_prices(connection, as_of=day_end, security_ids=names)
    prices = {s: p for s, (p, _) in latest.items()}
    priced = max((at for _, at in latest.values()), default=day_end).date()
    holdings = _holdings(lots, prices, securities)
    targets = against_target(
        household=household, accounts=accounts, lots=lots, prices=prices, models=models,
        asset_class={s.security_id: s.asset_class for s in securities.values()},
    )  # fmt: skip
    book, _ = load_book(
        connection, start=end.replace(year=end.year - YEARS), end=max(end, priced),
        account_ids=ids,
    )  # fmt: skip
    if benchmark not in book.securities and len(book.days) >= 2:  # its closes on their own
        _, closes = closes_of(connection, [benchmark], book.days[0], book.days[-1])
        if closes.shape[1] == len(book.days):
            book = replace(
                book,
                securities=(*book.securities, benchmark),
                shares=np.concatenate([book.shares, np.zeros((len(book.accounts), 1))], axis=1),
                prices=np.concatenate([book.prices, closes], axis=0),
            )
    returns, model_returns, bench_returns, growth, value_start, added = _performance(
        book, household, accounts, models, benchmark, start, end
    )
    cash = sum((a.cash for a in accounts), ZERO)
    value_end = sum((h.value for h in holdings), ZERO) + cash
    moves = repo.household_transactions(connection, household_id=household_id, since=start,
                                        until=end)  # fmt: skip
    sold = [s for s in realised_sales(connection, account_ids=ids) if start <= s.sold <= end]
    year = tax_year(connection, household_id=household_id, year=end.year)
    disallowed = sum((r.adjustment for r in year.rows if start <= r.sold <= end), ZERO)
    return StatementData(
        household_id=household_id,
        household_name=household.name or household_id,
        adviser=household.advisor,
        start=start,
        end=end,
        priced=priced,
        value_start=value_start,
        value_end=cents(value_end),
        added=added,
        holdings=holdings,
        allocation=tuple(Allocation(r.asset_class, r.actual, r.target) for r in targets.rows),
        returns=returns,
        model_returns=model_returns,
        benchmark_name=securities[benchmark].name if benchmark in securities else benchmark,
        benchmark_returns=bench_returns,
        growth=growth,
        activity=tuple(
            Activity(
                x.trade_date,
                x.account_id,
                x.kind.value,
                x.security_id or "",
                x.quantity,
                x.amount,
                x.description,
            )
            for x in moves
        ),
        realised_short=sum((s.proceeds - s.basis for s in sold if s.term is Term.SHORT), ZERO),
        realised_long=sum((s.proceeds - s.basis for s in sold if s.term is Term.LONG), ZERO),
        disallowed=disallowed,
        fees=sum((x.amount for x in moves if x.kind.value == "fee"), ZERO),
        trades=tuple(_trades(connection, ids, start, end)),
        notes=tuple(f"An account of the household has no model: {a}." for a in targets.unmodelled),
    )


def _holdings(
    lots: Sequence[TaxLot], prices: Mapping[str, Decimal], securities: Mapping[str, Security]
) -> tuple[Holding, ...]:
    shares: dict[tuple[str, str], Decimal] = {}
    cost: dict[tuple[str, str], Decimal] = {}
    for lot in lots:
        key = (lot.account_id, lot.security_id)
        shares[key] = shares.get(key, ZERO) + lot.quantity
        cost[key] = cost.get(key, ZERO) + lot.basis
    made = []
    for (account_id, security_id), held in sorted(shares.items()):
        security = securities.get(security_id)
        price = prices.get(security_id)
        made.append(
            Holding(
                account_id=account_id,
                security_id=security_id,
                name=security.name if security else "",
                asset_class=security.asset_class if security else "other",
                shares=held,
                price=price,
                value=cents(held * price) if price is not None else ZERO,
                cost=cents(cost[(account_id, security_id)]),
            )
        )
    return tuple(made)


Returns = dict[str, float | None]
Growth = tuple[tuple[date, float, float | None], ...]


def _money(value: float) -> Decimal:
    return cents(Decimal(repr(float(value))))


def _performance(  # noqa: PLR0917 - the statement's inputs, each once
    book: Book, household: Household, accounts: Sequence[Account],
    models: Mapping[str, Model], benchmark: str, start: date, end: date,
) -> tuple[Returns, Returns, Returns, Growth, Decimal, Decimal]:  # fmt: skip
    """The household's returns, its model's and the benchmark's; the growth of a dollar
    over the last year; its value on the quarter's eve and the money added in it."""
    if len(book.days) < 2:
        return dict(NO_RETURNS), dict(NO_RETURNS), dict(NO_RETURNS), (), ZERO, ZERO
    valued = value_book(book)
    _, together = grouped(valued, ["household"] * len(book.accounts))
    daily = daily_returns(together.values, together.flows_net, together.start)[0]
    days = together.days
    returns = _periods(days, daily, start, end)
    before = [i for i, d in enumerate(days) if d < start]
    value_start = _money(together.values[0, before[-1]] if before else together.start[0])
    in_quarter = [f for d, f in zip(days, together.flows_net[0], strict=True) if start <= d <= end]
    added = _money(sum(in_quarter))
    securities = list(book.securities)
    prices = book.prices  # the day before the first return's day included: returns align
    model_id = next((model_of(household, a) for a in accounts if model_of(household, a)), None)
    model_daily = None
    if model_id is not None and model_id in models:
        weights = dict(resolve(model_id, models).securities)
        model_daily = _index_returns(weights, securities, prices)
    bench_daily = _index_returns({benchmark: Decimal(1)}, securities, prices)
    year_ago = end.replace(year=end.year - 1)
    shown = [i for i, d in enumerate(days) if year_ago < d <= end]
    growth: list[tuple[date, float, float | None]] = []
    mine = theirs = 1.0
    for i in shown:
        mine *= 1 + float(daily[i])
        if bench_daily is not None:
            theirs *= 1 + float(bench_daily[i])
        growth.append((days[i], mine, theirs if bench_daily is not None else None))
    return (
        returns,
        _periods(days, model_daily, start, end) if model_daily is not None else dict(NO_RETURNS),
        _periods(days, bench_daily, start, end) if bench_daily is not None else dict(NO_RETURNS),
        tuple(growth),
        value_start,
        added,
    )


def _trades(connection: sa.Connection, ids: list[str], start: date, end: date) -> list[TradeMade]:
    """The trades made in the quarter — allocations of block fills and internal crosses —
    each with its proposal's reason."""
    a, x, c, eb, pt, b = (t.allocations, t.cross_legs, t.crosses, t.execution_batches,
                          t.proposal_trades, t.block_orders)  # fmt: skip
    since = datetime.combine(start, time(), tzinfo=UTC)
    until = datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)
    made = []
    for row in connection.execute(
        sa.select(a.c.at, a.c.account_id, a.c.side, b.c.security_id, a.c.quantity, a.c.price,
                  pt.c.reason)
        .join(b, b.c.block_id == a.c.block_id)
        .join(pt, (pt.c.proposal_id == a.c.proposal_id) & (pt.c.seq == a.c.seq))
        .where(a.c.account_id.in_(ids) & (a.c.at >= since) & (a.c.at < until))
    ):  # fmt: skip
        made.append(TradeMade(row.at.date(), row.account_id, row.side, row.security_id,
                              row.quantity, row.price, row.reason.replace("_", " ")))  # fmt: skip
    for row in connection.execute(
        sa.select(eb.c.created_at, x.c.account_id, x.c.side, c.c.security_id, x.c.quantity,
                  c.c.price, pt.c.reason)
        .join(c, c.c.cross_id == x.c.cross_id).join(eb, eb.c.batch_id == c.c.batch_id)
        .join(pt, (pt.c.proposal_id == x.c.proposal_id) & (pt.c.seq == x.c.seq))
        .where(x.c.account_id.in_(ids) & (eb.c.created_at >= since) & (eb.c.created_at < until))
    ):  # fmt: skip
        why = f"{row.reason.replace('_', ' ')} (crossed within the firm)"
        made.append(TradeMade(row.created_at.date(), row.account_id, row.side, row.security_id,
                              row.quantity, row.price, why))  # fmt: skip
    return sorted(made, key=lambda m: (m.day, m.account_id, m.security_id))


def statement_pdf(data: StatementData) -> bytes:
    """The statement printed to PDF."""
    import weasyprint  # noqa: PLC0415 - heavy: only where a statement is printed

    pdf: bytes = weasyprint.HTML(string=render_html(data)).write_pdf()
    return pdf


@dataclass(frozen=True, slots=True)
class Written:
    household_id: str
    path: Path | None
    error: str = ""


_WORKER: dict[str, sa.Engine] = {}  # a worker process's engine, made once


def _open_worker(url: str) -> None:
    from poise.store.engine import make_engine  # noqa: PLC0415 - in the worker

    _WORKER["engine"] = make_engine(url)


def _write_one(household_id: str, start: date, end: date, benchmark: str, folder: str) -> Written:
    engine = _WORKER["engine"]
    try:
        with engine.connect() as connection:
            data = statement_data(connection, household_id=household_id, start=start, end=end,
                                  benchmark=benchmark)  # fmt: skip
        path = Path(folder) / f"{household_id}-{start.year}Q{(start.month - 1) // 3 + 1}.pdf"
        path.write_bytes(statement_pdf(data))
        return Written(household_id, path)
    except Exception as exc:  # one household's failure is reported, the rest go on
        return Written(household_id, None, f"{type(exc).__name__}: {exc}")


def write_statements(
    url: str,
    household_ids: Sequence[str],
    *,
    start: date,
    end: date,
    folder: Path,
    benchmark: str,
    workers: int | None = None,
    progress: Callable[[Written], None] | None = None,
) -> list[Written]:
    """Each household's statement of the quarter as a PDF in ``folder``, over a pool of
    ``workers`` processes (None: one a core)."""
    folder.mkdir(parents=True, exist_ok=True)
    workers = min(workers or os.cpu_count() or 1, max(len(household_ids), 1))
    written: list[Written] = []
    if workers == 1:
        _open_worker(url)
        try:
            for h in household_ids:
                written.append(_write_one(h, start, end, benchmark, str(folder)))
                if progress is not None:
                    progress(written[-1])
        finally:
            _WORKER.pop("engine").dispose()
        return written
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_open_worker, initargs=(url,)
    ) as pool:
        futures = [pool.submit(_write_one, h, start, end, benchmark, str(folder))
                   for h in household_ids]  # fmt: skip
        for future in as_completed(futures):
            written.append(future.result())
            if progress is not None:
                progress(written[-1])
    return sorted(written, key=lambda w: w.household_id)
