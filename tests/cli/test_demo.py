"""``poise demo`` on a store that already holds a firm: it refuses to merge, and
``--reset`` starts over, saying what it dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from poise.demo.files import DATA_DIR, INDEX_FILE, PRICES_FILE
from poise.store.engine import make_engine
from poise.store.reset import counts

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def demo(*args: str, database_url: str, out: Path) -> tuple[int, str, str]:
    """``poise demo`` as a user runs it: a process of its own, its exit code and output."""
    done = subprocess.run(
        [sys.executable, "-m", "poise", "demo", "--load-only", "--out", str(out), *args],
        env={**os.environ, "POISE_DATABASE_URL": database_url, "COLUMNS": "100"},
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def rows(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return counts(connection)
    finally:
        engine.dispose()


def test_demo_when_the_store_holds_a_firm_then_it_refuses_and_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    code, _, _ = demo("--households", "4", database_url=database_url, out=tmp_path / "a")
    assert code == 0
    before = rows(database_url)

    code, text, error = demo(
        "--households", "3", "--seed", "3", database_url=database_url, out=tmp_path / "b"
    )
    assert code == 7
    assert "already holds a firm (4 households" in " ".join(error.split())
    assert "poise demo --reset" in " ".join(error.split())
    assert text == ""
    assert rows(database_url) == before  # nothing renamed, added or overwritten


def test_demo_when_reset_then_the_store_holds_exactly_the_new_firm(
    database_url: str, tmp_path: Path
) -> None:
    assert demo("--households", "4", database_url=database_url, out=tmp_path / "a")[0] == 0
    first = rows(database_url)

    code, text, _ = demo(
        "--households",
        "3",
        "--seed",
        "3",
        "--reset",
        "--json",
        database_url=database_url,
        out=tmp_path / "b",
    )
    assert code == 0, text
    report = json.loads(text)
    # It says what it dropped: the first firm, table by table.
    assert report["dropped"] == {table: n for table, n in first.items() if n}
    assert report["summary"]["households"] == 3

    # The same firm built into an empty store: the reset left nothing of the first.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert demo("--households", "3", "--seed", "3", database_url=fresh, out=tmp_path / "c")[0] == 0
    after, expected = rows(database_url), rows(fresh)
    assert {t: after[t] for t in after if t not in ("ingest_files", "quarantine")} == {
        t: expected[t] for t in expected if t not in ("ingest_files", "quarantine")
    }


@pytest.mark.skipif(not SHARED.is_dir(), reason="the repository's shared market data is absent")
def test_demo_data_shipped_in_the_package_is_the_market_data_byte_for_byte() -> None:
    for name in (PRICES_FILE, INDEX_FILE):
        assert (DATA_DIR / name).read_bytes() == (SHARED / name).read_bytes()
    assert "BSD 3-Clause" in (DATA_DIR / "LICENSE").read_text()


def test_demo_when_the_whole_loop_runs_then_every_stage_runs_and_the_custodian_agrees(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "files"
    done = subprocess.run(
        [sys.executable, "-m", "poise", "demo", "--quick", "--households", "5", "--json",
         "--out", str(out)],
        env={**os.environ, "POISE_DATABASE_URL": database_url},
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    loop = {x["stage"]: x["figures"] for x in json.loads(done.stdout)["loop"]}
    assert list(loop) == [
        "monitor", "rebalance", "approve", "execute", "reconcile", "report", "statements",
    ]  # fmt: skip
    assert loop["rebalance"]["trades"] > 0
    assert loop["approve"]["released"] == loop["approve"]["pending"] > 0
    assert loop["execute"]["blocks"] + loop["execute"]["crosses"] > 0
    assert loop["reconcile"]["booked"] > 0
    assert loop["reconcile"]["breaks"] == 0  # the custodian, made from the broker's side, agrees
    assert sorted(p.name for p in (out / "custodian").iterdir())[0].startswith("positions-")
    assert (loop["statements"]["written"], loop["statements"]["failed"]) == (5, 0)
    assert len(list((out / "statements").glob("*.pdf"))) == 5
    counted = rows(database_url)
    assert counted["allocations"] + counted["cross_legs"] > 0
