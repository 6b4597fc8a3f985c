"""Ingest applies wash sales to the stored lots, on SQLite and PostgreSQL: once, in the
load's own transaction, and the same however often the files come again.

The firm is tests/washsale_firm.py's: the Garcias' loss of $1,500 on 50 AAPL moves
into their joint lot J1; 20 of the 30 shares of their lot J2 replace a $400 loss and
are split off as J2.1; the Okafors' IRA lot I1 makes a $1,800 loss permanent and
keeps its cost.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.washsale_firm import LOTS, TRANSACTIONS, write_firm

from poise.domain.lots import TaxLot
from poise.store import repo
from poise.store import tables as t
from poise.workflow import washsales
from poise.workflow.ingest import ingest_file, ingest_paths

TODAY = date(2022, 12, 30)
D = Decimal

WASHED = {  # account/lot → (shares, cost, basis, held since, disallowed)
    "20000001/L1": (D(40), D(6000), D(6000), date(2022, 1, 10), D(0)),
    "20000001/L3": (D(5), D(2000), D(2000), date(2021, 6, 15), D(0)),
    "20000002/J1": (D(50), D(6000), D(7500), date(2022, 1, 24), D(1500)),
    "20000002/J2": (D(10), D(3800), D(3800), date(2022, 12, 5), D(0)),
    "20000002/J2.1": (D(20), D(7600), D(8000), date(2021, 6, 19), D(400)),
    "20000004/K1": (D(10), D(3000), D(3000), date(2021, 3, 1), D(0)),
    "20000005/I1": (D(30), D(7050), D(7050), date(2022, 10, 20), D(0)),
    "20000006/M1": (D(10), D(2500), D(2500), date(2022, 10, 20), D(0)),
}


def stored(engine: sa.Engine) -> dict[str, tuple[Decimal, Decimal, Decimal, date, Decimal]]:
    with engine.connect() as connection:
        return {
            f"{lot.account_id}/{lot.lot_id}": (
                lot.quantity, lot.cost_basis, lot.basis, lot.held_since, lot.disallowed_loss
            )
            for lot in repo.lots(connection)
        }  # fmt: skip


def snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the firm's tables hold, exactly as stored (the text SQLite keeps)."""
    with engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {name}"))
            for name in ("lots", "transactions", "accounts", "securities")
        }


def load(engine: sa.Engine, paths: list[Path]) -> dict[str, Any]:
    reports = ingest_paths(engine, paths, today=TODAY)
    assert [r.refused or r.failed for r in reports] == [""] * len(paths)
    return {r.kind: r for r in reports}


def test_ingest_when_the_history_holds_washes_then_the_stored_lots_carry_them(
    engine: sa.Engine, tmp_path: Path
) -> None:
    reports = load(engine, write_firm(tmp_path))
    assert stored(engine) == WASHED
    # The lots loaded before the transactions that wash them: the transactions' load
    # wrote J1's adjustment and split J2 in two.
    assert reports["lots"].wash_sale_lots == 0
    assert reports["transactions"].wash_sale_lots == 3
    with engine.connect() as connection:
        found = washsales.household_washes(connection, household_id="H1")
    assert found.pending == 0
    assert [(w.txn_id, w.stored_as) for w in found.history.washes] == [
        ("T2", "J1"),
        ("T5", "J2.1"),
    ]


def test_ingest_when_the_same_files_come_again_then_nothing_changes(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = write_firm(tmp_path)
    load(engine, paths)
    before = snapshot(engine)
    # The custodian's lots file puts J1 and J2 back at their cost, whole: the load
    # stores them as the washes leave them, so every row is unchanged.
    again = load(engine, paths)
    assert snapshot(engine) == before
    assert [(r.inserted, r.updated, r.wash_sale_lots) for r in again.values()] == [(0, 0, 0)] * 5
    lots_only = tmp_path / "lots-again.csv"
    lots_only.write_text(LOTS)
    report = ingest_file(engine, lots_only, today=TODAY)
    assert (report.unchanged, report.wash_sale_lots) == (7, 0)
    assert snapshot(engine) == before


def test_ingest_when_transactions_come_before_lots_then_the_books_end_the_same(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = {p.name: p for p in write_firm(tmp_path)}
    setup = [paths[n] for n in ("securities.csv", "households.csv", "accounts.csv")]
    load(engine, setup)
    load(engine, [paths["transactions.csv"]])  # no lot in the books yet: nothing to adjust
    assert stored(engine) == {}
    reports = load(engine, [paths["lots.csv"]])
    # The lots file's own rows are stored adjusted; J2.1 is written beside them.
    assert (reports["lots"].inserted, reports["lots"].wash_sale_lots) == (7, 1)
    assert stored(engine) == WASHED


def test_ingest_when_the_custodian_sends_a_split_lot_sold_down_then_its_parts_are_made_again(
    engine: sa.Engine, tmp_path: Path
) -> None:
    # J2 comes again with 25 shares (5 sold, the sale not yet in the store): the 5 go
    # from the shares no wash took, so J2.1 keeps its 20 and J2 holds 5 — never J2's 25
    # beside J2.1's 20.
    load(engine, write_firm(tmp_path))
    fixed = tmp_path / "lots-fixed.csv"
    fixed.write_text(
        "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
        "20000002,J2,SPYB,25,9500,2022-12-05\n"
    )
    report = ingest_file(engine, fixed, today=TODAY)
    assert (report.updated, report.wash_sale_lots) == (1, 0)
    found = stored(engine)
    assert found["20000002/J2.1"] == WASHED["20000002/J2.1"]
    assert found["20000002/J2"] == (D(5), D(1900), D(1900), date(2022, 12, 5), D(0))


def test_ingest_when_a_sale_is_corrected_to_a_gain_then_the_adjustment_it_made_stays(
    engine: sa.Engine, tmp_path: Path
) -> None:
    # The engine adds and recomputes adjustments; it never removes one a wash no
    # longer explains (docs/washsales.md): a sale corrected to a gain leaves J1 as it
    # was until the custodian sends J1 again.
    load(engine, write_firm(tmp_path))
    fixed = tmp_path / "transactions-fixed.csv"
    fixed.write_text(TRANSACTIONS.replace("AAPL,60,7200,L1:60", "AAPL,60,9600,L1:60"))
    load(engine, [fixed])
    assert stored(engine)["20000002/J1"] == WASHED["20000002/J1"]
    lots = tmp_path / "lots-again.csv"
    lots.write_text(LOTS)
    load(engine, [lots])
    assert stored(engine)["20000002/J1"] == (D(50), D(6000), D(6000), date(2022, 11, 15), D(0))


def test_ingest_when_writing_the_washes_fails_then_nothing_of_the_file_is_loaded(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = {p.name: p for p in write_firm(tmp_path)}
    load(engine, [paths[n] for n in ("securities.csv", "households.csv", "accounts.csv")])
    load(engine, [paths["lots.csv"]])
    before = snapshot(engine)
    write_lots = repo.write_lots

    def write_then_fail(connection: sa.Connection, **kwargs: Any) -> int:
        write_lots(connection, **kwargs)  # part of the washes written, then a crash
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(repo, "write_lots", write_then_fail)
    (report,) = ingest_paths(engine, [paths["transactions.csv"]], today=TODAY)
    assert "the disk is full" in report.failed
    assert snapshot(engine) == before  # no transaction, no adjustment
    monkeypatch.undo()
    load(engine, [paths["transactions.csv"]])  # run again: it finishes the job
    assert stored(engine) == WASHED


def test_apply_household_washes_when_run_again_then_it_writes_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load(engine, write_firm(tmp_path))
    with engine.begin() as connection:
        # Put J1 back at cost and J2 whole, as a store loaded before the engine holds them.
        connection.execute(t.lots.delete().where(t.lots.c.lot_id.in_(["J1", "J2", "J2.1"])))
        repo.write_lots(
            connection,
            write=[
                TaxLot("J1", "20000002", "AAPL", D(50), D(6000), date(2022, 11, 15)),
                TaxLot("J2", "20000002", "SPYB", D(30), D(11400), date(2022, 12, 5)),
            ],
            remove=[],
        )
    with engine.connect() as connection:
        assert washsales.household_washes(connection, household_id="H1").pending == 3
    with engine.begin() as connection:
        assert washsales.apply_household_washes(connection, household_ids=["H1", "H2"]) == 3
    with engine.begin() as connection:
        assert washsales.apply_household_washes(connection, household_ids=["H1", "H2"]) == 0
    assert stored(engine) == WASHED
