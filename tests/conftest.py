"""Fixtures shared by the whole suite.

``database_url`` and ``engine`` run a test once on SQLite and once on PostgreSQL
(a fresh schema per test on the server at ``POISE_TEST_POSTGRES_URL``, by default
127.0.0.1:5432, database ``test``). Without a reachable server the PostgreSQL runs are
skipped — except under CI, where they fail: CI must prove both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from poise.store.engine import make_engine
from poise.store.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "POISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_postgres_ok: bool | None = None


def postgres_available() -> bool:
    global _postgres_ok  # noqa: PLW0603 - probed once per run
    if _postgres_ok is None:
        try:
            engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            engine.dispose()
            _postgres_ok = True
        except sa.exc.OperationalError:
            _postgres_ok = False
    return _postgres_ok


def postgres_schema_url() -> Iterator[str]:
    """A URL whose search path is a new, empty schema; the schema is dropped afterwards."""
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip("PostgreSQL is not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'poise.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()
