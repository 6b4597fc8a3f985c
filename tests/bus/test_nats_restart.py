"""Done when: a consumer killed with SIGKILL part-way and restarted acts on every request once.

300 rebalance requests wait in JetStream. A consumer process (``idempotent_consumer``)
records each request's id and its effect in one SQLite transaction, then acks. The
first run is killed right after committing its 120th request and before acking it, so
JetStream delivers that request again to the second run, whose idempotency check skips
it. At the end every request has taken effect exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.bus.helpers import NatsSpace

from poise.bus import Event, request_subject
from poise.bus.nats import stream_name

REQUESTS = 300
KILL_AFTER = 120
CONSUMER = Path(__file__).with_name("idempotent_consumer.py")
DURABLE = "rebalancer"


def start_consumer(space: NatsSpace, database: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(CONSUMER), space.url, space.stream_prefix, space.namespace]
    return subprocess.Popen(
        [*command, str(database), str(REQUESTS), "--ack-wait", "1.0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def applied(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=5) as connection:
        try:
            count: int = connection.execute("SELECT applied FROM counter").fetchone()[0]
        except (sqlite3.OperationalError, TypeError):  # the schema is still being made
            return 0
        return count


def wait_for_applied(process: subprocess.Popen[str], database: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while applied(database) < count:
        if process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(f"the consumer exited early ({process.returncode}): {stderr}")
        if time.monotonic() > deadline:
            raise AssertionError(f"only {applied(database)} of {count} applied after 30s")
        time.sleep(0.02)


async def publish_requests(space: NatsSpace) -> None:
    bus = await space.connect()
    try:
        for number in range(REQUESTS):
            account = f"H.{number % 7}" if number % 5 == 0 else f"A{number % 23}"
            await bus.publish(
                Event(request_subject(account), f"rq-{number:04d}", {"account": account})
            )
    finally:
        await bus.close()


async def consumer_state(space: NatsSpace) -> tuple[int | None, int | None]:
    bus = await space.connect()
    try:
        stream = stream_name(space.stream_prefix, "poise.requests")
        info = await bus._js.consumer_info(stream, DURABLE)
        return info.num_pending, info.num_ack_pending
    finally:
        await bus.close()


@pytest.mark.slow
def test_consumer_when_killed_between_commit_and_ack_then_a_restart_applies_each_request_once(
    nats_space: NatsSpace, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    database = tmp_path / "consumer.db"
    asyncio.run(publish_requests(nats_space))

    first = start_consumer(nats_space, database, "--hang-after", str(KILL_AFTER))
    try:
        wait_for_applied(first, database, KILL_AFTER)
        time.sleep(0.2)  # it hangs with request 120 committed and not acknowledged
        assert first.poll() is None
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == -signal.SIGKILL
    assert applied(database) == KILL_AFTER, "the killed consumer did more than it was allowed"

    second = start_consumer(nats_space, database)
    try:
        _, stderr = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, stderr

    with sqlite3.connect(database) as connection:
        processed = [row[0] for row in connection.execute("SELECT event_id FROM processed")]
        effects = [row[0] for row in connection.execute("SELECT event_id FROM effects")]
        counter = connection.execute("SELECT applied FROM counter").fetchone()[0]
        skipped = [row[0] for row in connection.execute("SELECT event_id FROM skipped")]
    expected = {f"rq-{number:04d}" for number in range(REQUESTS)}
    assert set(processed) == expected  # none missing
    assert sorted(effects) == sorted(expected)  # one effect each: none missing, none twice
    assert counter == REQUESTS
    # the request in flight at the kill came again, and was recognised
    assert f"rq-{KILL_AFTER - 1:04d}" in skipped
    assert set(skipped) <= expected
    assert asyncio.run(consumer_state(nats_space)) == (0, 0)  # nothing left, nothing unacked

    record_property("redeliveries", len(skipped))
    print(f"\nredeliveries skipped by the idempotent consumer: {len(skipped)} ({skipped})")
