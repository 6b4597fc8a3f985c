"""A `kill -9` in the middle of a large ingest leaves all or none of the file.

The load runs in a real subprocess; the test waits until it has started writing,
kills it with SIGKILL, checks the store, then runs the same command again to finish.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.firm_files import write_firm
from tests.workflow.test_ingest import TODAY

from poise.store import tables as t
from poise.workflow.ingest import ingest_paths

ROWS = 300_000


def lot_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(t.lots)).scalar_one()


def run_ingest(database_url: str, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "POISE_DATABASE_URL": database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "poise", "ingest", str(path), "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_ingest_when_killed_while_writing_then_the_file_is_all_or_none_and_a_rerun_finishes(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    ingest_paths(engine, write_firm(tmp_path / "firm"), today=TODAY)
    before = lot_count(engine)
    path = tmp_path / "many-lots.csv"
    with path.open("w") as handle:
        handle.write("account_id,lot_id,security_id,quantity,cost_basis,acquired\n")
        for i in range(ROWS):
            handle.write(f"10000001,K{i:07d},MSFT,{i % 97 + 1},{i % 89 + 1}00.25,2020-01-02\n")

    process = run_ingest(database_url, path)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # wait until the load has begun writing
        lines.append(line)
        if line.startswith("writing"):
            break
    time.sleep(0.2)
    assert process.poll() is None, "the load finished before it could be killed: " + "".join(lines)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert lot_count(engine) == before, "a killed load left part of its file behind"

    finished = run_ingest(database_url, path)
    _, stderr = finished.communicate(timeout=300)
    assert finished.returncode == 0, stderr
    assert lot_count(engine) == before + ROWS

    again = run_ingest(database_url, path)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert lot_count(engine) == before + ROWS
