"""Every command's JSON: one document on standard output, in one convention
(docs/operations.md#json-output), its shape held by a golden file.

The small firm of ``tests.firm_files`` is loaded on each database and every command
is run as a script runs it; the JSON must be the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.firm_files import price_history, write_firm
from tests.golden import assert_golden
from typer.testing import CliRunner

from poise.cli import app

runner = CliRunner()
AS_OF = ("--as-of", "2022-12-28")
OPTIMIZE = ("--method", "optimize", *AS_OF, "--json")


def run(*args: str, database_url: str) -> Any:
    result = runner.invoke(app, [*args, "--json", "--database-url", database_url])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # nothing but the document on standard output


def stable(value: Any, folder: Path) -> Any:
    """The document with what differs between runs made fixed: the test's folder and
    the times things were done (dates of the data itself stay)."""
    text = json.dumps(value).replace(str(folder), "FOLDER")
    text = re.sub(
        r'"(loaded_at|quarantined_at|received_at|created_at)": "[^"]+"', r'"\1": "T"', text
    )
    return json.loads(text)


def walk(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in walk(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in walk(v, key)]
    return [(key, value)]


MONEY = {"cash", "value", "basis", "cost_basis", "quantity", "gain", "amount", "price", "aum"}
RATIOS = {"weight", "target", "drift", "max_drift", "band", "short_term", "long_term", "state"}


def assert_convention(document: Any) -> None:
    """Money and quantities are exact decimal strings; ratios are numbers of at most six
    places; nothing is a display string made for a screen."""
    for key, value in walk(document):
        if key in MONEY and value is not None:
            assert isinstance(value, str), (key, value)
            assert Decimal(value).is_finite(), (key, value)
        if key in RATIOS and value is not None:
            assert isinstance(value, float | int), (key, value)
            assert round(value, 6) == value, (key, value)
        if isinstance(value, str):
            assert "±" not in value, (key, value)


@pytest.fixture
def firm(database_url: str, tmp_path: Path) -> Path:
    paths = write_firm(tmp_path / "firm")
    (tmp_path / "firm" / "history.csv").write_text(price_history(30))
    run("ingest", *map(str, paths), database_url=database_url)
    run("ingest", str(tmp_path / "firm" / "history.csv"), database_url=database_url)
    return tmp_path


COMMANDS = {
    "db_current": ("db", "current"),
    "accounts_list": ("accounts", "list"),
    "accounts_show": ("accounts", "show", "10000001"),
    "drift": ("drift", "--all", *AS_OF),
    "holds": ("holds", *AS_OF),
    "quarantine": ("ingest", "--quarantine"),
    "db_upgrade": ("db", "upgrade"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_json_when_a_command_prints_data_then_it_keeps_its_shape_and_the_convention(
    name: str, firm: Path, database_url: str
) -> None:
    document = stable(run(*COMMANDS[name], database_url=database_url), firm)
    assert_convention(document)
    assert_golden(name, document)


def test_json_when_files_are_ingested_then_each_file_is_reported_in_one_shape(
    database_url: str, tmp_path: Path
) -> None:
    paths = write_firm(tmp_path / "firm")
    document = stable(run("ingest", *map(str, paths), database_url=database_url), tmp_path)
    assert_convention(document)
    assert_golden("ingest", document)


def test_json_when_optimize_solves_in_whole_shares_then_no_solver_writes_to_standard_output(
    firm: Path, database_url: str
) -> None:
    # A small account is solved exactly in shares with HiGHS, whose banner went
    # straight to file descriptor 1, ahead of the JSON. A process of its own, so the
    # banner's first (and only) showing is in it.
    done = subprocess.run(
        [sys.executable, "-m", "poise", "rebalance", "--account", "10000002", *OPTIMIZE],
        env={**os.environ, "POISE_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "HiGHS" not in done.stdout + done.stderr
    proposal = json.loads(done.stdout)
    assert proposal["trades"], "the account is out of band: optimize trades"


def test_json_when_the_monitor_replays_prices_then_it_reports_in_one_shape(
    firm: Path, database_url: str
) -> None:
    history = str(firm / "firm" / "history.csv")
    replay = ("monitor", "--replay", history, "--from", "2022-12-19", "--to", "2022-12-28")
    document = stable(run(*replay, database_url=database_url), firm)
    assert_convention(document)
    assert_golden("monitor_replay", document)


def test_json_when_the_demo_runs_then_money_is_exact_and_counts_are_whole(
    database_url: str, tmp_path: Path
) -> None:
    document = run("demo", "--households", "3", "--out", str(tmp_path), database_url=database_url)
    assert_convention(document)
    summary = document["summary"]
    assert isinstance(summary["households"], int)
    assert Decimal(summary["aum"]) == sum(Decimal(r["value"]) for r in summary["by_registration"])
