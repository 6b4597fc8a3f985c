"""The service's reads: a page at a time, within the caller's scope.

Every list of a household's objects takes the caller's
:class:`~poise.domain.users.Scope`; a household outside it is never read. Lists of
objects of no household — prices, the firm's runs and backtests — take none: who may
see them at all is the routes' rule (``poise.api.scoping``). A page is its items and
the total the filters match (the scope applied), so that a client can page on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from poise.domain.accounts import Account, Household
from poise.domain.errors import NotFoundError
from poise.domain.prices import Price
from poise.domain.transactions import Transaction
from poise.domain.users import Scope
from poise.store import tables as t
from poise.store.repo.backtests import BacktestRecord, _methods, _record
from poise.store.repo.book import _account, transaction
from poise.store.repo.proposals import ProposalFilter, _found, _whole
from poise.store.repo.runs import RebalanceRun, _counted, _run

__all__ = [
    "Page",
    "accounts_page",
    "backtests_page",
    "households_page",
    "latest_price",
    "prices_page",
    "proposals_page",
    "rebalance_request",
    "requests_page",
    "runs_page",
    "transactions_page",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


def _within(column: sa.ColumnElement[Any], scope: Scope) -> sa.ColumnElement[bool]:
    if scope.firm:
        return sa.true()
    return column.in_(sorted(scope.households)) if scope.households else sa.false()


def _page(
    connection: sa.Connection, query: sa.Select[Any], *, limit: int, offset: int
) -> tuple[list[sa.Row[Any]], int]:
    total = connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    rows = list(connection.execute(query.limit(limit).offset(offset)))
    return rows, int(total or 0)


def households_page(
    connection: sa.Connection,
    *,
    scope: Scope,
    model_id: str | None = None,
    limit: int,
    offset: int,
) -> Page[Household]:
    """The households in scope (on ``model_id``: with the household model, or an
    account on it), by id."""
    h, a = t.households, t.accounts
    query = sa.select(h).where(_within(h.c.household_id, scope)).order_by(h.c.household_id)
    if model_id is not None:
        on_model = sa.select(a.c.household_id).where(a.c.model_id == model_id)
        query = query.where((h.c.model_id == model_id) | h.c.household_id.in_(on_model))
    rows, total = _page(connection, query, limit=limit, offset=offset)
    items = [
        Household(
            household_id=row.household_id,
            name=row.name,
            advisor=row.advisor or "",
            model_id=row.model_id or None,
        )
        for row in rows
    ]
    return Page(items, total)


def accounts_page(
    connection: sa.Connection,
    *,
    scope: Scope,
    household_id: str | None = None,
    model_id: str | None = None,
    registration: str | None = None,
    limit: int,
    offset: int,
) -> Page[Account]:
    """The accounts in scope that the filters pick, by account number."""
    a = t.accounts
    query = sa.select(a).where(_within(a.c.household_id, scope)).order_by(a.c.account_id)
    if household_id is not None:
        query = query.where(a.c.household_id == household_id)
    if model_id is not None:
        query = query.where(a.c.model_id == model_id)
    if registration is not None:
        query = query.where(a.c.registration == registration)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    return Page([_account(row) for row in rows], total)


# ── prices and transactions ──────────────────────────────────────────────────


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _on_days(
    column: sa.ColumnElement[datetime], since: date | None, until: date | None
) -> sa.ColumnElement[bool]:
    """``column`` (a UTC time) on the days ``since`` to ``until``, both included."""
    clauses: list[sa.ColumnElement[bool]] = [sa.true()]
    if since is not None:
        clauses.append(column >= _day_start(since))
    if until is not None and until < date.max:  # the last day there is ends nowhere
        clauses.append(column < _day_start(until + timedelta(days=1)))
    return sa.and_(*clauses)


def prices_page(
    connection: sa.Connection,
    *,
    security_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int,
    offset: int,
) -> Page[Price]:
    """Prices (of ``security_id``; taken on the days ``since`` to ``until``, UTC, both
    included), by security and time. Market facts: no household's, so no scope."""
    p = t.prices
    query = (
        sa.select(p)
        .where(_on_days(p.c.as_of, since, until))
        .order_by(p.c.security_id, p.c.as_of, p.c.source)
    )
    if security_id is not None:
        query = query.where(p.c.security_id == security_id)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    items = [
        Price(security_id=row.security_id, as_of=row.as_of, price=row.price, source=row.source)
        for row in rows
    ]
    return Page(items, total)


def latest_price(connection: sa.Connection, *, security_id: str) -> Price | None:
    """The latest price of ``security_id``, if it has one."""
    p = t.prices
    row = connection.execute(
        sa.select(p)
        .where(p.c.security_id == security_id)
        .order_by(p.c.as_of.desc(), p.c.source.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Price(security_id=row.security_id, as_of=row.as_of, price=row.price, source=row.source)


def transactions_page(
    connection: sa.Connection,
    *,
    scope: Scope,
    account_id: str | None = None,
    household_id: str | None = None,
    kind: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int,
    offset: int,
) -> Page[Transaction]:
    """The transactions of accounts in scope (of ``account_id``, of ``household_id``'s
    accounts; of ``kind``; traded on the days ``since`` to ``until``, both included),
    by trade date, account and id; a sale with the lots it relieved."""
    x, a = t.transactions, t.accounts
    query = (
        sa.select(x)
        .join(a, a.c.account_id == x.c.account_id)
        .where(_within(a.c.household_id, scope))
        .order_by(x.c.trade_date, x.c.account_id, x.c.txn_id)
    )
    if account_id is not None:
        query = query.where(x.c.account_id == account_id)
    if household_id is not None:
        query = query.where(a.c.household_id == household_id)
    if kind is not None:
        query = query.where(x.c.kind == kind)
    if since is not None:
        query = query.where(x.c.trade_date >= since)
    if until is not None:
        query = query.where(x.c.trade_date <= until)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    return Page([transaction(row) for row in rows], total)


# ── requests and proposals ───────────────────────────────────────────────────


def _request_household() -> sa.ColumnElement[str | None]:
    """A request's household: its account's, or (one of a whole household) its own."""
    r, a = t.rebalance_requests, t.accounts
    return sa.case((r.c.account_id.is_(None), r.c.household_id), else_=a.c.household_id)


def _request_row(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "request_id": row.request_id,
        "account_id": row.account_id,
        "household_id": row.household_id,
        "reasons": row.reasons.split(";"),
        "figures": json.loads(row.figures),
        "as_of": row.as_of,
        "status": row.status,
        "answered_by": row.answered_by,
        "failure": row.failure,
    }


def requests_page(
    connection: sa.Connection,
    *,
    scope: Scope,
    status: str | None = None,
    household_id: str | None = None,
    account_id: str | None = None,
    limit: int,
    offset: int,
) -> Page[dict[str, Any]]:
    """The rebalance requests of households in scope (of ``status``; of
    ``household_id``, its accounts' and its own; of ``account_id``), newest first, as
    ``list_requests`` gives them."""
    r, a = t.rebalance_requests, t.accounts
    household = _request_household()
    query = (
        sa.select(r)
        .select_from(r.outerjoin(a, a.c.account_id == r.c.account_id))
        .where(_within(household, scope))
        .order_by(r.c.as_of.desc(), r.c.request_id)
    )
    if status is not None:
        query = query.where(r.c.status == status)
    if household_id is not None:
        query = query.where(household == household_id)
    if account_id is not None:
        query = query.where(r.c.account_id == account_id)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    return Page([_request_row(row) for row in rows], total)


def rebalance_request(connection: sa.Connection, *, request_id: str) -> dict[str, Any]:
    """One rebalance request, as ``list_requests`` gives it."""
    r = t.rebalance_requests
    row = connection.execute(sa.select(r).where(r.c.request_id == request_id)).first()
    if row is None:
        raise NotFoundError(f"no request {request_id}")
    return _request_row(row)


def proposals_page(
    connection: sa.Connection,
    *,
    scope: Scope,
    status: str | None = None,
    account_id: str | None = None,
    household_id: str | None = None,
    limit: int,
    offset: int,
) -> Page[dict[str, Any]]:
    """The proposals of accounts in scope that the filters pick, whole, newest as-of
    first, as ``find_proposals`` gives them."""
    p, a = t.proposals, t.accounts
    where = ProposalFilter(account_id=account_id, household_id=household_id, status=status)
    query = (
        _found(where)
        .where(_within(a.c.household_id, scope))
        .order_by(p.c.as_of.desc(), p.c.created_at.desc(), p.c.proposal_id.desc())
    )
    rows, total = _page(connection, query, limit=limit, offset=offset)
    return Page(_whole(connection, rows), total)


# ── the firm's runs and backtests (no household's: their routes keep the roles) ──


def runs_page(
    connection: sa.Connection, *, status: str | None = None, limit: int, offset: int
) -> Page[RebalanceRun]:
    """The firm-wide runs (of ``status``), the latest started first."""
    r = t.rebalance_runs
    query = _counted().order_by(r.c.started_at.desc(), r.c.run_id.desc())
    if status is not None:
        query = query.where(r.c.status == status)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    return Page([_run(row) for row in rows], total)


def backtests_page(
    connection: sa.Connection, *, model_id: str | None = None, limit: int, offset: int
) -> Page[BacktestRecord]:
    """The backtests kept (of ``model_id``), the newest first; light, as ``backtests``
    gives them: each method's summary and years, not its series."""
    b = t.backtests
    query = sa.select(b).order_by(b.c.created_at.desc(), b.c.backtest_id.desc())
    if model_id is not None:
        query = query.where(b.c.model_id == model_id)
    rows, total = _page(connection, query, limit=limit, offset=offset)
    methods = _methods(connection, [row.backtest_id for row in rows], series=False)
    return Page([_record(row, methods[row.backtest_id]) for row in rows], total)
