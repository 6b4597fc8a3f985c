"""Benchmark: what a firm-wide run pays to fan out, before any household is planned.

    .venv/bin/python bench/fanout.py [--workers 2] [--megabytes 48] [--repeats 3]

1. **A local pool's start**, by start method: the time from creating a pool of
   ``--workers`` processes to each having answered one task, with the modules a
   household's task needs (``poise.workflow.rebalance``: numpy, SciPy, the solvers)
   imported in the caller first, as a run has them. Each method starts ``--repeats``
   pools one after another in one process: ``forkserver`` pays its server's start
   (and its preload of those modules) once, then forks from it.
2. **Shared data to a Dask cluster** of ``--workers`` worker processes on loopback
   (``LocalCluster``): ``--megabytes`` of prices sent to every worker by a broadcast
   scatter, by a worker plugin, and — for contrast — inside each task; then 200 tiny
   tasks that read it, handed out two a worker at a time as the fan-out does, each
   outcome taken by a caller that spends ``--caller-ms`` on it (storing it), and how
   often each worker unpickled the prices ("1/2": some of its tasks saw them arrive
   once, later ones twice — the cluster dropped its copy and sent it again).

Prints Markdown rows for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import dask
import numpy as np
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

import poise.workflow.rebalance  # noqa: F401 - what a household's task needs, in every worker

LOADS: dict[str, int] = {}  # each run's token: how often this process unpickled its data
TASKS = 200


class Prices:
    """Shared data that counts, in each process, how often it arrived there."""

    def __init__(self, megabytes: int, token: str) -> None:
        self.values = np.random.default_rng(7).random(megabytes * 1_000_000 // 8)
        self.token = token

    def __getstate__(self) -> dict[str, Any]:
        return {"values": self.values, "token": self.token}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        LOADS[self.token] = LOADS.get(self.token, 0) + 1


def pid(_: int) -> int:
    return os.getpid()


def read(prices: Prices, index: int) -> tuple[int, int]:
    time.sleep(0.02)  # a small household's planning: both workers are needed
    return os.getpid(), LOADS.get(prices.token, 0)


class Install(WorkerPlugin):
    def __init__(self, prices: Prices) -> None:
        self.prices = prices


def read_installed(name: str, index: int) -> tuple[int, int]:
    plugin = get_worker().plugins[name]
    assert isinstance(plugin, Install)
    return read(plugin.prices, index)


def pool_start(method: str, workers: int, repeats: int) -> list[float]:
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["poise.workflow.rebalance", "fanout"])
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(pid, range(workers)))
        seconds.append(time.perf_counter() - start)
    return seconds


def dask_shared(
    workers: int, megabytes: int, repeats: int, caller: float, amm: int
) -> list[tuple[str, float, float, str]]:
    def tasks(submit: Any, count: int) -> tuple[float, str]:
        """``count`` tasks, ``IN_FLIGHT`` a worker at a time as the fan-out hands them
        out, each outcome taken by a caller that spends ``caller`` seconds on it."""
        start = time.perf_counter()
        waiting = iter(range(count))
        completed = as_completed([submit(i) for i in itertools.islice(waiting, 2 * workers)])
        seen = []
        for future in completed:
            seen.append(future.result())
            time.sleep(caller)  # the caller stores the outcome
            following = next(waiting, None)
            if following is not None:
                completed.add(submit(following))
        loads: dict[int, set[int]] = {}
        for process, loaded in seen:
            loads.setdefault(process, set()).add(loaded)
        return time.perf_counter() - start, ", ".join(
            "/".join(map(str, sorted(c))) for c in loads.values()
        )

    rows = []
    with dask.config.set({"distributed.scheduler.active-memory-manager.interval": f"{amm}ms"}):
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
    with Client(cluster) as client:
        for _ in range(repeats):
            prices = Prices(megabytes, uuid.uuid4().hex)
            start = time.perf_counter()
            data = client.scatter(prices, broadcast=True, hash=False)
            sent = time.perf_counter() - start
            ran, loads = tasks(partial(client.submit, read, data, pure=False), TASKS)
            rows.append(("broadcast scatter", sent, ran, loads))
            del data

            prices = Prices(megabytes, uuid.uuid4().hex)
            name = f"bench-{prices.token}"
            start = time.perf_counter()
            client.register_plugin(Install(prices), name=name)
            sent = time.perf_counter() - start
            ran, loads = tasks(partial(client.submit, read_installed, name, pure=False), TASKS)
            client.unregister_worker_plugin(name)
            rows.append(("worker plugin", sent, ran, loads))

        prices = Prices(megabytes, uuid.uuid4().hex)
        start = time.perf_counter()
        ran, loads = tasks(partial(client.submit, read, prices, pure=False), 20)
        rows.append(("inside each of 20 tasks", 0.0, ran, loads))
    cluster.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--megabytes", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--caller-ms", type=float, default=20, help="to take each outcome")
    parser.add_argument(
        "--amm-ms",
        type=int,
        default=2000,
        help="how often the cluster's active memory manager runs (Dask's default: 2000)",
    )
    args = parser.parse_args()

    today = datetime.now(UTC).date()
    print(f"| date | start method | {args.workers} workers answering, pool after pool |")
    print("|---|---|---|")
    for method in ("fork", "forkserver", "spawn"):
        seconds = pool_start(method, args.workers, args.repeats)
        shown = ", ".join(f"{s * 1000:.0f} ms" for s in seconds)
        print(f"| {today} | {method} | {shown} |")
    print()
    what = f"{args.megabytes} MB to {args.workers} workers by"
    print(f"| date | {what} | AMM every | sent | tasks | loads |")
    print("|---|---|---:|---:|---:|---|")
    shared = dask_shared(
        args.workers, args.megabytes, args.repeats, args.caller_ms / 1000, args.amm_ms
    )
    for how, sent, ran, loads in shared:
        print(
            f"| {today} | {how} | {args.amm_ms} ms | {sent * 1000:.0f} ms"
            f" | {ran * 1000:.0f} ms | {loads} |"
        )


if __name__ == "__main__":
    # Run as the module ``fanout`` (this folder on the path), so that workers unpickle
    # its classes and functions by name, as they would poise's own. A forkserver
    # (before Python 3.12) starts with the environment's path, not this process's: it
    # finds the module, to preload it, on PYTHONPATH.
    HERE = str(Path(__file__).resolve().parent)
    sys.path.insert(0, HERE)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    import fanout

    fanout.main()
