"""The service's reads: a page at a time, within the caller's scope.

Every function takes the caller's :class:`~poise.domain.users.Scope`; a household
outside it is never read. A page is its items and the total the filters match (the
scope applied), so that a client can page on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa

from poise.domain.accounts import Account, Household
from poise.domain.users import Scope
from poise.store import tables as t
from poise.store.repo.book import _account

__all__ = ["Page", "accounts_page", "households_page"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


def _within(column: sa.ColumnElement[str], scope: Scope) -> sa.ColumnElement[bool]:
    if scope.firm:
        return sa.true()
    return column.in_(sorted(scope.households)) if scope.households else sa.false()


def _page(
    connection: sa.Connection, query: sa.Select[tuple[object, ...]], *, limit: int, offset: int
) -> tuple[list[sa.Row[tuple[object, ...]]], int]:
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
