"""A household's trading history read from the store, and lots written back exactly,
on both databases. The firm is tests/washsale_firm.py's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.washsale_firm import write_firm

from poise.domain.errors import NotFoundError
from poise.domain.lots import TaxLot
from poise.domain.transactions import LotRelieved, TxnKind
from poise.store import repo
from poise.workflow.ingest import ingest_paths

TODAY = date(2022, 12, 30)


@pytest.fixture
def firm(engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    reports = ingest_paths(engine, write_firm(tmp_path / "firm"), today=TODAY)
    assert all(r.loaded == r.read for r in reports), reports
    return engine


def test_household_transactions_when_read_then_every_account_of_it_in_trade_date_order(
    firm: sa.Engine,
) -> None:
    with firm.connect() as connection:
        found = repo.household_transactions(connection, household_id="H1")
    assert [(t.trade_date, t.account_id, t.txn_id) for t in found] == [
        (date(2021, 6, 15), "20000001", "T4"),
        (date(2022, 1, 10), "20000001", "T1"),
        (date(2022, 11, 1), "20000001", "T2"),
        (date(2022, 11, 15), "20000002", "T3"),
        (date(2022, 12, 1), "20000001", "T5"),
        (date(2022, 12, 5), "20000002", "T6"),
    ]
    sale = found[2]
    assert (sale.kind, sale.quantity, sale.amount) == (TxnKind.SELL, 60, 7200)
    assert sale.lots == (LotRelieved("L1", Decimal(60)),)


def test_household_transactions_when_a_range_and_kinds_are_given_then_only_those_come(
    firm: sa.Engine,
) -> None:
    with firm.connect() as connection:
        between = repo.household_transactions(
            connection, household_id="H1", since=date(2022, 11, 1), until=date(2022, 12, 1)
        )
        sales = repo.household_transactions(
            connection, household_id="H2", kinds={TxnKind.SELL}, since=date(2022, 10, 3)
        )
        none = repo.household_transactions(connection, household_id="H3")
    assert [t.txn_id for t in between] == ["T2", "T3", "T5"]  # both ends included
    assert [t.txn_id for t in sales] == ["T8", "T10"]
    assert none == []


def test_household_when_not_in_the_store_then_not_found(firm: sa.Engine) -> None:
    with firm.connect() as connection:
        assert repo.household(connection, household_id="H2").name == "The Okafor household"
        with pytest.raises(NotFoundError, match="no household H9"):
            repo.household(connection, household_id="H9")


def test_trading_households_when_some_only_hold_then_only_those_that_bought_and_sold(
    firm: sa.Engine,
) -> None:
    with firm.connect() as connection:
        assert repo.trading_households(connection) == {"H1", "H2"}
        assert repo.households_of(connection, account_ids=["20000005", "20000006", "X"]) == {
            "H2",
            "H3",
        }


def test_write_lots_when_parts_of_a_third_are_written_then_they_read_back_to_the_last_digit(
    firm: sa.Engine,
) -> None:
    third = Decimal(1000) / 3
    part = TaxLot(
        "M1.1", "20000006", "MSFT", Decimal(1), third, date(2022, 10, 20),
        adjusted_basis=third + Decimal("0.1"), holding_start=date(2021, 1, 5),
        disallowed_loss=Decimal("0.1"),
    )  # fmt: skip
    rest = TaxLot("M1", "20000006", "MSFT", Decimal(9), 2500 - third, date(2022, 10, 20))
    with firm.begin() as connection:
        written = repo.write_lots(connection, write=[part, rest], remove=[])
        back = repo.lots(connection, account_ids=["20000006"])
    assert written == 2
    assert back == [rest, part]
    with firm.begin() as connection:
        assert repo.write_lots(connection, write=[], remove=[("20000006", "M1.1")]) == 1
        assert repo.lots(connection, account_ids=["20000006"]) == [rest]
