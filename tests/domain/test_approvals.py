"""The approval machine: four eyes, two approvers above the threshold, warnings
acknowledged and blocks overridden by compliance alone, expiry by age and by a price's
move, and nothing after a final state — each rule as a user meets it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.domain.approvals import (
    MAY,
    Act,
    Actor,
    Approval,
    FindingState,
    Policy,
    Status,
    decide,
    is_final,
)
from poise.domain.errors import ConflictError, ForbiddenError, ValidationError
from poise.domain.users import Role

MADE = datetime(2022, 12, 28, 15, 0, tzinfo=UTC)
SOON = MADE + timedelta(hours=2)
POLICY = Policy(two_approvers_above=Decimal(100_000), expire_after=timedelta(days=3),
                expire_on_move=Decimal("0.05"))  # fmt: skip
ANA = Actor("ana", Role.ADVISER)  # prepared it
BEN = Actor("ben", Role.ADVISER)
PAM = Actor("pam", Role.PORTFOLIO_MANAGER)
CORA = Actor("cora", Role.COMPLIANCE)
OLU = Actor("olu", Role.OPERATIONS)
CLIENT = Actor("gus", Role.CLIENT)


def proposal(notional: str = "50000", *findings: FindingState) -> Approval:
    return Approval(Status.PROPOSED, "ana", Decimal(notional), MADE, findings=findings)


def act(state: Approval, what: Act, who: Actor, **kw: object) -> Approval:
    return decide(state, what, who=who, at=kw.pop("at", SOON), policy=POLICY, **kw).after  # type: ignore[arg-type]


def test_approve_when_the_preparer_tries_then_refused_four_eyes() -> None:
    pending = act(proposal(), Act.CHECK, ANA)
    assert pending.status is Status.PENDING
    with pytest.raises(ForbiddenError, match="four eyes"):
        act(pending, Act.APPROVE, ANA)
    approved = act(pending, Act.APPROVE, BEN)
    assert (approved.status, approved.approved_by) == (Status.APPROVED, ("ben",))


def test_approve_when_above_the_threshold_then_two_different_approvers() -> None:
    pending = act(proposal("250000"), Act.CHECK, ANA)
    once = act(pending, Act.APPROVE, BEN)
    assert once.status is Status.PENDING
    again = decide(once, Act.APPROVE, who=BEN, at=SOON, policy=POLICY)
    assert not again.changed  # ben counts once however often he approves
    assert again.after == once
    twice = act(once, Act.APPROVE, PAM)
    assert (twice.status, twice.approved_by) == (Status.APPROVED, ("ben", "pam"))
    repeat = decide(twice, Act.APPROVE, who=PAM, at=SOON, policy=POLICY)
    assert (repeat.changed, repeat.after) == (False, twice)  # the same approval twice: one


def test_approve_when_a_warning_stands_then_it_is_acknowledged_first_with_a_reason() -> None:
    warned = act(proposal("50000", FindingState("F1", blocks=False)), Act.CHECK, ANA)
    assert warned.status is Status.PENDING
    with pytest.raises(ConflictError, match="acknowledge the warnings first: F1"):
        act(warned, Act.APPROVE, BEN)
    with pytest.raises(ValidationError, match="needs a reason"):
        act(warned, Act.ACKNOWLEDGE, ANA, finding_id="F1", reason="  ")
    seen = act(warned, Act.ACKNOWLEDGE, ANA, finding_id="F1", reason="client asked for it")
    assert seen.finding("F1").cleared_by == "ana"
    assert act(seen, Act.APPROVE, BEN).status is Status.APPROVED


def test_override_when_a_block_stands_then_only_compliance_clears_it() -> None:
    blocked = act(proposal("50000", FindingState("B1", blocks=True)), Act.CHECK, ANA)
    assert blocked.status is Status.BLOCKED
    with pytest.raises(ConflictError, match="blocks: compliance overrides it"):
        act(blocked, Act.ACKNOWLEDGE, ANA, finding_id="B1", reason="fine")
    for who in (ANA, PAM, OLU):
        with pytest.raises(ForbiddenError, match="compliance"):
            act(blocked, Act.OVERRIDE, who, finding_id="B1", reason="fine")
    with pytest.raises(ConflictError, match="only a pending proposal is approved"):
        act(blocked, Act.APPROVE, BEN)
    cleared = act(blocked, Act.OVERRIDE, CORA, finding_id="B1", reason="research list stale")
    assert cleared.status is Status.PENDING
    assert cleared.finding("B1").reason == "research list stale"
    assert act(cleared, Act.APPROVE, BEN).status is Status.APPROVED


def test_approve_when_too_old_or_prices_moved_then_it_expires_instead() -> None:
    pending = act(proposal(), Act.CHECK, ANA)
    late = decide(pending, Act.APPROVE, who=BEN, at=MADE + timedelta(days=4), policy=POLICY)
    assert late.after.status is Status.EXPIRED
    assert "older than" in late.after.reason
    moved = decide(pending, Act.APPROVE, who=BEN, at=SOON, policy=POLICY, moved=Decimal("-0.07"))
    assert moved.after.status is Status.EXPIRED
    assert "moved 7.0%" in moved.after.reason
    small = decide(pending, Act.APPROVE, who=BEN, at=SOON, policy=POLICY, moved=Decimal("0.04"))
    assert small.after.status is Status.APPROVED


def test_release_when_approved_then_operations_releases_and_it_is_executed_after() -> None:
    approved = act(act(proposal(), Act.CHECK, ANA), Act.APPROVE, BEN)
    with pytest.raises(ForbiddenError):
        act(approved, Act.RELEASE, BEN)
    released = act(approved, Act.RELEASE, OLU)
    assert released.status is Status.RELEASED
    assert act(released, Act.EXECUTE, OLU).status is Status.EXECUTED
    with pytest.raises(ConflictError, match="only a released proposal is executed"):
        act(approved, Act.EXECUTE, OLU)


@pytest.mark.parametrize("final", [Status.EXECUTED, Status.REJECTED, Status.EXPIRED,
                                   Status.SUPERSEDED])  # fmt: skip
def test_decide_when_the_proposal_is_final_then_nothing_more(final: Status) -> None:
    done = Approval(final, "ana", Decimal(1), MADE)
    for what in Act:
        with pytest.raises((ConflictError, ForbiddenError, ValidationError)):
            act(done, what, CORA, reason="because", finding_id="F1")


def test_decide_when_a_client_acts_then_forbidden_whatever_the_act() -> None:
    pending = act(proposal(), Act.CHECK, ANA)
    for what in MAY:
        with pytest.raises(ForbiddenError):
            act(pending, what, CLIENT, reason="please", finding_id="F1")


ACTORS = st.sampled_from([ANA, BEN, PAM, CORA, OLU])
ACTS = st.sampled_from(list(Act))


@given(
    notional=st.sampled_from(["5000", "500000"]),
    blocks=st.lists(st.booleans(), max_size=3),
    steps=st.lists(st.tuples(ACTS, ACTORS, st.integers(0, 2)), max_size=25),
)
def test_machine_when_any_sequence_of_acts_then_its_rules_always_hold(
    notional: str, blocks: list[bool], steps: list[tuple[Act, Actor, int]]
) -> None:
    findings = tuple(FindingState(f"F{n}", b) for n, b in enumerate(blocks))
    state = proposal(notional, *findings)
    for what, who, n in steps:
        try:
            decision = decide(state, what, who=who, at=SOON, policy=POLICY, reason="r",
                              finding_id=f"F{n}")  # fmt: skip
        except (ConflictError, ForbiddenError, ValidationError):
            continue
        before, state = state, decision.after
        assert not is_final(before.status)  # nothing happens after a final state
        if state.status is Status.APPROVED:
            assert "ana" not in state.approved_by  # four eyes
            assert len(set(state.approved_by)) == len(state.approved_by)
            assert len(state.approved_by) >= (2 if notional == "500000" else 1)
            assert not any(f.stands for f in state.findings)
        for f in state.findings:
            if f.blocks and not f.stands:  # a block is cleared by compliance alone
                assert f.cleared_by == "cora"
        if state.status is Status.RELEASED:
            assert before.status is Status.APPROVED
