"""Schema migrations: open the store a command works on, bring it to the current schema,
and check it is there.

The schema changes under a lock, and whoever takes the lock looks again before acting:
two first loads into an empty database at once make the schema once (the second finds
it made), and two upgrades at once run the migrations once. On PostgreSQL the lock is
an advisory lock of the schema's name, on SQLite the database's write lock.

Alembic loads only when a schema changes: the check reads the head revision from the
migration files and the database's revision with plain SQL.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from poise.domain.errors import ConfigError, StoreError
from poise.store.engine import WRITES, in_memory, make_engine, place, read_only, sqlite_file
from poise.store.faults import SETTING, WHERE
from poise.store.faults import read_only as read_only_fault

__all__ = ["current_revision", "ensure_schema", "head_revision", "open_store", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r'^revision = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = "([^"]+)"', re.MULTILINE)

# The first key of the advisory lock that guards a PostgreSQL schema's migrations (the
# second is the schema's name, hashed): an arbitrary constant, poise's own.
SCHEMA_LOCK = 0x706F6973  # "pois"

if TYPE_CHECKING:
    from alembic.config import Config


def _config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config  # Alembic loads only when a schema is changed

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision poise ships: the one no other migration builds on. Read from
    the migration files' own ``revision`` and ``down_revision`` lines, without loading
    Alembic, so that a command that only checks the schema starts at once (a test holds
    it to Alembic's own answer)."""
    made, built_on = _revisions(MIGRATIONS / "versions")
    heads = made - built_on
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads, not one: {sorted(heads)}")
    return next(iter(heads))


@functools.cache
def _revisions(versions: Path) -> tuple[frozenset[str], frozenset[str]]:
    """Every revision the migration files make, and every one they build on."""
    made: set[str] = set()
    built_on: set[str] = set()
    for script in versions.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        made.update(_REVISION.findall(text))
        built_on.update(_DOWN_REVISION.findall(text))
    return frozenset(made), frozenset(built_on)


def _revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    found = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
    revision: str | None = found.scalar_one_or_none()
    return revision


def current_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision, or None where poise has never set it up."""
    with engine.connect() as connection:
        return _revision(connection)


def _lock_schema(connection: sa.Connection) -> None:
    """Hold the schema's lock until ``connection``'s transaction ends.

    On SQLite the transaction began ``IMMEDIATE`` (:data:`WRITES`) and holds the write
    lock already; on PostgreSQL it takes an advisory lock for the schema it works in.
    """
    if connection.dialect.name == "postgresql":
        schema = sa.func.hashtext(sa.func.coalesce(sa.func.current_schema(), ""))
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK, schema)))


def _writing(engine: sa.Engine) -> sa.Engine:
    return engine.execution_options(**{WRITES: True})


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run every migration up to ``revision`` in one transaction (where the database
    allows), under the schema's lock: a second upgrade at once waits, then finds nothing
    left to do."""
    from alembic import command
    from alembic.util import CommandError

    try:
        with _writing(engine).begin() as connection:
            _lock_schema(connection)
            command.upgrade(_config(connection), revision)
    except CommandError as exc:  # e.g. a revision this poise does not know
        raise StoreError(f"cannot upgrade the schema: {exc}") from exc


def _refusal(current: str | None, *, tables: bool) -> StoreError:
    head = head_revision()
    if current is None and not tables:
        return StoreError(
            "the database has no poise tables yet: load files with `poise ingest`, which"
            " makes them, or run `poise db upgrade`"
        )
    if current is None:
        return StoreError(
            "the database holds tables but no poise schema: is it another application's?"
            f" Point {SETTING} at a poise database or a new one"
        )
    if current not in _revisions(MIGRATIONS / "versions")[0]:
        return StoreError(
            f"the database is at schema {current}, which this poise (schema {head}) does"
            " not know: it was made by a newer poise — upgrade poise"
        )
    return StoreError(f"the database is at schema {current}, not {head}: run `poise db upgrade`")


def ensure_schema(engine: sa.Engine, *, create: bool) -> None:
    """Refuse to work on a database that is not at the current schema.

    A database with no tables at all is brought up to date when ``create`` is set (a
    new SQLite file, say), under the schema's lock and only if it is still empty once
    the lock is held; one at an older revision needs ``poise db upgrade``.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if current is None and create:
        from alembic import command

        with _writing(engine).begin() as connection:
            _lock_schema(connection)
            current = _revision(connection)  # another load may have made it meanwhile
            tables = bool(sa.inspect(connection).get_table_names())
            if current is None and not tables:
                command.upgrade(_config(connection), "head")
                return
        if current == head:
            return
    else:
        tables = current is not None or bool(sa.inspect(engine).get_table_names())
    raise _refusal(current, tables=tables)


def open_store(url: str, *, create: bool = False, schema: bool = True) -> sa.Engine:
    """The engine a command works through, with the database reached and checked.

    ``url`` must name a database that outlives the command (a file or a server: an
    in-memory SQLite database would vanish with what was loaded into it). With
    ``schema``, the database must be at the current schema, made first if it is empty
    and ``create`` is set (:func:`ensure_schema`); without, it need only be reachable
    (``poise db current``, ``poise db upgrade``). Every fault is a one-line
    :class:`StoreError` or, for a URL poise cannot use, a :class:`ConfigError`.
    """
    if in_memory(url):
        raise ConfigError(
            "an in-memory SQLite database is gone when the command ends, with everything"
            f" loaded into it — name a file (sqlite:///poise.db) or a PostgreSQL server {WHERE}"
        )
    engine = make_engine(url)  # a SQLite file's folder is checked here
    path = sqlite_file(url)
    if schema and not create and path is not None and not path.exists():
        raise StoreError(  # rather than leave an empty file behind
            f"there is no poise database at {path}: load files with `poise ingest`, which"
            f" makes it, or point {SETTING} at the one you use"
        )
    if create and read_only(engine):  # a load: refused before it reads a file
        raise read_only_fault(place(url))
    if schema:
        ensure_schema(engine, create=create)
    else:
        with engine.connect() as connection:  # reach it now, before any other work
            connection.execute(sa.select(1))
    return engine
