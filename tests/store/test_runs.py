"""Firm-wide runs in the store, on both databases: what a run was asked, the households
it finished, what a resumed run skips, and how it ended."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from poise.domain.errors import NotFoundError, ValidationError
from poise.store import repo
from poise.store import tables as t

STARTED = datetime(2026, 12, 6, 10, 15, 2, tzinfo=UTC)
AS_OF = datetime(2026, 12, 4, 23, 59, 59, tzinfo=UTC)
OPTIONS = {"method": "optimize", "tax_budget": Decimal("2500.00"), "within_bands": True}


def start(engine: sa.Engine, *, started_at: datetime = STARTED, **selection: object) -> str:
    with engine.execution_options(writes=True).begin() as connection:
        return repo.start_rebalance_run(
            connection,
            as_of=AS_OF,
            selection=selection or {"all": True},
            options=OPTIONS,
            started_at=started_at,
        )


def done(engine: sa.Engine, run_id: str, household_id: str, proposal_id: str | None) -> bool:
    with engine.execution_options(writes=True).begin() as connection:
        return repo.household_done(
            connection, run_id=run_id, household_id=household_id, proposal_id=proposal_id
        )


def failed(engine: sa.Engine, run_id: str, household_id: str, reason: str) -> bool:
    with engine.execution_options(writes=True).begin() as connection:
        return repo.household_failed(
            connection, run_id=run_id, household_id=household_id, reason=reason
        )


def read(engine: sa.Engine, run_id: str) -> repo.RebalanceRun:
    with engine.connect() as connection:
        return repo.rebalance_run(connection, run_id=run_id)


def finished(engine: sa.Engine, run_id: str) -> frozenset[str]:
    with engine.connect() as connection:
        return repo.finished_households(connection, run_id=run_id)


def test_start_when_a_run_begins_then_it_is_kept_running_with_what_it_was_asked(
    engine: sa.Engine,
) -> None:
    run_id = start(engine, model="M-GROWTH", since=date(2026, 12, 1))
    assert re.fullmatch(r"20261206-101502-[0-9a-f]{4}", run_id)
    run = read(engine, run_id)
    assert run.status == repo.RUN_STATUSES[0] == "running"
    assert (run.started_at, run.as_of, run.finished_at) == (STARTED, AS_OF, None)
    assert run.method == "optimize"
    # JSON: money exact as a decimal string, dates ISO 8601.
    assert run.selection == {"model": "M-GROWTH", "since": "2026-12-01"}
    assert run.options == {"method": "optimize", "tax_budget": "2500.00", "within_bands": True}
    assert (run.done, run.failed, run.summary) == (0, 0, None)


def test_start_when_runs_begin_in_the_same_second_then_each_has_its_own_id(
    engine: sa.Engine,
) -> None:
    ids = [start(engine) for _ in range(12)]
    assert len(set(ids)) == 12
    with engine.connect() as connection:
        assert {r.run_id for r in repo.rebalance_runs(connection)} == set(ids)


def test_household_done_when_marked_twice_then_the_second_changes_nothing(
    engine: sa.Engine,
) -> None:
    run_id = start(engine)
    assert done(engine, run_id, "H1", "H1/2026-12-04/optimize") is True
    with engine.connect() as connection:
        (first,) = repo.run_households(connection, run_id=run_id)
    assert done(engine, run_id, "H1", "H1/2026-12-04/optimize.2") is False
    with engine.connect() as connection:
        assert repo.run_households(connection, run_id=run_id) == [first]
    assert first.household_proposal_id == "H1/2026-12-04/optimize"
    assert first.status == "done"
    assert (read(engine, run_id).done, read(engine, run_id).failed) == (1, 0)


def test_finished_households_when_some_failed_then_only_those_done_are_skipped_on_resume(
    engine: sa.Engine,
) -> None:
    """H1 and H3 done, H2 failed: a resume plans H2 again (and every household not yet
    reached), never H1 or H3."""
    run_id = start(engine)
    done(engine, run_id, "H1", "P1")
    failed(engine, run_id, "H2", "ValidationError: model M9 does not exist")
    done(engine, run_id, "H3", None)  # nothing to propose: done all the same
    assert finished(engine, run_id) == {"H1", "H3"}
    with engine.connect() as connection:
        (h2,) = repo.run_households(connection, run_id=run_id, status="failed")
    assert h2.household_id == "H2"
    assert h2.reason == "ValidationError: model M9 does not exist"
    assert h2.household_proposal_id is None


def test_household_failed_when_it_is_retried_then_done_wins_and_failed_never_undoes_done(
    engine: sa.Engine,
) -> None:
    run_id = start(engine)
    assert failed(engine, run_id, "H2", "TimeoutError: solver") is True
    assert failed(engine, run_id, "H2", "ValueError: no price for XYZ") is True  # the latest
    with engine.connect() as connection:
        (h2,) = repo.run_households(connection, run_id=run_id)
    assert h2.reason == "ValueError: no price for XYZ"
    assert done(engine, run_id, "H2", "P2") is True  # the resumed run's retry worked
    assert failed(engine, run_id, "H2", "RuntimeError: late") is False
    with engine.connect() as connection:
        (h2,) = repo.run_households(connection, run_id=run_id)
    assert (h2.status, h2.household_proposal_id, h2.reason) == ("done", "P2", None)
    assert finished(engine, run_id) == {"H2"}
    assert (read(engine, run_id).done, read(engine, run_id).failed) == (1, 0)


def test_household_failed_when_no_reason_is_given_then_it_is_refused(engine: sa.Engine) -> None:
    run_id = start(engine)
    with pytest.raises(ValidationError, match="reason"):
        failed(engine, run_id, "H1", "")


def test_finish_when_a_run_ends_then_its_summary_and_status_are_kept(engine: sa.Engine) -> None:
    run_id = start(engine)
    done(engine, run_id, "H1", "P1")
    failed(engine, run_id, "H2", "ValueError: bad lot")
    summary = {
        "households": 2,
        "accounts": 5,
        "proposals": 4,
        "trades": 31,
        "estimated_tax": Decimal("1234.56"),
        "harvested_losses": Decimal("8000.00"),
        "failures": {"H2": "ValueError: bad lot"},
    }
    end = STARTED + timedelta(minutes=3)
    with engine.execution_options(writes=True).begin() as connection:
        ended = repo.finish_rebalance_run(
            connection, run_id=run_id, summary=summary, finished_at=end
        )
    assert ended == read(engine, run_id)
    assert (ended.status, ended.finished_at, ended.done, ended.failed) == ("finished", end, 1, 1)
    assert ended.summary == {
        **summary,
        "estimated_tax": "1234.56",
        "harvested_losses": "8000.00",
    }


def test_resume_when_a_run_was_interrupted_then_it_runs_again_and_keeps_what_it_did(
    engine: sa.Engine,
) -> None:
    run_id = start(engine)
    done(engine, run_id, "H1", "P1")
    with engine.execution_options(writes=True).begin() as connection:
        repo.finish_rebalance_run(
            connection,
            run_id=run_id,
            summary={"households": 1},
            finished_at=STARTED + timedelta(seconds=30),
            status="interrupted",
        )
    assert read(engine, run_id).status == "interrupted"
    with engine.execution_options(writes=True).begin() as connection:
        resumed = repo.resume_rebalance_run(connection, run_id=run_id)
    assert (resumed.status, resumed.finished_at, resumed.summary) == ("running", None, None)
    assert resumed.done == 1
    assert finished(engine, run_id) == {"H1"}


def test_finish_when_the_status_is_not_an_end_then_it_is_refused(engine: sa.Engine) -> None:
    run_id = start(engine)
    with (
        pytest.raises(ValidationError, match="finished or interrupted"),
        engine.execution_options(writes=True).begin() as connection,
    ):
        repo.finish_rebalance_run(
            connection, run_id=run_id, summary={}, finished_at=STARTED, status="running"
        )
    assert read(engine, run_id).status == "running"


def test_rebalance_runs_when_listed_then_latest_first_filtered_by_status_and_limited(
    engine: sa.Engine,
) -> None:
    ids = [start(engine, started_at=STARTED + timedelta(hours=h)) for h in range(3)]
    with engine.execution_options(writes=True).begin() as connection:
        repo.finish_rebalance_run(
            connection, run_id=ids[1], summary={}, finished_at=STARTED + timedelta(hours=2)
        )
    with engine.connect() as connection:
        assert [r.run_id for r in repo.rebalance_runs(connection)] == ids[::-1]
        assert [r.run_id for r in repo.rebalance_runs(connection, status="running")] == [
            ids[2],
            ids[0],
        ]
        assert [r.run_id for r in repo.rebalance_runs(connection, limit=1)] == [ids[2]]
        with pytest.raises(ValidationError, match="running"):
            repo.rebalance_runs(connection, status="done")


def test_runs_when_a_run_id_does_not_exist_then_each_function_says_so(engine: sa.Engine) -> None:
    with engine.execution_options(writes=True).begin() as connection:
        for call in (
            lambda: repo.rebalance_run(connection, run_id="NOPE"),
            lambda: repo.finished_households(connection, run_id="NOPE"),
            lambda: repo.run_households(connection, run_id="NOPE"),
            lambda: repo.household_done(
                connection, run_id="NOPE", household_id="H1", proposal_id=None
            ),
            lambda: repo.household_failed(connection, run_id="NOPE", household_id="H1", reason="x"),
            lambda: repo.resume_rebalance_run(connection, run_id="NOPE"),
            lambda: repo.finish_rebalance_run(
                connection, run_id="NOPE", summary={}, finished_at=STARTED
            ),
        ):
            with pytest.raises(NotFoundError, match="NOPE"):
                call()
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(t.run_households)
            ).scalar_one()
            == 0
        )


def test_households_finished_when_many_are_kept_at_once_then_each_is_kept_as_one_at_a_time(
    engine: sa.Engine,
) -> None:
    """H1 was done and H2 failed by an earlier attempt. Kept at once: H1, H2 and H3
    done, H4 failed — H1 stays as it was (the first proposal kept for it is the run's),
    H2 is done now, H3 and H4 are new."""
    run_id = start(engine)
    done(engine, run_id, "H1", "P1")
    failed(engine, run_id, "H2", "TimeoutError: solver")
    with engine.execution_options(writes=True).begin() as connection:
        changed = repo.households_finished(
            connection,
            run_id=run_id,
            done={"H1": "P1.2", "H2": "P2", "H3": None},
            failed={"H4": "ValueError: no price for XYZ"},
        )
        kept = repo.run_households(connection, run_id=run_id)
    assert changed == {"H2", "H3", "H4"}
    assert sorted((h.household_id, h.status, h.household_proposal_id, h.reason) for h in kept) == [
        ("H1", "done", "P1", None),
        ("H2", "done", "P2", None),
        ("H3", "done", None, None),
        ("H4", "failed", None, "ValueError: no price for XYZ"),
    ]
