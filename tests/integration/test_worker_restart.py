"""Done when: a worker killed with SIGKILL and started again answers every request once.

The monitor replays December 2022 on the demo firm and raises its requests. Then:

- on NATS JetStream, a worker process takes them from the bus and is killed right
  after committing its fourth household proposal and before acknowledging the request
  that made it — the worst moment. JetStream delivers that request again to the next
  worker process, which finds it answered and skips it;
- on the in-process bus, the real ``poise worker`` answers the requests open in the
  store, is killed wherever it happens to be, is started again, and is stopped with
  SIGTERM once nothing is open.

Either way each household with requests ends with exactly one household proposal (a
plan made twice would be a second one), and every request is answered by a proposal
of its own account and household: none lost, none answered twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.bus.helpers import NatsSpace, require_nats
from tests.processes import finish, run_poise, start_poise
from tests.workflow.worker_firm import (
    FIRST,
    LAST,
    december,
    evening_before,
    household_proposals,
    load_demo,
    open_ids,
    requests,
)

from poise.bus.nats import NatsBus, stream_name
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.watching import REQUEST_CONSUMER, MonitorService, price_event
from poise.workflow.worker import WORKER_CONSUMER

WORKER = Path(__file__).resolve().parents[1] / "workflow" / "worker_process.py"
KILL_AFTER = 4  # household proposals committed before the kill


def firm(tmp_path: Path) -> tuple[sa.Engine, str, Path]:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return engine, url, load_demo(engine, tmp_path / "firm")


def wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(f"the worker exited early ({process.returncode}): {stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still waiting after {timeout}s")
        time.sleep(0.05)


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL


def assert_each_answered_once(engine: sa.Engine) -> None:
    stored = requests(engine)
    assert stored
    households = {r["household_id"] for r in stored.values()}
    assert household_proposals(engine) == dict.fromkeys(households, 1)  # none planned twice
    for row in stored.values():  # none lost, each by its own household's plan
        assert row["status"] == "answered", row
        assert row["proposal_account"] == row["account_id"], row
        assert row["proposal_household"] == row["household_id"], row


def start_worker(space: NatsSpace, url: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(WORKER), url, space.url, space.stream_prefix, space.namespace]
    return subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


async def monitor_december(engine: sa.Engine, prices: Path, space: NatsSpace) -> set[str]:
    """The monitor on the test's streams: December's requests stored and published."""
    ticks = december(engine, prices)
    found = evening_before(engine)
    bus = await space.connect()
    service = MonitorService(engine, bus, found.watch)
    try:
        await service.start(initial=found.requests)
        for tick in ticks:
            await bus.publish(price_event(tick))
        await service.wait_for(len(ticks), timeout=60)
    finally:
        await service.stop()
        await bus.close()
    return service.published


async def consumer_state(space: NatsSpace) -> tuple[int | None, int | None]:
    bus: NatsBus = await space.connect()
    try:
        stream = stream_name(space.stream_prefix, "poise.requests")
        info = await bus._js.consumer_info(stream, WORKER_CONSUMER)
        assert REQUEST_CONSUMER != WORKER_CONSUMER
        return info.num_pending, info.num_ack_pending
    finally:
        await bus.close()


@pytest.mark.slow
def test_worker_when_killed_between_commit_and_ack_on_nats_then_a_restart_answers_each_once(
    tmp_path: Path,
) -> None:
    require_nats()
    engine, url, prices = firm(tmp_path)
    space = NatsSpace()
    marker = tmp_path / "hung"
    try:
        raised = asyncio.run(monitor_december(engine, prices, space))
        assert len(raised) > KILL_AFTER
        assert open_ids(engine) == raised

        first = start_worker(space, url, "--hang-after", str(KILL_AFTER), "--marker", str(marker))
        try:
            wait_for(marker.exists, first, "the fourth household proposal")
            time.sleep(0.2)  # it hangs with the proposal committed and not acknowledged
            assert first.poll() is None
            kill(first)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
        in_flight = marker.read_text()
        assert sum(household_proposals(engine).values()) == KILL_AFTER
        assert in_flight not in open_ids(engine)  # committed: answered before the kill
        assert open_ids(engine)  # and more to do

        second = start_worker(space, url, "--idle", "2")
        try:
            stdout, stderr = second.communicate(timeout=120)
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
        assert second.returncode == 0, stderr
        taken = [json.loads(line) for line in stdout.splitlines()]
        again = [t for t in taken if t["request_id"] == in_flight]
        assert [t["result"] for t in again] == ["skipped"]  # delivered again, and recognised
        assert asyncio.run(consumer_state(space)) == (0, 0)  # nothing left, nothing unacked
    finally:
        asyncio.run(space.delete())
    assert_each_answered_once(engine)
    assert set(requests(engine)) == raised


@pytest.mark.slow
def test_poise_worker_when_killed_and_started_again_on_the_in_process_bus_then_each_once(
    tmp_path: Path,
) -> None:
    engine, url, prices = firm(tmp_path)
    replayed = run_poise(
        "monitor", "--replay", str(prices), "--from", FIRST.isoformat(), "--to",
        LAST.isoformat(), "--bus", "inprocess", "--json", database_url=url, cwd=tmp_path,
    )  # fmt: skip
    assert replayed.code == 0, replayed.stderr
    raised = open_ids(engine)
    assert len(raised) == json.loads(replayed.stdout)["requests"]

    def planned() -> int:
        return sum(household_proposals(engine).values())

    first = start_poise("worker", "--bus", "inprocess", "--poll", "0.2", database_url=url,
                        cwd=tmp_path)  # fmt: skip
    try:
        wait_for(lambda: planned() >= KILL_AFTER, first, "the worker's first proposals")
        kill(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    before = planned()
    assert KILL_AFTER <= before < len(household_proposals(engine) | {
        r["household_id"]: 0 for r in requests(engine).values()
    }), "the worker finished before it was killed"  # fmt: skip

    second = start_poise("worker", "--bus", "inprocess", "--poll", "0.2", "--json",
                         database_url=url, cwd=tmp_path)  # fmt: skip
    try:
        wait_for(lambda: not open_ids(engine), second, "every request closed")
        second.send_signal(signal.SIGTERM)
        done = finish(second, timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert done.code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["proposals"] == planned() - before
    assert "stopping" in done.stderr
    assert_each_answered_once(engine)
    assert set(requests(engine)) == raised
