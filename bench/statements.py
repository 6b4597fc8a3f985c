"""Benchmark: quarterly statements a minute, on two cores.

    .venv/bin/python bench/statements.py [--households 60] [--workers 2]

The demo firm built with ``poise demo`` (its whole loop run, so the quarter holds
trades, fills and realised gains) in a fresh SQLite store; then every household's
statement of the latest quarter read from the store and printed to PDF by WeasyPrint,
over ``--workers`` processes, timed from the pool's start to the last PDF written (the
workers' start — imports, fonts — counted). Target (issue 15): ≥ 120 statements a minute
on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.workflow.statements import latest_quarter, write_statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'poise.db'}"
        built = subprocess.run(
            [sys.executable, "-m", "poise", "demo", "--households", str(args.households),
             "--json", "--database-url", url],
            cwd=folder, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if built.returncode != 0:
            sys.exit(built.stderr)
        engine = make_engine(url)
        with engine.connect() as connection:
            start, end = latest_quarter(connection)
            households = [h.household_id for h in repo.households(connection)]
        engine.dispose()
        began = time.perf_counter()
        written = write_statements(
            url, households, start=start, end=end, folder=Path(folder) / "statements",
            benchmark=Settings().benchmark, workers=args.workers,
        )  # fmt: skip
        seconds = time.perf_counter() - began
        pages = sum((Path(w.path).stat().st_size for w in written if w.path), 0)
    failed = [w for w in written if w.error]
    rate = len(written) / seconds * 60
    mark = "✓" if rate >= 120 and not failed else "✗"
    print("| date | households | workers | seconds | statements/min | PDF bytes each | failed |"
          " target | load |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    print(
        f"| {datetime.now(UTC).date()} | {len(written)} | {args.workers} | {seconds:.1f} |"
        f" {rate:.0f} | {pages // max(len(written), 1):,} | {len(failed)} | ≥ 120 {mark} |"
        f" {os.getloadavg()[0]:.1f} |"
    )


if __name__ == "__main__":
    main()
