"""A demo firm of 25 households, built and ingested once for the tests that check
every proposal of a whole firm (SQLite: the rules do not depend on the database)."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from poise.demo import generate_firm, write_firm
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths


@pytest.fixture(scope="session")
def demo_firm(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    folder = tmp_path_factory.mktemp("demo-firm")
    engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(generate_firm(households=25, seed=7), folder)
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    return engine


@pytest.fixture(scope="session")
def default_demo_firm(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    """The demo firm `poise demo` builds — 200 households — whose accounts the issues
    name."""
    folder = tmp_path_factory.mktemp("default-demo-firm")
    engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(generate_firm(), folder)
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    return engine
