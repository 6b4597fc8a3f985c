"""Benchmark: the audit ledger — appending entries, durably, and verifying a million.

    .venv/bin/python bench/audit_ledger.py [--entries 1000000] [--skip-sqlite]
        [--skip-postgres] [--postgres URL] [--appenders 4]

On each database, a fresh ledger:

0. **the floor**: a row of an entry's size inserted into a table of its own, no ledger,
   one a transaction, committed, ``--single`` times — what any durable one-row
   transaction costs through SQLAlchemy and the driver; on PostgreSQL also with
   ``synchronous_commit`` off for that session alone (not durable: it shows what the
   write-ahead log's flush at each commit costs, and is no figure for the target);
1. **one entry a transaction**: ``ledger.append`` in its own transaction, committed,
   ``--single`` times (as a stage that records one decision at a time does); then the
   same from ``--appenders`` processes at once, each with its own connection, timed
   from when they all start to when the last ends;
2. **a batch a transaction**: ``--batch`` entries a transaction, committed, both through
   ``ledger.append`` called for each (what a stage recording many decisions in one
   transaction does) and through ``ledger.append_many`` (one insert for them all);
3. the ledger filled to ``--entries`` entries in batches, a checkpoint signed, and
   ``verify`` timed over all of it: every leaf rebuilt from its fields and hashed, the
   chain followed, the tree grown and its root checked against the signed checkpoint.

Targets (issue 13): appending ≥ 5,000 entries/s, durable; verifying 1,000,000 entries
in ≤ 10 s. "Committed" means what each database promises at commit as poise opens it:
PostgreSQL flushes its write-ahead log to disk at every commit (synchronous_commit on);
SQLite in WAL mode with synchronous=NORMAL has the commit in its WAL file, safe from a
crash of the process, flushed to disk at the WAL's checkpoints (a power cut may lose the
last commits, never corrupt the file).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poise.audit import ledger
from poise.audit.proofs import sign_checkpoint
from poise.audit.verify import verify
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

T0 = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
SCHEMA = "bench_audit"


def _record(n: int) -> ledger.Record:
    """An entry as the stages will write them: a proposal's, an approval's, a file's."""
    return ledger.Record(
        actor="u-3f2a9c1e" if n % 5 else "system",
        action=("proposal.made", "finding", "approval", "ingest.file")[n % 4],
        subject=f"H{n % 9973:05d}/2026-01-02/optimize",
        data={"proposal": n, "trades": n % 17, "notional": f"{n * 37 % 1000003}.25"},
        reason="" if n % 3 else "within the household's tax budget",
        at=T0 + timedelta(milliseconds=n),
    )


def _timed(label: str, count: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(f"  {label:<56} {count:>9,}  {seconds:7.2f} s  {count / seconds:>9,.0f} entries/s")
    return seconds


def _append_one(connection: sa.Connection, n: int) -> None:
    r = _record(n)
    ledger.append(
        connection,
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        data=r.data,
        reason=r.reason,
        at=r.at,
    )


FLOOR = sa.Table(  # a row the size of an entry, in a table of its own: no ledger
    "bench_floor",
    sa.MetaData(),
    sa.Column("n", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("data_hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("leaf_hash", sa.String(64), nullable=False),
)
_FLOOR_INSERT = sa.insert(FLOOR)


def _floor_row(n: int) -> dict[str, object]:
    r = _record(n)
    return {"n": n, "at": r.at, "actor": r.actor, "action": r.action, "subject": r.subject,
            "reason": r.reason, "data_hash": "d" * 64, "prev_hash": "p" * 64,
            "leaf_hash": "l" * 64}  # fmt: skip


def _schema_url(url: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{SCHEMA}"


def _floor_one(connection: sa.Connection, n: int) -> None:
    connection.execute(_FLOOR_INSERT, _floor_row(n))


def _appender(url: str, *, ledger: bool, first: int, count: int, start: Any, spans: Any) -> None:
    """One of several processes writing at once, an entry (``ledger``) or a row of the
    floor's: warmed up (connected, one written), then ``count`` one a transaction once
    every process is ready. Puts when it began and ended on ``spans`` (wall clock:
    comparable across processes)."""
    engine = make_engine(url).execution_options(writes=True)
    write = _append_one if ledger else _floor_one
    with engine.begin() as connection:
        write(connection, first)
    start.wait()
    began = time.time()
    for n in range(first + 1, first + 1 + count):
        with engine.begin() as connection:
            write(connection, n)
    spans.put((began, time.time()))
    engine.dispose()


class Bench:
    """One database's ledger, and how many entries it holds so far."""

    def __init__(self, url: str) -> None:
        engine = make_engine(url)
        self.postgres = engine.dialect.name == "postgresql"
        if self.postgres:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
            engine.dispose()
            url = _schema_url(url)
            engine = make_engine(url)
        upgrade(engine)
        FLOOR.create(engine)
        self.url = url
        self.engine = engine
        self.writing = engine.execution_options(writes=True)
        self.done = 0

        self.rows = 0  # in the floor's table

    def floor(self, count: int, *, synchronous: bool = True) -> None:
        for n in range(self.rows, self.rows + count):
            with self.writing.begin() as connection:
                if not synchronous:  # this transaction alone
                    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                _floor_one(connection, n)
        self.rows += count

    def at_once(self, appenders: int, count: int, *, ledger: bool = True) -> float:
        """``count`` entries (or rows of the floor's), one a transaction, from
        ``appenders`` processes at once: the seconds from the first one starting to the
        last one ending."""
        each, context = count // appenders, multiprocessing.get_context("spawn")
        start, spans = context.Barrier(appenders), context.Queue()
        first = self.done if ledger else self.rows
        processes = [
            context.Process(
                target=_appender,
                args=(self.url,),
                kwargs={
                    "ledger": ledger,
                    "first": first + p * (each + 1),
                    "count": each,
                    "start": start,
                    "spans": spans,
                },
            )
            for p in range(appenders)
        ]
        for process in processes:
            process.start()
        ended = [spans.get(timeout=600) for _ in processes]
        for process in processes:
            process.join()
            assert process.exitcode == 0, process.exitcode
        if ledger:
            self.done += appenders * (each + 1)
        else:
            self.rows += appenders * (each + 1)
        return max(e for _, e in ended) - min(b for b, _ in ended)

    def one_each(self, count: int) -> None:
        for _ in range(count):
            with self.writing.begin() as connection:
                _append_one(connection, self.done)
            self.done += 1

    def appended_in_batches(self, batch: int, batches: int) -> None:
        for _ in range(batches):
            with self.writing.begin() as connection:
                for _ in range(batch):
                    _append_one(connection, self.done)
                    self.done += 1

    def many_in_batches(self, batch: int, batches: int, *, up_to: int | None = None) -> None:
        for _ in range(batches):
            count = batch if up_to is None else min(batch, up_to - self.done)
            if count <= 0:
                return
            with self.writing.begin() as connection:
                ledger.append_many(connection, [_record(self.done + i) for i in range(count)])
            self.done += count

    def verify(self) -> None:
        with self.engine.connect() as connection:
            checked = verify(connection, public=KEY.public_key())
        assert checked.ok, checked.fault

    def close(self) -> None:
        if self.postgres:
            with self.engine.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
        self.engine.dispose()


def _at_once(bench: Bench, what: str, appenders: int, single: int, *, ledger: bool) -> None:
    span = bench.at_once(appenders, single, ledger=ledger)  # starting processes left out
    count = single // appenders * appenders
    label = f"{what}, one a transaction, {appenders} processes at once"
    print(f"  {label:<56} {count:>9,}  {span:7.2f} s  {count / span:>9,.0f} entries/s")


def _load() -> str:
    """The machine's load average over the last minute: the figures are only as quiet
    as the machine was."""
    return f"{os.getloadavg()[0]:.1f}"


def run(
    name: str, url: str, *, entries: int, single: int, batch: int, batches: int, appenders: int
) -> None:
    bench = Bench(url)
    started = _load()
    print(name)
    _timed("a row, one a transaction, no ledger (the floor)", single,
           lambda: bench.floor(single))  # fmt: skip
    if bench.postgres:
        _timed("  the same, synchronous_commit off (not durable)", single,
               lambda: bench.floor(single, synchronous=False))  # fmt: skip
    if appenders > 1:
        _at_once(bench, "a row", appenders, single, ledger=False)
    _timed("append, one a transaction", single, lambda: bench.one_each(single))
    if appenders > 1:
        _at_once(bench, "append", appenders, single, ledger=True)
    _timed(
        f"append, {batch:,} a transaction",
        batch * batches,
        lambda: bench.appended_in_batches(batch, batches),
    )
    _timed(
        f"append_many, {batch:,} a transaction",
        batch * batches,
        lambda: bench.many_in_batches(batch, batches),
    )
    fill = max(0, entries - bench.done)
    _timed(
        "append_many, filling (10,000 a transaction)",
        fill,
        lambda: bench.many_in_batches(10_000, fill // 10_000 + 1, up_to=entries),
    )
    with bench.writing.begin() as connection:
        point = sign_checkpoint(connection, key=KEY, at=T0 + timedelta(days=1))
    assert point.tree_size == bench.done
    _timed("verify: every leaf, the chain, the tree, the checkpoint", bench.done, bench.verify)
    bench.close()
    print(f"  (load average {started} at the start, {_load()} at the end)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=5_000, help="entries, one a transaction")
    parser.add_argument("--batch", type=int, default=1_000, help="entries a transaction")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument(
        "--appenders", type=int, default=4, help="processes appending at once (1: none)"
    )
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="URL"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    sizes = {
        "entries": args.entries,
        "single": args.single,
        "batch": args.batch,
        "batches": args.batches,
        "appenders": args.appenders,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            run("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", **sizes)
        if not args.skip_postgres:
            run("postgresql", args.postgres, **sizes)


if __name__ == "__main__":
    main()
