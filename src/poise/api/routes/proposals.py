"""Rebalance proposals — an account's, and a household's — within the caller's scope,
in the one shape every command prints (docs/rebalancing.md#a-proposal-in-json): made
by :func:`poise.workflow.documents.proposal_json`, as ``poise proposals show --json``.

A proposal's id holds slashes (``10000001/2022-12-28/bands``): the routes take the rest
of the path as the id.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response
from pydantic import Field

from poise.api.deps import EngineDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.routes.answers import NOT_FOUND, SIGNED_IN, Document, Exact, Moment, answer
from poise.api.scoping import ScopedDep, scoped_router
from poise.store import repo
from poise.store.repo import pages
from poise.workflow.documents import household_json, proposal_json

__all__ = ["router"]

router = scoped_router(tags=["proposals"], responses=SIGNED_IN)

ProposalStatus = Literal[  # repo.PROPOSAL_STATUSES: the approval machine's
    "proposed",
    "blocked",
    "pending",
    "approved",
    "released",
    "executed",
    "rejected",
    "expired",
    "superseded",
]


class ProposalSummary(Document):
    proposal_id: str | None
    account_id: str
    household_id: str | None
    household_proposal_id: str | None  # the household's proposal it is part of
    method: str
    scenario: str | None
    status: ProposalStatus | None
    superseded_by: str | None
    as_of: Moment | None  # prices as of
    created_at: Moment | None
    cash_before: Exact
    cash_after: Exact
    realised_short: Exact
    realised_long: Exact
    estimated_tax: Exact
    cost: Exact
    turnover: Exact
    drift_before: float | None  # the largest, a fraction of the account
    drift_after: float | None
    tracking_before: float | None  # annual tracking error to the model
    tracking_after: float | None


class ProposalRow(ProposalSummary):
    trade_count: int
    request_count: int


class RelievedOut(Document):
    lot_id: str
    quantity: Exact
    basis: Exact
    proceeds: Exact
    gain: Exact
    term: Literal["short", "long"]


class TradeOut(Document):
    seq: int
    security_id: str
    side: Literal["buy", "sell"]
    quantity: Exact
    price: Exact
    value: Exact
    reason: str
    lots: list[RelievedOut]  # the lots a sale relieves


class AnsweredOut(Document):
    request_id: str
    reasons: list[str]
    as_of: Moment


class ProposalOut(ProposalSummary):
    risk_model: str | None  # what its tracking errors rest on
    binding: list[str]  # what held the method back
    trades: list[TradeOut]
    requests: list[AnsweredOut]  # the rebalance requests it answers


class HouseholdProposalOut(Document):
    household_proposal_id: str
    household_id: str
    method: str
    status: ProposalStatus
    as_of: Moment
    created_at: Moment
    model_id: str | None  # the one model across its accounts, if one
    run_id: str | None  # the firm-wide run that made it, if one
    meetings: list[str]  # how each wash-sale meeting of its accounts was settled
    location: list[str]  # where its assets are held, and why
    held: dict[str, str]  # account → why it was not rebalanced
    accounts: list[ProposalOut] = Field(description="Each account's proposal, whole.")


class ProposalsPage(Document):
    items: list[ProposalRow]
    total: int
    limit: int
    offset: int


@router.get("/proposals", response_model=ProposalsPage, summary="Rebalance proposals")
def list_proposals(
    request: Request, who: ScopedDep, engine: EngineDep,
    status: ProposalStatus | None = None, account_id: str | None = None,
    household_id: str | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The proposals of accounts in scope, newest as-of first, each a summary row (as
    ``poise proposals list --json``): its figures, and how many trades and requests."""
    with engine.connect() as connection:
        page = pages.proposals_page(
            connection, scope=who.scope, status=status, account_id=account_id,
            household_id=household_id, limit=limit, offset=offset,
        )  # fmt: skip
    document = {"items": [proposal_json(p, whole=False) for p in page.items],
                "total": page.total, "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, ProposalsPage, document)


@router.get(
    "/proposals/{proposal_id:path}",
    response_model=ProposalOut,
    summary="A proposal, whole",
    responses=NOT_FOUND,
)
def get_proposal(request: Request, proposal_id: str, who: ScopedDep, engine: EngineDep) -> Response:
    """Its figures, its trades with the lots each sale relieves, what bound it, and the
    requests it answers (``poise proposals show --json``)."""
    with engine.connect() as connection:
        found = repo.proposal(connection, proposal_id=proposal_id)
    return answer(request, ProposalOut, proposal_json(found))


@router.get(
    "/household-proposals/{household_proposal_id:path}",
    response_model=HouseholdProposalOut,
    summary="A household's proposal, and each account's",
    responses=NOT_FOUND,
)
def get_household_proposal(
    request: Request, household_proposal_id: str, who: ScopedDep, engine: EngineDep
) -> Response:
    """How its accounts were decided together, then each account's proposal whole
    (``poise proposals show --json`` of a household's proposal)."""
    with engine.connect() as connection:
        household = repo.household_proposal(connection, proposal_id=household_proposal_id)
        parts = [
            proposal_json(repo.proposal(connection, proposal_id=part))
            for part in household.accounts
        ]
    return answer(request, HouseholdProposalOut, household_json(household, parts))
