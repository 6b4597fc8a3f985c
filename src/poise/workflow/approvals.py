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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poise.audit.ledger import Record, append, append_many
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
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo import FindingToKeep, Unit, waiting
from poise.store.repo.approvals import SYSTEM
from poise.store.rows import among

if TYPE_CHECKING:
    from poise.comply.rulesets import RuleBook
    from poise.settings import Settings

__all__ = [
    "PERSON_ACTS",
    "QUEUE_ROLES",
    "SYSTEM_ACTOR",
    "Bulk",
    "Choices",
    "Outcome",
    "Standing",
    "act",
    "acting_user",
    "approve_each",
    "approve_run",
    "check",
    "choices",
    "executed_many",
    "findings_of",
    "inbox",
    "mark_executed",
    "policy_of",
    "queue",
    "refuse_release",
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
    rules: RuleBook | None = None,
) -> Outcome:
    """``user`` does ``what`` to the proposal (an account's of its own, or a household's):
    approve, reject, acknowledge or override a finding, release. Refused with the
    machine's typed error (forbidden, conflict, a reason missing); an approval or a
    release of a proposal too old or moved too far expires it instead, and one of a
    household whose account was rebalanced alone since supersedes it (see
    :attr:`Outcome.ended`). A release checks the firm's rules again first, against
    the prices then (``rules``: the rule book; None: the settings' own), and a block
    they find refuses it (:func:`refuse_release`)."""
    at = at or datetime.now(UTC)
    if what is Act.RELEASE and user.role in MAY[Act.RELEASE]:
        refuse_release(engine, proposal_id=proposal_id, user=user, at=at, rules=rules)
    return _one(
        engine,
        proposal_id=proposal_id,
        what=what,
        who=Actor(user.user_id, user.role),
        user=user,
        policy=policy,
        at=at,
        reason=reason,
        finding_id=finding_id,
    )


def refuse_release(
    engine: sa.Engine,
    *,
    proposal_id: str,
    user: User,
    at: datetime,
    rules: RuleBook | None = None,
) -> None:
    """Before an approved proposal is released: its trades checked against the rules
    on the holdings and prices as they stand at ``at``. Where a rule blocks, the
    release is refused — a :class:`ConflictError` naming the findings, after a
    ``proposal.release_refused`` entry in the ledger says so; the proposal stays
    approved (reject it, or make a new one). Warnings found then are said in the entry."""
    from poise.settings import Settings  # noqa: PLC0415
    from poise.workflow.comply import load_rules, recheck  # noqa: PLC0415 (it imports this)

    with engine.connect() as connection:
        unit = repo.lock_unit(connection, proposal_id=proposal_id, lock=False)
        _in_scope(user, unit)
        if unit.part_of is not None:
            return  # refused as part of a household's, by the act itself
        if repo.approval_state(connection, unit=unit).status is not Status.APPROVED:
            return  # the machine refuses it, saying why
    found = recheck(engine, proposal_id=proposal_id, book=rules or load_rules(Settings()), at=at)
    blocking = [f for f in found if f.blocks]
    if not blocking:
        return
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        append(
            connection,
            actor=user.user_id,
            action="proposal.release_refused",
            subject=proposal_id,
            data={
                "proposal_id": proposal_id,
                "household": unit.household_id,
                "findings": [
                    {"rule_id": f.rule_id, "kind": f.kind, "blocks": f.blocks,
                     "explanation": f.explanation}
                    for f in found
                ],
            },
            reason="; ".join(f.explanation for f in blocking),
            at=at,
        )  # fmt: skip
    said = "; ".join(f"{f.rule_id}: {f.explanation}" for f in blocking)
    raise ConflictError(f"not released: at release, the rules block it — {said}")


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
    ``poise comply`` calls it once it has a stored proposal's findings again
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


def executed_many(
    engine: sa.Engine, *, proposal_ids: Sequence[str], at: datetime | None = None
) -> list[str]:
    """Proposals every trade of which has been crossed or allocated in full (accounts'
    of their own, households' with their accounts'), marked ``executed`` in one
    transaction (:func:`mark_executed`); the ones marked."""
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        return mark_executed(connection, proposal_ids=proposal_ids, at=at or datetime.now(UTC))


def mark_executed(
    connection: sa.Connection, *, proposal_ids: Sequence[str], at: datetime
) -> list[str]:
    """In the caller's transaction: each of these proposals still released marked
    ``executed``, with its ``proposal.execute`` entry; the ones marked. A proposal
    rejected meanwhile is left as it is (its row is changed only while it reads
    released)."""
    p, h = t.proposals, t.household_proposals
    ids = sorted(proposal_ids)
    released = Status.RELEASED.value
    marked: list[tuple[str, bool]] = []
    for table, household in ((h, True), (p, False)):
        query = (
            sa.update(table)
            .where(among(connection, table.c.proposal_id, ids) & (table.c.status == released))
            .values(status=Status.EXECUTED.value, status_reason=None)
            .returning(table.c.proposal_id)
        )
        marked += [(pid, household) for pid in connection.execute(query).scalars()]
    households = [pid for pid, household in marked if household]
    if households:
        connection.execute(
            sa.update(p)
            .where(
                among(connection, p.c.household_proposal_id, households) & (p.c.status == released)
            )
            .values(status=Status.EXECUTED.value, status_reason=None)
        )
    append_many(
        connection,
        [
            Record(
                actor=SYSTEM_ACTOR.user_id,
                action="proposal.execute",
                subject=pid,
                data={
                    "proposal_id": pid,
                    "household": household,
                    "act": Act.EXECUTE.value,
                    "before": released,
                    "after": Status.EXECUTED.value,
                },
                reason="every trade crossed or allocated in full",
                at=at,
            )
            for pid, household in sorted(marked)
        ],
    )
    return sorted(pid for pid, _ in marked)


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a proposal stands, for people: its state, the approvers it needs, its
    findings' words, and users' names (by id) — or, for an account's proposal that is
    part of a household's, that one's id (``part_of``) and what it is. ``about``: its
    account, method, prices' time, run and parts, as lists show them."""

    proposal_id: str
    part_of: str | None
    state: Approval | None
    needed: int
    findings: tuple[FindingToKeep, ...]
    names: dict[str, str]
    about: waiting.About | None = None

    def name(self, user_id: str | None) -> str:
        """A user's username, by their id (the system's proposals: ``system``)."""
        return self.names.get(user_id or "", user_id or SYSTEM)


def _names(connection: sa.Connection, states: Collection[Approval]) -> dict[str, str]:
    people = {s.prepared_by for s in states} | {u for s in states for u in s.approved_by}
    people |= {f.cleared_by for s in states for f in s.findings if f.cleared_by}
    return {u.user_id: u.username for u in repo.users(connection) if u.user_id in people}


def standing(connection: sa.Connection, *, proposal_id: str, policy: Policy) -> Standing:
    """Where ``proposal_id`` stands in approval (read, not locked)."""
    unit = repo.lock_unit(connection, proposal_id=proposal_id, lock=False)
    about = waiting.about(connection, unit=unit)
    if unit.part_of is not None:
        return Standing(proposal_id, unit.part_of, None, 0, (), {}, about)
    state = repo.approval_state(connection, unit=unit)
    needed = approvers_needed(state, policy)
    found = tuple(repo.findings_kept(connection, proposal_id=proposal_id))
    return Standing(proposal_id, None, state, needed, found, _names(connection, [state]), about)


PERSON_ACTS = (Act.APPROVE, Act.REJECT, Act.RELEASE)  # besides clearing a finding
ASKED = "(asked)"  # the reason a dry run gives where one is needed: only the rest is asked


@dataclass(frozen=True, slots=True)
class Choices:
    """What a user may do to a proposal now, as the machine answers: each act of
    :data:`PERSON_ACTS`, and each finding's clearing (acknowledging a warning,
    overriding a block), mapped to why not — "" where they may. An act of
    :data:`PERSON_ACTS` their role may never do is left out."""

    acts: dict[Act, str]
    findings: dict[str, str] = field(default_factory=dict)

    def may(self, what: Act) -> bool:
        return self.acts.get(what) == ""


def _why_not(
    state: Approval, what: Act, *, who: Actor, at: datetime, policy: Policy, finding_id: str | None
) -> str:
    """Why ``who`` may not do ``what`` now ("": they may), by asking the machine —
    nothing written. An approval or release of a proposal out of date may be asked:
    the machine then ends it, and says so."""
    try:
        decision = decide(
            state, what, who=who, at=at, policy=policy, reason=ASKED, finding_id=finding_id
        )
    except PoiseError as exc:
        return str(exc)
    return "" if decision.changed else decision.said


def choices(stands: Standing, user: User, policy: Policy, *, at: datetime | None = None) -> Choices:
    """What ``user`` may do to the proposal ``stands`` tells of, now (see :class:`Choices`).
    The user sees the proposal: the caller has checked their scope."""
    at = at or datetime.now(UTC)
    who = Actor(user.user_id, user.role)
    mine = [a for a in PERSON_ACTS if user.role in MAY[a]]
    if stands.part_of is not None or stands.state is None:
        why = f"it is approved as one with household proposal {stands.part_of}"
        return Choices(dict.fromkeys(mine, why))
    state = stands.state
    acts = {a: _why_not(state, a, who=who, at=at, policy=policy, finding_id=None) for a in mine}
    findings = {
        f.finding_id: _why_not(
            state,
            Act.OVERRIDE if f.blocks else Act.ACKNOWLEDGE,
            who=who,
            at=at,
            policy=policy,
            finding_id=f.finding_id,
        ).replace(f"by {f.cleared_by}", f"by {stands.name(f.cleared_by)}")  # a name, not an id
        for f in state.findings
    }
    return Choices(acts, findings)


def _listed(
    engine: sa.Engine, *, statuses: Collection[Status], user: User, policy: Policy
) -> list[Standing]:
    """Where each proposal in ``statuses`` that ``user`` sees stands, the longest
    waiting first."""
    with engine.connect() as connection:
        found = waiting.units_in(connection, statuses=statuses, scope=scope_of(user))
        states = waiting.approval_states(connection, units=[a.unit for a in found])
        words = waiting.findings_kept_of(connection, proposal_ids=sorted(states))
        names = _names(connection, states.values())
    return [
        Standing(
            a.unit.proposal_id,
            None,
            state,
            approvers_needed(state, policy),
            tuple(words.get(a.unit.proposal_id, ())),
            names,
            a,
        )
        for a in found
        if (state := states.get(a.unit.proposal_id)) is not None
    ]


def inbox(
    engine: sa.Engine, *, user: User, policy: Policy, max_notional: Decimal | None = None
) -> list[Standing]:
    """The proposals waiting for ``user``'s approval: pending, of households they see,
    not prepared by them and not approved by them yet (those whose warnings still
    stand among them: they are acknowledged first) — trading at most ``max_notional``
    each, when given. None for a role that does not approve. Whether an approval
    holds is the machine's to say when it is asked."""
    if user.role not in MAY[Act.APPROVE]:
        return []
    return [
        s
        for s in _listed(engine, statuses=(Status.PENDING,), user=user, policy=policy)
        if s.state is not None
        and s.state.prepared_by != user.user_id
        and user.user_id not in s.state.approved_by
        and (max_notional is None or s.state.notional <= max_notional)
    ]


QUEUE_ROLES = MAY[Act.ACKNOWLEDGE] | MAY[Act.OVERRIDE]


def queue(engine: sa.Engine, *, user: User, policy: Policy) -> list[Standing]:
    """The compliance queue: the proposals of households ``user`` sees that a finding
    holds up — blocked, or pending with a warning not yet acknowledged. None for a role
    that clears no finding."""
    if user.role not in QUEUE_ROLES:
        return []
    statuses = (Status.BLOCKED, Status.PENDING)
    return [
        s
        for s in _listed(engine, statuses=statuses, user=user, policy=policy)
        if s.state is not None and any(f.stands for f in s.state.findings)
    ]


@dataclass(frozen=True, slots=True)
class Bulk:
    """What approving many proposals came to — a run's, or those a person picked: each
    approved (or approved in part, another approver still needed), each the user had
    approved already, and each refused with why."""

    run_id: str | None
    approved: tuple[Outcome, ...]
    already: tuple[Outcome, ...]
    refused: tuple[tuple[str, str], ...]  # proposal id, why


def approve_each(
    engine: sa.Engine,
    *,
    proposal_ids: Sequence[str],
    user: User,
    policy: Policy,
    max_notional: Decimal | None = None,
    at: datetime | None = None,
) -> Bulk:
    """Approve each of ``proposal_ids`` as ``user`` (up to ``max_notional`` each, when
    given), each in its own transaction; one out of their scope is refused as one that
    does not exist."""
    notional: dict[str, Decimal] = {}
    refused: list[tuple[str, str]] = []
    asked = list(dict.fromkeys(proposal_ids))
    with engine.connect() as connection:
        for proposal_id in asked:
            try:
                unit = repo.lock_unit(connection, proposal_id=proposal_id, lock=False)
                _in_scope(user, unit)
            except NotFoundError as exc:
                refused.append((proposal_id, str(exc)))
                continue
            if max_notional is not None and unit.part_of is None:
                notional[proposal_id] = repo.approval_state(connection, unit=unit).notional
    approved: list[Outcome] = []
    already: list[Outcome] = []
    gone = {p for p, _ in refused}
    for proposal_id in asked:
        if proposal_id in gone:
            continue
        if max_notional is not None and notional.get(proposal_id, Decimal(0)) > max_notional:
            refused.append(
                (proposal_id, f"notional {notional[proposal_id]:,.2f} above {max_notional:,.2f}")
            )
            continue
        try:
            outcome = act(
                engine, proposal_id=proposal_id, what=Act.APPROVE, user=user, policy=policy, at=at
            )
        except PoiseError as exc:
            refused.append((proposal_id, str(exc)))
            continue
        if outcome.ended:
            refused.append((proposal_id, outcome.said))
        else:
            (approved if outcome.changed else already).append(outcome)
    order = {p: n for n, p in enumerate(asked)}
    refused.sort(key=lambda r: order[r[0]])
    return Bulk(None, tuple(approved), tuple(already), tuple(refused))


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
    seen = [u.proposal_id for u in units if scope.sees(u.household_id)]
    bulk = approve_each(
        engine, proposal_ids=seen, user=user, policy=policy, max_notional=max_notional, at=at
    )
    return replace(bulk, run_id=run_id)
