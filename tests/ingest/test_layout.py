"""A custodian's own file read through a layout: its columns renamed, its dates, signs
and thousands separators made canonical, its symbols mapped — and a row the layout
cannot read is quarantined with the canonical reason, never dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.firm_files import write_firm
from tests.processes import run_poise

from poise.domain.errors import ValidationError
from poise.ingest.layout import Layout, apply_layout, read_layout

LAYOUT = """\
kind = "positions"
skip_rows = 2
negate = ["quantity"]

[columns]
account_id = "Account Number"
as_of = "As Of"
security_id = "Symbol"
quantity = "Short Qty"

[dates]
as_of = "%m/%d/%Y"

[remove]
quantity = ","

[replace.security_id]
"APPLE" = "AAPL"
"""
CUSTODIAN = """\
Positions report
generated 12/31/2025 18:00
Account Number,Symbol,Short Qty,As Of,Market Value
10000001,APPLE,"-1,150",12/31/2025,"$170,000"
10000002,MSFT,-30,2025-12-31,"$11,000"
"""


def test_apply_when_a_custodians_file_is_read_then_it_is_the_canonical_format(
    tmp_path: Path,
) -> None:
    (tmp_path / "layout.toml").write_text(LAYOUT)
    layout = read_layout(tmp_path / "layout.toml")

    text = apply_layout(layout, CUSTODIAN.encode()).decode()

    assert text.splitlines() == [
        "account_id,as_of,security_id,quantity",
        "10000001,2025-12-31,AAPL,1150",
        "10000002,2025-12-31,MSFT,30",  # already ISO: the format does not match, kept
    ]


def test_layout_when_it_leaves_a_required_column_unfilled_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="nothing fills the required quantity"):
        Layout(kind="positions", columns={"account_id": "A", "as_of": "B", "security_id": "C"})
    with pytest.raises(ValidationError, match="no column of the positions format"):
        Layout(kind="positions", columns={"account_id": "A", "as_of": "B", "security_id": "C",
                                          "quantity": "D", "colour": "E"})  # fmt: skip


def test_ingest_when_a_layout_is_given_then_rows_load_and_unreadable_ones_are_quarantined(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    paths = write_firm(tmp_path / "firm")
    assert run_poise("ingest", *map(str, paths), database_url=url, cwd=tmp_path).code == 0
    (tmp_path / "layout.toml").write_text(LAYOUT)
    custodian = CUSTODIAN + "10000001,MSFT,-5,31/12/2025,$0\n"  # a date the layout cannot read
    (tmp_path / "schwab.csv").write_text(custodian)

    run = run_poise("ingest", "--layout", "layout.toml", "schwab.csv", "--json",
                    database_url=url, cwd=tmp_path)  # fmt: skip

    assert run.code == 0, run.stderr
    (report,) = json.loads(run.stdout)
    assert (report["kind"], report["loaded"], report["quarantined"]) == ("positions", 2, 1)
    quarantined = run_poise("ingest", "--quarantine", "--json", database_url=url, cwd=tmp_path)
    (row,) = json.loads(quarantined.stdout)
    assert "31/12/2025" in row["reason"]
