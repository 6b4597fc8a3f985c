"""A command answers at once: the heavy modules load only where a command uses them.

Times are measured by ``bench/startup.py``, not here (machines are shared and noisy);
what is held here is the cause of a slow start — which modules a command loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.firm_files import write_firm
from typer.main import get_command
from typer.testing import CliRunner

from poise.cli import app

HEAVY = ("sqlalchemy", "alembic", "polars", "numpy", "scipy", "pydantic_settings", "highspy",
         "clarabel", "pyarrow", "nats", "asyncio")  # fmt: skip

PROBE = """
import json, sys
from poise.cli import main
sys.argv = ["poise", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nLOADED " + json.dumps(sorted(sys.modules)))
"""


def loaded_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level modules a ``poise`` process has loaded when it ends."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    names = json.loads(done.stderr.rsplit("LOADED ", 1)[1])
    return {name.split(".")[0] for name in names}


def test_help_when_asked_then_no_heavy_module_is_loaded() -> None:
    assert loaded_by("--help") & set(HEAVY) == set()
    assert loaded_by("rebalance", "--help") & set(HEAVY) == set()


def test_accounts_show_when_run_then_neither_alembic_nor_the_engine_nor_dataframes_load(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    paths = [str(p) for p in write_firm(tmp_path / "firm")]
    subprocess.run(
        [sys.executable, "-m", "poise", "ingest", *paths, "--database-url", url],
        capture_output=True,
        check=True,
        timeout=120,
    )
    loaded = loaded_by("accounts", "show", "10000001", env={"POISE_DATABASE_URL": url})
    assert "sqlalchemy" in loaded  # it did read the store
    assert loaded & {"alembic", "polars", "numpy", "scipy", "highspy", "clarabel"} == set()


def _commands() -> list[list[str]]:
    found: list[list[str]] = []

    def visit(command: object, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                visit(child, [*path, name])
        else:
            found.append(path)

    visit(get_command(app), [])
    return found


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_when_shown_then_a_flag_reads_as_a_flag(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout, result.stdout
    if any(line.strip().startswith("--json") for line in result.stdout.splitlines()):
        assert "--json <" not in result.stdout
