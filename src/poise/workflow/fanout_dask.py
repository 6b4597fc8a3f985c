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

__all__ = ["PLUGIN", "SharedData", "run"]

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

PLUGIN = "poise-shared@"  # a run's plugin: this, then its client's id


class SharedData(WorkerPlugin):
    """What every task of one run shares, kept on each worker for the run."""

    def __init__(self, data: Any) -> None:
        self.data = data


def _task(plugin: str, function: Callable[[Any, T], R], task: T) -> tuple[bool, R | Failure]:
    shared = get_worker().plugins[plugin]
    assert isinstance(shared, SharedData)
    return attempt(function, shared.data, task)


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
    """``function(shared, task)`` for each task on the cluster at ``address``; at most
    ``in_flight`` tasks a worker thread at a time, so the caller's memory and the
    scheduler's hold a window of the run, not all of it."""
    client = _connect(address, timeout)
    plugin = f"{PLUGIN}{client.id}"
    pending: dict[Any, tuple[int, Any]] = {}  # a future's key: its task's index, the future
    try:
        _sweep(client)
        _wait_for_workers(client, address, worker_wait)
        _share(client, address, plugin, shared)
        room = in_flight * max(1, sum(client.nthreads().values()))
        waiting = iter(range(len(tasks)))
        completed = as_completed(loop=client.loop)

        def hand_out() -> None:
            while len(pending) < room:
                index = next(waiting, None)
                if index is None:
                    return
                future = client.submit(
                    _task, plugin, function, tasks[index], key=f"{plugin}-{index}", pure=False
                )
                pending[future.key] = (index, future)
                completed.add(future)

        hand_out()
        for future in completed:
            index, _ = pending.pop(future.key)
            if future.status == "finished":
                yield outcome(index, tasks[index], future.result())
            elif future.status == "error":  # its worker died under it, say
                failure = Failure.of(future.exception(), with_traceback=False)
                yield Failed(index, tasks[index], failure)
            else:  # cancelled: the scheduler lost it
                failure = Failure("CancelledError", "the Dask scheduler cancelled the task")
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
