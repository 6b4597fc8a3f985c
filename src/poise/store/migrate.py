"""Schema migrations: bring a database to the current schema, and check it is there."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from poise.domain.errors import StoreError

__all__ = ["current_revision", "ensure_schema", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r'^revision = "([^"]+)"', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = "([^"]+)"', re.MULTILINE)

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
    return _head(MIGRATIONS / "versions")


@functools.cache
def _head(versions: Path) -> str:
    made, built_on = set(), set()
    for script in versions.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        made.update(_REVISION.findall(text))
        built_on.update(_DOWN_REVISION.findall(text))
    heads = made - built_on
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()


def current_revision(engine: sa.Engine) -> str | None:
    """The database's schema revision, or None where poise has never set it up."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
        revision: str | None = found.scalar_one_or_none()
        return revision


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run every migration up to ``revision`` in one transaction (where the database allows)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def ensure_schema(engine: sa.Engine, *, create: bool) -> None:
    """Refuse to work on a database that is not at the current schema.

    A database with no poise tables at all is brought up to date when ``create`` is
    set (a new SQLite file, say); one at an older revision needs ``poise db upgrade``.
    """
    current = current_revision(engine)
    if current == head_revision():
        return
    if current is None and create and not sa.inspect(engine).get_table_names():
        upgrade(engine)
        return
    raise StoreError(
        f"the database is at schema {current or 'none'}, not {head_revision()}:"
        " run `poise db upgrade`"
    )
