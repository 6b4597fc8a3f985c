"""Fan one task function out over many inputs, and hand back each outcome as it completes.

One interface, three back-ends, chosen by name (:data:`FANOUTS`) or by the settings
(:func:`choose`):

- ``inline`` — the caller's own process, one task after another: a run of one task,
  or ``POISE_WORKERS=1``; nothing starts, nothing is pickled.
- ``pool`` — a local process pool (``POISE_WORKERS`` processes, default one per CPU).
  Workers come from a ``forkserver`` that has imported the task's module once: a
  forked copy of the caller would inherit its threads (a progress bar's, a database
  driver's) and its open database connections, and ``spawn`` imports numpy, scipy
  and the solvers again in every worker (about 1 s each; the forkserver's workers
  start in 35 ms once it runs — ``bench/fanout.py``).
- ``dask`` — a Dask distributed cluster (``POISE_DASK_SCHEDULER``, e.g. one started
  by ``poise cluster``); poise must be installed on its workers.

The task function is called as ``function(shared, task)``. ``shared`` is what every
task needs (a firm's prices, models, risk model): it is sent to each worker once, not
with every task — the pool's workers receive it when they start, a Dask cluster's in
a worker plugin (:mod:`poise.workflow.fanout_dask` says why not a scatter) — and only
the tasks travel one by one, a few per worker at a time. The function and ``shared``
must be picklable (a function defined at a module's top level).

A task that raises does not stop the run: its outcome is a :class:`Failed` carrying
the exception's type and message, and the other tasks go on. So is a task whose
worker died under it (the pool then starts afresh for the tasks not yet handed out).
Outcomes arrive in the order tasks complete, each with the index of its task.

Owns: where tasks run and how their outcomes come back.
May not touch: the store, the bus, or any finance — tasks arrive as plain data and
leave as plain data; the caller persists each outcome as it arrives.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.forkserver
import operator
import os
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, get_args, get_type_hints

from poise.domain.errors import ConfigError

__all__ = [
    "CONNECT_TIMEOUT",
    "FANOUTS",
    "DaskCluster",
    "Done",
    "Failed",
    "Failure",
    "Fanout",
    "Inline",
    "Outcome",
    "Outcomes",
    "ProcessPool",
    "choose",
    "cpu_count",
    "fan_out",
    "pickled_by_fields",
    "warm",
]

S = TypeVar("S")  # what every task shares
T = TypeVar("T")  # one task's input
R = TypeVar("R")  # one task's result

CONNECT_TIMEOUT = 5  # seconds to reach a Dask scheduler, as for a database server
WORKER_WAIT = 30  # seconds to wait for a Dask cluster that has no worker yet
IN_FLIGHT = 2  # tasks handed out per worker at a time: one working, one waiting
FRUITLESS_POOLS = 3  # pools in a row whose workers died before any task was done: give up


# ── what travels ──────────────────────────────────────────────────────────────


def pickled_by_fields(*roots: type) -> None:
    """``roots``, and every dataclass their fields hold (in tuples, mappings, unions, ...),
    pickled by their fields' names read once — where frozen with slots, whose pickling
    :mod:`dataclasses` gives by looking the fields up again for every object: two
    thirds of the time it takes to pickle a household's lots or plan, values that
    cross between a run and its workers by the hundred thousand. The state is the
    same (the fields' values in order), so either side reads the other's."""
    seen: set[type] = set()
    todo = list(roots)
    while todo:
        cls = todo.pop()
        if cls in seen or not dataclasses.is_dataclass(cls):
            continue
        seen.add(cls)
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            todo.extend(_types_in(hints[f.name]))
        params = vars(cls).get("__dataclass_params__")  # its own, not a base class's
        if params is not None and params.frozen and "__slots__" in vars(cls):
            _by_fields(cls)


def _types_in(hint: Any) -> Iterator[type]:
    if isinstance(hint, type):
        yield hint
    for argument in get_args(hint):
        yield from _types_in(argument)


def _by_fields(cls: type) -> None:
    names = tuple(f.name for f in dataclasses.fields(cls))
    values = operator.attrgetter(*names) if names else (lambda _: ())
    single = len(names) == 1

    def getstate(self: object) -> list[Any] | tuple[Any, ...]:
        return [values(self)] if single else values(self)

    def setstate(self: object, state: Sequence[Any]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    type.__setattr__(cls, "__getstate__", getstate)  # as dataclasses sets its own
    type.__setattr__(cls, "__setstate__", setstate)


# ── outcomes ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a task failed: the exception's type and message (``detail``: its traceback,
    for a log; empty where the exception came from the machinery, not the task)."""

    kind: str
    message: str
    detail: str = ""

    @property
    def reason(self) -> str:
        """``kind: message``, as a run reports it."""
        return f"{self.kind}: {self.message}" if self.message else self.kind

    @classmethod
    def of(cls, exc: BaseException, *, with_traceback: bool = True) -> Failure:
        detail = "".join(traceback.format_exception(exc)) if with_traceback else ""
        return cls(type(exc).__name__, str(exc), detail)


@dataclass(frozen=True, slots=True)
class Done(Generic[T, R]):
    """A task that returned: its index among the tasks, the task, and its result."""

    index: int
    task: T
    value: R


@dataclass(frozen=True, slots=True)
class Failed(Generic[T]):
    """A task that raised, or whose worker died under it."""

    index: int
    task: T
    failure: Failure


Outcome: TypeAlias = Done[T, R] | Failed[T]


def attempt(function: Callable[[S, T], R], shared: S, task: T) -> tuple[bool, R | Failure]:
    """Run one task where it is sent; its exception, if any, comes back as a value (an
    exception object may not survive pickling; its type name and message do)."""
    try:
        return True, function(shared, task)
    except Exception as exc:
        return False, Failure.of(exc)


def outcome(index: int, task: T, attempt: tuple[bool, Any]) -> Outcome[T, Any]:
    ok, value = attempt
    return Done(index, task, value) if ok else Failed(index, task, value)


# ── the port ──────────────────────────────────────────────────────────────────


class Fanout(Protocol):
    """Where a run's tasks go. ``run`` yields one outcome per task, as each completes,
    and cleans up (processes stopped, a cluster's futures released) when the iteration
    ends or is closed early."""

    @property
    def name(self) -> str: ...

    @property
    def workers(self) -> int | None:
        """How many tasks run at once (None: the cluster decides)."""
        ...

    def run(
        self, function: Callable[[S, T], R], tasks: Sequence[T], *, shared: S
    ) -> Iterator[Outcome[T, R]]: ...


# ── inline ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Inline:
    """Every task in the caller's process, one after another."""

    name: str = "inline"
    workers: int | None = 1

    def run(
        self, function: Callable[[S, T], R], tasks: Sequence[T], *, shared: S
    ) -> Iterator[Outcome[T, R]]:
        for index, task in enumerate(tasks):
            yield outcome(index, task, attempt(function, shared, task))


# ── a local process pool ──────────────────────────────────────────────────────

# What a pool worker runs every task with: set once, when the worker starts.
_installed: tuple[Callable[[Any, Any], Any], Any] | None = None


def _install(payload: bytes) -> None:
    """A pool worker's start: keep the function and the shared data, and leave Ctrl-C
    to the caller, who stops the pool (the terminal sends it to every process)."""
    global _installed  # noqa: PLW0603 - one per worker process, set when it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _installed = pickle.loads(payload)  # the caller's own bytes


def warm(fanout: Fanout, function: Callable[..., Any]) -> None:
    """Start, now, what ``fanout``'s workers will be forked from, if it is a process
    pool: the forkserver imports the task's module (numpy, the solvers, ...) in a
    process of its own, a second or so — while the caller reads what the tasks need,
    rather than after."""
    if isinstance(fanout, ProcessPool):
        _context(function)
        multiprocessing.forkserver.ensure_running()


def _pool_task(task: Any) -> tuple[bool, Any]:
    if _installed is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("a pool worker ran a task before it was set up")
    function, shared = _installed
    return attempt(function, shared, task)


def cpu_count() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - platforms without affinity


def _context(function: Callable[..., Any]) -> multiprocessing.context.BaseContext:
    """A forkserver that imports the task's module (and with it numpy, the solvers,
    ...) once, so that each worker forks with them already loaded. Where the
    forkserver already runs, its preload is what it was; workers import the rest."""
    context = multiprocessing.get_context("forkserver")
    modules = [__name__]
    if function.__module__ not in ("__main__", "__mp_main__", __name__):
        modules.append(function.__module__)
    context.set_forkserver_preload(modules)
    return context


@dataclass(frozen=True, slots=True)
class ProcessPool:
    """A pool of local worker processes, started for the run and stopped after it."""

    workers: int | None
    name: str = "pool"

    def run(
        self, function: Callable[[S, T], R], tasks: Sequence[T], *, shared: S
    ) -> Iterator[Outcome[T, R]]:
        # Pickled once here, not once per worker: a function or data that cannot be
        # pickled is an error before any process starts.
        payload = pickle.dumps((function, shared), protocol=pickle.HIGHEST_PROTOCOL)
        workers = max(1, min(self.workers or cpu_count(), len(tasks)))
        waiting = deque(range(len(tasks)))
        fruitless = 0  # pools in a row that broke before a task was done
        while waiting:  # once more for each time a worker died and took the pool with it
            executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=_context(function),
                initializer=_install,
                initargs=(payload,),
            )
            done = 0
            try:
                for outcome in _serve(executor, tasks, waiting, workers * IN_FLIGHT):
                    done += isinstance(outcome, Done)
                    yield outcome
            finally:
                # Tasks not yet begun are dropped; the ones in hand end first (a task
                # is one household: seconds at most).
                executor.shutdown(wait=True, cancel_futures=True)
            fruitless = 0 if done else fruitless + 1
            if waiting and fruitless >= FRUITLESS_POOLS:  # workers die whatever they run
                failure = Failure(
                    "BrokenProcessPool",
                    f"{fruitless} pools in a row lost their workers before any task was"
                    " done: the workers cannot run (see the errors above)",
                )
                while waiting:
                    index = waiting.popleft()
                    yield Failed(index, tasks[index], failure)


def _serve(
    executor: ProcessPoolExecutor, tasks: Sequence[T], waiting: deque[int], room: int
) -> Iterator[Outcome[T, Any]]:
    """Keep ``room`` tasks in the pool and yield outcomes as they come, until no task is
    waiting or the pool breaks: then every task that was in it and did not finish is
    failed (which one killed its worker cannot be told), and the rest stay waiting."""
    pending: dict[Future[tuple[bool, Any]], int] = {}
    broken: BaseException | None = None
    while waiting or pending:
        while waiting and len(pending) < room and broken is None:
            try:
                pending[executor.submit(_pool_task, tasks[waiting[0]])] = waiting[0]
            except BrokenProcessPool as exc:
                broken = exc
            else:
                waiting.popleft()
        if not pending:
            return
        done, _ = wait(pending, return_when=ALL_COMPLETED if broken else FIRST_COMPLETED)
        for future in sorted(done, key=pending.__getitem__):
            index = pending.pop(future)
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                broken = error
                yield Failed(index, tasks[index], _died(error))
            elif error is not None:  # its result could not be pickled, say
                yield Failed(index, tasks[index], Failure.of(error, with_traceback=False))
            else:
                yield outcome(index, tasks[index], future.result())
        if broken is not None and not pending:
            return


def _died(exc: BaseException) -> Failure:
    return Failure(
        type(exc).__name__,
        "a worker process died while this task was in the pool (killed, out of memory,"
        " or a crash in native code); the tasks it held are failed, the rest go on",
    )


# ── a Dask cluster ────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class DaskCluster:
    """The workers of the Dask cluster whose scheduler is at ``address``."""

    address: str
    timeout: float = CONNECT_TIMEOUT  # seconds to reach the scheduler
    name: str = "dask"
    workers: int | None = None

    def run(
        self, function: Callable[[S, T], R], tasks: Sequence[T], *, shared: S
    ) -> Iterator[Outcome[T, R]]:
        # Only a run on a cluster pays for importing distributed (0.4 s).
        from poise.workflow import fanout_dask  # noqa: PLC0415

        return fanout_dask.run(
            self.address,
            function,
            tasks,
            shared=shared,
            timeout=self.timeout,
            worker_wait=WORKER_WAIT,
            in_flight=IN_FLIGHT,
        )


# ── choosing, and running ─────────────────────────────────────────────────────

FANOUTS: dict[str, Callable[..., Fanout]] = {
    "inline": Inline,
    "pool": ProcessPool,
    "dask": DaskCluster,
}


def choose(*, tasks: int, workers: int | None = None, dask_scheduler: str | None = None) -> Fanout:
    """Where ``tasks`` tasks run: inline when there is one (or none) or ``workers`` is
    1 without a cluster; on the Dask cluster at ``dask_scheduler`` when one is named;
    else on a pool of ``workers`` processes (None: one per CPU), no more than tasks."""
    if workers is not None and workers < 1:
        raise ConfigError(f"POISE_WORKERS must be 1 or more, not {workers}")
    if tasks <= 1:
        return Inline()
    if dask_scheduler:
        return DaskCluster(dask_scheduler)
    count = min(workers or cpu_count(), tasks)
    return Inline() if count == 1 else ProcessPool(count)


class Outcomes(Generic[T, R]):
    """A run's outcomes, as they complete; a context manager that stops the run's
    workers when left early (Ctrl-C, an error persisting an outcome)."""

    def __init__(self, fanout: Fanout, outcomes: Iterator[Outcome[T, R]]) -> None:
        self.fanout = fanout
        self._outcomes = outcomes

    def __iter__(self) -> Iterator[Outcome[T, R]]:
        return self

    def __next__(self) -> Outcome[T, R]:
        return next(self._outcomes)

    def close(self) -> None:
        close = getattr(self._outcomes, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Outcomes[T, R]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def fan_out(
    function: Callable[[S, T], R],
    tasks: Sequence[T],
    *,
    shared: S,
    fanout: Fanout | None = None,
    workers: int | None = None,
    dask_scheduler: str | None = None,
) -> Outcomes[T, R]:
    """``function(shared, task)`` for every task, on ``fanout`` (default:
    :func:`choose` with ``workers`` and ``dask_scheduler``, as the settings
    ``POISE_WORKERS`` and ``POISE_DASK_SCHEDULER`` give them)::

        settings = Settings()
        with fan_out(plan, books, shared=reference,
                     workers=settings.workers, dask_scheduler=settings.dask_scheduler) as run:
            for outcome in run:
                match outcome:
                    case Done(task=book, value=plan): ...  # persist it now
                    case Failed(task=book, failure=failure): ...  # failure.reason
    """
    chosen = fanout or choose(tasks=len(tasks), workers=workers, dask_scheduler=dask_scheduler)
    return Outcomes(chosen, chosen.run(function, tasks, shared=shared))
