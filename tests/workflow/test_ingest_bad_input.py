"""Bad input never crashes a load, on SQLite and PostgreSQL alike: every odd file ends
as loaded rows, quarantined rows with a reason, or a refused file with a reason, and
one file that goes wrong never stops the files after it.

The firm of ``tests/firm_files.py`` is loaded first; the load runs on 30 December 2022.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from tests.workflow.test_ingest import TODAY, counts, load_firm

from poise.store import tables as t
from poise.workflow.ingest import FileReport, ingest_file, ingest_paths

LOTS = "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"


def outcome(report: FileReport) -> tuple[int, int, list[tuple[int, str]]]:
    """What a file's load did: rows loaded, rows read, and each quarantined line's reason."""
    return report.loaded, report.read, [(r.line, r.reason) for r in report.rejects]


def stored_lots(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(t.lots.c.lot_id)).scalars())


def test_ingest_when_a_price_time_is_spelt_two_ways_then_the_first_price_is_stored(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path / "firm")
    path = tmp_path / "prices-2022-12-29.csv"
    path.write_text(
        "security_id,as_of,price,source\n"
        "AAPL,2022-12-29,129.61,close\n"
        "AAPL,2022-12-29T00:00:00Z,130.00,close\n"
        "MSFT,2022-12-29T21:00:00Z,241.01,close\n"
        "MSFT,2022-12-29T16:00:00-05:00,241.50,close\n"
    )

    report = ingest_file(engine, path, today=TODAY)

    assert outcome(report) == (
        2,
        4,
        [
            (3, "the same security_id/as_of/source as line 2"),
            (5, "the same security_id/as_of/source as line 4"),
        ],
    )
    with engine.connect() as connection:
        prices = connection.execute(
            sa.select(t.prices.c.security_id, t.prices.c.price).where(
                t.prices.c.as_of > datetime(2022, 12, 28, 12, tzinfo=UTC)
            )
        ).all()
    assert sorted((s, Decimal(p)) for s, p in prices) == [
        ("AAPL", Decimal("129.61")),
        ("MSFT", Decimal("241.01")),
    ]


def test_ingest_when_ids_and_numbers_break_the_limits_then_rows_are_quarantined_alike(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """On PostgreSQL these rows failed the whole load; SQLite stored them, the digits of
    other scripts as text. Both now quarantine them, with the same reasons."""
    load_firm(engine, tmp_path / "firm")
    path = tmp_path / "lots-more.csv"
    path.write_text(
        LOTS + f"10000001,{'L' * 106},MSFT,10,2000,2021-01-04\n"
        f"10000001,{'M' * 1_000_000},MSFT,10,2000,2021-01-04\n"
        "10000001,M3,MSFT,١٠٠,2000,2021-01-04\n"
        "10000001,M4,MSFT,１００,2000,2021-01-04\n"
        f"10000001,M5,MSFT,{'9' * 40},2000,2021-01-04\n"
        "10000001,M6,MSFT,10,2000,2021-01-04\n",
        encoding="utf-8",
    )
    securities = tmp_path / "securities-more.csv"
    securities.write_text(
        f"security_id,symbol,name,kind,asset_class\nACME,{'ACME' * 10},Acme Corp.,stock,us_equity\n"
    )

    reports = ingest_paths(engine, [path, securities], today=TODAY)

    assert [outcome(r) for r in reports] == [
        (
            0,
            1,
            [(2, f"symbol '{'ACME' * 10}' is 40 characters long; at most 32 are allowed")],
        ),
        (
            1,
            6,
            [
                (2, f"lot_id '{'L' * 39}…' is 106 characters long; at most 64 are allowed"),
                (3, f"lot_id '{'M' * 39}…' is 1000000 characters long; at most 64 are allowed"),
                (4, "quantity '١٠٠' is not a number: digits are 0-9 only"),
                (5, "quantity '１００' is not a number: digits are 0-9 only"),
                (
                    6,
                    f"quantity '{'9' * 40}' has more than 18 digits before the point"
                    " or 18 after it",
                ),
            ],
        ),
    ]
    assert stored_lots(engine) == {"L1", "L2", "L3", "L4", "L5", "M6"}


def test_ingest_when_a_description_runs_over_several_lines_then_it_is_stored_whole(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path / "firm")
    path = tmp_path / "transactions.csv"
    path.write_bytes(
        b"account_id,txn_id,kind,trade_date,settle_date,amount,description\r\n"
        b'10000001,T1,deposit,2022-10-03,2022-10-03,5000.00,"ACH deposit\r\nfrom checking"\r\n'
        b"10000001,T2,fee,2022-12-30,2022-12-30,25.00,Advisory fee Q4\r\n"
        b"10000001,T3,fee,2022-12-30,2022-12-29,25.00,Advisory fee Q4 again\r\n"
    )

    report = ingest_file(engine, path, today=TODAY)

    assert outcome(report) == (2, 3, [(5, "settle_date is before trade_date")])
    with engine.connect() as connection:
        descriptions = dict(
            connection.execute(
                sa.select(t.transactions.c.txn_id, t.transactions.c.description)
            ).all()
        )
    assert descriptions == {"T1": "ACH deposit\nfrom checking", "T2": "Advisory fee Q4"}


def test_ingest_when_a_file_name_is_not_utf8_then_it_loads_under_a_printable_name(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """A name written on another system (Latin-1 é) cannot be stored as it is; the
    load goes ahead and the name shows the byte as U+FFFD."""
    load_firm(engine, tmp_path / "firm")
    raw = os.path.join(os.fsencode(tmp_path), b"lots-r\xe9sum\xe9.csv")
    with open(raw, "wb") as handle:
        handle.write(
            LOTS.encode()
            + b"10000001,N1,MSFT,10,2000,2021-01-04\n10000001,N2,MSFT,ten,1,2021-01-04\n"
        )

    [report] = ingest_paths(engine, [Path(os.fsdecode(raw))], today=TODAY)

    assert (report.failed, report.refused) == ("", "")
    assert outcome(report) == (1, 2, [(3, "quantity 'ten' is not a number")])
    assert report.path == f"{tmp_path}/lots-r\ufffdsum\ufffd.csv"
    with engine.connect() as connection:
        names = set(connection.execute(sa.select(t.quarantine.c.file_name)).scalars())
    assert names == {"lots-r\ufffdsum\ufffd.csv"}


def parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_ingest_when_parquet_columns_are_binary_struct_or_hold_nul_then_files_are_refused(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path / "firm")
    lots = {
        "account_id": ["10000001"],
        "lot_id": ["P1"],
        "security_id": ["MSFT"],
        "quantity": ["10"],
        "cost_basis": ["2000"],
        "acquired": ["2021-01-04"],
    }
    files = {
        "binary.parquet": {**lots, "lot_id": [b"P\xff1"]},
        "struct.parquet": {**lots, "quantity": [{"units": 10, "scale": 0}]},
        "nul.parquet": {**lots, "lot_id": ["P\x001"]},
        "good.parquet": {**lots, "quantity": [Decimal(10)]},
    }
    paths = []
    for name, columns in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(parquet(pl.DataFrame(columns)))

    reports = ingest_paths(engine, paths, today=TODAY)

    assert [(Path(r.path).name, r.refused, r.loaded) for r in reports] == [
        (
            "binary.parquet",
            "binary.parquet: column lot_id holds binary data that is not UTF-8 text (row 1);"
            " nothing was loaded",
            0,
        ),
        (
            "struct.parquet",
            "struct.parquet: column quantity is of Parquet type struct, which holds no value"
            " poise reads; nothing was loaded",
            0,
        ),
        (
            "nul.parquet",
            "nul.parquet: column lot_id holds a NUL character (row 1): binary data, not"
            " text; nothing was loaded",
            0,
        ),
        ("good.parquet", "", 1),
    ]
    assert stored_lots(engine) == {"L1", "L2", "L3", "L4", "L5", "P1"}


def refuse_pledged_lots(engine: sa.Engine) -> None:
    """Make the database itself refuse any lot whose id starts with PLEDGED.

    After the fixes that no file can make poise's own load fail, so the fault has to
    come from elsewhere: a trigger, as a database administrator might add one, makes
    the database refuse the write for real (no mock), part-way through the load.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER no_pledged_lots BEFORE INSERT ON lots"
                " WHEN substr(NEW.lot_id, 1, 7) = 'PLEDGED'"
                " BEGIN SELECT RAISE(ABORT, 'refused by the database'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_pledged() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF left(NEW.lot_id, 7) = 'PLEDGED' THEN"
                " RAISE EXCEPTION 'refused by the database' USING ERRCODE = '23000';"
                " END IF; RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER no_pledged_lots BEFORE INSERT ON lots"
                " FOR EACH ROW EXECUTE FUNCTION refuse_pledged()"
            )


def test_ingest_when_the_database_refuses_one_file_then_it_is_reported_and_the_rest_load(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path / "firm")
    refuse_pledged_lots(engine)
    before = counts(engine)
    early = tmp_path / "lots-early.csv"
    early.write_text(LOTS + "10000002,E1,MSFT,5,1000,2021-01-04\n")
    pledged = tmp_path / "lots-pledged.csv"
    pledged.write_text(
        LOTS + "10000001,N1,MSFT,10,2000,2021-01-04\n10000001,PLEDGED-1,MSFT,5,900,2021-01-04\n"
    )
    flows = tmp_path / "cash_flows.csv"
    flows.write_text(
        "account_id,flow_id,kind,amount,requested\n10000001,CF1,withdrawal,3000.00,2022-12-15\n"
    )

    reports = ingest_paths(engine, [flows, early, pledged], today=TODAY)

    assert [(Path(r.path).name, r.loaded) for r in reports] == [
        ("lots-early.csv", 1),
        ("lots-pledged.csv", 0),
        ("cash_flows.csv", 1),
    ]
    failed = reports[1]
    assert failed.refused == ""
    assert failed.failed.startswith(
        "lots-pledged.csv: the load failed and nothing of it was loaded (IntegrityError: "
    )
    assert "refused by the database" in failed.failed
    assert "\n" not in failed.failed
    assert stored_lots(engine) == {"L1", "L2", "L3", "L4", "L5", "E1"}  # not N1 either
    assert counts(engine)["cash_flows"] == before["cash_flows"] + 1
    with engine.connect() as connection:
        loads = connection.execute(sa.select(t.ingest_files.c.name)).scalars().all()
        quarantined = connection.execute(sa.select(t.quarantine.c.file_name)).scalars().all()
    assert "lots-pledged.csv" not in loads
    assert "lots-pledged.csv" not in quarantined
