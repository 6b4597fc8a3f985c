"""Engines for the system of record: a SQLite file by default, PostgreSQL by URL.

- Only SQLite and PostgreSQL: any other URL is a :class:`ConfigError`.
- A SQLite file is opened in WAL mode with foreign keys on, and a writer waits up to
  :data:`BUSY_TIMEOUT` seconds for another's lock. A transaction that writes says so
  with the execution option :data:`WRITES` (``engine.execution_options(writes=True)
  .begin()``): it then begins ``IMMEDIATE``, taking the write lock before it reads, so
  a second writer waits its turn instead of failing the moment it first writes. Other
  transactions begin deferred: readers never wait for writers.
- A SQLite file that this user cannot write (the file, or the folder its journal
  files go in) is opened read-only, so commands that only read still work on it.
- PostgreSQL goes through psycopg 3 and gives up connecting after
  :data:`CONNECT_TIMEOUT` seconds (a ``connect_timeout`` in the URL wins).
- A fault of the database itself becomes a one-line :class:`StoreError`
  (:mod:`poise.store.faults`), wherever in a command it happens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from poise.domain.errors import ConfigError, StoreError
from poise.store.faults import SETTING, WHERE, redact, translate, where

__all__ = [
    "BUSY_TIMEOUT",
    "CONNECT_TIMEOUT",
    "WRITES",
    "in_memory",
    "make_engine",
    "normalise_url",
    "parse_url",
    "place",
    "read_only",
    "sqlite_file",
]

BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for another's lock
CONNECT_TIMEOUT = 5  # seconds before a PostgreSQL connection attempt gives up
WRITES = "writes"  # execution option of a transaction that writes

_EXAMPLES = "sqlite:///path/to/poise.db or postgresql://user@host:5432/dbname"


def parse_url(url: str) -> URL:
    """``url`` parsed, with psycopg 3 for PostgreSQL; a :class:`ConfigError` when poise
    cannot use it at all (not a URL, or a database other than SQLite or PostgreSQL)."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigError(
            f"{redact(url)!r} is not a database URL — use {_EXAMPLES} {WHERE}"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed
    raise ConfigError(
        f"poise keeps its data in SQLite or PostgreSQL (with psycopg), not"
        f" {parsed.drivername} — use {_EXAMPLES} {WHERE}"
    )


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs; leave everything else alone."""
    return parse_url(url).render_as_string(hide_password=False)


def in_memory(url: str) -> bool:
    """Whether ``url`` names a SQLite database that lives only in memory."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


def _file(url: URL) -> Path | None:
    """The absolute path of the SQLite file ``url`` names; ``None`` for a server, for
    memory, or for a SQLite URI (``?uri=true``, taken as given)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or url.query.get("uri"):
        return None
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser().absolute()


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file ``url`` names, if it names one."""
    return _file(parse_url(url))


def _shown(url: URL) -> URL:
    """``url`` as messages name it: a SQLite file by its absolute path."""
    path = _file(url)
    return url if path is None else url.set(database=str(path))


def place(url: str) -> str:
    """The database ``url`` names, as a person names it: a file's path, a server's host."""
    return where(_shown(parse_url(url)))


def read_only(engine: sa.Engine) -> bool:
    """Whether ``engine`` opens its SQLite database read-only (see :func:`make_engine`)."""
    query = engine.url.query
    return engine.url.get_backend_name() == "sqlite" and (
        query.get("mode") == "ro" or query.get("immutable") == "1"
    )


# ── SQLite ────────────────────────────────────────────────────────────────────


def _writable(path: Path) -> bool:
    """Whether this user can write the database and the journal files beside it."""
    if not os.access(path, os.W_OK):
        return False
    if os.access(path.parent, os.W_OK):
        return True
    return all(os.access(f"{path}{suffix}", os.W_OK) for suffix in ("-wal", "-shm"))


def _sqlite_file(url: URL) -> tuple[URL, bool]:
    """The URL to connect with, and whether it opens the file read-only.

    A missing folder, or a folder named as the file, is a :class:`StoreError` here,
    before SQLite's own "unable to open database file". A file this user cannot write
    is opened ``mode=ro``, reading the latest commits through the journal files beside
    it; where there are none (nothing has it open) and none can be made, it is opened
    ``immutable``: read as it lies on disk, leaving no file behind.
    """
    path = _file(url)
    if path is None:
        return url, False  # a SQLite URI or memory: taken as given
    folder = path.parent
    if path.is_dir():
        raise StoreError(
            f"{path} is a folder, not a SQLite database file — name a file in it,"
            f" e.g. sqlite:///{path / 'poise.db'} {WHERE}"
        )
    if not folder.is_dir():
        raise StoreError(
            f"the folder {folder} for the SQLite database {path.name} does not exist —"
            f" create it, or point {SETTING} at a file in a folder that does"
        )
    if not path.exists():
        if not os.access(folder, os.W_OK):
            raise StoreError(
                f"there is no SQLite database at {path}, and poise cannot create one"
                f" there: the folder {folder} cannot be written {WHERE}"
            )
        return url.set(database=str(path)), False
    if _writable(path):
        return url.set(database=str(path)), False
    journal = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    query = {"mode": "ro", "uri": "true"} if journal else {"immutable": "1", "uri": "true"}
    return url.set(database=f"file:{quote(str(path))}", query=query), True


def _sqlite_pragmas(*, read_only: bool) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin, so that DDL
        # and bulk statements of one file load share one transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000}")
        if not read_only:  # a read-only file keeps the journal mode it was made with
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB: big loads grow indexes in memory
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    return pragmas


def _sqlite_begin(connection: sa.Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the write lock
    # (SQLite returns "database is locked" at once, whatever the busy timeout): one
    # that writes takes the lock when it begins, and waits for it there.
    writes = connection.get_execution_options().get(WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


# ── engines ───────────────────────────────────────────────────────────────────


def _on_fault(shown: URL) -> Callable[[sa.engine.ExceptionContext], None]:
    def on_fault(context: sa.engine.ExceptionContext) -> None:
        fault = translate(
            context.original_exception,
            shown,
            connecting=context.connection is None,
            disconnect=context.is_disconnect,
        )
        if fault is not None:
            raise fault from context.original_exception

    return on_fault


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``, set up for poise (see the module's docstring).

    It connects only when first used; a SQLite path that cannot be a database (its
    folder missing, a folder itself) is a :class:`StoreError` here already.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        target, unwritable = _sqlite_file(parsed)
        engine = sa.create_engine(target)
        sa.event.listen(engine, "connect", _sqlite_pragmas(read_only=unwritable))
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        timeout: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
        engine = sa.create_engine(
            parsed, connect_args={} if "connect_timeout" in parsed.query else timeout
        )
    sa.event.listen(engine, "handle_error", _on_fault(_shown(parsed)))
    return engine
