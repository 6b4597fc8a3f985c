"""Rebalance requests: kept once by id, found by filters, which are open, which a
proposal answers, and which the worker could not answer (and why)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from poise.domain.errors import ValidationError
from poise.store import tables as t

__all__ = [
    "ANSWERED",
    "FAILED",
    "OPEN",
    "REQUEST_STATUSES",
    "Answering",
    "RequestFilter",
    "RequestState",
    "answer_all_requests",
    "answer_household_requests",
    "answer_requests",
    "answered_requests",
    "count_requests",
    "fail_requests",
    "household_requests",
    "list_requests",
    "open_request_reasons",
    "request_states",
    "requests_now",
    "requests_received",
    "save_requests",
    "stored_request_ids",
]

OPEN = "open"  # raised, and no proposal has answered it yet
ANSWERED = "answered"  # a proposal of its account answers it (``answered_by``)
FAILED = "failed"  # the worker could not answer it (``failure`` says why); not tried again
REQUEST_STATUSES = (OPEN, ANSWERED, FAILED)


def save_requests(
    connection: sa.Connection, *, requests: Sequence[Mapping[str, Any]], received_at: datetime
) -> int:
    """Keep rebalance requests (payloads), each once by its id; how many were new."""
    if not requests:
        return 0
    r = t.rebalance_requests
    ids = [q["request_id"] for q in requests]
    seen = set(
        connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(ids))).scalars()
    )
    fresh = {q["request_id"]: q for q in requests if q["request_id"] not in seen}
    if fresh:
        connection.execute(
            sa.insert(r),
            [
                {
                    "request_id": q["request_id"],
                    "account_id": q.get("account_id"),
                    "household_id": q.get("household_id"),
                    "reasons": ";".join(q["reasons"]),
                    "figures": json.dumps(q.get("figures", {}), sort_keys=True),
                    "as_of": datetime.fromisoformat(q["as_of"]),
                    "received_at": received_at,
                    "status": OPEN,
                }
                for q in fresh.values()
            ],
        )
    return len(fresh)


def stored_request_ids(connection: sa.Connection, *, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the store already holds."""
    r = t.rebalance_requests
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(
            connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(chunk))).scalars()
        )
    return found


def open_request_reasons(connection: sa.Connection) -> dict[str, frozenset[str]]:
    """The reasons of each account's open rebalance requests."""
    r = t.rebalance_requests
    found: dict[str, set[str]] = {}
    query = sa.select(r.c.account_id, r.c.reasons).where(
        (r.c.status == OPEN) & r.c.account_id.is_not(None)
    )
    for account_id, reasons in connection.execute(query):
        found.setdefault(account_id, set()).update(reasons.split(";"))
    return {a: frozenset(rs) for a, rs in found.items()}


@dataclass(frozen=True, slots=True)
class Answering:
    """A proposal just kept for ``account_id``, and the proposals it superseded."""

    proposal_id: str
    account_id: str
    superseded: tuple[str, ...] = ()


def answer_requests(
    connection: sa.Connection,
    *,
    proposal_id: str,
    account_id: str,
    as_of: datetime,
    superseded: Sequence[str] = (),
) -> list[str]:
    """Close the account's open requests raised by ``as_of``: the proposal answers them
    (status ``answered``, ``answered_by`` its id). The requests that the ``superseded``
    proposals answered pass to it. Returns the ids of every request it answers."""
    answering = Answering(proposal_id, account_id, tuple(superseded))
    return answer_all_requests(connection, answering=[answering], as_of=as_of)[proposal_id]


def answer_all_requests(
    connection: sa.Connection, *, answering: Sequence[Answering], as_of: datetime
) -> dict[str, list[str]]:
    """:func:`answer_requests` for many proposals, as if one after another, in three
    statements (three more for each later proposal of an account already answered):
    the ids of the requests each proposal answers, oldest first."""
    accounts: set[str] = set()
    first: list[Answering] = []
    later: list[Answering] = []
    for a in answering:
        (later if a.account_id in accounts else first).append(a)
        accounts.add(a.account_id)
    found = _answer(connection, first, as_of)
    if later:
        found.update(answer_all_requests(connection, answering=later, as_of=as_of))
    return found


def _answer(
    connection: sa.Connection, answering: Sequence[Answering], as_of: datetime
) -> dict[str, list[str]]:
    """Each of ``answering`` of its own account."""
    r = t.rebalance_requests
    moved = [{"old": old, "new": a.proposal_id} for a in answering for old in a.superseded]
    if moved:
        connection.execute(
            sa.update(r)
            .where(r.c.answered_by == sa.bindparam("old"))
            .values(answered_by=sa.bindparam("new")),
            moved,
        )
    if answering:
        connection.execute(
            sa.update(r)
            .where(
                (r.c.account_id == sa.bindparam("account"))
                & (r.c.status == OPEN)
                & (r.c.as_of <= as_of)
            )
            .values(status=ANSWERED, answered_by=sa.bindparam("proposal")),
            [{"account": a.account_id, "proposal": a.proposal_id} for a in answering],
        )
    found: dict[str, list[str]] = {a.proposal_id: [] for a in answering}
    ids = list(found)
    for start in range(0, len(ids), 500):
        query = (
            sa.select(r.c.answered_by, r.c.request_id)
            .where(r.c.answered_by.in_(ids[start : start + 500]))
            .order_by(r.c.as_of, r.c.request_id)
        )
        for proposal_id, request_id in connection.execute(query):
            found[proposal_id].append(request_id)
    return found


def answered_requests(
    connection: sa.Connection, *, proposal_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The requests each of ``proposal_ids`` answers, oldest first."""
    r = t.rebalance_requests
    found: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(proposal_ids), 500):
        chunk = list(proposal_ids[start : start + 500])
        query = (
            sa.select(r.c.answered_by, r.c.request_id, r.c.reasons, r.c.as_of)
            .where(r.c.answered_by.in_(chunk))
            .order_by(r.c.as_of, r.c.request_id)
        )
        for row in connection.execute(query):
            found.setdefault(row.answered_by, []).append(
                {
                    "request_id": row.request_id,
                    "reasons": row.reasons.split(";"),
                    "as_of": row.as_of,
                }
            )
    return found


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which requests to find; a field left ``None`` does not filter. ``since`` and
    ``until`` are the first and last day (UTC) of the requests' as-of times."""

    account_id: str | None = None
    household_id: str | None = None
    status: str | None = None
    reason: str | None = None
    since: date | None = None
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _where(f: RequestFilter) -> sa.ColumnElement[bool]:
    r = t.rebalance_requests
    clauses: list[sa.ColumnElement[bool]] = [sa.true()]
    if f.account_id is not None:
        clauses.append(r.c.account_id == f.account_id)
    if f.household_id is not None:
        clauses.append(r.c.household_id == f.household_id)
    if f.status is not None:
        clauses.append(r.c.status == f.status)
    if f.reason is not None:  # reasons are kept as "a;b;c": match a whole one
        padded = sa.literal(";") + r.c.reasons + sa.literal(";")
        clauses.append(padded.contains(f";{f.reason};", autoescape=True))
    if f.since is not None:
        clauses.append(r.c.as_of >= _day_start(f.since))
    if f.until is not None:
        clauses.append(r.c.as_of < _day_start(f.until + timedelta(days=1)))
    return sa.and_(*clauses)


def count_requests(connection: sa.Connection, *, where: RequestFilter | None = None) -> int:
    """How many requests ``where`` finds."""
    r = t.rebalance_requests
    query = sa.select(sa.func.count()).select_from(r).where(_where(where or RequestFilter()))
    return int(connection.execute(query).scalar_one())


def list_requests(
    connection: sa.Connection, *, where: RequestFilter | None = None, limit: int = 0
) -> list[dict[str, Any]]:
    """The requests ``where`` finds, newest first (at most ``limit``; 0: all)."""
    r = t.rebalance_requests
    query = (
        sa.select(r)
        .where(_where(where or RequestFilter()))
        .order_by(r.c.as_of.desc(), r.c.request_id)
    )
    if limit:
        query = query.limit(limit)
    return [
        {**_request(row), "figures": json.loads(row.figures), "failure": row.failure}
        for row in connection.execute(query)
    ]


def _request(row: sa.Row[Any]) -> dict[str, Any]:
    """What every listing of a request shows of it."""
    return {
        "request_id": row.request_id,
        "account_id": row.account_id,
        "household_id": row.household_id,
        "reasons": row.reasons.split(";"),
        "as_of": row.as_of,
        "status": row.status,
        "answered_by": row.answered_by,
    }


def requests_received(
    connection: sa.Connection, *, after: datetime, limit: int = 500
) -> list[dict[str, Any]]:
    """The requests received after ``after``, the first received first (at most
    ``limit``), each with ``household`` — its account's household, or its own — and
    ``received_at``: what a live page is told of new requests."""
    return _watched(connection, t.rebalance_requests.c.received_at > after, limit=limit)


def requests_now(connection: sa.Connection, *, ids: Sequence[str]) -> list[dict[str, Any]]:
    """How the requests ``ids`` stand now (as :func:`requests_received` shows them)."""
    found: list[dict[str, Any]] = []
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        found += _watched(connection, t.rebalance_requests.c.request_id.in_(chunk), limit=0)
    return found


def _watched(
    connection: sa.Connection, where: sa.ColumnElement[bool], *, limit: int
) -> list[dict[str, Any]]:
    r, a = t.rebalance_requests, t.accounts
    query = (
        sa.select(r, sa.func.coalesce(a.c.household_id, r.c.household_id).label("household"))
        .select_from(r.outerjoin(a, a.c.account_id == r.c.account_id))
        .where(where)
        .order_by(r.c.received_at, r.c.request_id)
    )
    if limit:
        query = query.limit(limit)
    return [
        {**_request(row), "household": row.household, "received_at": row.received_at}
        for row in connection.execute(query)
    ]


# ── the worker's view: one request's state, a household's, and closing them ─────


@dataclass(frozen=True, slots=True)
class RequestState:
    """Where a stored request stands."""

    request_id: str
    account_id: str | None
    household_id: str | None
    as_of: datetime
    status: str
    answered_by: str | None
    failure: str | None


def _states(connection: sa.Connection, query: sa.Select[Any], *, lock: bool) -> list[RequestState]:
    r = t.rebalance_requests
    if lock:  # PostgreSQL: a second worker waits here; SQLite's IMMEDIATE writer already has
        query = query.with_for_update()
    return [
        RequestState(
            row.request_id,
            row.account_id,
            row.household_id,
            row.as_of,
            row.status,
            row.answered_by,
            row.failure,
        )
        for row in connection.execute(query.order_by(r.c.as_of, r.c.request_id))
    ]


def _state_columns() -> sa.Select[Any]:
    r = t.rebalance_requests
    return sa.select(
        r.c.request_id,
        r.c.account_id,
        r.c.household_id,
        r.c.as_of,
        r.c.status,
        r.c.answered_by,
        r.c.failure,
    )


def request_states(
    connection: sa.Connection, *, ids: Sequence[str], lock: bool = False
) -> dict[str, RequestState]:
    """The state of each of ``ids`` the store holds; ``lock``: their rows are locked for
    the rest of the transaction (PostgreSQL), so two workers cannot both answer one."""
    r = t.rebalance_requests
    found: dict[str, RequestState] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = _state_columns().where(r.c.request_id.in_(chunk))
        found.update((s.request_id, s) for s in _states(connection, query, lock=lock))
    return found


def household_requests(
    connection: sa.Connection,
    *,
    household_id: str,
    account_ids: Sequence[str] = (),
    status: str = OPEN,
    until: datetime | None = None,
    lock: bool = False,
) -> list[RequestState]:
    """The requests of a household (by the household they name, or any of
    ``account_ids``) that have ``status``, raised by ``until`` if given; oldest first."""
    r = t.rebalance_requests
    mine = r.c.household_id == household_id
    if account_ids:
        mine = mine | r.c.account_id.in_(list(account_ids))
    query = _state_columns().where(mine & (r.c.status == status))
    if until is not None:
        query = query.where(r.c.as_of <= until)
    return _states(connection, query, lock=lock)


def answer_household_requests(
    connection: sa.Connection, *, household_id: str, proposal_id: str, as_of: datetime
) -> list[str]:
    """Close the household's own open requests (those naming no account) raised by
    ``as_of``: its household proposal ``proposal_id`` answers them. Their ids."""
    r = t.rebalance_requests
    where = (
        (r.c.household_id == household_id)
        & r.c.account_id.is_(None)
        & (r.c.status == OPEN)
        & (r.c.as_of <= as_of)
    )
    ids = list(connection.execute(sa.select(r.c.request_id).where(where)).scalars())
    if ids:
        connection.execute(
            sa.update(r)
            .where(r.c.request_id.in_(ids))
            .values(status=ANSWERED, answered_by=proposal_id)
        )
    return sorted(ids)


def fail_requests(connection: sa.Connection, *, failures: Mapping[str, str]) -> list[str]:
    """Mark open requests failed, each with why (``failures``: request id → reason);
    one already answered or failed is left as it is. The ids marked."""
    r = t.rebalance_requests
    marked = []
    for request_id, reason in sorted(failures.items()):
        if not reason:
            raise ValidationError(f"a failed request needs its reason: {request_id}")
        changed = connection.execute(
            sa.update(r)
            .where((r.c.request_id == request_id) & (r.c.status == OPEN))
            .values(status=FAILED, failure=reason)
        ).rowcount
        if changed:
            marked.append(request_id)
    return marked
