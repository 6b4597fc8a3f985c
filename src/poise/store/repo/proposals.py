"""Rebalance proposals: kept under an id made of the account, the as-of date and the
method, found by filters, and read back whole — figures, trades with the lots each sale
relieves, what bound the method, and the requests the proposal answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.errors import NotFoundError, StoreError
from poise.optimize.trades import Proposal
from poise.store import tables as t
from poise.store.repo.requests import answered_requests

__all__ = [
    "PROPOSAL_STATUSES",
    "PROPOSED",
    "SUPERSEDED",
    "HouseholdProposalRecord",
    "ProposalFilter",
    "Saved",
    "count_proposals",
    "find_proposals",
    "household_proposal",
    "proposal",
    "proposal_base_id",
    "proposals",
    "save_household_proposal",
    "save_proposal",
]

PROPOSED = "proposed"  # the live proposal of its account and method
SUPERSEDED = "superseded"  # a later proposal of the same account and method replaced it
PROPOSAL_STATUSES = (PROPOSED, SUPERSEDED)

_ATTEMPTS = 100  # ids tried when other runs take the next numbers at the same moment


def proposal_base_id(*, account_id: str, as_of: date, method: str, scenario: str | None) -> str:
    """``account/as-of date/method``, and ``/scenario`` where there is one."""
    parts = [account_id, as_of.isoformat(), method, *([scenario] if scenario else [])]
    return "/".join(parts)


def _numbered(base: str, number: int) -> str:
    return base if number == 1 else f"{base}.{number}"


def _next_number(connection: sa.Connection, base: str) -> int:
    """1 for a new base id, else one more than the highest run of it kept."""
    p = t.proposals
    taken = connection.execute(
        sa.select(p.c.proposal_id).where(
            (p.c.proposal_id == base) | p.c.proposal_id.startswith(f"{base}.", autoescape=True)
        )
    ).scalars()
    suffixes = [i[len(base) + 1 :] for i in taken]
    numbers = [int(s) if s.isdigit() else 1 for s in suffixes]  # the base itself is run 1
    return max(numbers, default=0) + 1


@dataclass(frozen=True, slots=True)
class Saved:
    """A proposal kept: its id, and the ids of the proposals it superseded."""

    proposal_id: str
    superseded: tuple[str, ...]


def save_proposal(
    connection: sa.Connection,
    *,
    proposal: Proposal,
    as_of: datetime,
    created_at: datetime,
    scenario: str | None = None,
    risk_model: str | None = None,
    household_proposal_id: str | None = None,
) -> Saved:
    """Keep a proposal (status ``proposed``); the earlier ``proposed`` ones of its
    account and method become ``superseded`` (``superseded_by`` it). Its id is
    :func:`proposal_base_id`; a second run of the same base id is kept beside the first
    as ``base.2``, a third as ``base.3``, and so on — nothing is overwritten. ``scenario``
    names the scenario it was kept from, ``risk_model`` what its tracking errors rest on,
    ``household_proposal_id`` the household's proposal it is part of, if any."""
    p, pt = t.proposals, t.proposal_trades
    earlier = tuple(
        connection.execute(
            sa.select(p.c.proposal_id).where(
                (p.c.account_id == proposal.account_id)
                & (p.c.method == proposal.method)
                & (p.c.status == PROPOSED)
            )
        ).scalars()
    )
    base = proposal_base_id(
        account_id=proposal.account_id,
        as_of=as_of.astimezone(UTC).date(),
        method=proposal.method,
        scenario=scenario,
    )
    number = _next_number(connection, base)
    row = {
        "account_id": proposal.account_id,
        "method": proposal.method,
        "status": PROPOSED,
        "created_at": created_at,
        "as_of": as_of,
        "cash_before": proposal.cash_before,
        "cash_after": proposal.cash_after,
        "realised_short": proposal.realised_short,
        "realised_long": proposal.realised_long,
        "estimated_tax": proposal.estimated_tax,
        "cost": proposal.cost,
        "drift_before": proposal.drift_before,
        "drift_after": proposal.drift_after,
        "binding": json.dumps(list(proposal.binding)),
        "tracking_before": proposal.tracking_before,
        "tracking_after": proposal.tracking_after,
        "scenario": scenario,
        "risk_model": risk_model,
        "household_proposal_id": household_proposal_id,
    }
    for _ in range(_ATTEMPTS):
        proposal_id = _numbered(base, number)
        try:
            with connection.begin_nested():  # another run may take this number first
                connection.execute(sa.insert(p).values(proposal_id=proposal_id, **row))
            break
        except sa.exc.IntegrityError:
            number += 1
    else:
        raise StoreError(f"no free proposal id after {base}.{number - 1}")
    if earlier:
        connection.execute(
            sa.update(p)
            .where(p.c.proposal_id.in_(earlier))
            .values(status=SUPERSEDED, superseded_by=proposal_id)
        )
    if proposal.trades:
        connection.execute(
            sa.insert(pt),
            [
                {
                    "proposal_id": proposal_id,
                    "seq": seq,
                    "security_id": trade.security_id,
                    "side": trade.side.value,
                    "quantity": trade.quantity,
                    "price": trade.price,
                    "reason": trade.reason.value,
                    "lots": json.dumps(
                        [
                            {
                                "lot_id": s.lot_id,
                                "quantity": str(s.quantity),
                                "basis": str(s.basis),
                                "proceeds": str(s.proceeds),
                                "term": s.term.value,
                            }
                            for s in trade.lots
                        ]
                    ),
                }
                for seq, trade in enumerate(proposal.trades, start=1)
            ],
        )
    return Saved(proposal_id, earlier)


def save_household_proposal(
    connection: sa.Connection,
    *,
    household_id: str,
    method: str,
    as_of: datetime,
    created_at: datetime,
    model_id: str | None,
    run_id: str | None,
    meetings: Sequence[str],
    location: Sequence[str],
    held: dict[str, str],
) -> Saved:
    """Keep a household's proposal — the record its accounts' proposals point to —
    under ``household/as-of date/method`` (numbered like an account's); the earlier
    ``proposed`` one of the household and method becomes ``superseded``."""
    h = t.household_proposals
    earlier = tuple(
        connection.execute(
            sa.select(h.c.proposal_id).where(
                (h.c.household_id == household_id)
                & (h.c.method == method)
                & (h.c.status == PROPOSED)
            )
        ).scalars()
    )
    base = "/".join([household_id, as_of.astimezone(UTC).date().isoformat(), method])
    taken = connection.execute(
        sa.select(h.c.proposal_id).where(
            (h.c.proposal_id == base) | h.c.proposal_id.startswith(f"{base}.", autoescape=True)
        )
    ).scalars()
    numbers = [
        int(i[len(base) + 1 :]) if i != base and i[len(base) + 1 :].isdigit() else 1 for i in taken
    ]
    number = max(numbers, default=0) + 1
    row = {
        "household_id": household_id,
        "method": method,
        "status": PROPOSED,
        "created_at": created_at,
        "as_of": as_of,
        "model_id": model_id,
        "run_id": run_id,
        "meetings": json.dumps(list(meetings)),
        "location": json.dumps(list(location)),
        "held": json.dumps(held, sort_keys=True),
    }
    for _ in range(_ATTEMPTS):
        proposal_id = _numbered(base, number)
        try:
            with connection.begin_nested():
                connection.execute(sa.insert(h).values(proposal_id=proposal_id, **row))
            break
        except sa.exc.IntegrityError:
            number += 1
    else:
        raise StoreError(f"no free household proposal id after {base}.{number - 1}")
    if earlier:
        connection.execute(
            sa.update(h)
            .where(h.c.proposal_id.in_(earlier))
            .values(status=SUPERSEDED, superseded_by=proposal_id)
        )
    return Saved(proposal_id, earlier)


@dataclass(frozen=True, slots=True)
class HouseholdProposalRecord:
    """A household's proposal as the store keeps it, with its accounts' proposal ids."""

    proposal_id: str
    household_id: str
    method: str
    status: str
    created_at: datetime
    as_of: datetime
    model_id: str | None
    run_id: str | None
    meetings: tuple[str, ...]
    location: tuple[str, ...]
    held: dict[str, str]
    accounts: tuple[str, ...]  # the accounts' proposal ids


def household_proposal(connection: sa.Connection, *, proposal_id: str) -> HouseholdProposalRecord:
    h, p = t.household_proposals, t.proposals
    row = connection.execute(sa.select(h).where(h.c.proposal_id == proposal_id)).first()
    if row is None:
        raise NotFoundError(f"no household proposal {proposal_id}")
    parts = connection.execute(
        sa.select(p.c.proposal_id)
        .where(p.c.household_proposal_id == proposal_id)
        .order_by(p.c.account_id)
    ).scalars()
    return HouseholdProposalRecord(
        proposal_id=row.proposal_id,
        household_id=row.household_id,
        method=row.method,
        status=row.status,
        created_at=row.created_at,
        as_of=row.as_of,
        model_id=row.model_id,
        run_id=row.run_id,
        meetings=tuple(json.loads(row.meetings)),
        location=tuple(json.loads(row.location)),
        held=dict(json.loads(row.held)),
        accounts=tuple(parts),
    )


@dataclass(frozen=True, slots=True)
class ProposalFilter:
    """Which proposals to find; a field left ``None`` does not filter. ``since`` and
    ``until`` are the first and last day (UTC) of the proposals' as-of times."""

    account_id: str | None = None
    household_id: str | None = None
    status: str | None = None
    method: str | None = None
    since: date | None = None
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _found(f: ProposalFilter) -> sa.Select[Any]:
    """The proposals ``f`` finds, each with its account's household."""
    p, a = t.proposals, t.accounts
    query = sa.select(p, a.c.household_id).select_from(
        p.outerjoin(a, a.c.account_id == p.c.account_id)
    )
    if f.account_id is not None:
        query = query.where(p.c.account_id == f.account_id)
    if f.household_id is not None:
        query = query.where(a.c.household_id == f.household_id)
    if f.status is not None:
        query = query.where(p.c.status == f.status)
    if f.method is not None:
        query = query.where(p.c.method == f.method)
    if f.since is not None:
        query = query.where(p.c.as_of >= _day_start(f.since))
    if f.until is not None:
        query = query.where(p.c.as_of < _day_start(f.until + timedelta(days=1)))
    return query


def count_proposals(connection: sa.Connection, *, where: ProposalFilter | None = None) -> int:
    """How many proposals ``where`` finds."""
    found = _found(where or ProposalFilter()).subquery()
    return int(connection.execute(sa.select(sa.func.count()).select_from(found)).scalar_one())


def find_proposals(
    connection: sa.Connection, *, where: ProposalFilter | None = None, limit: int = 0
) -> list[dict[str, Any]]:
    """The proposals ``where`` finds, whole, newest as-of first (then the latest made
    first); at most ``limit`` (0: all)."""
    p = t.proposals
    query = _found(where or ProposalFilter()).order_by(
        p.c.as_of.desc(), p.c.created_at.desc(), p.c.proposal_id.desc()
    )
    if limit:
        query = query.limit(limit)
    return _whole(connection, list(connection.execute(query)))


def proposal(connection: sa.Connection, *, proposal_id: str) -> dict[str, Any]:
    """One proposal, whole."""
    rows = list(
        connection.execute(_found(ProposalFilter()).where(t.proposals.c.proposal_id == proposal_id))
    )
    if not rows:
        raise NotFoundError(f"no proposal {proposal_id!r}")
    return _whole(connection, rows)[0]


def proposals(connection: sa.Connection, *, account_id: str) -> list[dict[str, Any]]:
    """The account's proposals, whole, newest first."""
    return find_proposals(connection, where=ProposalFilter(account_id=account_id))


def _whole(connection: sa.Connection, rows: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    """Each proposal row with its trades (each sale's lots as Decimals) and the
    requests it answers; ``binding`` as a list of sentences."""
    pt = t.proposal_trades
    ids = [row.proposal_id for row in rows]
    trades: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = sa.select(pt).where(pt.c.proposal_id.in_(chunk)).order_by(pt.c.seq)
        for trade in connection.execute(query):
            trades.setdefault(trade.proposal_id, []).append(
                {
                    **{k: v for k, v in trade._mapping.items() if k not in ("lots", "proposal_id")},
                    "lots": [
                        {
                            **lot,
                            **{k: Decimal(lot[k]) for k in ("quantity", "basis", "proceeds")},
                        }
                        for lot in json.loads(trade.lots)
                    ],
                }
            )
    answered = answered_requests(connection, proposal_ids=ids)
    return [
        {
            **{k: v for k, v in row._mapping.items() if k != "binding"},
            "binding": json.loads(row.binding),
            "trades": trades.get(row.proposal_id, []),
            "requests": answered.get(row.proposal_id, []),
        }
        for row in rows
    ]
