"""Transactions booked: an account's, or a household's accounts' — each within the
caller's scope (:mod:`poise.api.scoping`), paged in their query."""

from __future__ import annotations

from datetime import date

from fastapi import Request, Response
from pydantic import BaseModel

from poise.api.deps import EngineDep
from poise.api.http import LimitQuery, OffsetQuery, PageOut, tagged
from poise.api.routes.answers import NOT_FOUND, SIGNED_IN, Exact
from poise.api.scoping import ScopedDep, scoped_router
from poise.domain.transactions import Transaction, TxnKind
from poise.store.repo import Page, pages

__all__ = ["router"]

router = scoped_router(tags=["book"], responses={**SIGNED_IN, **NOT_FOUND})


class RelievedOut(BaseModel):
    lot_id: str
    quantity: Exact


class TransactionOut(BaseModel):
    txn_id: str
    account_id: str
    kind: TxnKind
    trade_date: date
    settle_date: date
    security_id: str | None
    quantity: Exact  # shares moved, positive for every kind
    amount: Exact  # cash moved, positive: the kind gives the direction
    lots: list[RelievedOut]  # the lots a sale relieved
    description: str

    @classmethod
    def of(cls, x: Transaction) -> TransactionOut:
        return cls(
            txn_id=x.txn_id, account_id=x.account_id, kind=x.kind, trade_date=x.trade_date,
            settle_date=x.settle_date, security_id=x.security_id, quantity=str(x.quantity),
            amount=str(x.amount), description=x.description,
            lots=[RelievedOut(lot_id=r.lot_id, quantity=str(r.quantity)) for r in x.lots],
        )  # fmt: skip


def _answer(request: Request, page: Page[Transaction], limit: int, offset: int) -> Response:
    items = [TransactionOut.of(x) for x in page.items]
    return tagged(request, PageOut[TransactionOut](items=items, total=page.total, limit=limit,
                                                   offset=offset))  # fmt: skip


@router.get(
    "/accounts/{account_id}/transactions",
    response_model=PageOut[TransactionOut],
    summary="An account's transactions",
)
def account_transactions(
    request: Request, account_id: str, who: ScopedDep, engine: EngineDep,
    kind: TxnKind | None = None, since: date | None = None, until: date | None = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """By trade date; ``since`` and ``until`` are trade dates, both included."""
    with engine.connect() as connection:
        page = pages.transactions_page(
            connection, scope=who.scope, account_id=account_id,
            kind=None if kind is None else kind.value, since=since, until=until,
            limit=limit, offset=offset,
        )  # fmt: skip
    return _answer(request, page, limit, offset)


@router.get(
    "/households/{household_id}/transactions",
    response_model=PageOut[TransactionOut],
    summary="A household's transactions, every account's",
)
def household_transactions(
    request: Request, household_id: str, who: ScopedDep, engine: EngineDep,
    kind: TxnKind | None = None, since: date | None = None, until: date | None = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """By trade date, account and id; ``since`` and ``until`` are trade dates, both
    included."""
    with engine.connect() as connection:
        page = pages.transactions_page(
            connection, scope=who.scope, household_id=household_id,
            kind=None if kind is None else kind.value, since=since, until=until,
            limit=limit, offset=offset,
        )  # fmt: skip
    return _answer(request, page, limit, offset)
