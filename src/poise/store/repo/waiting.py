"""The proposals waiting on people, read many at once: what the approval inbox and the
compliance queue list, within a reader's scope.

What is approved is a household's proposal, or an account's proposal of its own (one
that is part of a household's is approved with it, never apart): :func:`units_in` finds
those in some statuses, :func:`approval_states` reads where each stands in the machine
— as :func:`~poise.store.repo.approvals.approval_state` reads one, in a few statements
for a page of them — and :func:`findings_kept_of` their findings' words. Nothing here
is locked: an act reads its proposal again, under its lock, before the machine decides.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa

from poise.domain.approvals import Approval, FindingState, Status
from poise.domain.users import Scope
from poise.store import tables as t
from poise.store.repo.approvals import SYSTEM, FindingToKeep, Unit

__all__ = ["About", "about", "approval_states", "findings_kept_of", "units_in"]

CHUNK = 500  # ids in one IN list
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class About:
    """What a list says of a proposal besides its state: its account (an account's
    proposal), its method, when its prices are of, the run that made it (a
    household's), and its accounts' proposals (a household's)."""

    unit: Unit
    account_id: str | None
    method: str
    as_of: datetime
    made_at: datetime
    run_id: str | None
    parts: tuple[str, ...] = ()


def _chunks(values: Sequence[_T]) -> Iterator[list[_T]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def _within(column: sa.ColumnElement[Any], scope: Scope) -> sa.ColumnElement[bool]:
    if scope.firm:
        return sa.true()
    return column.in_(sorted(scope.households)) if scope.households else sa.false()


def _parts(connection: sa.Connection, household_ids: Sequence[str]) -> dict[str, list[str]]:
    p = t.proposals
    parts: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(household_ids):
        query = (
            sa.select(p.c.household_proposal_id, p.c.proposal_id)
            .where(p.c.household_proposal_id.in_(chunk))
            .order_by(p.c.proposal_id)
        )
        for row in connection.execute(query):
            parts[row.household_proposal_id].append(row.proposal_id)
    return parts


def units_in(
    connection: sa.Connection, *, statuses: Collection[Status], scope: Scope
) -> list[About]:
    """The proposals approved on their own — each household's, and each account's that
    is part of none — in ``statuses``, of the households in ``scope``; the longest
    waiting first."""
    wanted = sorted(s.value for s in statuses)
    p, a, h = t.proposals, t.accounts, t.household_proposals
    accounts = (
        sa.select(
            p.c.proposal_id, p.c.account_id, a.c.household_id, p.c.method, p.c.as_of,
            p.c.created_at,
        )
        .select_from(p.outerjoin(a, a.c.account_id == p.c.account_id))
        .where(p.c.status.in_(wanted) & p.c.household_proposal_id.is_(None))
        .where(_within(a.c.household_id, scope))
    )  # fmt: skip
    households = sa.select(
        h.c.proposal_id, h.c.household_id, h.c.method, h.c.as_of, h.c.created_at, h.c.run_id
    ).where(h.c.status.in_(wanted) & _within(h.c.household_id, scope))
    found = [
        About(Unit(r.proposal_id, False, r.household_id, None), r.account_id, r.method,
              r.as_of, r.created_at, None)
        for r in connection.execute(accounts)
    ]  # fmt: skip
    rows = list(connection.execute(households))
    parts = _parts(connection, [r.proposal_id for r in rows])
    found += [
        About(Unit(r.proposal_id, True, r.household_id, None), None, r.method, r.as_of,
              r.created_at, r.run_id, tuple(parts.get(r.proposal_id, ())))
        for r in rows
    ]  # fmt: skip
    return sorted(found, key=lambda x: (x.made_at, x.unit.proposal_id))


def about(connection: sa.Connection, *, unit: Unit) -> About:
    """What a list says of one proposal (see :class:`About`)."""
    if unit.household:
        h = t.household_proposals
        row = connection.execute(
            sa.select(h.c.method, h.c.as_of, h.c.created_at, h.c.run_id).where(
                h.c.proposal_id == unit.proposal_id
            )
        ).one()
        parts = _parts(connection, [unit.proposal_id]).get(unit.proposal_id, [])
        return About(unit, None, row.method, row.as_of, row.created_at, row.run_id, tuple(parts))
    p = t.proposals
    row = connection.execute(
        sa.select(p.c.account_id, p.c.method, p.c.as_of, p.c.created_at).where(
            p.c.proposal_id == unit.proposal_id
        )
    ).one()
    return About(unit, row.account_id, row.method, row.as_of, row.created_at, None)


def approval_states(connection: sa.Connection, *, units: Sequence[Unit]) -> dict[str, Approval]:
    """Where each of ``units`` stands in the approval machine, by proposal id — each as
    :func:`~poise.store.repo.approvals.approval_state` reads it alone."""
    own = [u.proposal_id for u in units if not u.household]
    whole = [u.proposal_id for u in units if u.household]
    rows: dict[str, Any] = {}
    notional: dict[str, Decimal] = defaultdict(Decimal)
    p, h, pt = t.proposals, t.household_proposals, t.proposal_trades
    for table, ids in ((p, own), (h, whole)):
        for chunk in _chunks(ids):
            query = sa.select(
                table.c.proposal_id, table.c.status, table.c.prepared_by, table.c.created_at,
                table.c.status_reason,
            ).where(table.c.proposal_id.in_(chunk))  # fmt: skip
            rows.update({r.proposal_id: r for r in connection.execute(query)})
    for chunk in _chunks(own):
        query = sa.select(pt.c.proposal_id, pt.c.quantity, pt.c.price).where(
            pt.c.proposal_id.in_(chunk)
        )
        for r in connection.execute(query):
            notional[r.proposal_id] += abs(r.quantity * r.price)
    for chunk in _chunks(whole):
        query = (
            sa.select(p.c.household_proposal_id, pt.c.quantity, pt.c.price)
            .select_from(pt.join(p, p.c.proposal_id == pt.c.proposal_id))
            .where(p.c.household_proposal_id.in_(chunk))
        )
        for r in connection.execute(query):
            notional[r.household_proposal_id] += abs(r.quantity * r.price)
    findings: dict[str, list[FindingState]] = defaultdict(list)
    approvers: dict[str, list[str]] = defaultdict(list)
    f, ap = t.proposal_findings, t.proposal_approvals
    for chunk in _chunks([*own, *whole]):
        query = sa.select(f).where(f.c.proposal_id.in_(chunk)).order_by(f.c.finding_id)
        for r in connection.execute(query):
            findings[r.proposal_id].append(
                FindingState(r.finding_id, r.blocks, r.cleared_by, r.cleared_at, r.reason or "")
            )
        query = (
            sa.select(ap.c.proposal_id, ap.c.user_id)
            .where(ap.c.proposal_id.in_(chunk))
            .order_by(ap.c.number)
        )
        for r in connection.execute(query):
            approvers[r.proposal_id].append(r.user_id)
    return {
        proposal_id: Approval(
            status=Status(row.status),
            prepared_by=row.prepared_by or SYSTEM,
            notional=notional.get(proposal_id, Decimal(0)),
            made_at=row.created_at,
            findings=tuple(findings.get(proposal_id, ())),
            approved_by=tuple(approvers.get(proposal_id, ())),
            reason=row.status_reason or "",
        )
        for proposal_id, row in rows.items()
    }


def findings_kept_of(
    connection: sa.Connection, *, proposal_ids: Sequence[str]
) -> dict[str, list[FindingToKeep]]:
    """Each proposal's findings as the rules found them (their words), in order — as
    :func:`~poise.store.repo.approvals.findings_kept` reads one's."""
    f = t.proposal_findings
    found: dict[str, list[FindingToKeep]] = defaultdict(list)
    for chunk in _chunks(proposal_ids):
        query = (
            sa.select(f).where(f.c.proposal_id.in_(chunk)).order_by(f.c.proposal_id, f.c.finding_id)
        )
        for r in connection.execute(query):
            found[r.proposal_id].append(
                FindingToKeep(
                    r.finding_id, r.blocks, r.rule_id, r.kind, r.explanation,
                    None if r.detail is None else json.loads(r.detail),
                )
            )  # fmt: skip
    return dict(found)
