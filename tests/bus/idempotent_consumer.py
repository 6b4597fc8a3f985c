"""An idempotent consumer of rebalance requests, run as its own process by the restart test.

For each request it opens ONE SQLite transaction that records the ``event_id`` (the
primary key of ``processed``) together with the request's effect — a row in
``effects`` and one more on the ``applied`` counter — and commits; an id already in
``processed`` is a redelivery, noted in ``skipped`` and otherwise ignored. Only after
the commit does the handler return, and the bus acknowledge.

    python idempotent_consumer.py URL STREAM_PREFIX NAMESPACE DATABASE EXPECTED
        [--hang-after K] [--ack-wait SECONDS]

It exits 0 once ``EXPECTED`` requests have taken effect. ``--hang-after K`` makes it
stop for good right after committing the K-th one, before acknowledging it — the worst
moment for a consumer to be killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3

from poise.bus import DeliveryPolicy, Event
from poise.bus.nats import NatsBus

SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS effects (event_id TEXT NOT NULL, account TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER);
INSERT OR IGNORE INTO counter VALUES (1, 0);
CREATE TABLE IF NOT EXISTS skipped (event_id TEXT NOT NULL);
"""
DURABLE = "rebalancer"
DEADLINE = 60.0  # seconds; the process gives up rather than outlive its test


def open_database(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)  # transactions by hand
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.executescript(SCHEMA)
    return connection


def apply_once(connection: sqlite3.Connection, event: Event) -> int:
    """Act on ``event`` unless it already has; how many requests have taken effect."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        cursor = connection.execute(
            "INSERT OR IGNORE INTO processed (event_id) VALUES (?)", (event.event_id,)
        )
        if cursor.rowcount == 1:
            connection.execute(
                "INSERT INTO effects (event_id, account) VALUES (?, ?)",
                (event.event_id, event.payload["account"]),
            )
            connection.execute("UPDATE counter SET applied = applied + 1")
        else:
            connection.execute("INSERT INTO skipped (event_id) VALUES (?)", (event.event_id,))
        applied: int = connection.execute("SELECT applied FROM counter").fetchone()[0]
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return applied


async def consume(options: argparse.Namespace) -> None:
    connection = open_database(options.database)
    everything_applied = asyncio.Event()

    async def handle(event: Event) -> None:
        applied = apply_once(connection, event)
        if applied == options.hang_after:
            print(f"hanging after {applied}", flush=True)
            await asyncio.Event().wait()  # never acknowledges; waits for SIGKILL
        if applied >= options.expected:
            everything_applied.set()

    bus = await NatsBus.connect(
        options.url,
        stream_prefix=options.stream_prefix,
        namespace=options.namespace,
        policy=DeliveryPolicy(ack_wait=options.ack_wait, max_deliver=5, retry_delay=0.1),
        poll_interval=0.2,
    )
    try:
        await bus.subscribe("poise.requests.>", durable=DURABLE, handler=handle)
        await asyncio.wait_for(everything_applied.wait(), timeout=DEADLINE)
    finally:
        await bus.close()  # lets the last handler finish and its ack reach the server
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("stream_prefix")
    parser.add_argument("namespace")
    parser.add_argument("database")
    parser.add_argument("expected", type=int)
    parser.add_argument("--hang-after", type=int, default=0)
    parser.add_argument("--ack-wait", type=float, default=1.0)
    asyncio.run(consume(parser.parse_args()))


if __name__ == "__main__":
    main()
