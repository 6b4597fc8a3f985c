"""`poise ingest` as an operations person runs it, in a real process: what it says when a
name is no file, and that every file gets its report whatever happened to another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from tests.firm_files import write_firm
from tests.workflow.test_ingest_bad_input import LOTS, refuse_pledged_lots

from poise.store.engine import make_engine
from poise.store.migrate import upgrade

POISE = Path(sys.executable).with_name("poise")


def poise(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POISE_DATABASE_URL": database_url, "COLUMNS": "120"}
    return subprocess.run(
        [str(POISE), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_ingest_when_a_pattern_matched_no_file_then_it_says_so_and_exits_4(
    tmp_path: Path,
) -> None:
    """The shell passes ``my-files/*.csv`` on as it is when nothing matches it."""
    (tmp_path / "my-files").mkdir()
    url = f"sqlite:///{tmp_path / 'poise.db'}"

    done = poise("ingest", "my-files/*.csv", "nowhere.csv", database_url=url, cwd=tmp_path)

    assert done.returncode == 4, done.stderr
    assert "my-files/*.csv │ no such file" in done.stdout
    assert "nowhere.csv    │ no such file" in done.stdout
    assert "refused: no file matches my-files/*.csv" in done.stderr
    assert "refused: nowhere.csv: no such file" in done.stderr

    done = poise("ingest", "--json", "my-files/*.csv", database_url=url, cwd=tmp_path)

    assert done.returncode == 4
    [report] = json.loads(done.stdout)
    assert (report["path"], report["refused"], report["failed"]) == (
        "my-files/*.csv",
        "no file matches my-files/*.csv",
        None,
    )


def test_ingest_when_one_file_fails_then_every_file_is_reported_and_it_exits_1(
    database_url: str, tmp_path: Path
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    refuse_pledged_lots(engine)
    engine.dispose()
    firm = write_firm(tmp_path / "firm")
    pledged = tmp_path / "lots-pledged.csv"
    pledged.write_text(LOTS + "10000001,PLEDGED-1,MSFT,5,900,2021-01-04\n")
    args = [str(p) for p in (pledged, *firm)]

    done = poise("ingest", "--json", *args, database_url=database_url, cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    reports = {Path(r["path"]).name: r for r in json.loads(done.stdout)}
    assert set(reports) == {"lots-pledged.csv", *(p.name for p in firm)}
    assert {name: r["loaded"] for name, r in reports.items()} == {
        "securities.csv": 7,
        "households.csv": 2,
        "models.csv": 8,
        "accounts.csv": 3,
        "lots.csv": 5,
        "lots-pledged.csv": 0,
        "prices.csv": 7,  # after the failed file: still loaded
    }
    failed = reports["lots-pledged.csv"]
    assert failed["refused"] is None
    assert failed["failed"].startswith(
        "lots-pledged.csv: the load failed and nothing of it was loaded (IntegrityError: "
    )
    assert "Traceback" not in done.stderr

    done = poise("ingest", *args, database_url=database_url, cwd=tmp_path)

    assert done.returncode == 1
    assert "lots-pledged.csv │ failed" in done.stdout
    assert "failed: lots-pledged.csv: the load failed" in done.stderr
    engine = make_engine(database_url)
    with engine.connect() as connection:
        lots = connection.execute(sa.text("SELECT lot_id FROM lots")).scalars().all()
    engine.dispose()
    assert sorted(lots) == ["L1", "L2", "L3", "L4", "L5"]
