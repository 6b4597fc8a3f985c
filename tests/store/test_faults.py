"""A database poise cannot use is one line on standard error, never a traceback.

Every case is a real ``poise`` process against a real unusable database: a server that
is not there, a database or a role that does not exist, a host that does not resolve, a
URL poise cannot use, a SQLite path whose folder is missing, that is a folder, or that
is not a database, and files this user may not write. A message names what is wrong
and what to do, and never carries a password.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from tests.conftest import POSTGRES_URL, postgres_available
from tests.firm_files import write_firm
from tests.processes import Run, run_poise

from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

PASSWORD = "s3cret-Pa55"  # never to be seen in a message


def closed_port() -> int:
    """A port on this machine where nothing listens (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server(**parts: str) -> str:
    """The test PostgreSQL server's URL with some parts changed; skips without a server."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip("PostgreSQL is not reachable")
    url = make_url(POSTGRES_URL)
    return url.set(**parts).render_as_string(hide_password=False)


def assert_one_error(run: Run, *, code: int, says: str) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code == code, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    assert line.startswith("error: "), line
    assert says in line, line
    assert PASSWORD not in run.stderr + run.stdout


# Each case: how to make the database's URL in a folder, the exit code, what the line says.
Case = tuple[Callable[[Path], str], int, str]
CASES: dict[str, Case] = {
    "no server at that port": (
        lambda _: f"postgresql://postgres:{PASSWORD}@127.0.0.1:{closed_port()}/test",
        6,
        "cannot reach PostgreSQL at 127.0.0.1:",
    ),
    "no such database": (
        lambda _: server(database="poise_no_such_database"),
        6,
        'has no database "poise_no_such_database"',
    ),
    "no such role": (
        lambda _: server(username="poise_no_such_role", password=PASSWORD),
        6,
        'has no role "poise_no_such_role"',
    ),
    "host does not resolve": (
        lambda _: f"postgresql://postgres:{PASSWORD}@no-such-host.invalid:5432/test",
        6,
        "no-such-host.invalid:5432: the host name does not resolve",
    ),
    "not a URL": (lambda _: f"postgres//admin:{PASSWORD}@db/poise", 2, "is not a database URL"),
    "another database": (
        lambda _: f"mysql://admin:{PASSWORD}@127.0.0.1/poise",
        2,
        "SQLite or PostgreSQL",
    ),
    "in memory": (lambda _: "sqlite://", 2, "in-memory SQLite database is gone"),
    "in memory, named": (lambda _: "sqlite:///:memory:", 2, "in-memory SQLite database is gone"),
    "SQLite folder missing": (
        lambda folder: f"sqlite:///{folder / 'no-such-folder' / 'poise.db'}",
        6,
        "no-such-folder for the SQLite database poise.db does not exist",
    ),
    "SQLite path is a folder": (lambda folder: f"sqlite:///{folder}", 6, "is a folder, not"),
    "SQLite file is not a database": (
        lambda folder: f"sqlite:///{folder / 'lots.csv'}",
        6,
        "lots.csv is not a SQLite database",
    ),
}

COMMANDS = {
    "drift": ("drift",),
    "ingest": ("ingest", "lots.csv"),
    "db upgrade": ("db", "upgrade"),
}


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_command_when_the_database_is_unusable_then_one_error_line_says_what_to_do(
    case: Case, command: tuple[str, ...], tmp_path: Path
) -> None:
    make, code, says = case
    write_firm(tmp_path)
    run = run_poise(*command, database_url=make(tmp_path), cwd=tmp_path, timeout=60)
    assert_one_error(run, code=code, says=says)


def test_ingest_when_the_url_is_in_memory_then_nothing_claims_to_be_loaded(
    tmp_path: Path,
) -> None:
    write_firm(tmp_path)
    run = run_poise("ingest", "lots.csv", "--json", database_url="sqlite://", cwd=tmp_path)
    assert_one_error(run, code=2, says="name a file")
    assert run.stdout == ""


def test_drift_when_no_database_file_exists_then_it_says_so_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    database = tmp_path / "poise.db"
    run = run_poise("drift", database_url=f"sqlite:///{database}", cwd=tmp_path)
    assert_one_error(run, code=6, says=f"there is no poise database at {database}")
    assert not database.exists()


def test_command_when_a_table_was_removed_by_hand_then_the_driver_error_is_one_line(
    tmp_path: Path,
) -> None:
    database = tmp_path / "poise.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    ingest_paths(engine, write_firm(tmp_path / "firm"), today=date(2022, 12, 30))
    engine.dispose()
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TABLE quarantine")
    run = run_poise("ingest", "--quarantine", database_url=f"sqlite:///{database}", cwd=tmp_path)
    assert_one_error(run, code=6, says="no such table: quarantine")


# ── files this user cannot write ─────────────────────────────────────────────


@pytest.fixture
def firm_folder() -> Iterator[Path]:
    """A folder any user can read, holding the small firm's files and its database."""
    folder = Path(tempfile.mkdtemp(prefix="poise-read-only-"))
    try:
        folder.chmod(0o755)
        paths = write_firm(folder)
        engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
        upgrade(engine)
        ingest_paths(engine, paths, today=date(2022, 12, 30))
        engine.dispose()
        yield folder
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


READ_ONLY = {
    "file": lambda folder: (folder / "poise.db").chmod(0o444),
    "folder": lambda folder: [(folder / "poise.db").chmod(0o666), folder.chmod(0o555)],
    "file and folder": lambda folder: [(folder / "poise.db").chmod(0o444), folder.chmod(0o555)],
}


@pytest.mark.parametrize("command", [("drift",), ("accounts", "list"), ("db", "current")])
@pytest.mark.parametrize("make_read_only", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_command_that_reads_when_the_sqlite_file_is_read_only_then_it_works(
    firm_folder: Path, make_read_only: Callable[[Path], object], command: tuple[str, ...]
) -> None:
    make_read_only(firm_folder)
    url = f"sqlite:///{firm_folder / 'poise.db'}"
    run = run_poise(*command, database_url=url, cwd=firm_folder, as_other_user=True)
    assert run.code == 0, run.stderr
    assert sorted(p.name for p in firm_folder.iterdir() if p.name.startswith("poise.db")) == [
        "poise.db"
    ], "a read left a file behind"


WRITES = {"ingest": ("ingest", "lots.csv"), "requests add": ("requests", "add", "10000001")}


@pytest.mark.parametrize("command", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("make_read_only", READ_ONLY.values(), ids=READ_ONLY.keys())
def test_command_that_writes_when_the_sqlite_file_is_read_only_then_it_says_so(
    firm_folder: Path, make_read_only: Callable[[Path], object], command: tuple[str, ...]
) -> None:
    make_read_only(firm_folder)
    database = firm_folder / "poise.db"
    url = f"sqlite:///{database}"
    run = run_poise(*command, database_url=url, cwd=firm_folder, as_other_user=True)
    assert_one_error(run, code=6, says=f"the SQLite database {database} is read-only")


def test_db_upgrade_when_the_sqlite_file_is_read_only_and_behind_then_it_says_so(
    tmp_path: Path,
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="poise-read-only-"))
    try:
        folder.chmod(0o755)
        database = folder / "poise.db"
        engine = make_engine(f"sqlite:///{database}")
        upgrade(engine, "0001")
        engine.dispose()
        database.chmod(0o444)
        url = f"sqlite:///{database}"
        run = run_poise("db", "upgrade", database_url=url, cwd=folder, as_other_user=True)
        assert_one_error(run, code=6, says=f"the SQLite database {database} is read-only")
    finally:
        shutil.rmtree(folder)
