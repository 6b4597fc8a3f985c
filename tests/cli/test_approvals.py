"""``poise approve``, ``reject``, ``override``, ``acknowledge`` and ``release`` as people
run them, each acting as the user ``--as`` (or ``POISE_USER``) names; and twenty
approvers at once, each its own process, on one proposal in PostgreSQL (and SQLite): one
transition, one ledger entry, nineteen told why.

The firm is tests/workflow/approval_firm.py: ana prepared both proposals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import postgres_schema_url
from tests.processes import Run, finish, run_poise, start_poise
from tests.workflow.approval_firm import firm

from poise.audit.ledger import entries
from poise.domain.approvals import Policy
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.approvals import check

APPROVERS = 20


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'poise.db'}"


def made(url: str, *more: str, findings: tuple[repo.FindingToKeep, ...] = ()) -> tuple[str, str]:
    """The firm in the store at ``url``, both proposals checked: their ids."""
    engine = make_engine(url)
    upgrade(engine)
    single, household, _ = firm(engine, *more, made=datetime.now(UTC) - timedelta(hours=1))
    for proposal_id in (single, household):
        check(engine, proposal_id=proposal_id, findings=findings, policy=Policy())
    engine.dispose()
    return single, household


def poise(url: str, cwd: Path, *args: str) -> Run:
    return run_poise(*args, database_url=url, cwd=cwd, timeout=120)


def statuses(url: str) -> dict[str, str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = {
            row.proposal_id: str(row.status)
            for table in (t.proposals, t.household_proposals)
            for row in connection.execute(sa.select(table.c.proposal_id, table.c.status))
        }
    engine.dispose()
    return found


def actions(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        found = [e.action for e in entries(connection)]
    engine.dispose()
    return found


def test_approve_when_run_as_people_then_four_eyes_and_idempotent(
    sqlite_url: str, tmp_path: Path
) -> None:
    single, _ = made(sqlite_url)
    mine = poise(sqlite_url, tmp_path, "approve", single, "--as", "ana")
    assert mine.code == 10
    assert mine.error_lines == ["error: whoever prepared a proposal cannot approve it: four eyes"]
    first = poise(sqlite_url, tmp_path, "approve", single, "--as", "ben", "--json")
    assert first.code == 0, first.stderr
    shown = json.loads(first.stdout)
    assert (shown["status"], shown["changed"], shown["said"]) == ("approved", True, "approved")
    assert shown["notional"] == "50000"
    again = poise(sqlite_url, tmp_path, "approve", single, "--as", "BEN")
    assert again.code == 0
    assert again.stdout.strip() == f"{single}: approved already (now approved)"
    assert actions(sqlite_url) == ["proposal.check", "proposal.check", "proposal.approve"]


def test_approve_when_the_user_is_unknown_disabled_or_not_named_then_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    single, _ = made(sqlite_url)
    assert poise(sqlite_url, tmp_path, "users", "disable", "ben").code == 0
    for who, said in (
        (["--as", "nobody"], "error: no user nobody: poise users add"),
        (["--as", "ben"], "error: user ben is disabled"),
        ([], "error: say who acts: --as USER, or POISE_USER"),
    ):
        refused = poise(sqlite_url, tmp_path, "approve", single, *who)
        assert (refused.code, refused.error_lines) == (9, [said])
    assert statuses(sqlite_url)[single] == "pending"


def test_override_and_acknowledge_when_run_by_their_roles_then_the_proposal_is_approved(
    sqlite_url: str, tmp_path: Path
) -> None:
    findings = (
        repo.FindingToKeep("F1", True, "firm/restricted", "restricted", "S1 is restricted"),
        repo.FindingToKeep("F2", False, "firm/cash", "min_cash", "cash below 2%"),
    )
    single, household = made(sqlite_url, findings=findings)
    assert statuses(sqlite_url)[single] == "blocked"
    denied = poise(sqlite_url, tmp_path, "override", single, "F1", "--reason", "ok", "--as", "pam")
    assert denied.code == 10
    assert "compliance" in denied.stderr
    no_reason = poise(
        sqlite_url, tmp_path, "override", single, "F1", "--reason", " ", "--as", "cora"
    )
    assert (no_reason.code, no_reason.error_lines) == (3, ["error: to override needs a reason"])
    steps = [
        ("override", single, "F1", "--reason", "research list stale", "--as", "cora"),
        ("acknowledge", single, "F2", "--reason", "the client asked", "--as", "ana"),
        ("approve", single, "--as", "ben"),
        ("release", single, "--as", "olu"),
    ]
    for step in steps:
        done = poise(sqlite_url, tmp_path, *step)
        assert done.code == 0, (step, done.stderr)
    assert statuses(sqlite_url)[single] == "released"
    shown = " ".join(poise(sqlite_url, tmp_path, "proposals", "show", single).stdout.split())
    assert "approval: released; prepared by ana; notional 50,000.00, 1 approver(s) needed;" in shown
    assert "approved by ben" in shown
    assert (
        "F1 block firm/restricted: S1 is restricted — overridden by cora: research list stale"
    ) in shown
    assert "F2 warning firm/cash: cash below 2% — acknowledged by ana: the client asked" in shown
    rejected = poise(sqlite_url, tmp_path, "reject", household, "--reason", "client away",
                     "--as", "cora", "--json")  # fmt: skip
    assert json.loads(rejected.stdout)["status"] == "rejected"
    late = poise(sqlite_url, tmp_path, "approve", household, "--as", "ben")
    assert (late.code, late.error_lines) == (
        7,
        ["error: the proposal is rejected: nothing more can happen to it"],
    )
    listed = poise(sqlite_url, tmp_path, "proposals", "list", "--status", "rejected", "--json")
    assert listed.code == 0, listed.stderr
    assert json.loads(listed.stdout)["total"] == 2  # the household's two accounts
    part = poise(
        sqlite_url,
        tmp_path,
        "proposals",
        "show",
        json.loads(listed.stdout)["proposals"][0]["proposal_id"],
    )
    assert f"approved as one with its household's proposal {household}" in part.stdout
    assert poise(sqlite_url, tmp_path, "proposals", "list", "--status", "nope").code == 2


@pytest.fixture(params=["postgres", "sqlite"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":  # the writer lock serialises
        yield f"sqlite:///{tmp_path / 'poise.db'}"
    else:  # the proposal's row is locked
        yield from postgres_schema_url()


@pytest.mark.slow
@pytest.mark.parametrize("same", [False, True], ids=["different", "same"])
def test_approve_when_twenty_processes_approve_at_once_then_one_transition_and_one_entry(
    shared_url: str, tmp_path: Path, same: bool
) -> None:
    approvers = [f"a{n:02d}" for n in range(APPROVERS)]
    single, _ = made(shared_url, *approvers)
    runs = [
        start_poise(
            "approve",
            single,
            "--as",
            "a00" if same else who,
            "--json",
            database_url=shared_url,
            cwd=tmp_path,
        )
        for who in approvers
    ]
    done = [finish(run, timeout=120) for run in runs]
    changed = [
        json.loads(d.stdout) for d in done if d.code == 0 and json.loads(d.stdout)["changed"]
    ]
    assert len(changed) == 1
    if same:  # the others: the same approval again, which is no change
        assert all(d.code == 0 for d in done), [d.stderr for d in done]
        assert sum(json.loads(d.stdout)["said"] == "approved already" for d in done) == 19
    else:  # the others: told why
        refused = [d for d in done if d.code != 0]
        assert len(refused) == APPROVERS - 1
        assert {d.code for d in refused} == {7}
        assert {d.error_lines[0] for d in refused} == {
            "error: only a pending proposal is approved, not an approved one"
        }
    assert statuses(shared_url)[single] == "approved"
    assert actions(shared_url).count("proposal.approve") == 1
    engine = make_engine(shared_url)
    with engine.connect() as connection:
        kept = connection.execute(sa.select(t.proposal_approvals)).all()
    engine.dispose()
    assert len(kept) == 1


def test_approve_when_a_run_is_named_then_each_of_its_proposals_is_approved_and_summed_up(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    _, household, _ = firm(engine, run_id=True, made=datetime.now(UTC) - timedelta(hours=1))
    check(engine, proposal_id=household, findings=(), policy=Policy())
    with engine.connect() as connection:
        run_id = repo.household_proposal(connection, proposal_id=household).run_id
    engine.dispose()
    assert run_id is not None
    both = poise(sqlite_url, tmp_path, "approve", household, "--run", run_id, "--as", "ben")
    assert both.code == 2
    capped = poise(sqlite_url, tmp_path, "approve", "--run", run_id, "--max-notional", "1,000,000",
                   "--as", "ben", "--json")  # fmt: skip
    assert json.loads(capped.stdout)["refused"] == [
        {"proposal_id": household, "why": "notional 1,500,000.00 above 1,000,000.00"}
    ]
    for who, said in (("ben", "approved, 1 more needed"), ("pam", "approved")):
        done = poise(sqlite_url, tmp_path, "approve", "--run", run_id, "--household", "H1",
                     "--as", who, "--json")  # fmt: skip
        assert done.code == 0, done.stderr
        assert [o["said"] for o in json.loads(done.stdout)["approved"]] == [said]
    people = poise(sqlite_url, tmp_path, "approve", "--run", run_id, "--as", "pam")
    assert people.stdout.splitlines()[-1] == (
        f"run {run_id}: 0 approved, 1 approved already, 0 not approved"
    )
    assert statuses(sqlite_url)[household] == "approved"


def test_approve_when_the_proposal_is_older_than_the_firm_allows_then_it_expires_exit_7(
    sqlite_url: str, tmp_path: Path
) -> None:
    single, _ = made(sqlite_url)  # made an hour ago
    late = finish(
        start_poise(
            "approve",
            single,
            "--as",
            "ben",
            database_url=sqlite_url,
            cwd=tmp_path,
            settings={"POISE_APPROVAL_EXPIRE_HOURS": "0.5"},
        )
    )
    assert late.code == 7
    assert late.error_lines[-1].startswith(f"error: {single} was not approved but expired: made")
    assert "older than 0.5 hours" in late.error_lines[-1]
    assert statuses(sqlite_url)[single] == "expired"
    assert actions(sqlite_url)[-1] == "proposal.expire"
