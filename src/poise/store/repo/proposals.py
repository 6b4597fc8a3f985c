"""Rebalance proposals: kept under an id made of the account, the as-of date and the
method, found by filters, and read back whole — figures, trades with the lots each sale
relieves, what bound the method, and the requests the proposal answers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from poise.domain.approvals import Status
from poise.domain.errors import NotFoundError, StoreError
from poise.optimize.trades import Proposal, Trade
from poise.store import tables as t
from poise.store.repo.requests import answered_requests
from poise.store.rows import insert_rows

if TYPE_CHECKING:
    pass

__all__ = [
    "LIVE",
    "PROPOSAL_STATUSES",
    "PROPOSED",
    "SUPERSEDED",
    "HouseholdProposalRecord",
    "HouseholdProposalToKeep",
    "ProposalFilter",
    "ProposalToKeep",
    "Saved",
    "count_proposals",
    "find_proposals",
    "household_proposal",
    "proposal",
    "proposal_base_id",
    "proposals",
    "save_household_proposal",
    "save_household_proposals",
    "save_proposal",
    "save_proposals",
]

PROPOSED = Status.PROPOSED.value  # made, not yet checked against the rules
SUPERSEDED = Status.SUPERSEDED.value  # a later one of the same account and method replaced it
PROPOSAL_STATUSES = tuple(s.value for s in Status)  # the approval machine's
# What a newer proposal of the same account (or household) and method supersedes: a
# proposal not yet released to trading and not already at its end.
LIVE = tuple(s.value for s in (Status.PROPOSED, Status.BLOCKED, Status.PENDING, Status.APPROVED))

_V = TypeVar("_V")

_ATTEMPTS = 100  # tries when other runs take the next numbers at the same moment
_PROBES = 8  # numbered ids of a base looked up at a time
_CHUNK = 500  # values in one IN list


def proposal_base_id(*, account_id: str, as_of: date, method: str, scenario: str | None) -> str:
    """``account/as-of date/method``, and ``/scenario`` where there is one."""
    parts = [account_id, as_of.isoformat(), method, *([scenario] if scenario else [])]
    return "/".join(parts)


def _numbered(base: str, number: int) -> str:
    return base if number == 1 else f"{base}.{number}"


def _chunks(values: Sequence[_V]) -> Iterator[list[_V]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def _rounds(keys: Sequence[str]) -> list[list[int]]:
    """The positions of ``keys`` in rounds, each key at most once a round and a key's
    positions in their order: what one statement per round can keep."""
    rounds: list[list[int]] = []
    last: dict[str, int] = {}
    for i, key in enumerate(keys):
        r = last.get(key, -1) + 1
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(i)
        last[key] = r
    return rounds


def _next_numbers(connection: sa.Connection, table: sa.Table, bases: Sequence[str]) -> list[int]:
    """For each base id, one more than the highest run of it kept (1 for a new one). Ids
    are looked up by key: each base first (a day's first run finds none), then, for
    those kept already, ``base.2`` … a window of numbers at a time, until a window ends
    free. A base's numbered runs are kept only once the base is (and nothing deletes a
    proposal), so a base not kept has none."""
    key = table.c.proposal_id
    highest = dict.fromkeys(bases, 0)
    looking, first, size = sorted(set(bases)), 1, 1
    while looking:
        wanted = {
            _numbered(base, number): (base, number)
            for base in looking
            for number in range(first, first + size)
        }
        taken = [
            wanted[i]
            for chunk in _chunks(list(wanted))
            for i in connection.execute(sa.select(key).where(key.in_(chunk))).scalars()
        ]
        for base, number in taken:
            highest[base] = max(highest[base], number)
        first, size = first + size, _PROBES
        looking = sorted({b for b, n in taken if n == first - 1})
    return [highest[b] + 1 for b in bases]


def _keep_numbered(
    connection: sa.Connection,
    table: sa.Table,
    owner: str,
    rows: Sequence[dict[str, Any]],
    bases: Sequence[str],
) -> list[Saved]:
    """Insert ``rows`` (status ``proposed``), each under the next free number of its base
    id, and supersede the live rows (:data:`LIVE`) of the same owner (``owner`` column)
    and method that were there before. Each owner at most once."""
    column = table.c[owner]
    owners = [row[owner] for row in rows]
    earlier: dict[tuple[str, str], list[str]] = {}
    for chunk in _chunks(sorted(set(owners))):
        query = sa.select(table.c.proposal_id, column, table.c.method).where(
            column.in_(chunk) & table.c.status.in_(LIVE)
        )
        for proposal_id, who, method in connection.execute(query):
            earlier.setdefault((who, method), []).append(proposal_id)
    for _ in range(_ATTEMPTS):
        numbers = _next_numbers(connection, table, bases)
        ids = [_numbered(b, n) for b, n in zip(bases, numbers, strict=True)]
        try:
            with connection.begin_nested():  # another run may take these numbers first
                connection.execute(
                    sa.insert(table),
                    [{**row, "proposal_id": i} for row, i in zip(rows, ids, strict=True)],
                )
            break
        except sa.exc.IntegrityError:
            continue
    else:
        raise StoreError(f"no free proposal ids after {_ATTEMPTS} tries, from {bases[0]}")
    replaced = [tuple(sorted(earlier.get((row[owner], row["method"]), ()))) for row in rows]
    superseding = [
        {"old": old, "new": new} for new, olds in zip(ids, replaced, strict=True) for old in olds
    ]
    if superseding:
        connection.execute(
            sa.update(table)
            # still live: one released meanwhile (read above, before the insert) is left;
            # (an OR, not IN: an expanding IN list cannot go with many rows of parameters)
            .where(
                (table.c.proposal_id == sa.bindparam("old"))
                & sa.or_(*(table.c.status == sa.literal(s) for s in LIVE))
            )
            .values(status=SUPERSEDED, superseded_by=sa.bindparam("new")),
            superseding,
        )
    return [Saved(i, olds) for i, olds in zip(ids, replaced, strict=True)]


@dataclass(frozen=True, slots=True)
class Saved:
    """A proposal kept: its id, and the ids of the proposals it superseded."""

    proposal_id: str
    superseded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProposalToKeep:
    """An account's proposal, as :func:`save_proposals` keeps it: ``scenario`` names the
    scenario it was kept from, ``risk_model`` what its tracking errors rest on,
    ``household_proposal_id`` the household's proposal it is part of, if any."""

    proposal: Proposal
    scenario: str | None = None
    risk_model: str | None = None
    household_proposal_id: str | None = None
    prepared_by: str | None = None  # the user who asked for it (None: the system)


def save_proposal(
    connection: sa.Connection,
    *,
    proposal: Proposal,
    as_of: datetime,
    created_at: datetime,
    scenario: str | None = None,
    risk_model: str | None = None,
    household_proposal_id: str | None = None,
    prepared_by: str | None = None,
) -> Saved:
    """Keep a proposal (status ``proposed``); the earlier live ones (:data:`LIVE`) of its
    account and method become ``superseded`` (``superseded_by`` it). Its id is
    :func:`proposal_base_id`; a second run of the same base id is kept beside the first
    as ``base.2``, a third as ``base.3``, and so on — nothing is overwritten. ``scenario``
    names the scenario it was kept from, ``risk_model`` what its tracking errors rest on,
    ``household_proposal_id`` the household's proposal it is part of, if any,
    ``prepared_by`` the user who asked for it (None: the system)."""
    kept = ProposalToKeep(proposal, scenario, risk_model, household_proposal_id, prepared_by)
    return save_proposals(connection, proposals=[kept], as_of=as_of, created_at=created_at)[0]


def save_proposals(
    connection: sa.Connection,
    *,
    proposals: Sequence[ProposalToKeep],
    as_of: datetime,
    created_at: datetime,
) -> list[Saved]:
    """Keep many proposals as :func:`save_proposal` keeps each, one after another, in a
    few statements (one a round of distinct accounts: a firm's run has one round)."""
    p = t.proposals
    day = as_of.astimezone(UTC).date()
    saved: list[Saved | None] = [None] * len(proposals)
    for positions in _rounds([k.proposal.account_id for k in proposals]):
        chosen = [proposals[i] for i in positions]
        bases = [
            proposal_base_id(
                account_id=k.proposal.account_id,
                as_of=day,
                method=k.proposal.method,
                scenario=k.scenario,
            )
            for k in chosen
        ]
        rows = [_proposal_row(k, as_of=as_of, created_at=created_at) for k in chosen]
        kept = _keep_numbered(connection, p, "account_id", rows, bases)
        trades = [
            _trade_row(s.proposal_id, seq, trade)
            for k, s in zip(chosen, kept, strict=True)
            for seq, trade in enumerate(k.proposal.trades, start=1)
        ]
        _insert_trades(connection, trades)
        for i, s in zip(positions, kept, strict=True):
            saved[i] = s
    return [s for s in saved if s is not None]


_TRADE_COLUMNS = (
    "proposal_id",
    "seq",
    "security_id",
    "side",
    "quantity",
    "price",
    "reason",
    "lots",
)


def _insert_trades(connection: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Proposals' trades, many at once (:func:`~poise.store.rows.insert_rows`: on
    PostgreSQL by ``COPY`` — a run's hundred thousand rows in a third of the time of a
    many-rowed ``INSERT``)."""
    insert_rows(
        connection, t.proposal_trades, [{c: row[c] for c in _TRADE_COLUMNS} for row in rows]
    )


def _proposal_row(k: ProposalToKeep, *, as_of: datetime, created_at: datetime) -> dict[str, Any]:
    proposal = k.proposal
    return {
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
        "scenario": k.scenario,
        "risk_model": k.risk_model,
        "household_proposal_id": k.household_proposal_id,
        "prepared_by": k.prepared_by,
    }


def _trade_row(proposal_id: str, seq: int, trade: Trade) -> dict[str, Any]:
    return {
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


@dataclass(frozen=True, slots=True)
class HouseholdProposalToKeep:
    """A household's proposal, as :func:`save_household_proposals` keeps it."""

    household_id: str
    method: str
    model_id: str | None
    meetings: Sequence[str] = ()
    location: Sequence[str] = ()
    held: Mapping[str, str] = field(default_factory=dict)
    prepared_by: str | None = None  # the user who asked for it (None: the system)


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
    prepared_by: str | None = None,
) -> Saved:
    """Keep a household's proposal — the record its accounts' proposals point to —
    under ``household/as-of date/method`` (numbered like an account's); the earlier
    live one (:data:`LIVE`) of the household and method becomes ``superseded``."""
    kept = HouseholdProposalToKeep(
        household_id, method, model_id, meetings, location, held, prepared_by
    )
    return save_household_proposals(
        connection, households=[kept], as_of=as_of, created_at=created_at, run_id=run_id
    )[0]


def save_household_proposals(
    connection: sa.Connection,
    *,
    households: Sequence[HouseholdProposalToKeep],
    as_of: datetime,
    created_at: datetime,
    run_id: str | None,
) -> list[Saved]:
    """Keep many households' proposals as :func:`save_household_proposal` keeps each,
    one after another, in a few statements."""
    day = as_of.astimezone(UTC).date().isoformat()
    saved: list[Saved | None] = [None] * len(households)
    for positions in _rounds([k.household_id for k in households]):
        chosen = [households[i] for i in positions]
        bases = ["/".join([k.household_id, day, k.method]) for k in chosen]
        rows = [
            {
                "household_id": k.household_id,
                "method": k.method,
                "status": PROPOSED,
                "created_at": created_at,
                "as_of": as_of,
                "model_id": k.model_id,
                "run_id": run_id,
                "meetings": json.dumps(list(k.meetings)),
                "location": json.dumps(list(k.location)),
                "held": json.dumps(dict(k.held), sort_keys=True),
                "prepared_by": k.prepared_by,
            }
            for k in chosen
        ]
        kept = _keep_numbered(connection, t.household_proposals, "household_id", rows, bases)
        for i, s in zip(positions, kept, strict=True):
            saved[i] = s
    return [s for s in saved if s is not None]


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
