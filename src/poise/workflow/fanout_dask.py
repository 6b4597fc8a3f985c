"""The fan-out's Dask back-end (:class:`poise.workflow.fanout.DaskCluster`), apart so
that only a run on a cluster imports distributed (0.4 s).

The data every task shares goes to each worker in a worker plugin, unpickled there
once, when the worker takes the plugin (and on a worker that joins during the run,
when it joins). A broadcast scatter was measured too (``bench/fanout.py``): it sends
48 MB to two workers in about half the time, but the scattered data is an ordinary
key of the cluster, and its active memory manager drops the copies of a key held on
more workers than have tasks waiting for it — so a worker idle for a moment while
the caller stores an outcome loses its copy and is sent it again: up to three times
a worker in a 5-second run at Dask's own 2-second interval, up to twenty at 100 ms. A
plugin is not a key: it stays until the run unregisters it.

A run that dies without unregistering its plugin (killed, its machine gone) leaves
it on the cluster; the next run from any client sweeps away every poise plugin whose
client is no longer connected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from distributed import Client, WorkerPlugin, as_completed, get_worker

from poise.domain.errors import ConfigError
from poise.workflow.fanout import Failed, Failure, Outcome, attempt, outcome

__all__ = ["PLUGIN", "SharedData", "batch_size", "run"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

PLUGIN = "poise-shared@"  # a run's plugin: this, then its client's id
BATCH = 8  # tasks a Dask task takes, at most
BATCHES_A_THREAD = 16  # ... so long as each worker thread still has this many to take


class SharedData(WorkerPlugin):
    """What every task of one run shares, kept on each worker for the run."""

    def __init__(self, data: Any) -> None:
        self.data = data


def _batch(
    plugin: str, function: Callable[[Any, T], R], tasks: Sequence[T]
) -> list[tuple[bool, R | Failure]]:
    shared = get_worker().plugins[plugin]
    assert isinstance(shared, SharedData)
    return [attempt(function, shared.data, task) for task in tasks]


def batch_size(tasks: int, threads: int) -> int:
    """Tasks a Dask task takes: one where there are few, up to ``BATCH`` where there are
    enough to keep every worker thread busy many times over. Each Dask task costs the
    scheduler and the client their own work, on the same cores as the workers: in a
    firm-wide run of 4,040 households of about 30 ms each, a third of the time."""
    return max(1, min(BATCH, tasks // (BATCHES_A_THREAD * max(1, threads))))


def run(
    address: str,
    function: Callable[[S, T], R],
    tasks: Sequence[T],
    *,
    shared: S,
    timeout: float,
    worker_wait: float,
    in_flight: int,
) -> Iterator[Outcome[T, R]]:
    """``function(shared, task)`` for each task on the cluster at ``address``, in
    batches of :func:`batch_size` (each task's outcome its own, one failing alone); at
    most ``in_flight`` batches a worker thread at a time, so the caller's memory and the
    scheduler's hold a window of the run, not all of it."""
    client = _connect(address, timeout)
    plugin = f"{PLUGIN}{client.id}"
    pending: dict[Any, tuple[range, Any]] = {}  # a future's key: its tasks' indices, the future
    try:
        _sweep(client)
        _wait_for_workers(client, address, worker_wait)
        _share(client, address, plugin, shared)
        threads = max(1, sum(client.nthreads().values()))
        room = in_flight * threads
        size = batch_size(len(tasks), threads)
        waiting = iter(range(0, len(tasks), size))
        completed = as_completed(loop=client.loop)

        def hand_out() -> None:
            while len(pending) < room:
                first = next(waiting, None)
                if first is None:
                    return
                indices = range(first, min(first + size, len(tasks)))
                future = client.submit(
                    _batch,
                    plugin,
                    function,
                    [tasks[i] for i in indices],
                    key=f"{plugin}-{first}",
                    pure=False,
                )
                pending[future.key] = (indices, future)
                completed.add(future)

        hand_out()
        for future in completed:
            indices, _ = pending.pop(future.key)
            if future.status == "finished":
                for index, attempted in zip(indices, future.result(), strict=True):
                    yield outcome(index, tasks[index], attempted)
            else:
                failure = (  # its worker died under it, say; or the scheduler lost it
                    Failure.of(future.exception(), with_traceback=False)
                    if future.status == "error"
                    else Failure("CancelledError", "the Dask scheduler cancelled the task")
                )
                for index in indices:
                    yield Failed(index, tasks[index], failure)
            future.release()
            hand_out()
    finally:
        try:
            if pending:
                client.cancel([future for _, future in pending.values()])
            if plugin in _plugins(client):
                with contextlib.suppress(Exception):  # a worker that never took it
                    client.unregister_worker_plugin(plugin)
        finally:
            client.close()


def _connect(address: str, timeout: float) -> Client:
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address}: {exc} — is it running"
            " (poise cluster)? (POISE_DASK_SCHEDULER)"
        ) from None


def _share(client: Client, address: str, plugin: str, shared: Any) -> None:
    try:
        client.register_plugin(SharedData(shared), name=plugin)
    except Exception as exc:  # raised on a worker, and sent back wrapped
        why = str(exc) if type(exc) is Exception else f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"the workers of the Dask cluster at {address} cannot take the run's data:"
            f" {why} — is poise, at this version, installed where they run?"
        ) from None


def _wait_for_workers(client: Client, address: str, seconds: float) -> None:
    try:
        client.wait_for_workers(1, timeout=seconds)
    except TimeoutError:
        raise ConfigError(
            f"the Dask cluster at {address} has had no worker for {seconds:g} s — start"
            f" some (dask worker {address}), or unset POISE_DASK_SCHEDULER"
        ) from None


def _plugins(client: Client) -> dict[str, bool]:
    """The poise plugins on the cluster, each with whether its client is connected.

    Asked of the scheduler with a function defined here, inside: pickled by value,
    it runs on a scheduler that has no poise installed."""

    def ask(dask_scheduler: Any) -> dict[str, bool]:
        clients = set(dask_scheduler.clients)
        return {
            name: name.removeprefix(PLUGIN) in clients
            for name in dask_scheduler.worker_plugins
            if name.startswith(PLUGIN)
        }

    found: dict[str, bool] = client.run_on_scheduler(ask)
    return found


def _sweep(client: Client) -> None:
    """Unregister the plugins of runs whose client is gone."""
    for name, connected in _plugins(client).items():
        if not connected:
            client.unregister_worker_plugin(name)
