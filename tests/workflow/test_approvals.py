"""Approvals in the store, on SQLite and PostgreSQL: each act a transition written with one
ledger entry, or refused and nothing written; a household's proposal approved as one
with its accounts'; expiry by age and by a price's move; a run approved in bulk.

The firm (tests/workflow/approval_firm.py): ana prepared both proposals. A1's buys 100 S1
at 500 (50,000: one approver); household H1's buys 1,000 S1 at 500 in A2 and 10,000 S2
at 100 in A3 (1,500,000: two approvers, above the 1,000,000 threshold).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.workflow.approval_firm import MADE, SOON, buying, firm, price

from poise.audit.ledger import entries
from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Act, Actor, Policy, Status, decide
from poise.domain.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PoiseError,
)
from poise.optimize.trades import Proposal
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.approvals import act, acting_user, approve_run, check, findings_of

POLICY = Policy(two_approvers_above=Decimal(1_000_000), expire_after=timedelta(days=3),
                expire_on_move=Decimal("0.05"))  # fmt: skip


def ledger(engine: sa.Engine) -> list[tuple[str, str, str]]:
    """Each entry's action, subject and actor."""
    with engine.connect() as connection:
        return [(e.action, e.subject, e.actor) for e in entries(connection)]


def status(engine: sa.Engine, proposal_id: str, table: sa.Table = t.proposals) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                sa.select(table.c.status).where(table.c.proposal_id == proposal_id)
            ).scalar_one()
        )


def pending(engine: sa.Engine, proposal_id: str, *findings: repo.FindingToKeep) -> None:
    check(engine, proposal_id=proposal_id, findings=findings, policy=POLICY, at=SOON)


def test_approve_when_the_preparer_then_refused_and_another_adviser_approves_once(
    engine: sa.Engine,
) -> None:
    single, _, people = firm(engine)
    pending(engine, single)
    assert status(engine, single) == "pending"
    with pytest.raises(ForbiddenError, match="four eyes"):
        act(
            engine, proposal_id=single, what=Act.APPROVE, user=people["ana"], policy=POLICY, at=SOON
        )
    ben = people["ben"].user_id
    first = act(
        engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
    )
    assert (first.status, first.changed, first.after.approved_by) == (Status.APPROVED, True, (ben,))
    again = act(
        engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
    )
    assert (again.changed, again.said, again.entry) == (False, "approved already", None)
    assert ledger(engine) == [
        ("proposal.check", single, "system"),
        ("proposal.approve", single, ben),
    ]
    with engine.connect() as connection:
        approvals = connection.execute(sa.select(t.proposal_approvals)).all()
    assert [(a.proposal_id, a.number, a.user_id) for a in approvals] == [(single, 1, ben)]


def test_approve_when_a_household_above_the_threshold_then_two_approvers_and_its_accounts_move(
    engine: sa.Engine,
) -> None:
    _, household, people = firm(engine)
    pending(engine, household)
    with engine.connect() as connection:
        parts = repo.household_proposal(connection, proposal_id=household).accounts
    assert [status(engine, p) for p in parts] == ["pending", "pending"]
    with pytest.raises(ConflictError, match=f"part of household proposal {household}"):
        act(
            engine,
            proposal_id=parts[0],
            what=Act.APPROVE,
            user=people["ben"],
            policy=POLICY,
            at=SOON,
        )
    once = act(
        engine, proposal_id=household, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
    )
    assert (once.status, once.said) == (Status.PENDING, "approved, 1 more needed")
    assert once.after.notional == Decimal(1_500_000)
    twice = act(
        engine, proposal_id=household, what=Act.APPROVE, user=people["pam"], policy=POLICY, at=SOON
    )
    assert twice.status is Status.APPROVED
    assert status(engine, household, t.household_proposals) == "approved"
    assert [status(engine, p) for p in parts] == ["approved", "approved"]
    with pytest.raises(NotFoundError):  # an adviser not assigned H1 does not see it
        act(engine, proposal_id=household, what=Act.REJECT, user=people["dee"], policy=POLICY,
            at=SOON, reason="no")  # fmt: skip
    released = act(
        engine, proposal_id=household, what=Act.RELEASE, user=people["olu"], policy=POLICY, at=SOON
    )
    assert [status(engine, p) for p in parts] == ["released", "released"]
    assert released.status is Status.RELEASED
    assert [a for a, _, _ in ledger(engine)] == [
        "proposal.check", "proposal.approve", "proposal.approve", "proposal.release"
    ]  # fmt: skip


def test_override_when_a_block_and_a_warning_then_compliance_overrides_and_one_acknowledges(
    engine: sa.Engine,
) -> None:
    single, _, people = firm(engine)
    block = repo.FindingToKeep("F1", True, "firm/restricted", "restricted", "S1 is restricted")
    warn = repo.FindingToKeep("F2", False, "firm/concentration", "concentration", "S1 is 12%")
    pending(engine, single, block, warn)
    assert status(engine, single) == "blocked"
    with pytest.raises(ForbiddenError, match="compliance"):
        act(engine, proposal_id=single, what=Act.OVERRIDE, user=people["pam"], policy=POLICY,
            at=SOON, finding_id="F1", reason="fine")  # fmt: skip
    cleared = act(engine, proposal_id=single, what=Act.OVERRIDE, user=people["cora"],
                  policy=POLICY, at=SOON, finding_id="F1", reason="list stale")  # fmt: skip
    assert cleared.status is Status.PENDING
    with pytest.raises(ConflictError, match="acknowledge the warnings first: F2"):
        act(
            engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
        )
    act(engine, proposal_id=single, what=Act.ACKNOWLEDGE, user=people["ana"], policy=POLICY,
        at=SOON, finding_id="F2", reason="the client asked for it")  # fmt: skip
    approved = act(
        engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
    )
    assert approved.status is Status.APPROVED
    with engine.connect() as connection:
        kept = {r.finding_id: r for r in connection.execute(sa.select(t.proposal_findings))}
    assert (kept["F1"].cleared_by, kept["F1"].reason) == (
        people["cora"].user_id,
        "list stale",
    )
    assert kept["F2"].cleared_by == people["ana"].user_id
    assert [a for a, _, _ in ledger(engine)] == [
        "proposal.check", "proposal.override", "proposal.acknowledge", "proposal.approve"
    ]  # fmt: skip


def test_approve_when_too_old_then_it_expires_instead_and_the_ledger_says_so(
    engine: sa.Engine,
) -> None:
    single, _, people = firm(engine)
    pending(engine, single)
    late = act(engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY,
               at=MADE + timedelta(days=4))  # fmt: skip
    assert late.ended
    assert status(engine, single) == "expired"
    assert ledger(engine)[-1] == ("proposal.expire", single, people["ben"].user_id)
    with pytest.raises(ConflictError, match="expired: nothing more"):
        act(
            engine, proposal_id=single, what=Act.APPROVE, user=people["pam"], policy=POLICY, at=SOON
        )


def test_approve_when_a_price_moved_more_than_allowed_then_it_expires(engine: sa.Engine) -> None:
    single, _, people = firm(engine)
    pending(engine, single)
    with engine.begin() as connection:
        price(connection, "S1", "540", MADE + timedelta(hours=1))  # +8% since the proposal
    moved = act(
        engine, proposal_id=single, what=Act.APPROVE, user=people["ben"], policy=POLICY, at=SOON
    )
    assert moved.ended
    assert "moved 8.0%" in moved.after.reason
    with engine.connect() as connection:
        reason = connection.execute(
            sa.select(t.proposals.c.status_reason).where(t.proposals.c.proposal_id == single)
        ).scalar_one()
    assert reason is not None
    assert "moved 8.0%" in reason


def test_reject_when_a_reason_is_given_then_it_is_final(engine: sa.Engine) -> None:
    single, _, people = firm(engine)
    pending(engine, single)
    rejected = act(engine, proposal_id=single, what=Act.REJECT, user=people["cora"], policy=POLICY,
                   at=SOON, reason="client away")  # fmt: skip
    assert rejected.status is Status.REJECTED
    assert ledger(engine)[-1] == ("proposal.reject", single, people["cora"].user_id)


def test_save_proposal_when_a_pending_one_is_there_then_the_newer_supersedes_it(
    engine: sa.Engine,
) -> None:
    single, _, _ = firm(engine)
    pending(engine, single)
    newer: Proposal = buying("A1", ("S1", "10", "500"))
    with engine.begin() as connection:
        saved = repo.save_proposal(connection, proposal=newer, as_of=MADE, created_at=SOON)
    assert saved.superseded == (single,)
    assert status(engine, single) == "superseded"


def test_acting_user_when_unknown_or_disabled_then_refused(engine: sa.Engine) -> None:
    _, _, people = firm(engine)
    with engine.begin() as connection:
        repo.disable_user(connection, user_id=people["ben"].user_id)
    with engine.connect() as connection:
        with pytest.raises(AuthError, match="no user nobody"):
            acting_user(connection, username="nobody")
        with pytest.raises(AuthError, match="ben is disabled"):
            acting_user(connection, username="Ben")
        with pytest.raises(AuthError, match="--as"):
            acting_user(connection, username=None)
        assert acting_user(connection, username="pam").username == "pam"


def test_approve_run_when_filtered_then_each_on_its_own_with_a_summary(engine: sa.Engine) -> None:
    _, household, people = firm(engine, run_id=True)
    pending(engine, household)
    with engine.connect() as connection:
        run_id = repo.household_proposal(connection, proposal_id=household).run_id
    assert run_id is not None
    small = approve_run(engine, run_id=run_id, user=people["ben"], policy=POLICY,
                        max_notional=Decimal(1_000_000), at=SOON)  # fmt: skip
    assert small.approved == ()
    assert small.refused == ((household, "notional 1,500,000.00 above 1,000,000.00"),)
    bulk = approve_run(engine, run_id=run_id, user=people["ben"], policy=POLICY, at=SOON)
    assert [o.said for o in bulk.approved] == ["approved, 1 more needed"]
    again = approve_run(engine, run_id=run_id, user=people["ben"], policy=POLICY, at=SOON)
    assert (again.approved, len(again.already)) == ((), 1)
    none = approve_run(engine, run_id=run_id, user=people["ben"], policy=POLICY,
                       households=["H2"], at=SOON)  # fmt: skip
    assert (none.approved, none.already, none.refused) == ((), (), ())
    with pytest.raises(NotFoundError):
        approve_run(engine, run_id="nope", user=people["ben"], policy=POLICY, at=SOON)


def test_approve_when_an_account_of_the_household_was_rebalanced_since_then_it_is_superseded(
    engine: sa.Engine,
) -> None:
    _, household, people = firm(engine)
    pending(engine, household)
    with engine.begin() as connection:
        repo.save_proposal(
            connection, proposal=buying("A2", ("S1", "5", "500")), as_of=MADE, created_at=SOON
        )
    with pytest.raises(ForbiddenError):  # who may not approve learns nothing more
        act(engine, proposal_id=household, what=Act.APPROVE, user=people["olu"], policy=POLICY,
            at=SOON)  # fmt: skip
    ended = act(engine, proposal_id=household, what=Act.APPROVE, user=people["ben"],
                policy=POLICY, at=SOON)  # fmt: skip
    assert ended.ended
    assert ended.status is Status.SUPERSEDED
    assert "its account proposal A2/2022-12-28/bands was superseded by" in ended.after.reason
    assert ledger(engine)[-1] == ("proposal.supersede", household, people["ben"].user_id)
    with engine.connect() as connection:
        parts = repo.household_proposal(connection, proposal_id=household).accounts
    assert sorted(status(engine, p) for p in parts) == ["superseded", "superseded"]


def test_check_when_the_rules_find_a_block_and_a_warning_then_they_are_kept_as_f1_and_f2(
    engine: sa.Engine,
) -> None:
    single, _, _ = firm(engine)
    found = [
        Finding("firm/single", "single_security", Severity.BLOCK, 0.124, 0.10,
                "S1 would be 12.4% of the account, above 10%", securities=("S1",)),
        Finding("firm/order", "max_order_value", Severity.WARN, Decimal("50000"),
                Decimal("25000"), "an order of 50,000 above 25,000"),
    ]  # fmt: skip
    outcome = check(engine, proposal_id=single, findings=findings_of(found), policy=POLICY, at=SOON)
    assert outcome.status is Status.BLOCKED
    with engine.connect() as connection:
        kept = repo.findings_kept(connection, proposal_id=single)
    assert [(k.finding_id, k.blocks, k.rule_id) for k in kept] == [
        ("F1", True, "firm/single"), ("F2", False, "firm/order")
    ]  # fmt: skip
    assert kept[0].detail is not None
    assert (kept[0].detail["securities"], kept[1].detail["measured"]) == (["S1"], "50000")


PEOPLE_ACTING = st.sampled_from(["ana", "ben", "pam", "cora", "olu"])
ACTS = st.sampled_from([Act.ACKNOWLEDGE, Act.OVERRIDE, Act.APPROVE, Act.REJECT, Act.RELEASE])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blocks=st.lists(st.booleans(), max_size=2),
    household=st.booleans(),
    steps=st.lists(st.tuples(ACTS, PEOPLE_ACTING, st.integers(1, 2)), max_size=8),
)
def test_act_when_any_sequence_then_the_store_holds_what_the_machine_decided(
    blocks: list[bool], household: bool, steps: list[tuple[Act, str, int]]
) -> None:
    """Each act through the store does what the pure machine does to the state read
    back: the same refusal, or the same state after — and a ledger entry exactly when
    something changed."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/poise.db")
        upgrade(engine)
        single, both, people = firm(engine)
        chosen = both if household else single
        found = [repo.FindingToKeep(f"F{n}", b, "r", "k", "words") for n, b in enumerate(blocks, 1)]
        check(engine, proposal_id=chosen, findings=found, policy=POLICY, at=SOON)
        for what, who, finding in steps:
            user = people[who]
            with engine.connect() as connection:
                unit = repo.lock_unit(connection, proposal_id=chosen, lock=False)
                before = repo.approval_state(connection, unit=unit)
                entries_before = len(list(entries(connection)))
            named = f"F{finding}"
            try:
                expected = decide(before, what, who=Actor(user.user_id, user.role), at=SOON,
                                  policy=POLICY, moved=Decimal(0), reason="why",
                                  finding_id=named)  # fmt: skip
            except PoiseError as refused:
                with pytest.raises(type(refused)):
                    act(engine, proposal_id=chosen, what=what, user=user, policy=POLICY, at=SOON,
                        reason="why", finding_id=named)  # fmt: skip
                continue
            outcome = act(engine, proposal_id=chosen, what=what, user=user, policy=POLICY,
                          at=SOON, reason="why", finding_id=named)  # fmt: skip
            with engine.connect() as connection:
                after = repo.approval_state(connection, unit=unit)
                entries_after = len(list(entries(connection)))
            assert after == expected.after == outcome.after
            assert entries_after - entries_before == (1 if expected.changed else 0)
        engine.dispose()
