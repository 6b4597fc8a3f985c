"""Benchmark: the audit ledger — appending entries, durably, and verifying a million.

    .venv/bin/python bench/audit_ledger.py [--entries 1000000] [--skip-sqlite]
        [--skip-postgres] [--postgres URL]

On each database, a fresh ledger:

1. **one entry a transaction**: ``ledger.append`` in its own transaction, committed,
   ``--single`` times (as a stage that records one decision at a time does);
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
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
            separator = "&" if "?" in url else "?"
            engine = make_engine(f"{url}{separator}options=-csearch_path%3D{SCHEMA}")
        upgrade(engine)
        self.engine = engine
        self.writing = engine.execution_options(writes=True)
        self.done = 0

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


def run(name: str, url: str, *, entries: int, single: int, batch: int, batches: int) -> None:
    bench = Bench(url)
    print(name)
    _timed("append, one a transaction", single, lambda: bench.one_each(single))
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
    assert point.tree_size == entries
    _timed("verify: every leaf, the chain, the tree, the checkpoint", entries, bench.verify)
    bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=5_000, help="entries, one a transaction")
    parser.add_argument("--batch", type=int, default=1_000, help="entries a transaction")
    parser.add_argument("--batches", type=int, default=20)
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
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            run("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", **sizes)
        if not args.skip_postgres:
            run("postgresql", args.postgres, **sizes)


if __name__ == "__main__":
    main()
