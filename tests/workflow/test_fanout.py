"""The fan-out on its three back-ends, each real: the caller's process, a pool of worker
processes, and a Dask cluster of two worker processes started here.

The tasks (``fanout_tasks``) stand in for households: a figure each from rates every
task shares, one household that raises, one that kills its worker."""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import dask
import distributed
import pytest
from tests.workflow.fanout_tasks import Firm, Unwelcome, arrivals, tax, unpicklable, wait

from poise.domain.errors import ConfigError
from poise.workflow.fanout import (
    DaskCluster,
    Done,
    Failed,
    Fanout,
    Inline,
    Outcome,
    ProcessPool,
    choose,
    cpu_count,
    fan_out,
    pickled_by_fields,
)
from poise.workflow.fanout_dask import PLUGIN, SharedData, batch_size

HOUSEHOLDS = [f"{rate}{number}" for rate in "AB" for number in range(1, 11)]


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A real Dask cluster: two worker processes of one thread each, on loopback."""
    # The active memory manager drops copies of data it finds held twice every 2 s;
    # here every 50 ms, so that a run of a second meets it many times.
    amm = {"distributed.scheduler.active-memory-manager.interval": "50ms"}
    with dask.config.set(amm):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(params=["inline", "pool", "dask"])
def fanout(request: pytest.FixtureRequest) -> Fanout:
    if request.param == "inline":
        return Inline()
    if request.param == "pool":
        return ProcessPool(2)
    return DaskCluster(request.getfixturevalue("dask_scheduler"))


@pytest.fixture(params=["pool", "dask"])
def workers(request: pytest.FixtureRequest) -> Fanout:
    """A back-end with worker processes of its own."""
    if request.param == "pool":
        return ProcessPool(2)
    return DaskCluster(request.getfixturevalue("dask_scheduler"))


def by_index(outcomes: list[Outcome[str, Any]]) -> dict[int, object]:
    """Each task's value, or its failure's reason."""
    return {o.index: o.value if isinstance(o, Done) else o.failure.reason for o in outcomes}


def test_fan_out_when_a_task_raises_then_its_reason_is_reported_and_the_others_finish(
    fanout: Fanout,
) -> None:
    """
    Rates A 2, B 3: A1..A10 are 2..20, B1..B10 are 3..30 — except B4, which raises.
    Every back-end gives the same outcomes, each task once.
    """
    firm = Firm({"A": 2, "B": 3}, failing=frozenset({"B4"}))
    with fan_out(tax, HOUSEHOLDS, shared=firm, fanout=fanout) as run:
        outcomes = list(run)
    expected: dict[int, object] = {
        i: int(h[1:]) * {"A": 2, "B": 3}[h[0]] for i, h in enumerate(HOUSEHOLDS)
    }
    expected[HOUSEHOLDS.index("B4")] = "ValueError: no lots for B4"
    assert len(outcomes) == len(HOUSEHOLDS)
    assert by_index(outcomes) == expected
    assert all(o.task == HOUSEHOLDS[o.index] for o in outcomes)
    (failed,) = [o for o in outcomes if isinstance(o, Failed)]
    assert failed.failure.kind == "ValueError"
    assert failed.failure.message == "no lots for B4"
    assert "tax" in failed.failure.detail  # the traceback names the task's frame


def test_fan_out_when_one_task_is_slow_then_the_others_arrive_before_it(
    workers: Fanout, tmp_path: Path
) -> None:
    """H0 does not finish until the caller has been handed another household's
    outcome: a fan-out that kept outcomes back in task order would wait on H0 forever
    (H0 gives up after 10 s and fails)."""
    release = tmp_path / "release"
    firm = Firm({}, release=str(release))
    arrived: list[str] = []
    with fan_out(wait, [f"H{i}" for i in range(6)], shared=firm, fanout=workers) as run:
        for outcome in run:
            assert isinstance(outcome, Done), outcome
            arrived.append(outcome.value)
            release.touch()
    assert arrived[0] != "H0"
    assert sorted(arrived) == [f"H{i}" for i in range(6)]


def test_fan_out_when_tasks_share_data_then_it_arrives_once_in_each_worker(
    workers: Fanout,
) -> None:
    """Forty tasks on two workers: each worker process unpickles the firm once, before
    its first task, and never again; both workers take tasks. The caller takes its
    time with each outcome (as one that stores it does), so that workers sit idle
    between tasks while the cluster tidies its memory."""
    firm = Firm({"A": 1}, token=uuid.uuid4().hex)
    seen = []
    with fan_out(arrivals, [f"A{i}" for i in range(40)], shared=firm, fanout=workers) as run:
        for outcome in run:
            assert isinstance(outcome, Done), outcome
            seen.append(outcome.value)
            time.sleep(0.03)
    assert len(seen) == 40
    loads: dict[int, set[int]] = {}
    for pid, count in seen:
        loads.setdefault(pid, set()).add(count)
    assert os.getpid() not in loads
    assert len(loads) == 2
    assert all(counts == {1} for counts in loads.values()), loads


def test_inline_when_tasks_share_data_then_it_is_neither_copied_nor_sent() -> None:
    firm = Firm({"A": 1}, token=uuid.uuid4().hex)
    with fan_out(arrivals, ["A1", "A2"], shared=firm, fanout=Inline()) as run:
        assert {o.value for o in run if isinstance(o, Done)} == {(os.getpid(), 0)}


def test_pool_when_a_task_kills_its_worker_then_the_tasks_in_hand_fail_and_the_rest_finish() -> (
    None
):
    """A7 ends its worker process. The pool breaks; A7 and the tasks the pool held then
    (at most two a worker) are failed with the reason, and the rest are done in a
    fresh pool: every task has one outcome. The other tasks take 50 ms each, so the
    pool notices the death long before the last task is handed out, however busy the
    machine."""
    firm = Firm({"A": 2, "B": 3}, die="A7", pause=0.05)
    with fan_out(tax, HOUSEHOLDS, shared=firm, fanout=ProcessPool(2)) as run:
        outcomes = list(run)
    assert sorted(o.index for o in outcomes) == list(range(len(HOUSEHOLDS)))
    failed = [o for o in outcomes if isinstance(o, Failed)]
    assert "A7" in {o.task for o in failed}
    assert 1 <= len(failed) <= 4
    assert {o.failure.kind for o in failed} == {"BrokenProcessPool"}
    assert "a worker process died" in failed[0].failure.message
    done = {o.task: o.value for o in outcomes if isinstance(o, Done)}
    assert done["B10"] == 30  # handed out after the break, to the fresh pool
    assert len(done) == len(HOUSEHOLDS) - len(failed)


def test_pool_when_a_result_cannot_be_pickled_then_that_task_fails_with_the_reason() -> None:
    with fan_out(unpicklable, ["A1", "A2", "A3"], shared=Firm({}), fanout=ProcessPool(2)) as run:
        outcomes = list(run)
    assert len(outcomes) == 3
    assert all(isinstance(o, Failed) for o in outcomes)
    reasons = {o.failure.reason for o in outcomes if isinstance(o, Failed)}
    assert len(reasons) == 1
    assert "pickle" in reasons.pop().lower()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_pool_when_the_caller_stops_early_then_its_worker_processes_end() -> None:
    """The caller leaves after the first outcome (Ctrl-C, say): the tasks not begun are
    dropped and the workers stop."""
    firm = Firm({"A": 1}, token=uuid.uuid4().hex)
    started = time.monotonic()
    households = [f"A{i}" for i in range(1000)]
    with fan_out(arrivals, households, shared=firm, fanout=ProcessPool(2)) as run:
        first = next(run)
    assert time.monotonic() - started < 10  # not the 20 s that all 1,000 would take
    assert isinstance(first, Done)
    pid = first.value[0]
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_dask_when_a_run_ends_then_the_cluster_keeps_nothing_of_it(dask_scheduler: str) -> None:
    """Neither the shared data nor a task stays on the cluster after the run, run to its
    end or left early."""
    firm = Firm({"A": 2}, token=uuid.uuid4().hex)
    fanout = DaskCluster(dask_scheduler)
    with fan_out(tax, [f"A{i}" for i in range(1, 9)], shared=firm, fanout=fanout) as run:
        assert len(list(run)) == 8
    with fan_out(arrivals, [f"A{i}" for i in range(100)], shared=firm, fanout=fanout) as run:
        next(run)
    with distributed.Client(dask_scheduler, set_as_default=False) as client:
        deadline = time.monotonic() + 5
        while (held := client.run_on_scheduler(_keys)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.run_on_scheduler(_plugins) == []
    assert held == []


def test_dask_when_the_workers_cannot_take_the_shared_data_then_the_run_stops_saying_why(
    dask_scheduler: str,
) -> None:
    """Not one failure a household: nothing can run, and the error says what to mend."""
    fanout = DaskCluster(dask_scheduler)
    with pytest.raises(ConfigError, match=r"ModuleNotFoundError.*No module named 'poise'"):
        list(fan_out(tax, ["A1", "A2"], shared=Unwelcome(), fanout=fanout))
    with distributed.Client(dask_scheduler, set_as_default=False) as client:
        assert client.run_on_scheduler(_plugins) == []


def test_dask_when_a_run_died_without_cleaning_up_then_the_next_run_sweeps_its_data_away(
    dask_scheduler: str,
) -> None:
    with distributed.Client(dask_scheduler, set_as_default=False) as dead:
        dead.register_plugin(SharedData(Firm({"A": 1})), name=f"{PLUGIN}{dead.id}")
    with distributed.Client(dask_scheduler, set_as_default=False) as client:
        assert client.run_on_scheduler(_plugins) == [f"{PLUGIN}{dead.id}"]
        with fan_out(
            tax, ["A1", "A2"], shared=Firm({"A": 1}), fanout=DaskCluster(dask_scheduler)
        ) as run:
            assert len(list(run)) == 2
        assert client.run_on_scheduler(_plugins) == []


def _plugins(dask_scheduler: Any) -> list[str]:
    return [name for name in dask_scheduler.worker_plugins if name.startswith("poise")]


def _keys(dask_scheduler: Any) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks]


def test_dask_when_there_are_many_tasks_then_they_go_in_batches_each_with_its_outcome(
    dask_scheduler: str,
) -> None:
    """200 households on two worker threads go six to a Dask task; B4 still fails alone,
    and every other household has its own figure, once."""
    assert [batch_size(n, 2) for n in (6, 100, 200, 4040)] == [1, 3, 6, 8]
    households = [f"{rate}{number}" for rate in "AB" for number in range(1, 101)]
    firm = Firm({"A": 2, "B": 3}, failing=frozenset({"B4"}))
    fanout = DaskCluster(dask_scheduler)
    with fan_out(tax, households, shared=firm, fanout=fanout) as run:
        outcomes = list(run)
    assert sorted(o.index for o in outcomes) == list(range(len(households)))
    expected: dict[int, object] = {
        i: int(h[1:]) * {"A": 2, "B": 3}[h[0]] for i, h in enumerate(households)
    }
    expected[households.index("B4")] = "ValueError: no lots for B4"
    assert by_index(outcomes) == expected
    assert all(o.task == households[o.index] for o in outcomes)


def test_dask_when_no_scheduler_answers_then_the_error_names_the_setting() -> None:
    fanout = DaskCluster("tcp://127.0.0.1:9", timeout=0.5)
    with pytest.raises(ConfigError, match="POISE_DASK_SCHEDULER"):
        list(fan_out(tax, ["A1", "A2"], shared=Firm({"A": 1}), fanout=fanout))


@pytest.mark.parametrize(
    ("tasks", "workers", "scheduler", "expected"),
    [
        (1, None, None, Inline()),  # one household: no processes
        (1, None, "tcp://127.0.0.1:8786", Inline()),
        (0, 4, None, Inline()),
        (50, 1, None, Inline()),  # POISE_WORKERS=1
        (50, 4, None, ProcessPool(4)),
        (3, 4, None, ProcessPool(3)),  # never more workers than tasks
        (50, None, None, ProcessPool(min(cpu_count(), 50)) if cpu_count() > 1 else Inline()),
        (50, 1, "tcp://127.0.0.1:8786", DaskCluster("tcp://127.0.0.1:8786")),
    ],
)
def test_choose_when_settings_and_run_sizes_vary_then_the_back_end_fits(
    tasks: int, workers: int | None, scheduler: str | None, expected: Fanout
) -> None:
    assert choose(tasks=tasks, workers=workers, dask_scheduler=scheduler) == expected


def test_choose_when_workers_is_below_one_then_it_is_a_setting_error() -> None:
    with pytest.raises(ConfigError, match="POISE_WORKERS"):
        choose(tasks=10, workers=0)


# ── what travels, pickled field by field ──────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Lot:
    lot_id: str
    shares: Decimal


@dataclass(frozen=True, slots=True)
class Note:
    text: str


@dataclass
class Loose:  # neither frozen nor slotted: pickled as Python pickles any object
    lots: list[Lot]


@dataclass(frozen=True, slots=True)
class Book:
    lots: tuple[Lot, ...]
    notes: Mapping[str, Note | None] = field(default_factory=dict)
    loose: Loose | None = None


def test_pickled_by_fields_when_records_nest_then_each_round_trips_as_dataclasses_pickle_it() -> (
    None
):
    own = {cls: (cls.__getstate__, cls.__setstate__) for cls in (Book, Lot, Note)}
    pickled_by_fields(Book)
    for cls, (getstate, setstate) in own.items():  # reached through tuples, mappings, unions
        assert (cls.__getstate__, cls.__setstate__) != (getstate, setstate), cls
    assert "__setstate__" not in vars(Loose)
    book = Book(
        (Lot("L1", Decimal("10.5")), Lot("L2", Decimal("3"))),
        {"a": Note("kept"), "b": None},
        Loose([Lot("L3", Decimal("1"))]),
    )
    assert pickle.loads(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL)) == book
    lot = book.lots[0]
    # The same state as the dataclass's own, so either side reads the other's.
    assert list(lot.__getstate__()) == [getattr(lot, f.name) for f in dataclasses.fields(lot)]
    read = object.__new__(Note)
    read.__setstate__(["from an older pickle"])
    assert read == Note("from an older pickle")
