"""A household's quarterly statement: the data behind it held by a golden file, and the
printed PDF checked as an image — a letter page, the household's name on its first page,
the allocation's bars drawn in the brand's blue on the next.

The firm is ``tests.workflow.test_performance``'s (a 50,000 deposit mid-month), with a
model for H1, a fee, and SPY priced as the benchmark."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pypdfium2
import pytest
import sqlalchemy as sa
from tests.golden import assert_golden
from tests.workflow.test_performance import DAYS, firm

from poise.store import tables as t
from poise.workflow.performance import attribution_of
from poise.workflow.statements import statement_data, statement_pdf

START, END = date(2026, 4, 1), date(2026, 6, 30)


def statement_firm(engine: sa.Engine) -> None:
    firm(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(t.securities), {
            "security_id": "SPY", "symbol": "SPY", "name": "SPDR S&P 500 ETF Trust",
            "kind": "etf", "asset_class": "us_equity", "currency": "USD", "trade_unit": "whole",
            "trade_step": Decimal(1)})  # fmt: skip
        connection.execute(sa.insert(t.prices), [
            {"security_id": "SPY", "as_of": datetime.combine(d, time(21), tzinfo=UTC),
             "source": "close", "price": Decimal(400) + i}
            for i, d in enumerate(DAYS)
        ])  # fmt: skip
        connection.execute(sa.insert(t.model_targets), [
            {"model_id": "M", "kind": "security", "target_id": "S", "weight": Decimal("0.9")},
            {"model_id": "M", "kind": "cash", "target_id": "", "weight": Decimal("0.1")},
        ])  # fmt: skip
        connection.execute(sa.insert(t.transactions), {
            "account_id": "A2", "txn_id": "FEE1", "kind": "fee", "trade_date": DAYS[20],
            "settle_date": DAYS[20], "quantity": 0, "amount": Decimal(25),
            "description": "advisory fee"})  # fmt: skip


def plain(value: Any) -> Any:
    """A statement's data as JSON: decimals and dates as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def test_statement_when_a_quarter_is_stated_then_its_data_is_the_golden_files(
    engine: sa.Engine,
) -> None:
    statement_firm(engine)
    with engine.connect() as connection:
        data = statement_data(connection, household_id="H1", start=START, end=END,
                              benchmark="SPY")  # fmt: skip

    # at 30 June's close, 109.2667 (tests.workflow.test_performance.price(29)): each
    # account's S to the cent, and their cash
    assert data.value_end == Decimal("109266.67") + Decimal("1092.67") + Decimal(50_100)
    assert data.added == Decimal("50000.00")
    assert data.fees == Decimal(25)
    assert data.returns["quarter"] is not None
    assert data.benchmark_returns["quarter"] == round(429 / 400 - 1, 6)  # 1 to 30 June
    assert_golden("statement_H1", json.loads(json.dumps(plain(data))))


def test_statement_when_printed_then_its_pages_show_the_household_and_its_charts(
    engine: sa.Engine,
) -> None:
    statement_firm(engine)
    with engine.connect() as connection:
        data = statement_data(connection, household_id="H1", start=START, end=END,
                              benchmark="SPY")  # fmt: skip

    document = pypdfium2.PdfDocument(statement_pdf(data))
    try:
        first, second = document[0], document[1]
        assert (round(first.get_width()), round(first.get_height())) == (612, 792)  # letter
        words = first.get_textpage().get_text_range()
        assert "H1" in words
        assert "Quarterly statement, 2026-04-01 to 2026-06-30" in words
        assert "160,459.34" in words  # the value at the end, on the first page
        image = second.render(scale=1).to_pil().convert("RGB")
        colours = {colour: count for count, colour in image.getcolors(1 << 24) or []}
        blue = colours.get((36, 88, 166), 0)
        assert blue > 500  # the allocation's bars, and the headings, in #2458a6
    finally:
        document.close()


def test_attribution_when_the_household_holds_its_models_security_then_selection_is_nothing(
    engine: sa.Engine,
) -> None:
    statement_firm(engine)
    with engine.connect() as connection:
        found = attribution_of(connection, household_id="H1", start=DAYS[0], end=DAYS[-1])

    got = found.attribution
    assert got.segments == ("cash", "equity")
    # the model: S at 0.9, cash at 0.1; S is the household's only security, so its
    # equity return is the model's and selection is nothing
    assert got.selection[1] == pytest.approx(0.0, abs=1e-9)
    assert got.explained == pytest.approx(got.active, abs=1e-12)
    assert sum(got.allocation) != 0  # the household holds more cash than its model
    assert (found.realised, found.estimated_tax) == (Decimal(0), Decimal(0))
