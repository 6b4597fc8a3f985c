"""`poise washsales`: a household's wash sales for people (a table) and scripts (JSON),
on the firm of tests/washsale_firm.py loaded on each database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_json import assert_convention
from tests.golden import assert_golden
from tests.processes import run_poise
from tests.washsale_firm import write_firm
from typer.testing import CliRunner

from poise.cli import app
from poise.domain.errors import NotFoundError

runner = CliRunner()


def poise(*args: str, database_url: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--database-url", database_url], env={"COLUMNS": "220"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def data(*args: str, database_url: str) -> Any:
    code, text, _ = poise(*args, "--json", database_url=database_url)
    assert code == 0, text
    return json.loads(text)


@pytest.fixture
def firm(database_url: str, tmp_path: Path) -> str:
    data("ingest", *map(str, write_firm(tmp_path / "firm")), database_url=database_url)
    return database_url


def test_washsales_when_a_household_washed_losses_then_json_names_each_sale_and_replacement(
    firm: str,
) -> None:
    garcia = data("washsales", "--household", "H1", database_url=firm)
    okafor = data("washsales", "--household", "H2", database_url=firm)
    for document in (garcia, okafor):
        assert_convention(document)
    assert_golden("washsales", {"H1": garcia, "H2": okafor})
    first = garcia["washes"][0]
    assert (first["sale"]["txn_id"], first["sale"]["loss"], first["disallowed"]) == (
        "T2",
        "1800",
        "1500",
    )
    assert (first["basis"], first["holding_start"], first["permanent"]) == (
        "7500",
        "2022-01-24",
        False,
    )
    assert garcia["totals"] == {"disallowed": "1900", "deferred": "1900", "lost": "0"}
    (lost,) = okafor["washes"]
    assert (lost["permanent"], lost["replacement"]["registration"]) == (True, "traditional_ira")
    assert okafor["totals"] == {"disallowed": "1800", "deferred": "0", "lost": "1800"}
    assert [u["reason"] for u in okafor["unknown_sales"]] == ["the books hold no lot K9"]
    assert garcia["pending_lots"] == okafor["pending_lots"] == 0


def test_washsales_when_shown_as_a_table_then_each_wash_is_a_row_and_unknowns_are_said(
    firm: str,
) -> None:
    code, text, _ = poise("washsales", "--household", "H1", database_url=firm)
    assert code == 0
    rows = [line for line in text.splitlines() if "2022-" in line]
    assert len(rows) == 2
    for cell in ("2022-11-01", "20000001", "AAPL", "L1", "1,800.00", "2022-11-15",
                 "20000002 (joint)", "J1", "1,500.00", "7,500.00", "2022-01-24"):  # fmt: skip
        assert cell in rows[0], cell
    assert "J2.1" in rows[1]
    assert "8,000.00" in rows[1]
    assert "disallowed 1,900.00: 1,900.00 moved into the replacement lots' basis" in text
    code, text, _ = poise("washsales", "--household", "H2", database_url=firm)
    assert "1,800.00 lost" in text
    assert "1 sale(s) whose basis cannot be known" in text
    assert "T10: 10 XOM for 1,100.00 — the books hold no lot K9" in text


def test_washsales_when_a_year_is_given_then_only_that_years_loss_sales_are_listed(
    firm: str,
) -> None:
    assert data("washsales", "--household", "H1", "--year", "2021", database_url=firm) == {
        "household_id": "H1",
        "year": 2021,
        "washes": [],
        "totals": {"disallowed": "0", "deferred": "0", "lost": "0"},
        "unknown_sales": [],
        "unplaced_buys": [],
        "pending_lots": 0,
    }
    assert len(data("washsales", "--household", "H1", "--year", "2022", database_url=firm)[
        "washes"
    ]) == 2  # fmt: skip


def test_washsales_when_the_household_is_unknown_then_it_says_so_and_exits_5(
    firm: str, tmp_path: Path
) -> None:
    done = run_poise("washsales", "--household", "H9", database_url=firm, cwd=tmp_path)
    assert done.code == NotFoundError.exit_code == 5
    assert done.error_lines == ["error: no household H9"]
    assert done.stdout == ""
