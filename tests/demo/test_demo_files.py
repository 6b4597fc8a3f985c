"""Writing the demo firm: one canonical CSV a kind, read back exactly as generated."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from poise.demo import Firm, generate_firm, write_firm
from poise.domain.errors import ConfigError
from poise.ingest.formats import FORMATS, format_for


def test_write_firm_writes_one_file_a_kind_in_load_order(firm: Firm, tmp_path: Path) -> None:
    paths = write_firm(firm, tmp_path / "out")
    assert [p.name for p in paths] == [f"{kind}.csv" for kind in FORMATS]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_written_files_read_back_cell_for_cell(firm: Firm, tmp_path: Path) -> None:
    for path, (kind, frame) in zip(write_firm(firm, tmp_path), firm.frames().items(), strict=True):
        back = pl.read_csv(path, infer_schema=False).fill_null("")
        assert back.equals(frame), kind


def test_written_files_are_recognised_by_their_columns(firm: Firm, tmp_path: Path) -> None:
    for path in write_firm(firm, tmp_path):
        header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
        fmt = format_for(header)
        assert fmt is not None
        assert fmt.kind == path.stem


def test_empty_cells_are_written_empty_not_quoted(firm: Firm, tmp_path: Path) -> None:
    write_firm(firm, tmp_path)
    text = (tmp_path / "accounts.csv").read_text(encoding="utf-8")
    assert '""' not in text
    assert ",," in text
    assert "e+" not in text.lower()
    assert "e-0" not in text.lower()


def test_generate_when_data_dir_is_missing_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="market data file not found"):
        generate_firm(households=1, data_dir=tmp_path)
