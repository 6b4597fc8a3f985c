"""Schema migrations: bring a database to the current schema, and check it is there."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from poise.domain.errors import StoreError

__all__ = ["current_revision", "ensure_schema", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run every migration up to ``revision`` in one transaction (where the database allows)."""
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
