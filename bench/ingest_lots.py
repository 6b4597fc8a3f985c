"""Benchmark: ingest of generated tax-lot rows into SQLite and PostgreSQL.

    .venv/bin/python bench/ingest_lots.py [--rows 1000000] [--sqlite] [--postgres URL]

Makes 5,000 accounts and 500 securities, writes ROWS lot rows as one canonical CSV,
and times ``poise ingest`` of that file (read, parse, validate every row, stage and
upsert in one transaction) on a fresh database, then again on the loaded one (every
row unchanged). Targets: ≥ 50,000 rows/s into SQLite, ≥ 100,000 rows/s into PostgreSQL.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_file, ingest_paths

ACCOUNTS = 5_000
SECURITIES = 500
TODAY = date(2026, 1, 1)


def write_inputs(folder: Path, rows: int) -> tuple[list[Path], Path]:
    securities = folder / "securities.csv"
    securities.write_text(
        "security_id,symbol,name,kind,asset_class\n"
        + "".join(f"S{i:04d},S{i:04d},Security {i},stock,us_equity\n" for i in range(SECURITIES))
    )
    households = folder / "households.csv"
    households.write_text(
        "household_id,name\n" + "".join(f"H{i:05d},Household {i}\n" for i in range(ACCOUNTS // 2))
    )
    accounts = folder / "accounts.csv"
    accounts.write_text(
        "account_id,household_id,registration,cash\n"
        + "".join(f"A{i:06d},H{i // 2:05d},taxable,1000.00\n" for i in range(ACCOUNTS))
    )
    lots = folder / "lots.csv"
    with lots.open("w") as handle:
        handle.write("account_id,lot_id,security_id,quantity,cost_basis,acquired\n")
        for i in range(rows):
            day = date.fromordinal(date(2005, 1, 3).toordinal() + i % 6_000)
            handle.write(
                f"A{i % ACCOUNTS:06d},L{i:08d},S{(i * 7) % SECURITIES:04d},"
                f"{i % 400 + 1}.{i % 1000:03d},{(i % 9_000 + 10) * 13}.{i % 100:02d},{day}\n"
            )
    return [securities, households, accounts], lots


def run(name: str, url: str, setup: list[Path], lots: Path, rows: int) -> None:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS bench_ingest CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA bench_ingest")
        engine.dispose()
        engine = make_engine(
            url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dbench_ingest"
        )
    upgrade(engine)
    ingest_paths(engine, setup, today=TODAY)
    for label in ("fresh", "again"):
        start = time.perf_counter()
        report = ingest_file(engine, lots, today=TODAY)
        seconds = time.perf_counter() - start
        assert report.read == rows
        assert report.quarantined == 0
        print(
            f"{name:<10} {label:<6} {rows:>10,} rows  {seconds:7.2f} s  "
            f"{rows / seconds:>10,.0f} rows/s  (inserted {report.inserted:,}, "
            f"unchanged {report.unchanged:,})"
        )
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM lots")).scalar_one() == rows
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA bench_ingest CASCADE")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="URL"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        setup, lots = write_inputs(folder, args.rows)
        print(f"file: {lots.stat().st_size / 1e6:.1f} MB, {args.rows:,} lot rows")
        if not args.skip_sqlite:
            run("sqlite", f"sqlite:///{folder / 'bench.db'}", setup, lots, args.rows)
        if not args.skip_postgres:
            run("postgresql", args.postgres, setup, lots, args.rows)


if __name__ == "__main__":
    main()
