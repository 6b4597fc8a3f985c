"""On an 80-column terminal no figure is cut short: text columns give way, numbers don't."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from poise.demo import generate_firm, write_firm
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths


def poise(*args: str, database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "poise", *args],
        env={**os.environ, "POISE_DATABASE_URL": database_url, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.fixture
def demo_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine: sa.Engine = make_engine(url)
    upgrade(engine)
    paths = write_firm(generate_firm(households=12, seed=5), tmp_path / "firm")
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    engine.dispose()
    return url


def test_accounts_list_when_80_columns_wide_then_every_cash_and_value_shows_whole(
    demo_url: str,
) -> None:
    rows = json.loads(poise("accounts", "list", "--limit", "0", "--json", database_url=demo_url))
    text = poise("accounts", "list", "--limit", "0", database_url=demo_url)
    assert max(len(line) for line in text.splitlines()) <= 80
    for row in rows:
        for money in (row["cash"], row["value"]):
            assert f"{Decimal(money):,.2f}" in text, money


def test_accounts_show_when_80_columns_wide_then_every_holding_shows_whole(demo_url: str) -> None:
    largest = max(
        json.loads(poise("accounts", "list", "--limit", "0", "--json", database_url=demo_url)),
        key=lambda row: Decimal(row["value"]),
    )["account_id"]
    shown = json.loads(poise("accounts", "show", largest, "--json", database_url=demo_url))
    text = poise("accounts", "show", largest, database_url=demo_url)
    for holding in shown["holdings"]:
        assert f"{Decimal(holding['value']).quantize(Decimal('0.01')):,.2f}" in text
        assert f"{Decimal(holding['quantity']):,}" in text
