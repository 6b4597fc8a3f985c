"""Approvals, the shell: load a proposal's approval state, ask the machine
(:func:`poise.domain.approvals.decide`), write the state after and one audit entry, in
one transaction.

Safe when people act at once: the transaction begins as a writer (on SQLite it holds the
write lock from its first statement) and, on PostgreSQL, locks the proposal's row
before it reads the state — so of two approvers at once the second reads what the first
wrote, and the machine tells them why nothing more happens. An act that changes nothing
(the same approval twice) writes nothing and appends no entry.

Who acts is a user of the store (:func:`acting_user`): an unknown or disabled one is
refused, and an adviser acts only on the households they see.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from poise.audit.ledger import append
from poise.comply.findings import Finding
from poise.domain.approvals import (
    MAY,
    Act,
    Actor,
    Approval,
    Decision,
    Policy,
    Status,
    approvers_needed,
    decide,
)
from poise.domain.errors import AuthError, ConflictError, NotFoundError, PoiseError
from poise.domain.users import Role, User, scope_of
from poise.store import repo
from poise.store.engine import WRITES
from poise.store.repo import FindingToKeep, Unit

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.settings import Settings

__all__ = [
    "SYSTEM_ACTOR",
    "Bulk",
    "Outcome",
    "Standing",
    "act",
    "acting_user",
    "approve_run",
    "check",
    "findings_of",
    "policy_of",
    "standing",
]

SYSTEM_ACTOR = Actor("system", Role.OPERATIONS)  # checks, expiries: no person's act


def policy_of(settings: Settings) -> Policy:
    """The machine's settings from poise's (``POISE_APPROVAL_*``)."""
    return Policy(
        two_approvers_above=settings.approval_two_above,
        expire_after=timedelta(hours=settings.approval_expire_hours),
        expire_on_move=settings.approval_expire_move,
    )


def acting_user(connection: sa.Connection, *, username: str | None) -> User:
    """The user named ``username`` (``--as``, ``POISE_USER``); an :class:`AuthError` when
    none is named, there is no such user, or they are disabled."""
    if not username or not username.strip():
        raise AuthError("say who acts: --as USER, or POISE_USER")
    user = repo.user_by_username(connection, username=username)
    if user is None:
        raise AuthError(f"no user {username.strip().lower()}: poise users add")
    if user.disabled:
        raise AuthError(f"user {user.username} is disabled")
    return user


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an act came to: the proposal's status before and after, whether anything
    changed (and so was written, with the ledger entry ``entry``), and in words."""

    proposal_id: str
    act: Act
    before: Status
    after: Approval
    changed: bool
    said: str
    entry: int | None = None  # the ledger entry's seq

    @property
    def status(self) -> Status:
        return self.after.status

    @property
    def ended(self) -> bool:
        """A person's approval or release found the proposal out of date — too old,
        prices moved, or (a household's) an account's part superseded since — and it
        ended so instead (written, and the act refused)."""
        ended = self.after.status in (Status.EXPIRED, Status.SUPERSEDED)
        return self.act in (Act.APPROVE, Act.RELEASE) and ended and self.changed


def _action(act: Act, decision: Decision) -> str:
    if decision.after.status is Status.EXPIRED and act is not Act.EXPIRE:
        return "proposal.expire"
    if decision.after.status is Status.SUPERSEDED:
        return "proposal.supersede"
    return f"proposal.{act.value}"


def _superseded_part(connection: sa.Connection, unit: Unit) -> str:
    """Why a household's proposal is out of date, "" while each of its accounts'
    proposals is still its own latest."""
    gone = repo.parts_superseded(connection, unit=unit)
    return "; ".join(
        f"its account proposal {part} was superseded by {by or 'a later one'}" for part, by in gone
    )


def _entry_data(unit: Unit, act: Act, before: Approval, after: Approval) -> dict[str, Any]:
    """What the ledger entry's hash is of: the decision's essentials (ids only)."""
    return {
        "proposal_id": unit.proposal_id,
        "household": unit.household,
        "act": act.value,
        "before": before.status.value,
        "after": after.status.value,
        "notional": str(after.notional),
        "approved_by": list(after.approved_by),
        "findings": [
            {"finding_id": f.finding_id, "blocks": f.blocks, "cleared_by": f.cleared_by}
            for f in after.findings
        ],
    }


def _in_scope(user: User | None, unit: Unit) -> None:
    if user is not None and not scope_of(user).sees(unit.household_id):
        raise NotFoundError(f"no proposal {unit.proposal_id!r}")  # as the API: not yours


def _one(
    engine: sa.Engine,
    *,
    proposal_id: str,
    what: Act,
    who: Actor,
    user: User | None,
    policy: Policy,
    at: datetime,
    reason: str = "",
    finding_id: str | None = None,
    findings: Sequence[FindingToKeep] | None = None,
) -> Outcome:
    """One act in one transaction: lock, read, decide, write, append."""
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        unit = repo.lock_unit(connection, proposal_id=proposal_id)
        _in_scope(user, unit)
        if unit.part_of is not None:
            raise ConflictError(
                f"{proposal_id} is part of household proposal {unit.part_of}:"
                " it is approved as one, with its accounts"
            )
        if findings is not None:  # a check: the rules' findings become the proposal's
            state = repo.approval_state(connection, unit=unit)
            if state.status in (Status.PROPOSED, Status.BLOCKED, Status.PENDING):
                repo.keep_findings(connection, unit=unit, findings=findings)
        before = repo.approval_state(connection, unit=unit)
        moved = (
            repo.biggest_move(connection, unit=unit, at=at)
            if what in (Act.APPROVE, Act.RELEASE)
            else None
        )
        gone = _superseded_part(connection, unit) if what in (Act.APPROVE, Act.RELEASE) else ""
        decision = (
            decide(before, Act.SUPERSEDE, who=SYSTEM_ACTOR, at=at, policy=policy, reason=gone)
            if gone and before.status in (Status.PENDING, Status.APPROVED) and who.role in MAY[what]
            else decide(
                before,
                what,
                who=who,
                at=at,
                policy=policy,
                reason=reason,
                finding_id=finding_id,
                moved=moved,
            )
        )
        entry = None
        if decision.changed or findings is not None:
            repo.write_state(connection, unit=unit, before=before, after=decision.after, at=at)
            entry = append(
                connection,
                actor=who.user_id,
                action=_action(what, decision),
                subject=proposal_id,
                data=_entry_data(unit, what, before, decision.after),
                reason=reason or decision.after.reason,
                at=at,
            ).seq
    return Outcome(
        proposal_id, what, before.status, decision.after, decision.changed, decision.said, entry
    )


def act(
    engine: sa.Engine,
    *,
    proposal_id: str,
    what: Act,
    user: User,
    policy: Policy,
    at: datetime | None = None,
    reason: str = "",
    finding_id: str | None = None,
) -> Outcome:
    """``user`` does ``what`` to the proposal (an account's of its own, or a household's):
    approve, reject, acknowledge or override a finding, release. Refused with the
    machine's typed error (forbidden, conflict, a reason missing); an approval or a
    release of a proposal too old or moved too far expires it instead, and one of a
    household whose account was rebalanced alone since supersedes it (see
    :attr:`Outcome.ended`)."""
    return _one(
        engine,
        proposal_id=proposal_id,
        what=what,
        who=Actor(user.user_id, user.role),
        user=user,
        policy=policy,
        at=at or datetime.now(UTC),
        reason=reason,
        finding_id=finding_id,
    )


def findings_of(found: Sequence[Finding]) -> list[FindingToKeep]:
    """The rules' findings as a proposal keeps them, numbered F1, F2, … in their order:
    the ids people name to acknowledge or override one."""
    return [
        FindingToKeep(f"F{n}", f.blocks, f.rule_id, f.kind, f.explanation, f.as_json())
        for n, f in enumerate(found, start=1)
    ]


def check(
    engine: sa.Engine,
    *,
    proposal_id: str,
    findings: Sequence[FindingToKeep],
    policy: Policy,
    at: datetime | None = None,
) -> Outcome:
    """The rules have run on the proposal and found ``findings`` (none: it passed): keep
    them as its findings and move it to ``blocked`` (a block stands) or ``pending``.
    The compliance shell calls it once it has a proposal's findings
    (:func:`findings_of` numbers the rules' own)."""
    return _one(
        engine,
        proposal_id=proposal_id,
        what=Act.CHECK,
        who=SYSTEM_ACTOR,
        user=None,
        policy=policy,
        at=at or datetime.now(UTC),
        findings=findings,
    )


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a proposal stands, for people: its state, the approvers it needs, its
    findings' words, and users' names (by id) — or, for an account's proposal that is
    part of a household's, that one's id (``part_of``) and nothing else."""

    proposal_id: str
    part_of: str | None
    state: Approval | None
    needed: int
    findings: tuple[FindingToKeep, ...]
    names: dict[str, str]


def standing(connection: sa.Connection, *, proposal_id: str, policy: Policy) -> Standing:
    """Where ``proposal_id`` stands in approval (read, not locked)."""
    unit = repo.lock_unit(connection, proposal_id=proposal_id, lock=False)
    if unit.part_of is not None:
        return Standing(proposal_id, unit.part_of, None, 0, (), {})
    state = repo.approval_state(connection, unit=unit)
    people = {state.prepared_by, *state.approved_by}
    people |= {f.cleared_by for f in state.findings if f.cleared_by}
    names = {u.user_id: u.username for u in repo.users(connection) if u.user_id in people}
    needed = approvers_needed(state, policy)
    found = tuple(repo.findings_kept(connection, proposal_id=proposal_id))
    return Standing(proposal_id, None, state, needed, found, names)


@dataclass(frozen=True, slots=True)
class Bulk:
    """What approving a run's proposals came to: each approved (or approved in part,
    another approver still needed), each the user had approved already, and each
    refused with why."""

    run_id: str
    approved: tuple[Outcome, ...]
    already: tuple[Outcome, ...]
    refused: tuple[tuple[str, str], ...]  # proposal id, why


def approve_run(
    engine: sa.Engine,
    *,
    run_id: str,
    user: User,
    policy: Policy,
    max_notional: Decimal | None = None,
    households: Collection[str] | None = None,
    at: datetime | None = None,
) -> Bulk:
    """Approve the household proposals of run ``run_id`` that ``user`` sees (of
    ``households`` only, when given; up to ``max_notional`` each, when given), each in
    its own transaction."""
    with engine.connect() as connection:
        repo.rebalance_run(connection, run_id=run_id)  # a NotFoundError for a run never made
        units = repo.run_units(connection, run_id=run_id, households=households)
        scope = scope_of(user)
        units = [u for u in units if scope.sees(u.household_id)]
        notional = {u.proposal_id: repo.approval_state(connection, unit=u).notional for u in units}
    approved: list[Outcome] = []
    already: list[Outcome] = []
    refused: list[tuple[str, str]] = []
    for unit in units:
        if max_notional is not None and notional[unit.proposal_id] > max_notional:
            refused.append(
                (
                    unit.proposal_id,
                    f"notional {notional[unit.proposal_id]:,.2f} above {max_notional:,.2f}",
                )
            )
            continue
        try:
            outcome = act(
                engine,
                proposal_id=unit.proposal_id,
                what=Act.APPROVE,
                user=user,
                policy=policy,
                at=at,
            )
        except PoiseError as exc:
            refused.append((unit.proposal_id, str(exc)))
            continue
        if outcome.ended:
            refused.append((unit.proposal_id, outcome.said))
        else:
            (approved if outcome.changed else already).append(outcome)
    return Bulk(run_id, tuple(approved), tuple(already), tuple(refused))
