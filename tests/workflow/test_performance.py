"""Performance from the store: an account valued every day from its books, a deposit
mid-month linked as GIPS asks (the issue's worked example: 8.387%), a household as its
accounts added up, and ``poise report performance`` printing the same."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.processes import run_poise

from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.performance import load_book, performance

FIRST = date(2026, 6, 1)
DAYS = [FIRST + timedelta(days=i) for i in range(31)]  # the eve, then 30 days
DEPOSIT_DAY = DAYS[16]  # 105,000 at the close before it; 50,000 in at its start


def price(i: int) -> Decimal:
    """100 on the eve, 105 by day 15's close, 110 at the month's end; wandering between."""
    if i <= 15:
        return Decimal(100) + Decimal(5) * i / 15 + (Decimal("0.7") if i % 3 == 1 else 0)
    return Decimal(105) + Decimal(5) * (i - 15) / 15 - (Decimal("0.4") if i % 4 == 1 else 0)


def firm(engine: sa.Engine) -> None:
    """H1: A1 held 1,000 S on the eve (100,000) and got the deposit; A2 holds 10 S and
    100 cash throughout."""
    with engine.begin() as connection:
        connection.execute(sa.insert(t.households), {"household_id": "H1", "name": "H1"})
        connection.execute(sa.insert(t.securities), {
            "security_id": "S", "symbol": "S", "name": "S", "kind": "etf",
            "asset_class": "equity", "currency": "USD", "trade_unit": "whole",
            "trade_step": Decimal(1)})  # fmt: skip
        connection.execute(sa.insert(t.accounts), [
            {"account_id": a, "household_id": "H1", "registration": "taxable",
             "custodian": "Schwab", "cash": cash, "reserve_amount": 0, "reserve_pct": 0,
             "st_rate": 0, "lt_rate": 0, "state_rate": 0, "harvest": False, "model_id": "M"}
            for a, cash in (("A1", Decimal(50_000)), ("A2", Decimal(100)))
        ])  # fmt: skip
        connection.execute(sa.insert(t.lots), [
            {"account_id": a, "lot_id": "L", "security_id": "S", "quantity": q,
             "cost_basis": q * 90, "acquired": date(2025, 1, 2), "disallowed_loss": 0}
            for a, q in (("A1", Decimal(1000)), ("A2", Decimal(10)))
        ])  # fmt: skip
        connection.execute(sa.insert(t.transactions), {
            "account_id": "A1", "txn_id": "D1", "kind": "deposit", "trade_date": DEPOSIT_DAY,
            "settle_date": DEPOSIT_DAY, "quantity": 0, "amount": Decimal(50_000)})  # fmt: skip
        connection.execute(sa.insert(t.prices), [
            {"security_id": "S", "as_of": datetime.combine(d, time(21), tzinfo=UTC),
             "source": "close", "price": price(i)}
            for i, d in enumerate(DAYS)
        ])  # fmt: skip


def test_performance_when_a_deposit_comes_mid_month_then_the_account_links_around_it(
    engine: sa.Engine,
) -> None:
    firm(engine)
    with engine.connect() as connection:
        book, groups = load_book(connection, start=DAYS[0], end=DAYS[-1])

    accounts = performance(book, groups)
    household = performance(book, groups, level="household")

    a1 = accounts.names.index("A1")
    assert accounts.start[a1] == pytest.approx(100_000)
    assert accounts.end[a1] == pytest.approx(160_000)
    assert accounts.flows[a1] == pytest.approx(50_000)
    # 105,000 / 100,000 × 160,000 / 155,000 − 1
    assert accounts.twr[a1] == pytest.approx(0.0838709677, abs=1e-9)
    a2 = accounts.names.index("A2")
    assert accounts.twr[a2] == pytest.approx(
        1_200 / 1_100 - 1
    )  # 10 × 110 + 100 over 10 × 100 + 100
    assert household.names == ("H1",)
    # the household as one portfolio: its days linked around the same deposit
    together = (106_150 / 101_100) * (161_200 / (106_150 + 50_000))
    assert household.twr[0] == pytest.approx(together - 1, abs=1e-9)


def test_report_performance_when_asked_for_json_then_it_prints_each_account(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    firm(engine)
    engine.dispose()

    run = run_poise("report", "performance", "--from", DAYS[0].isoformat(), "--json",
                    database_url=url, cwd=tmp_path, timeout=120)  # fmt: skip

    assert run.code == 0, run.stderr
    document = json.loads(run.stdout)
    rows = {row["account"]: row for row in document["rows"]}
    assert rows["A1"]["twr"] == pytest.approx(0.083871, abs=1e-6)
    assert rows["A1"]["end_value"] == "160000.00"
    assert rows["A1"]["mwr"] is not None
    assert (document["from"], document["to"]) == (DAYS[1].isoformat(), DAYS[-1].isoformat())
