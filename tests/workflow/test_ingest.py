"""Ingest end to end, on SQLite and PostgreSQL: files in, rows and quarantine out."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from tests.firm_files import FILES, write_firm

from poise.domain.errors import FormatError
from poise.store import repo
from poise.store import tables as t
from poise.workflow.ingest import ingest_file, ingest_paths

TODAY = date(2022, 12, 30)
# What a load records about itself: its history, its quarantine, its audit entry.
BOOKKEEPING = ("ingest_files", "quarantine", "audit_entries")


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in t.metadata.tables.items()
            if name not in BOOKKEEPING
        }


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.execute(sa.select(table)))
            for name, table in t.metadata.tables.items()
            if name not in BOOKKEEPING
        }


def load_firm(engine: sa.Engine, folder: Path) -> list[Path]:
    paths = write_firm(folder)
    reports = ingest_paths(engine, paths, today=TODAY)
    assert [r.refused for r in reports] == [""] * len(paths)
    return paths


def test_ingest_when_files_arrive_in_any_order_then_references_load_first(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = write_firm(tmp_path)
    reports = ingest_paths(engine, paths, today=TODAY)
    assert [r.kind for r in reports] == [
        "securities",
        "models",
        "households",
        "accounts",
        "lots",
        "prices",
    ]
    assert all(r.quarantined == 0 for r in reports), [r.rejects for r in reports]
    loaded = {name: n for name, n in counts(engine).items() if n}  # every other table empty
    assert loaded == {
        "securities": 7,
        "households": 2,
        "model_targets": 8,
        "accounts": 3,
        "lots": 5,
        "prices": 7,
    }


def test_ingest_when_money_is_loaded_then_it_round_trips_exactly(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    with engine.connect() as connection:
        lots = {lot.lot_id: lot for lot in repo.lots(connection)}
        account = repo.account(connection, account_id="10000002")
    assert lots["L2"].cost_basis == Decimal("8750.50")
    assert lots["L3"].quantity == Decimal("20.125")
    assert lots["L5"].quantity == Decimal("400.5")
    assert account.cash == Decimal("150.25")
    # 0.1 + 0.2 is not 0.3 in floating point; stored as Decimal it is.
    path = tmp_path / "fix.csv"
    path.write_text(
        "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
        "10000001,L9,MSFT,0.1,0.2,2020-01-02\n"
        "10000001,L10,MSFT,0.2,12345678901234.123456789,2020-01-02\n"
    )
    ingest_file(engine, path, today=TODAY)
    with engine.connect() as connection:
        lots = {lot.lot_id: lot for lot in repo.lots(connection)}
    assert lots["L9"].quantity + lots["L10"].quantity == Decimal("0.3")
    assert lots["L10"].cost_basis == Decimal("12345678901234.123456789")


def test_ingest_when_the_same_files_load_twice_then_no_row_changes(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = load_firm(engine, tmp_path)
    before = snapshot(engine)
    again = ingest_paths(engine, paths, today=TODAY)
    assert snapshot(engine) == before
    assert [(r.inserted, r.updated) for r in again] == [(0, 0)] * len(paths)
    assert sum(r.unchanged for r in again) == sum(r.read for r in again)


def test_ingest_when_a_row_is_corrected_then_it_replaces_its_predecessor(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    fixed = tmp_path / "lots-fixed.csv"
    fixed.write_text(
        FILES["lots.csv"].replace("10000001,L2,AAPL,50,8750.50", "10000001,L2,AAPL,55,9625.55")
    )
    report = ingest_file(engine, fixed, today=TODAY)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 4)
    with engine.connect() as connection:
        lot = {lot.lot_id: lot for lot in repo.lots(connection)}["L2"]
    assert (lot.quantity, lot.cost_basis) == (Decimal(55), Decimal("9625.55"))
    assert counts(engine)["lots"] == 5


def test_ingest_when_a_model_is_sent_again_then_it_is_replaced_whole(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    path = tmp_path / "models-2.csv"
    path.write_text("model_id,kind,target_id,weight\nEQ,security,AAPL,0.5\nEQ,security,SPYA,0.5\n")
    report = ingest_file(engine, path, today=TODAY)
    assert report.quarantined == 0
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(t.model_targets.c.target_id, t.model_targets.c.weight)
            .where(t.model_targets.c.model_id == "EQ")
            .order_by(t.model_targets.c.target_id)
        ).all()
    assert rows == [("AAPL", Decimal("0.5")), ("SPYA", Decimal("0.5"))]
    assert report.updated == 3  # two weights changed, MSFT removed


def test_ingest_when_one_row_in_a_thousand_is_bad_then_999_load_and_1_is_quarantined(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    lines = ["account_id,lot_id,security_id,quantity,cost_basis,acquired"]
    for i in range(1000):
        quantity = "-3" if i == 617 else str(i + 1)
        lines.append(f"10000002,B{i:04d},MSFT,{quantity},{(i + 1) * 100}.00,2021-02-03")
    path = tmp_path / "big-lots.csv"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_file(engine, path, today=TODAY)
    assert (report.read, report.inserted, report.quarantined) == (1000, 999, 1)
    [reject] = report.rejects
    assert reject.line == 619  # header is line 1, row 617 (from 0) is line 619
    assert reject.reason == "quantity -3 is negative"
    with engine.connect() as connection:
        [stored] = repo.list_quarantine(connection)
    assert (stored.file_name, stored.line, stored.reason) == ("big-lots.csv", 619, reject.reason)
    assert stored.raw == "10000002,B0617,MSFT,-3,61800.00,2021-02-03"
    # Again: nothing doubles, neither the lots nor the quarantine.
    again = ingest_file(engine, path, today=TODAY)
    assert (again.inserted, again.unchanged, again.quarantined) == (0, 999, 1)
    with engine.connect() as connection:
        assert len(repo.list_quarantine(connection, everything=True)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("account_id,lot_id\n10000001,Lé\n".encode("latin-1"), "not UTF-8"),
        (b"# Lots\n\nThese are my lots, one per line.\n", "match no poise format"),
        (b"account_id,lot_id,security_id,quantity,cost_basis,acquired,colour\n", "unknown colour"),
        (b"PAR1\x00\x00garbage", "Parquet"),
    ],
)
def test_ingest_when_a_file_is_not_the_format_then_it_is_refused_and_nothing_loads(
    engine: sa.Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    load_firm(engine, tmp_path)
    before = snapshot(engine)
    path = tmp_path / "junk.csv"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message):
        ingest_file(engine, path, today=TODAY)
    [report] = ingest_paths(engine, [path], today=TODAY)
    assert message in report.refused
    assert snapshot(engine) == before


def test_ingest_when_a_file_is_truncated_mid_row_then_it_is_refused_and_nothing_loads(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    before = snapshot(engine)
    lines = ["account_id,lot_id,security_id,quantity,cost_basis,acquired"]
    lines += [f"10000002,T{i},MSFT,{i + 1},100.00,2021-02-03" for i in range(500)]
    text = "\n".join(lines)
    path = tmp_path / "cut.csv"
    path.write_text(text[: text.rindex(",100.00") + 4])  # cut inside the last row
    with pytest.raises(FormatError, match="truncated"):
        ingest_file(engine, path, today=TODAY)
    assert snapshot(engine) == before


def test_ingest_when_a_parquet_file_is_given_then_it_loads_like_its_csv(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    frame = pl.read_csv(io.StringIO(FILES["lots.csv"]), infer_schema=False).with_columns(
        pl.col("acquired").str.to_date(), pl.col("lot_id").str.replace("L", "P")
    )
    path = tmp_path / "lots.parquet"
    frame.write_parquet(path)
    report = ingest_file(engine, path, today=TODAY)
    assert (report.kind, report.inserted, report.quarantined) == ("lots", 5, 0)
    with engine.connect() as connection:
        lot = {lot.lot_id: lot for lot in repo.lots(connection)}["P3"]
    assert (lot.quantity, lot.acquired) == (Decimal("20.125"), date(2021, 6, 15))


def test_ingest_when_a_row_names_an_unknown_account_then_it_is_quarantined(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    path = tmp_path / "lots.csv"
    path.write_text(
        "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
        "99999999,X1,AAPL,1,100,2020-01-02\n"
        "10000001,X2,NOPE,1,100,2020-01-02\n"
        "10000001,X3,AAPL,1,100,2031-01-02\n"
    )
    report = ingest_file(engine, path, today=TODAY)
    assert [(r.line, r.reason) for r in report.rejects] == [
        (2, "account_id: unknown account '99999999'"),
        (3, "security_id: unknown security 'NOPE'"),
        (4, "acquired 2031-01-02 is in the future"),
    ]
    assert report.inserted == 0


def test_ingest_when_a_file_does_not_exist_then_it_is_refused_and_the_others_load(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = [tmp_path / "nowhere.csv", *write_firm(tmp_path)]
    reports = ingest_paths(engine, paths, today=TODAY)
    [missing] = [r for r in reports if r.refused]
    assert missing.path.endswith("nowhere.csv")
    assert missing.refused == f"{paths[0]}: no such file"
    assert missing.missing
    assert counts(engine)["lots"] == 5


def test_ingest_when_a_sleeve_is_rejected_then_the_model_holding_it_is_rejected_too(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    path = tmp_path / "models-3.csv"
    path.write_text(
        "model_id,kind,target_id,weight\n"
        "SLEEVE,security,AAPL,0.9\n"  # adds up to 0.9: rejected
        "PARENT,model,SLEEVE,1\n"
        "LOOP1,model,LOOP2,1\n"
        "LOOP2,model,LOOP1,1\n"
    )
    report = ingest_file(engine, path, today=TODAY)
    assert [(r.line, r.reason) for r in report.rejects] == [
        (2, "weights of model_id SLEEVE add up to 0.9, not 1"),
        (3, "target_id: unknown model 'SLEEVE'"),
        (4, "models hold each other: LOOP1 → LOOP2 → LOOP1"),
        (5, "models hold each other: LOOP1 → LOOP2 → LOOP1"),
    ]
    assert report.loaded == 0
