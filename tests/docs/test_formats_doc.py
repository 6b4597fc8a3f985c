"""docs/formats.md says what poise reads, and its examples load.

The column tables of docs/formats.md are written for people, by hand; these tests
hold them to ``poise.ingest.formats``, the one definition of the formats. Every
```` ```csv ```` block on that page is an example of its section's kind: loaded all
together into an empty database, no file is refused and no row is quarantined.
(A counter-example belongs in a ```` ```text ```` block.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from poise.cli import app
from poise.ingest.formats import FORMATS, Column, ColumnType, FileFormat
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

DOCS = Path(__file__).resolve().parents[2] / "docs"
TODAY = date(2026, 1, 1)

# How each column type is named in the tables (and explained under "General rules").
TYPE_LABELS = {
    ColumnType.TEXT: "text",
    ColumnType.DECIMAL: "decimal",
    ColumnType.NON_NEGATIVE: "decimal ≥ 0",
    ColumnType.POSITIVE: "decimal > 0",
    ColumnType.RATE: "rate 0–1",
    ColumnType.INTEGER: "whole number",
    ColumnType.DATE: "date",
    ColumnType.DATETIME: "time",
    ColumnType.BOOLEAN: "true/false",
    ColumnType.CHOICE: "one of",
    ColumnType.LIST: "list",
    ColumnType.RELIEF: "lots relieved",
}
NOT_FUTURE = "not after the load day"
CSV_BLOCK = re.compile(r"^```csv\n(.*?)^```", re.DOTALL | re.MULTILINE)
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```", re.DOTALL | re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """The page's ``## `` sections, keyed by the heading's first word."""
    found: dict[str, str] = {}
    for part in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = part.partition("\n")
        found[heading.split()[0]] = body
    return found


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    type: str
    required: str
    default: str
    meaning: str
    refers_to: str


def table(section: str) -> list[Row]:
    """The rows of the section's column table, in order."""
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["column", "type", "required", "default", "meaning", "refers to"]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(header), line
        name = re.fullmatch(r"`(\w+)`", cells[0])
        assert name is not None, line
        rows.append(Row(name.group(1), *cells[1:]))
    return rows


@pytest.fixture(scope="module")
def formats_page() -> dict[str, str]:
    return sections((DOCS / "formats.md").read_text(encoding="utf-8"))


def expected_type(column: Column) -> str:
    label = TYPE_LABELS[column.type]
    if column.type is ColumnType.CHOICE:
        return f"{label}: " + ", ".join(f"`{choice}`" for choice in column.choices)
    return label


def expected_default(column: Column) -> str:
    if column.default is None:
        return ""
    return "(empty)" if column.default == "" else f"`{column.default}`"


def test_page_when_read_then_it_has_one_section_per_format_in_load_order(
    formats_page: dict[str, str],
) -> None:
    documented = [name for name in formats_page if name in FORMATS]
    assert documented == list(FORMATS)  # FORMATS is in load order


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_table_when_compared_with_the_format_then_every_column_agrees(
    formats_page: dict[str, str], fmt: FileFormat
) -> None:
    rows = table(formats_page[fmt.kind])
    assert [r.name for r in rows] == list(fmt.names)
    for row, column in zip(rows, fmt.columns, strict=True):
        where = f"{fmt.kind}.{column.name}"
        assert row.required == ("yes" if column.required else "no"), where
        assert row.type == expected_type(column), where
        assert row.default == expected_default(column), where
        assert row.refers_to == (column.ref or ""), where
        assert row.meaning, f"{where} has no meaning"
        assert (NOT_FUTURE in row.meaning) == column.not_future, where


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=list(FORMATS))
def test_section_when_read_then_it_names_the_natural_key(
    formats_page: dict[str, str], fmt: FileFormat
) -> None:
    key = " + ".join(f"`{k}`" for k in fmt.key)
    assert f"Natural key: {key}." in formats_page[fmt.kind]


def test_general_rules_when_read_then_every_type_in_the_tables_is_explained(
    formats_page: dict[str, str],
) -> None:
    explained = {
        line.strip("|").split("|")[0].strip()
        for line in formats_page["General"].splitlines()
        if line.startswith("|")
    }
    assert set(TYPE_LABELS.values()) <= explained


def examples(page: dict[str, str]) -> dict[str, list[str]]:
    """Every csv block of the page, by the section it stands in."""
    return {name: CSV_BLOCK.findall(body) for name, body in page.items()}


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def write_examples(page: dict[str, str], folder: Path) -> list[Path]:
    blocks = examples(page)
    stray = sorted(name for name, found in blocks.items() if found and name not in FORMATS)
    assert not stray, f"csv examples outside a format's section: {stray}"
    paths = []
    for kind in reversed(FORMATS):  # reversed: ingest must put them in order itself
        assert blocks.get(kind), f"the {kind} section has no csv example"
        for i, block in enumerate(blocks[kind]):
            path = folder / f"{kind}-{i}.csv"
            path.write_text(block, encoding="utf-8")
            paths.append(path)
    return paths


def test_examples_when_loaded_in_order_then_every_row_of_every_kind_loads(
    formats_page: dict[str, str], sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    paths = write_examples(formats_page, tmp_path)

    reports = ingest_paths(sqlite_engine, paths, today=TODAY)

    assert [r.refused for r in reports if r.refused] == []
    rejects = {Path(r.path).name: r.rejects for r in reports if r.rejects}
    assert rejects == {}
    for r in reports:
        assert r.kind == Path(r.path).name.rsplit("-", 1)[0], r.path
        assert r.read > 0
        assert r.loaded == r.read
    with sqlite_engine.connect() as connection:
        for fmt in FORMATS.values():
            stored = connection.execute(
                sa.select(sa.func.count()).select_from(repo.table_for(fmt.table))
            ).scalar_one()
            assert stored > 0, fmt.kind

    again = ingest_paths(sqlite_engine, paths, today=TODAY)

    assert [(r.loaded, r.unchanged, r.quarantined) for r in again] == [
        (0, r.read, 0) for r in reports
    ]


def test_ingest_page_when_compared_with_the_command_then_the_json_shape_agrees(
    tmp_path: Path,
) -> None:
    text = (DOCS / "ingest.md").read_text(encoding="utf-8")
    documented = json.loads(JSON_BLOCK.findall(text)[0])
    households = tmp_path / "households.csv"
    households.write_text("household_id,name\nH1,The Garcia household\nH2,\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")

    url = f"sqlite:///{tmp_path / 'poise.db'}"
    result = CliRunner().invoke(
        app, ["ingest", "--json", "--database-url", url, str(households), str(empty)]
    )

    assert result.exit_code == 4  # a refused file
    printed = json.loads(result.stdout)
    assert [set(obj) for obj in printed] == [set(obj) for obj in documented]
    assert printed[0]["rejects"] == [{"line": 3, "reason": "name is missing"}]
    assert set(documented[0]["rejects"][0]) == {"line", "reason"}
    assert printed[1]["refused"] == "empty.csv: the file is empty"
