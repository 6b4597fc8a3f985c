"""Who may move a proposal on, and where it goes: the approval machine, pure.

A proposal is made ``proposed``; checked against the firm's rules it becomes
``blocked`` (a block finding stands) or ``pending`` (approval). From ``pending`` it is
``approved`` — by one approver, or two above the notional threshold — and then
``released`` to trading, and in the end ``executed``. On the way it may be
``rejected``, ``expired`` (too old, or prices moved too far since it was made) or
``superseded`` (a newer proposal for the same account or household).

- **Four eyes**: whoever prepared a proposal cannot approve it, and one approver counts
  once however often they approve (approving again is no change, not an error).
- **Findings**: a warning is acknowledged, with a reason, before anyone approves; a
  block stands until the compliance role overrides it, with a reason.
- **Roles**: what each may do is :data:`MAY`; the machine never asks the store.

:func:`decide` is the one transition: given a proposal's :class:`Approval` state, an
:class:`Act` and who acts, it answers the next state — or refuses, with a
:class:`~poise.domain.errors.ConflictError` (the state does not allow it) or a
:class:`~poise.domain.errors.ForbiddenError` (the person may not), saying why.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from poise.domain.errors import ConflictError, ForbiddenError, ValidationError
from poise.domain.users import Role

__all__ = [
    "MAY",
    "Act",
    "Actor",
    "Approval",
    "Decision",
    "FindingState",
    "Policy",
    "Status",
    "approvers_needed",
    "decide",
    "is_final",
]


class Status(enum.StrEnum):
    PROPOSED = "proposed"  # made, not yet checked against the rules
    BLOCKED = "blocked"  # a block finding stands
    PENDING = "pending"  # waiting for approval
    APPROVED = "approved"
    RELEASED = "released"  # to trading
    EXECUTED = "executed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


FINAL = frozenset({Status.EXECUTED, Status.REJECTED, Status.EXPIRED, Status.SUPERSEDED})


def is_final(status: Status) -> bool:
    """Whether nothing more can happen to a proposal in ``status``."""
    return status in FINAL


class Act(enum.StrEnum):
    CHECK = "check"  # the rules have run: blocked, or pending
    ACKNOWLEDGE = "acknowledge"  # a warning, with a reason
    OVERRIDE = "override"  # a block, with a reason: compliance only
    APPROVE = "approve"
    REJECT = "reject"
    RELEASE = "release"
    EXECUTE = "execute"
    EXPIRE = "expire"
    SUPERSEDE = "supersede"


ADVISER, PM, OPS, COMPLIANCE = (
    Role.ADVISER,
    Role.PORTFOLIO_MANAGER,
    Role.OPERATIONS,
    Role.COMPLIANCE,
)
MAY: Mapping[Act, frozenset[Role]] = {
    Act.ACKNOWLEDGE: frozenset({ADVISER, PM, OPS, COMPLIANCE}),
    Act.OVERRIDE: frozenset({COMPLIANCE}),
    Act.APPROVE: frozenset({ADVISER, PM}),
    Act.REJECT: frozenset({ADVISER, PM, COMPLIANCE}),
    Act.RELEASE: frozenset({PM, OPS}),
}
"""The roles that may do each act a person does (checking, executing, expiring and
superseding are the system's). An adviser approves only proposals of households they
see — the scope is the caller's to check, as for every object."""

NEEDS_REASON = frozenset({Act.ACKNOWLEDGE, Act.OVERRIDE, Act.REJECT})


@dataclass(frozen=True, slots=True)
class Policy:
    """The firm's settings of the machine."""

    two_approvers_above: Decimal = Decimal(1_000_000)  # notional traded, dollars
    expire_after: timedelta = timedelta(days=3)
    expire_on_move: Decimal = Decimal("0.05")  # a price moved this much (a fraction)


@dataclass(frozen=True, slots=True)
class FindingState:
    """A finding of a proposal, as far as approval goes: its id, whether it blocks, and
    who cleared it (acknowledged a warning, overrode a block), when, and why."""

    finding_id: str
    blocks: bool
    cleared_by: str | None = None
    cleared_at: datetime | None = None
    reason: str = ""

    @property
    def stands(self) -> bool:
        return self.cleared_by is None


@dataclass(frozen=True, slots=True)
class Approval:
    """Where a proposal stands in the machine."""

    status: Status
    prepared_by: str  # the user who made it (a run's starter, or "system")
    notional: Decimal  # dollars traded, buys and sells
    made_at: datetime
    findings: tuple[FindingState, ...] = ()
    approved_by: tuple[str, ...] = ()  # each approver once, in order
    reason: str = ""  # why it was rejected, expired or superseded

    def finding(self, finding_id: str) -> FindingState:
        for f in self.findings:
            if f.finding_id == finding_id:
                return f
        raise ValidationError(f"no finding {finding_id!r} on this proposal")


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`decide` answers: the state after, and whether anything changed."""

    after: Approval
    changed: bool
    said: str = ""  # in words, for the ledger and the caller


def _a(word: str) -> str:
    """``word`` with its article: a pending, an approved."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def approvers_needed(state: Approval, policy: Policy) -> int:
    """How many different approvers the proposal needs: two above the threshold."""
    return 2 if state.notional > policy.two_approvers_above else 1


def _span(span: timedelta) -> str:
    """``3 days`` or ``36 hours``: how long a proposal holds, in words."""
    hours = span / timedelta(hours=1)
    if hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours:g} hours"


def _stale(state: Approval, policy: Policy, *, at: datetime, moved: Decimal | None) -> str:
    """Why the proposal has expired, or "" while it holds."""
    if at - state.made_at > policy.expire_after:
        return f"made {state.made_at:%Y-%m-%d %H:%M} UTC, older than {_span(policy.expire_after)}"
    if moved is not None and abs(moved) > policy.expire_on_move:
        return (
            f"a price moved {abs(moved):.1%} since it was made, more than"
            f" {policy.expire_on_move:.0%}"
        )
    return ""


def decide(
    state: Approval,
    act: Act,
    *,
    who: Actor,
    at: datetime,
    policy: Policy,
    reason: str = "",
    finding_id: str | None = None,
    moved: Decimal | None = None,
) -> Decision:
    """The state after ``who`` does ``act`` at ``at`` (``moved``: the largest price
    move since the proposal was made, a fraction, where the caller knows it)."""
    if act in MAY and who.role not in MAY[act]:
        named = ", ".join(sorted(r.value for r in MAY[act]))
        raise ForbiddenError(f"only these roles may {act.value} a proposal: {named}")
    if act in NEEDS_REASON and not reason.strip():
        raise ValidationError(f"to {act.value} needs a reason")
    if is_final(state.status):
        raise ConflictError(f"the proposal is {state.status.value}: nothing more can happen to it")
    if act in (Act.APPROVE, Act.RELEASE) and (why := _stale(state, policy, at=at, moved=moved)):
        expired = replace(state, status=Status.EXPIRED, reason=why)
        return Decision(expired, True, f"expired: {why}")
    if act is Act.CHECK:
        return _check(state)
    if act in (Act.ACKNOWLEDGE, Act.OVERRIDE):
        return _clear(state, act, who=who, at=at, reason=reason, finding_id=finding_id)
    if act is Act.APPROVE:
        return _approve(state, who=who, policy=policy)
    return _move(state, act, reason=reason)


# The plain moves: from which states (None: any not final), to which.
MOVES: Mapping[Act, tuple[frozenset[Status] | None, Status]] = {
    Act.REJECT: (None, Status.REJECTED),
    Act.RELEASE: (frozenset({Status.APPROVED}), Status.RELEASED),
    Act.EXECUTE: (frozenset({Status.RELEASED}), Status.EXECUTED),
    Act.EXPIRE: (None, Status.EXPIRED),
    Act.SUPERSEDE: (None, Status.SUPERSEDED),
}


def _move(state: Approval, act: Act, *, reason: str) -> Decision:
    start, end = MOVES[act]
    if start is not None and state.status not in start:
        allowed = " or ".join(sorted(s.value for s in start))
        raise ConflictError(
            f"only {_a(allowed)} proposal is {end.value}, not {_a(state.status.value)} one"
        )
    said = f"{end.value}: {reason}" if reason else end.value
    return Decision(replace(state, status=end, reason=reason), True, said)


def _check(state: Approval) -> Decision:
    if state.status not in (Status.PROPOSED, Status.BLOCKED, Status.PENDING):
        raise ConflictError(f"{_a(state.status.value)} proposal is not checked again")
    blocked = any(f.blocks and f.stands for f in state.findings)
    after = Status.BLOCKED if blocked else Status.PENDING
    return Decision(replace(state, status=after), after is not state.status, after.value)


CLEARED = {Act.ACKNOWLEDGE: "acknowledged", Act.OVERRIDE: "overridden"}  # said of a finding


def _clear(
    state: Approval, act: Act, *, who: Actor, at: datetime, reason: str, finding_id: str | None
) -> Decision:
    if finding_id is None:
        raise ValidationError(f"name the finding to {act.value}")
    finding = state.finding(finding_id)
    if act is Act.ACKNOWLEDGE and finding.blocks:
        raise ConflictError(f"finding {finding_id} blocks: compliance overrides it, with a reason")
    if act is Act.OVERRIDE and not finding.blocks:
        raise ConflictError(
            f"finding {finding_id} is a warning: it is acknowledged, not overridden"
        )
    if state.status not in (Status.BLOCKED, Status.PENDING):
        raise ConflictError(f"{_a(state.status.value)} proposal's findings are not cleared")
    if not finding.stands:
        return Decision(state, False, f"{finding_id} was cleared already by {finding.cleared_by}")
    cleared = replace(finding, cleared_by=who.user_id, cleared_at=at, reason=reason)
    findings = tuple(cleared if f.finding_id == finding_id else f for f in state.findings)
    after = replace(state, findings=findings)
    if after.status is Status.BLOCKED and not any(f.blocks and f.stands for f in findings):
        after = replace(after, status=Status.PENDING)
    return Decision(after, True, f"{CLEARED[act]} {finding_id}: {reason}")


def _approve(state: Approval, *, who: Actor, policy: Policy) -> Decision:
    if state.status is Status.APPROVED and who.user_id in state.approved_by:
        return Decision(state, False, "approved already")
    if state.status is not Status.PENDING:
        raise ConflictError(
            f"only a pending proposal is approved, not {_a(state.status.value)} one"
        )
    if who.user_id == state.prepared_by:
        raise ForbiddenError("whoever prepared a proposal cannot approve it: four eyes")
    if who.user_id in state.approved_by:
        return Decision(state, False, "approved already by you: a second approver is needed")
    waiting = [f.finding_id for f in state.findings if f.stands]
    if waiting:
        raise ConflictError(f"acknowledge the warnings first: {', '.join(waiting)}")
    approvers = (*state.approved_by, who.user_id)
    needed = approvers_needed(state, policy)
    status = Status.APPROVED if len(approvers) >= needed else Status.PENDING
    said = (
        "approved"
        if status is Status.APPROVED
        else f"approved, {needed - len(approvers)} more needed"
    )
    return Decision(replace(state, approved_by=approvers, status=status), True, said)
