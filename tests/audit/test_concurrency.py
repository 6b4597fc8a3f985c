"""Appends from several processes at once, on PostgreSQL and SQLite: the seqs are
0..n-1, with no gap and no repeat, every process's entries in its own order, and the
ledger verifies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import postgres_schema_url

from poise.audit import ledger
from poise.audit.verify import verify
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 6
EACH = 40


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'poise.db'}"
    else:
        yield from postgres_schema_url()


@pytest.mark.slow
def test_append_when_processes_append_at_once_then_seqs_have_no_gap_or_repeat(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.appender", url, f"p{p}", str(EACH)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    for run in runs:
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors
    with engine.connect() as connection:
        found = list(ledger.entries(connection))
        checked = verify(connection, public=None)
    engine.dispose()
    assert [e.seq for e in found] == list(range(PROCESSES * EACH))
    for p in range(PROCESSES):
        mine = [e.subject for e in found if e.actor == f"p{p}"]
        assert mine == [f"p{p}-{n}" for n in range(EACH)]
    assert checked.ok, checked.fault
    assert len({e.leaf_hash for e in found}) == len(found)
