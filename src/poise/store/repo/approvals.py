"""A proposal's approval state in the store: read under a lock, written back whole.

What is approved is an account's proposal of its own, or a household's proposal as one
(its accounts' proposals move with it and are not approved apart). Either is named by
its id, found as ``poise proposals show`` finds one: an account's proposal first, then
a household's. The state is the proposal row's status, who prepared it and why it
ended, its findings (``proposal_findings``) and its approvers (``proposal_approvals``);
the notional is not kept but summed from the trades, so it cannot drift from them.

:func:`lock_unit` reads the proposal's row ``FOR UPDATE`` on PostgreSQL, so two
approvers at once take turns: the second reads what the first wrote. On SQLite the
transaction must begin with ``writes=True`` (:data:`poise.store.engine.WRITES`): it then
holds the database's write lock from its first statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.approvals import FINAL, Approval, FindingState, Status
from poise.domain.errors import NotFoundError
from poise.store import tables as t
from poise.store.repo.prices import latest_prices

__all__ = [
    "SYSTEM",
    "FindingToKeep",
    "Unit",
    "approval_state",
    "biggest_move",
    "findings_kept",
    "keep_checked",
    "keep_findings",
    "lock_unit",
    "parts_superseded",
    "run_units",
    "write_state",
]

SYSTEM = "system"  # who prepared a proposal no user made (and every one before 0014)


@dataclass(frozen=True, slots=True)
class Unit:
    """What is approved: an account's proposal (``household`` False) or a household's;
    ``household_id`` the household it belongs to (None: an account with none found)."""

    proposal_id: str
    household: bool
    household_id: str | None
    part_of: str | None  # an account's proposal: the household's proposal it is part of

    @property
    def table(self) -> sa.Table:
        return t.household_proposals if self.household else t.proposals


@dataclass(frozen=True, slots=True)
class FindingToKeep:
    """A finding as approval keeps it: its id on the proposal, whether it blocks, the
    rule that found it and its words."""

    finding_id: str
    blocks: bool
    rule_id: str
    kind: str
    explanation: str
    detail: Mapping[str, object] | None = None  # the finding whole, as JSON values


def lock_unit(connection: sa.Connection, *, proposal_id: str, lock: bool = True) -> Unit:
    """The proposal named ``proposal_id``, its row locked until the transaction ends
    (PostgreSQL; ``lock`` False: read only)."""
    p, a, h = t.proposals, t.accounts, t.household_proposals
    query = (
        sa.select(p.c.proposal_id, p.c.household_proposal_id, a.c.household_id)
        .select_from(p.outerjoin(a, a.c.account_id == p.c.account_id))
        .where(p.c.proposal_id == proposal_id)
    )
    if lock:
        query = query.with_for_update(of=p)
    row = connection.execute(query).first()
    if row is not None:
        return Unit(proposal_id, False, row.household_id, row.household_proposal_id)
    mine = sa.select(h.c.proposal_id, h.c.household_id).where(h.c.proposal_id == proposal_id)
    if lock:
        mine = mine.with_for_update()
    found = connection.execute(mine).first()
    if found is None:
        raise NotFoundError(f"no proposal {proposal_id!r}")
    return Unit(proposal_id, True, found.household_id, None)


def _trades(unit: Unit) -> sa.Select[Any]:
    """The unit's trades: its own, or its accounts' proposals'."""
    pt, p = t.proposal_trades, t.proposals
    query = sa.select(pt.c.security_id, pt.c.quantity, pt.c.price)
    if unit.household:
        parts = sa.select(p.c.proposal_id).where(p.c.household_proposal_id == unit.proposal_id)
        return query.where(pt.c.proposal_id.in_(parts))
    return query.where(pt.c.proposal_id == unit.proposal_id)


def approval_state(connection: sa.Connection, *, unit: Unit) -> Approval:
    """Where ``unit`` stands in the approval machine."""
    table = unit.table
    row = connection.execute(
        sa.select(
            table.c.status, table.c.prepared_by, table.c.created_at, table.c.status_reason
        ).where(table.c.proposal_id == unit.proposal_id)
    ).one()
    notional = sum(
        (abs(q * price) for _, q, price in connection.execute(_trades(unit))), Decimal(0)
    )
    f, ap = t.proposal_findings, t.proposal_approvals
    findings = tuple(
        FindingState(r.finding_id, r.blocks, r.cleared_by, r.cleared_at, r.reason or "")
        for r in connection.execute(
            sa.select(f).where(f.c.proposal_id == unit.proposal_id).order_by(f.c.finding_id)
        )
    )
    approvers = tuple(
        connection.execute(
            sa.select(ap.c.user_id)
            .where(ap.c.proposal_id == unit.proposal_id)
            .order_by(ap.c.number)
        ).scalars()
    )
    return Approval(
        status=Status(row.status),
        prepared_by=row.prepared_by or SYSTEM,
        notional=notional,
        made_at=row.created_at,
        findings=findings,
        approved_by=approvers,
        reason=row.status_reason or "",
    )


def biggest_move(
    connection: sa.Connection, *, unit: Unit, at: datetime | None = None
) -> Decimal | None:
    """The largest price move, a signed fraction, from a trade's price to its security's
    latest price at ``at``; None when no trade's security has a price."""
    trades = list(connection.execute(_trades(unit)))
    latest = latest_prices(connection, as_of=at, security_ids={s for s, _, _ in trades})
    moves = [latest[s][0] / price - 1 for s, _, price in trades if s in latest and price > 0]
    return max(moves, key=abs) if moves else None


def parts_superseded(connection: sa.Connection, *, unit: Unit) -> list[tuple[str, str | None]]:
    """A household's proposal's accounts' proposals that a later one of their own has
    superseded (each with the one that did): the household's trades are no longer all
    live."""
    if not unit.household:
        return []
    p = t.proposals
    query = (
        sa.select(p.c.proposal_id, p.c.superseded_by)
        .where(
            (p.c.household_proposal_id == unit.proposal_id)
            & (p.c.status == Status.SUPERSEDED.value)
        )
        .order_by(p.c.proposal_id)
    )
    return [(row.proposal_id, row.superseded_by) for row in connection.execute(query)]


def findings_kept(connection: sa.Connection, *, proposal_id: str) -> list[FindingToKeep]:
    """A proposal's findings as the rules found them (their words), in order."""
    f = t.proposal_findings
    query = sa.select(f).where(f.c.proposal_id == proposal_id).order_by(f.c.finding_id)
    return [
        FindingToKeep(
            r.finding_id,
            r.blocks,
            r.rule_id,
            r.kind,
            r.explanation,
            None if r.detail is None else json.loads(r.detail),
        )
        for r in connection.execute(query)
    ]


def keep_findings(
    connection: sa.Connection, *, unit: Unit, findings: Sequence[FindingToKeep]
) -> None:
    """Keep ``findings`` as the unit's, in place of any it had (a check again)."""
    f = t.proposal_findings
    connection.execute(sa.delete(f).where(f.c.proposal_id == unit.proposal_id))
    if findings:
        connection.execute(
            sa.insert(f),
            [
                {
                    "proposal_id": unit.proposal_id,
                    "finding_id": k.finding_id,
                    "blocks": k.blocks,
                    "rule_id": k.rule_id,
                    "kind": k.kind,
                    "explanation": k.explanation,
                    "detail": None if k.detail is None else json.dumps(k.detail, sort_keys=True),
                }
                for k in findings
            ],
        )


def keep_checked(
    connection: sa.Connection,
    *,
    checked: Sequence[tuple[Unit, Status, Sequence[FindingToKeep]]],
) -> None:
    """Keep the rules' findings of proposals just made, and the status the check gave
    each (``blocked`` or ``pending``; a household's accounts' proposals with it) — for a
    run's thousands in a few statements."""
    if not checked:
        return
    f = t.proposal_findings
    rows = [
        {
            "proposal_id": unit.proposal_id,
            "finding_id": k.finding_id,
            "blocks": k.blocks,
            "rule_id": k.rule_id,
            "kind": k.kind,
            "explanation": k.explanation,
            "detail": None if k.detail is None else json.dumps(k.detail, sort_keys=True),
        }
        for unit, _, findings in checked
        for k in findings
    ]
    if rows:
        connection.execute(sa.insert(f), rows)
    for status in {s for _, s, _ in checked}:
        for household in (False, True):
            ids = [u.proposal_id for u, s, _ in checked if s is status and u.household is household]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                table = t.household_proposals if household else t.proposals
                connection.execute(
                    sa.update(table)
                    .where(
                        table.c.proposal_id.in_(chunk) & (table.c.status == Status.PROPOSED.value)
                    )
                    .values(status=status.value)
                )
                if household:
                    p = t.proposals
                    connection.execute(
                        sa.update(p)
                        .where(
                            p.c.household_proposal_id.in_(chunk)
                            & (p.c.status == Status.PROPOSED.value)
                        )
                        .values(status=status.value)
                    )


def write_state(
    connection: sa.Connection, *, unit: Unit, before: Approval, after: Approval, at: datetime
) -> None:
    """Write what changed from ``before`` to ``after``: the status (and, for a
    household's proposal, its accounts' proposals not yet final), findings cleared,
    approvers added."""
    if (after.status, after.reason) != (before.status, before.reason):
        table = unit.table
        connection.execute(
            sa.update(table)
            .where(table.c.proposal_id == unit.proposal_id)
            .values(status=after.status.value, status_reason=after.reason or None)
        )
        if unit.household:
            p = t.proposals
            connection.execute(
                sa.update(p)
                .where(
                    (p.c.household_proposal_id == unit.proposal_id)
                    & p.c.status.not_in([s.value for s in FINAL])
                )
                .values(status=after.status.value, status_reason=after.reason or None)
            )
    f = t.proposal_findings
    for old, new in zip(before.findings, after.findings, strict=True):
        if new != old:
            connection.execute(
                sa.update(f)
                .where((f.c.proposal_id == unit.proposal_id) & (f.c.finding_id == new.finding_id))
                .values(cleared_by=new.cleared_by, cleared_at=new.cleared_at, reason=new.reason)
            )
    added = after.approved_by[len(before.approved_by) :]
    if added:
        connection.execute(
            sa.insert(t.proposal_approvals),
            [
                {"proposal_id": unit.proposal_id, "number": n, "user_id": u, "at": at}
                for n, u in enumerate(added, start=len(before.approved_by) + 1)
            ],
        )


def run_units(
    connection: sa.Connection, *, run_id: str, households: Collection[str] | None = None
) -> list[Unit]:
    """The household proposals a run made (of ``households`` only, when given), in
    household order."""
    h = t.household_proposals
    query = sa.select(h.c.proposal_id, h.c.household_id).where(h.c.run_id == run_id)
    if households is not None:
        query = query.where(h.c.household_id.in_(sorted(households)))
    return [
        Unit(r.proposal_id, True, r.household_id, None)
        for r in connection.execute(query.order_by(h.c.household_id, h.c.proposal_id))
    ]
