"""Loads that run at the same time wait their turn, and a new database's schema is made once.

Two custodian feeds often arrive together, and two schedulers may start ``poise ingest``
on the same store at once. Every load here is a real ``poise`` process: on one SQLite
file the second writer waits for the first one's lock (up to the busy timeout) instead
of failing, and two first loads into an empty database (SQLite or PostgreSQL) make the
schema once between them. Readers never wait for a writer.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.firm_files import write_firm
from tests.processes import finish, run_poise, start_poise

from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import head_revision, upgrade
from poise.workflow.ingest import ingest_paths

LOTS = 20_000  # rows of each feed: enough for two loads' writes to overlap
TRIALS = 4


def write_lots(path: Path, prefix: str) -> Path:
    """A lots file of :data:`LOTS` new lots, each lot id starting with ``prefix``."""
    with path.open("w") as handle:
        handle.write("account_id,lot_id,security_id,quantity,cost_basis,acquired\n")
        for i in range(LOTS):
            handle.write(
                f"10000001,{prefix}{i:06d},MSFT,{i % 97 + 1},{i % 89 + 1}00.25,2020-01-02\n"
            )
    return path


def lot_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(t.lots.c.lot_id)).scalars())


def firm_database(folder: Path) -> str:
    """A SQLite file holding the small firm, at the current schema."""
    url = f"sqlite:///{folder / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    ingest_paths(engine, write_firm(folder / "firm"), today=date(2022, 12, 30))
    engine.dispose()
    return url


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(TRIALS))
def test_ingest_when_two_loads_run_at_once_on_one_sqlite_file_then_both_finish_with_every_row_once(
    tmp_path: Path, trial: int
) -> None:
    url = firm_database(tmp_path)
    firm = sorted((tmp_path / "firm").iterdir())
    feeds = [write_lots(tmp_path / f"lots-{name}.csv", name) for name in ("A", "B")]
    loads = [
        start_poise("ingest", *map(str, firm), str(feed), database_url=url, cwd=tmp_path)
        for feed in feeds
    ]
    runs = [finish(load) for load in loads]

    for run in runs:
        assert run.code == 0, run.stderr
        assert "Traceback" not in run.stderr
    engine = make_engine(url)
    ids = lot_ids(engine)
    engine.dispose()
    assert len(ids) == len(set(ids)) == 5 + 2 * LOTS
    assert {i[:1] for i in ids if i[0] in "AB"} == {"A", "B"}


def test_ingest_when_another_writer_holds_the_lock_then_the_load_waits_its_turn(
    tmp_path: Path,
) -> None:
    url = firm_database(tmp_path)
    feed = write_lots(tmp_path / "lots-A.csv", "A")
    other = sqlite3.connect(tmp_path / "poise.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer, part-way through its transaction
    load = start_poise("ingest", str(feed), "--verbose", database_url=url, cwd=tmp_path)
    assert load.stderr is not None
    for line in load.stderr:  # the load has read and validated its file: it writes next
        if line.startswith("writing"):
            break
    else:
        pytest.fail(f"the load ended before it wrote (exit {load.wait()})")
    # The other writer finishes a moment later; a load that could not wait has failed.
    release = threading.Timer(1.0, other.rollback)
    release.start()
    run = finish(load)
    release.join()
    other.close()

    assert run.code == 0, run.stderr
    engine = make_engine(url)
    assert len(lot_ids(engine)) == 5 + LOTS
    engine.dispose()


def test_reads_when_a_writer_holds_the_lock_then_they_do_not_wait_for_it(
    tmp_path: Path,
) -> None:
    url = firm_database(tmp_path)
    writer = sqlite3.connect(tmp_path / "poise.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM lots")  # not committed: readers still see every lot
    try:
        run = run_poise("accounts", "show", "10000001", "--json", database_url=url, cwd=tmp_path)
    finally:
        writer.rollback()
        writer.close()
    assert run.code == 0, run.stderr
    assert '"lot_id": "L1"' in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_first_loads_when_two_start_at_once_on_an_empty_database_then_the_schema_is_made_once(
    database_url: str, tmp_path: Path, trial: int
) -> None:
    paths = [str(p) for p in write_firm(tmp_path / "firm")]
    loads = [start_poise("ingest", *paths, database_url=database_url, cwd=tmp_path) for _ in "AB"]
    runs = [finish(load) for load in loads]

    for run in runs:
        assert run.code == 0, run.stderr
        assert "Traceback" not in run.stderr
    engine = make_engine(database_url)
    with engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert versions == [(head_revision(),)]
    assert sorted(lot_ids(engine)) == ["L1", "L2", "L3", "L4", "L5"]
    engine.dispose()


def test_first_loads_when_both_find_an_empty_sqlite_file_another_writer_holds_then_one_makes_it(
    tmp_path: Path,
) -> None:
    database = tmp_path / "poise.db"
    other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode=WAL")  # an empty database, as a first connection leaves it
    other.execute("BEGIN IMMEDIATE")  # held while both loads find it empty
    paths = [str(p) for p in write_firm(tmp_path / "firm")]
    url = f"sqlite:///{database}"
    loads = [start_poise("ingest", *paths, database_url=url, cwd=tmp_path) for _ in "AB"]
    # The other writer finishes a few moments later; a load that could not wait has failed.
    release = threading.Timer(4.0, other.rollback)
    release.start()
    runs = [finish(load) for load in loads]
    release.join()
    other.close()

    for run in runs:
        assert run.code == 0, run.stderr
    engine = make_engine(url)
    with engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert versions == [(head_revision(),)]
    engine.dispose()
