"""The worker as its own process on a NATS JetStream of the test's own, for the restart test.

It runs what ``poise worker --bus nats`` runs — :func:`poise.workflow.worker.serve` on the
bus alone (no sweep of the store, so every request comes by the bus) — on streams with
the test's prefix and namespace, a one-second ack wait and the test's database.

    python worker_process.py DATABASE_URL NATS_URL STREAM_PREFIX NAMESPACE
        [--hang-after K --marker PATH] [--idle SECONDS]

Each request taken is printed as one JSON line. ``--hang-after K`` makes it stop for good
right after the K-th household proposal is committed and before its request is
acknowledged — the worst moment to be killed — writing that request's id to
``--marker``. Otherwise it exits 0 once the store holds no open request and nothing has
come for ``--idle`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from poise.bus import DeliveryPolicy
from poise.bus.nats import NatsBus
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.workflow.run import RunOptions
from poise.workflow.worker import Handled, serve, worker_options

DEADLINE = 90.0  # seconds; the process gives up rather than outlive its test


async def work(options: argparse.Namespace) -> None:
    engine = make_engine(options.database_url)
    bus = await NatsBus.connect(
        options.nats_url,
        stream_prefix=options.stream_prefix,
        namespace=options.namespace,
        policy=DeliveryPolicy(ack_wait=1.0, max_deliver=5, retry_delay=0.1),
        poll_interval=0.2,
    )
    stop = asyncio.Event()
    last = time.monotonic()
    plans = 0

    async def taken(handled: Handled) -> None:
        nonlocal last, plans
        last = time.monotonic()
        line = {
            "request_id": handled.request_id,
            "result": handled.result.value,
            "household_id": handled.household_id,
            "household_proposal_id": handled.household_proposal_id,
            "answered": list(handled.answered),
        }
        print(json.dumps(line), flush=True)
        plans += handled.household_proposal_id is not None
        if options.hang_after and plans == options.hang_after:
            Path(options.marker).write_text(handled.request_id)
            await asyncio.Event().wait()  # never acknowledged; waits for SIGKILL

    done = False

    async def idle() -> None:
        nonlocal done
        started = time.monotonic()
        while time.monotonic() - started < DEADLINE:
            await asyncio.sleep(0.2)
            if options.hang_after or time.monotonic() - last < options.idle:
                continue
            with engine.connect() as connection:
                still = repo.count_requests(connection, where=repo.RequestFilter(status="open"))
            if still == 0:
                done = True
                break
        stop.set()

    watcher = asyncio.create_task(idle())
    try:
        await serve(
            engine,
            bus,
            worker_options(RunOptions(method="optimize"), Settings()),
            stop=stop,
            poll=0,
            sweep=False,
            on_handled=taken,
        )
    finally:
        watcher.cancel()
        await bus.close()
    if not done:
        raise SystemExit(f"requests still open after {DEADLINE}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("nats_url")
    parser.add_argument("stream_prefix")
    parser.add_argument("namespace")
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--marker", default="")
    parser.add_argument("--idle", type=float, default=2.0)
    asyncio.run(work(parser.parse_args()))


if __name__ == "__main__":
    main()
