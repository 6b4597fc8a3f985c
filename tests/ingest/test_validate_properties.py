"""Amounts survive validation exactly: whatever way a custodian writes a lot's quantity
and cost — a plus sign, trailing zeros, up to six decimal places — the canonical text
poise stores is the same Decimal, digit for digit, and no valid lot is turned away.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from poise.ingest.formats import FORMATS
from poise.ingest.parse import read_table
from poise.ingest.validate import validate

TODAY = date(2022, 12, 30)
SECURITIES = ("VTI", "BND", "VXUS")
KNOWN = {"accounts": pl.Series(["ACC-1001"]), "securities": pl.Series(SECURITIES)}


@st.composite
def amounts(draw: st.DrawFn) -> str:
    """A non-negative amount as a custodian might write it: ``+1500.2500``, ``0.000``, ``7``."""
    whole = draw(st.integers(min_value=0, max_value=10**12))
    places = draw(st.integers(min_value=0, max_value=6))
    fraction = draw(st.integers(min_value=0, max_value=10**places - 1)) if places else 0
    text = f"{whole}.{fraction:0{places}d}" if places else str(whole)
    zeros = draw(st.integers(min_value=0, max_value=3))
    if zeros:
        text += "0" * zeros if places else "." + "0" * zeros
    return ("+" if draw(st.booleans()) else "") + text


lot_rows = st.lists(
    st.tuples(
        st.sampled_from(SECURITIES),
        amounts(),
        amounts(),
        st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
        st.none() | amounts(),
    ),
    min_size=1,
    max_size=20,
)


def is_canonical(text: str) -> bool:
    """No plus sign, and no trailing zero or bare point after a decimal point."""
    if text.startswith("+"):
        return False
    return "." not in text or not text.endswith(("0", "."))


@settings(max_examples=150, deadline=None)
@given(lot_rows)
def test_validate_when_lots_are_valid_then_every_row_is_kept_with_exactly_the_same_amounts(
    drawn: list[tuple[str, str, str, date, str | None]],
):
    body = [
        f"ACC-1001,L{i},{security},{quantity},{cost},{acquired.isoformat()},{adjusted or ''}"
        for i, (security, quantity, cost, acquired, adjusted) in enumerate(drawn)
    ]
    text = "account_id,lot_id,security_id,quantity,cost_basis,acquired,adjusted_basis\n"
    table = read_table((text + "\n".join(body) + "\n").encode(), name="lots.csv")

    batch = validate(table, FORMATS["lots"], known=KNOWN, today=TODAY)

    assert batch.rejects == ()
    stored = batch.rows.select("quantity", "cost_basis", "acquired", "adjusted_basis").rows()
    assert len(stored) == len(drawn)
    for (quantity, cost, acquired, adjusted), (_, q_in, c_in, a_in, adj_in) in zip(
        stored, drawn, strict=True
    ):
        assert Decimal(quantity) == Decimal(q_in)
        assert Decimal(cost) == Decimal(c_in)
        assert acquired == a_in
        if adj_in is None:
            assert adjusted is None
        else:
            assert Decimal(adjusted) == Decimal(adj_in)
        assert all(is_canonical(t) for t in (quantity, cost, adjusted) if t is not None)
