"""Firm-wide rebalancing runs: what each was asked (the selection and the options), how
it stands, the households it finished or failed, and what it came to.

A run keeps each household as it finishes, in the same transaction as the household's
proposal, so a run stopped at any point — Ctrl-C, a killed process, a machine gone —
knows exactly which households are done: ``--resume`` plans only the others (a
household that failed is tried again). Marking a household done is idempotent.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa

from poise.domain.errors import NotFoundError, StoreError, ValidationError
from poise.store import tables as t

__all__ = [
    "DONE",
    "FAILED",
    "FINISHED",
    "HOUSEHOLD_STATUSES",
    "INTERRUPTED",
    "RUNNING",
    "RUN_STATUSES",
    "RebalanceRun",
    "RunHousehold",
    "finish_rebalance_run",
    "finished_households",
    "household_done",
    "household_failed",
    "household_statuses",
    "households_finished",
    "rebalance_run",
    "rebalance_runs",
    "resume_rebalance_run",
    "run_households",
    "runs_moving",
    "start_rebalance_run",
]

RUNNING = "running"  # started (or resumed), not yet ended
FINISHED = "finished"  # every household it set out to do was tried
INTERRUPTED = "interrupted"  # stopped before the end (Ctrl-C); --resume goes on with it
RUN_STATUSES = (RUNNING, FINISHED, INTERRUPTED)

DONE = "done"  # the household's proposal is kept
FAILED = "failed"  # the household could not be planned; ``reason`` says why
HOUSEHOLD_STATUSES = (DONE, FAILED)

_ATTEMPTS = 100  # run ids tried when runs started in the same second draw the same suffix


def _json(value: Any) -> Any:
    """What JSON cannot write itself: money exact as a decimal string, dates and times
    ISO 8601, enums their value, sets sorted."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not kept in a run's JSON")


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, default=_json, sort_keys=True)


@dataclass(frozen=True, slots=True)
class RebalanceRun:
    """A run as kept: what it was asked, how it stands, and — from its households —
    how many it has done and failed so far (over every attempt, resumed or not)."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime
    method: str
    selection: dict[str, Any]
    options: dict[str, Any]
    status: str
    summary: dict[str, Any] | None  # what the caller reported when it ended
    done: int
    failed: int
    households: int | None = None  # how many it set out to do (None: not known)


@dataclass(frozen=True, slots=True)
class RunHousehold:
    """One household a run finished: done, with its household proposal, or failed,
    with the reason."""

    household_id: str
    status: str
    household_proposal_id: str | None
    reason: str | None
    finished_at: datetime


def _run_id(started_at: datetime) -> str:
    return f"{started_at.astimezone(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def start_rebalance_run(
    connection: sa.Connection,
    *,
    as_of: datetime,
    selection: Mapping[str, Any],
    options: Mapping[str, Any],
    started_at: datetime,
    method: str | None = None,
    households: int | None = None,
) -> str:
    """Keep a new run (status ``running``) and return its id: the time it started, to
    the second (UTC), and four hex digits — ``20261206-101502-3f2a``. ``selection``
    and ``options`` are kept as JSON (money as decimal strings, dates ISO 8601);
    ``method`` is the options' ``method`` unless given; ``households``, how many it sets
    out to do (so that how far it has got can be told while it runs)."""
    row = {
        "started_at": started_at,
        "as_of": as_of,
        "method": method if method is not None else str(options.get("method", "")),
        "selection": _dumps(selection),
        "options": _dumps(options),
        "status": RUNNING,
        "households": households,
    }
    for _ in range(_ATTEMPTS):
        run_id = _run_id(started_at)
        try:
            with connection.begin_nested():  # a run started the same second drew it
                connection.execute(sa.insert(t.rebalance_runs).values(run_id=run_id, **row))
        except sa.exc.IntegrityError:
            continue
        return run_id
    raise StoreError(f"no free run id for a run started at {started_at.isoformat()}")


def _must_exist(connection: sa.Connection, run_id: str) -> None:
    r = t.rebalance_runs
    if connection.execute(sa.select(r.c.run_id).where(r.c.run_id == run_id)).first() is None:
        raise NotFoundError(f"no rebalance run {run_id!r}")


def household_done(
    connection: sa.Connection,
    *,
    run_id: str,
    household_id: str,
    proposal_id: str | None,
    finished_at: datetime | None = None,
) -> bool:
    """Mark a household of the run done, with the household proposal it was given (None:
    nothing to propose). Whether anything changed: a household already done stays as
    it was — the first proposal kept for it is the run's — and a household that failed
    in an earlier attempt is done now. Call it in the transaction that keeps the
    proposal, so that a household is done exactly when its proposal is kept."""
    changed = households_finished(
        connection,
        run_id=run_id,
        done={household_id: proposal_id},
        failed={},
        finished_at=finished_at,
    )
    return household_id in changed


def household_failed(
    connection: sa.Connection,
    *,
    run_id: str,
    household_id: str,
    reason: str,
    finished_at: datetime | None = None,
) -> bool:
    """Mark a household of the run failed, with the reason (the exception's type and
    message). Whether anything changed: a household done is never marked failed; one
    that failed again keeps the latest reason."""
    changed = households_finished(
        connection,
        run_id=run_id,
        done={},
        failed={household_id: reason},
        finished_at=finished_at,
    )
    return household_id in changed


def household_statuses(
    connection: sa.Connection, *, run_id: str, household_ids: Sequence[str]
) -> dict[str, str]:
    """How each of ``household_ids`` the run has finished stands (done or failed); the
    others are not in it."""
    _must_exist(connection, run_id)
    rh = t.run_households
    found: dict[str, str] = {}
    ids = sorted(set(household_ids))
    for start in range(0, len(ids), 500):
        query = sa.select(rh.c.household_id, rh.c.status).where(
            (rh.c.run_id == run_id) & rh.c.household_id.in_(ids[start : start + 500])
        )
        found.update((household, status) for household, status in connection.execute(query))
    return found


def households_finished(
    connection: sa.Connection,
    *,
    run_id: str,
    done: Mapping[str, str | None],
    failed: Mapping[str, str],
    finished_at: datetime | None = None,
    statuses: Mapping[str, str] | None = None,
) -> frozenset[str]:
    """:func:`household_done` for each household of ``done`` (with its household
    proposal) and :func:`household_failed` for each of ``failed`` (with its reason), in
    a few statements. ``statuses``: what :func:`household_statuses` said of them earlier
    in this transaction, if it was asked. The households whose record changed."""
    if set(done) & set(failed):
        raise ValidationError("a household is done or failed, not both at once")
    if any(not reason for reason in failed.values()):
        raise ValidationError("a household that failed needs its reason")
    earlier = (
        household_statuses(connection, run_id=run_id, household_ids=[*done, *failed])
        if statuses is None
        else statuses
    )
    finished_at = finished_at or datetime.now(UTC)
    rows = [
        {"household_id": h, "status": DONE, "household_proposal_id": p, "reason": None}
        for h, p in done.items()
        if earlier.get(h) != DONE
    ] + [
        {"household_id": h, "status": FAILED, "household_proposal_id": None, "reason": why}
        for h, why in failed.items()
        if earlier.get(h) != DONE
    ]
    rh = t.run_households
    new = [row for row in rows if row["household_id"] not in earlier]
    if new:
        connection.execute(
            sa.insert(rh), [{**row, "run_id": run_id, "finished_at": finished_at} for row in new]
        )
    again = [row for row in rows if row["household_id"] in earlier]
    if again:  # failed in an earlier attempt
        connection.execute(
            sa.update(rh)
            .where((rh.c.run_id == run_id) & (rh.c.household_id == sa.bindparam("household")))
            .values(
                status=sa.bindparam("now"),
                household_proposal_id=sa.bindparam("proposal"),
                reason=sa.bindparam("why"),
                finished_at=finished_at,
            ),
            [
                {
                    "household": row["household_id"],
                    "now": row["status"],
                    "proposal": row["household_proposal_id"],
                    "why": row["reason"],
                }
                for row in again
            ],
        )
    return frozenset(h for h in [*done, *failed] if earlier.get(h) != DONE)


def finished_households(connection: sa.Connection, *, run_id: str) -> frozenset[str]:
    """The households the run has done — not to be planned again when it is resumed
    (the ones that failed are not among them: a resumed run tries them again)."""
    _must_exist(connection, run_id)
    rh = t.run_households
    return frozenset(
        connection.execute(
            sa.select(rh.c.household_id).where((rh.c.run_id == run_id) & (rh.c.status == DONE))
        ).scalars()
    )


def run_households(
    connection: sa.Connection, *, run_id: str, status: str | None = None
) -> list[RunHousehold]:
    """The households the run has finished (``status``: only those done, or failed), in
    the order they finished."""
    _must_exist(connection, run_id)
    if status is not None and status not in HOUSEHOLD_STATUSES:
        raise ValidationError(f"a run's household is {' or '.join(HOUSEHOLD_STATUSES)}")
    rh = t.run_households
    query = sa.select(rh).where(rh.c.run_id == run_id)
    if status is not None:
        query = query.where(rh.c.status == status)
    return [
        RunHousehold(
            row.household_id, row.status, row.household_proposal_id, row.reason, row.finished_at
        )
        for row in connection.execute(query.order_by(rh.c.finished_at, rh.c.household_id))
    ]


def finish_rebalance_run(
    connection: sa.Connection,
    *,
    run_id: str,
    summary: Mapping[str, Any],
    finished_at: datetime,
    status: str = FINISHED,
) -> RebalanceRun:
    """End the run: ``finished`` (every household tried) or ``interrupted`` (stopped
    early; a resume goes on with it), with what it came to — households, accounts,
    proposals, trades, estimated tax, losses harvested, failures, as the caller counts
    them — kept as JSON."""
    if status not in (FINISHED, INTERRUPTED):
        raise ValidationError(f"a run ends {FINISHED} or {INTERRUPTED}, not {status!r}")
    r = t.rebalance_runs
    changed = connection.execute(
        sa.update(r)
        .where(r.c.run_id == run_id)
        .values(status=status, finished_at=finished_at, summary=_dumps(summary))
    ).rowcount
    if not changed:
        raise NotFoundError(f"no rebalance run {run_id!r}")
    return rebalance_run(connection, run_id=run_id)


def resume_rebalance_run(connection: sa.Connection, *, run_id: str) -> RebalanceRun:
    """Take the run up again: ``running``, not finished, its summary to come. Its
    households done stay done (:func:`finished_households`)."""
    r = t.rebalance_runs
    changed = connection.execute(
        sa.update(r)
        .where(r.c.run_id == run_id)
        .values(status=RUNNING, finished_at=None, summary=None)
    ).rowcount
    if not changed:
        raise NotFoundError(f"no rebalance run {run_id!r}")
    return rebalance_run(connection, run_id=run_id)


def runs_moving(connection: sa.Connection, *, since: datetime) -> list[RebalanceRun]:
    """The runs running now, and those that ended at ``since`` or after: what a live
    page follows."""
    r = t.rebalance_runs
    query = _counted().where((r.c.status == RUNNING) | (r.c.finished_at >= since))
    return [_run(row) for row in connection.execute(query.order_by(r.c.started_at))]


def _counted() -> sa.Select[Any]:
    """Every run with how many of its households are done and failed."""
    r, rh = t.rebalance_runs, t.run_households
    done = sa.func.count(rh.c.household_id).filter(rh.c.status == DONE)
    failed = sa.func.count(rh.c.household_id).filter(rh.c.status == FAILED)
    return (
        sa.select(r, done.label("done"), failed.label("failed"))
        .select_from(r.outerjoin(rh, rh.c.run_id == r.c.run_id))
        .group_by(*r.c)
    )


def _run(row: sa.Row[Any]) -> RebalanceRun:
    return RebalanceRun(
        run_id=row.run_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        as_of=row.as_of,
        method=row.method,
        selection=json.loads(row.selection),
        options=json.loads(row.options),
        status=row.status,
        summary=None if row.summary is None else json.loads(row.summary),
        done=row.done,
        failed=row.failed,
        households=row.households,
    )


def rebalance_run(connection: sa.Connection, *, run_id: str) -> RebalanceRun:
    """One run."""
    row = connection.execute(_counted().where(t.rebalance_runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no rebalance run {run_id!r}")
    return _run(row)


def rebalance_runs(
    connection: sa.Connection, *, status: str | None = None, limit: int = 0
) -> list[RebalanceRun]:
    """The runs, the latest started first; only those of ``status``; at most ``limit``
    (0: all)."""
    if status is not None and status not in RUN_STATUSES:
        raise ValidationError(f"a run is {', '.join(RUN_STATUSES)}, not {status!r}")
    r = t.rebalance_runs
    query = _counted().order_by(r.c.started_at.desc(), r.c.run_id.desc())
    if status is not None:
        query = query.where(r.c.status == status)
    if limit:
        query = query.limit(limit)
    return [_run(row) for row in connection.execute(query)]
