"""Odd text in the id and number columns of a lots file never breaks a load, on SQLite or
PostgreSQL: whatever a custodian's export puts there — other scripts' digits, quotes,
commas, line breaks, control characters, very long cells — every row read is loaded or
quarantined, the load never raises, and what is stored is exactly the ASCII decimal the
file said.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.workflow.test_ingest import load_firm

from poise.store import tables as t
from poise.workflow.ingest import ingest_file

TODAY = date(2022, 12, 30)
ASCII_DECIMAL = re.compile(r"[+-]?[0-9]*\.?[0-9]*")
PLAIN_AMOUNT = re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")

# Any character but NUL (a NUL refuses the whole file as binary, which has its own test),
# CR (a CR before a line break is part of the line end) and surrogates (not UTF-8).
odd_char = st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r") | st.sampled_from(
    '",;:\n\t .+-0123456789١٠۱５０'
)
odd_text = st.text(odd_char, max_size=90)


@st.composite
def amounts(draw: st.DrawFn) -> str:
    """A plain amount a valid file would hold."""
    whole = draw(st.integers(min_value=0, max_value=10**18 - 1))
    places = draw(st.integers(min_value=0, max_value=18))
    if not places:
        return str(whole)
    return f"{whole}.{draw(st.integers(min_value=0, max_value=10**places - 1)):0{places}d}"


rows = st.lists(
    st.tuples(
        odd_text.filter(lambda s: not s[-1:].isspace()),  # the end of a lot id
        st.one_of(amounts(), odd_text.filter(lambda s: s == s.strip())),  # a quantity
        st.booleans(),  # whether the security is a known one or odd text
        odd_text,
    ),
    min_size=1,
    max_size=12,
)
example = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    # One database per test run, not per example: every example writes lots of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows)
@pytest.mark.slow
def test_ingest_when_ids_and_numbers_hold_odd_text_then_every_row_is_loaded_or_quarantined(
    engine: sa.Engine, tmp_path: Path, drawn: list[tuple[str, str, bool, str]]
) -> None:
    n = next(example)
    with engine.connect() as connection:
        if not connection.execute(sa.select(sa.func.count()).select_from(t.accounts)).scalar():
            load_firm(engine, tmp_path / "firm")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["account_id", "lot_id", "security_id", "quantity", "cost_basis", "acquired"])
    lot_ids = []
    for i, (lot_tail, quantity, known, security) in enumerate(drawn):
        lot_ids.append(f"X{n}-{i}-{lot_tail}")
        writer.writerow(
            ["10000001", lot_ids[-1], "MSFT" if known else security, quantity, "100", "2021-01-04"]
        )
    path = tmp_path / f"lots-{n}.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")

    report = ingest_file(engine, path, today=TODAY)

    assert report.read == len(drawn)
    assert report.inserted + report.updated + report.unchanged + report.quarantined == report.read
    assert all(r.reason for r in report.rejects)
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                sa.select(t.lots.c.lot_id, t.lots.c.quantity).where(t.lots.c.lot_id.like(f"X{n}-%"))
            ).all()
        )
    assert len(stored) == report.inserted
    written = {lot_id: quantity for lot_id, (_, quantity, _, _) in zip(lot_ids, drawn, strict=True)}
    for lot_id, quantity in stored.items():
        assert ASCII_DECIMAL.fullmatch(written[lot_id]), written[lot_id]
        assert Decimal(quantity) == Decimal(written[lot_id])
    must_load = {
        lot_id
        for lot_id, (_, quantity, known, _) in zip(lot_ids, drawn, strict=True)
        if known and len(lot_id) <= 64 and PLAIN_AMOUNT.fullmatch(quantity)
    }
    assert must_load <= set(stored)
