"""``poise drift`` after the monitor has raised requests: every account out of band is
still listed, and a column says which already have a request open."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from poise.cli import app
from poise.demo import generate_firm, write_firm
from poise.workflow.ingest import ingest_paths

runner = CliRunner()


def poise(*args: str, database_url: str) -> Any:
    result = runner.invoke(app, [*args, "--json", "--database-url", database_url])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_drift_when_requests_are_open_then_out_of_band_accounts_are_still_listed(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    paths = write_firm(generate_firm(households=12, seed=5), tmp_path)
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    as_of = ("--as-of", "2022-12-28")

    before = poise("drift", *as_of, "--limit", "0", database_url=database_url)
    out_of_band = {a["account_id"] for a in before["accounts"] if a["out_of_band"]}
    assert out_of_band, "the firm should drift by the end of 2022"
    assert not any(a["open_request"] for a in before["accounts"])  # nothing requested yet

    # The monitor raises a request for every account out of band over December.
    replayed = poise(
        "monitor",
        "--replay",
        str(tmp_path / "prices.csv"),
        "--from",
        "2022-12-01",
        "--to",
        "2022-12-28",
        database_url=database_url,
    )
    # It says which days it replayed (not the evening before the first, where it began).
    assert (replayed["first_day"], replayed["last_day"]) == ("2022-12-01", "2022-12-28")
    assert replayed["requests"] > 0
    after = poise("drift", *as_of, "--limit", "0", database_url=database_url)
    listed = {a["account_id"]: a for a in after["accounts"]}
    assert out_of_band <= set(listed)  # an open request hides no account
    assert after["listed_total"] == len(listed)
    assert any(listed[a]["open_request"] for a in out_of_band)
    for account_id in out_of_band:
        row = listed[account_id]
        assert row["positions"] or row["held"], row
        for position in row["positions"]:  # data, not display strings
            assert isinstance(position["drift"], float)
            assert position["band"] is None or abs(position["drift"]) > position["band"]

    everything = poise("drift", *as_of, "--all", "--limit", "0", database_url=database_url)
    assert everything["accounts_total"] == len(everything["accounts"]) >= len(listed)
    assert {a["account_id"] for a in everything["accounts"] if a["out_of_band"]} == out_of_band
