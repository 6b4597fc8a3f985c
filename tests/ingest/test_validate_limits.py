"""What a file may not hold, whatever the database would take: ids and text longer than
their limits, digits of other scripts, numbers too long to stay exact, the same key
spelt two ways, and Parquet columns of a type that cannot hold the column's values.

Each limit is a rule of the file, checked before anything is written, so a file is
judged the same on SQLite (which would store almost anything) as on PostgreSQL (which
would fail the whole load). The firm holds accounts ACC-1001 and ACC-1002, securities
VTI, BND and VXUS; the load runs on 30 December 2022.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import polars as pl
import pytest
import sqlalchemy as sa

from poise.domain.errors import FormatError
from poise.ingest.formats import FORMATS, ID_LENGTH, TEXT_LENGTH, ColumnType
from poise.ingest.parse import read_table
from poise.ingest.validate import Batch, check_types, validate
from poise.store import repo

TODAY = date(2022, 12, 30)
KNOWN = {
    "households": pl.Series(["HH-1"]),
    "accounts": pl.Series(["ACC-1001", "ACC-1002"]),
    "securities": pl.Series(["VTI", "BND", "VXUS"]),
}
LOTS = "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"


def check(kind: str, text: str) -> Batch:
    table = read_table(text.encode(), name=f"{kind}.csv")
    return validate(table, FORMATS[kind], known=KNOWN, today=TODAY)


def reasons(batch: Batch) -> dict[int, str]:
    return {r.line: r.reason for r in batch.rejects}


# --- lengths ------------------------------------------------------------------------


def test_validate_when_a_lot_id_is_longer_than_an_id_may_be_then_the_lot_is_rejected():
    long_id = "LOT-" + "7" * 102  # 106 characters, as one custodian's export had
    batch = check(
        "lots",
        LOTS + f"ACC-1001,{long_id},VTI,10,1500,2022-01-03\n"
        f"ACC-1001,{'L' * ID_LENGTH},VTI,10,1500,2022-01-03\n",
    )

    assert reasons(batch) == {
        2: f"lot_id '{long_id[:39]}…' is 106 characters long; at most 64 are allowed"
    }
    assert batch.rows["lot_id"].to_list() == ["L" * ID_LENGTH]


def test_validate_when_an_id_is_a_megabyte_then_the_reason_quotes_only_its_start():
    batch = check("lots", LOTS + f"ACC-1001,{'L' * 1_000_000},VTI,10,1500,2022-01-03\n")

    [reject] = batch.rejects
    assert reject.reason == (
        f"lot_id '{'L' * 39}…' is 1000000 characters long; at most 64 are allowed"
    )


def test_validate_when_a_symbol_is_forty_characters_then_the_security_is_rejected():
    batch = check(
        "securities",
        "security_id,symbol,name,kind,asset_class\n"
        f"ACME,{'ACME' * 10},Acme Corp.,stock,us_equity\n",
    )

    assert reasons(batch) == {
        2: f"symbol '{'ACME' * 10}' is 40 characters long; at most 32 are allowed"
    }


def test_validate_when_a_description_is_longer_than_text_may_be_then_it_is_rejected():
    text = "x" * (TEXT_LENGTH + 1)
    batch = check(
        "transactions",
        "account_id,txn_id,kind,trade_date,settle_date,amount,description\n"
        f"ACC-1001,T1,fee,2022-12-30,2022-12-30,25,{text}\n"
        f"ACC-1001,T2,fee,2022-12-30,2022-12-30,25,{text[:-1]}\n",
    )

    assert reasons(batch) == {
        2: f"description '{'x' * 39}…' is 10001 characters long; at most 10000 are allowed"
    }


def test_formats_when_a_column_is_stored_in_a_bounded_column_then_its_limit_fits_it():
    """Every text column the store keeps in a VARCHAR(n) is limited to n characters or
    fewer at validation, so the database never sees a value too long for it."""
    for fmt in FORMATS.values():
        table = repo.table_for(fmt.table)
        for column in fmt.columns:
            stored = table.c[column.name].type
            if isinstance(stored, sa.String) and stored.length is not None:
                if column.type is ColumnType.CHOICE:
                    assert max(map(len, column.choices)) <= stored.length, column.name
                elif column.name != "currency":  # three capital letters, by its own rule
                    limit = column.length_limit
                    assert limit is not None, f"{fmt.kind}.{column.name}"
                    assert limit <= stored.length, f"{fmt.kind}.{column.name}"


# --- digits -------------------------------------------------------------------------


def test_validate_when_quantities_are_in_arabic_indic_or_full_width_digits_then_rejected():
    """Both look like 100 to a person and to Python's Decimal; neither is what poise
    stores, so neither is read as a number."""
    batch = check(
        "lots",
        LOTS + "ACC-1001,L1,VTI,١٠٠,1500,2022-01-03\n"
        "ACC-1001,L2,VTI,１００,1500,2022-01-03\n"
        "ACC-1001,L3,VTI,100,۱۵۰۰,2022-01-03\n"
        "ACC-1001,L4,VTI,100,1500,2022-01-03\n",
    )

    assert reasons(batch) == {
        2: "quantity '١٠٠' is not a number: digits are 0-9 only",
        3: "quantity '１００' is not a number: digits are 0-9 only",
        4: "cost_basis '۱۵۰۰' is not a number: digits are 0-9 only",
    }
    assert batch.rows["lot_id"].to_list() == ["L4"]


def test_validate_when_a_date_or_a_horizon_is_in_other_digits_then_the_row_is_rejected():
    clients = check(
        "clients",
        "client_id,household_id,name,risk_tolerance,horizon_years\n"
        "C1,HH-1,Maria Garcia,moderate,١٥\n",
    )
    lots = check("lots", LOTS + "ACC-1001,L1,VTI,10,1500,٢٠٢٢-٠١-٠٣\n")

    assert reasons(clients) == {2: "horizon_years '١٥' is not a whole number: digits are 0-9 only"}
    assert reasons(lots) == {2: "acquired '٢٠٢٢-٠١-٠٣' is not a date (YYYY-MM-DD)"}


def test_validate_when_a_sale_relieves_lots_in_other_digits_then_it_is_rejected():
    batch = check(
        "transactions",
        "account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots\n"
        "ACC-1001,T1,sell,2022-12-28,2022-12-30,VTI,30,6000,L1:١٠;L2:20\n",
    )

    assert reasons(batch) == {2: "lots 'L1:١٠;L2:20' is not a list of LOT:QUANTITY"}


def test_validate_when_a_number_has_more_digits_than_stay_exact_then_it_is_rejected():
    batch = check(
        "lots",
        LOTS + f"ACC-1001,L1,VTI,{'9' * 19},1500,2022-01-03\n"
        f"ACC-1001,L2,VTI,0.{'1' * 19},1500,2022-01-03\n"
        f"ACC-1001,L3,VTI,{'9' * 200_000},1500,2022-01-03\n"
        f"ACC-1001,L4,VTI,000{'9' * 18}.{'1' * 18}000,1500,2022-01-03\n",
    )

    too_long = "has more than 18 digits before the point or 18 after it"
    assert reasons(batch) == {
        2: f"quantity '{'9' * 19}' {too_long}",
        3: f"quantity '0.{'1' * 19}' {too_long}",
        4: f"quantity '{'9' * 39}…' {too_long}",
    }
    assert batch.rows["quantity"].to_list() == [f"{'9' * 18}.{'1' * 18}"]


# --- keys spelt two ways ------------------------------------------------------------


def test_validate_when_a_price_time_is_spelt_two_ways_then_the_first_row_stands():
    """A bare date is midnight UTC; 21:00Z and 16:00-05:00 are one instant. Each pair is
    one key, so the later row of each is quarantined and the first one's price stands."""
    batch = check(
        "prices",
        "security_id,as_of,price,source\n"
        "VTI,2022-12-28,191.00,close\n"
        "VTI,2022-12-28T00:00:00Z,191.50,close\n"
        "BND,2022-12-28T21:00:00Z,72.25,close\n"
        "BND,2022-12-28T16:00:00-05:00,72.30,close\n"
        "BND,2022-12-28T16:00:00-05:00,72.30,vendor\n",
    )

    assert reasons(batch) == {
        3: "the same security_id/as_of/source as line 2",
        5: "the same security_id/as_of/source as line 4",
    }
    assert batch.rows.select("security_id", "as_of", "price", "source").rows() == [
        ("VTI", datetime(2022, 12, 28, tzinfo=UTC), "191", "close"),
        ("BND", datetime(2022, 12, 28, 21, tzinfo=UTC), "72.25", "close"),
        ("BND", datetime(2022, 12, 28, 21, tzinfo=UTC), "72.3", "vendor"),
    ]


def test_validate_when_a_model_names_one_target_twice_in_two_cases_then_the_model_falls():
    batch = check(
        "models",
        "model_id,kind,target_id,weight\nM-EQ,security,VTI,0.5\nM-EQ,Security,VTI,0.5\n",
    )

    assert reasons(batch) == {
        2: "model_id M-EQ has an invalid row (line 3)",
        3: "the same model_id/kind/target_id as line 2",
    }


# --- long chains of sleeves -----------------------------------------------------------


def test_validate_when_a_model_is_built_of_two_thousand_nested_sleeves_then_it_is_kept():
    """A chain far deeper than Python's recursion limit is walked without recursion."""
    depth = 2_000
    body = "".join(f"S{i},model,S{i + 1},1\n" for i in range(depth))
    batch = check("models", f"model_id,kind,target_id,weight\n{body}S{depth},security,VTI,1\n")

    assert batch.rejects == ()
    assert batch.rows.height == depth + 1


def test_validate_when_a_long_chain_of_sleeves_closes_into_a_cycle_then_it_is_named():
    body = "".join(f"S{i},model,S{(i + 1) % 1500},1\n" for i in range(1500))
    batch = check("models", f"model_id,kind,target_id,weight\n{body}")

    assert batch.rows.height == 0
    assert reasons(batch)[2].startswith("models hold each other: S0 → S1 → S2 → ")
    assert reasons(batch)[2].endswith(" → S1499 → S0")


# --- Parquet column types -------------------------------------------------------------


def parquet_lots(**columns: pl.Series) -> bytes:
    frame = pl.DataFrame(
        {
            "account_id": ["ACC-1001"],
            "lot_id": ["L1"],
            "security_id": ["VTI"],
            "quantity": ["100"],
            "cost_basis": ["1500"],
            "acquired": ["2022-01-03"],
        }
    ).with_columns(**columns)
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        (
            "quantity",
            pl.Series([date(2022, 1, 3)]),
            "column quantity is of Parquet type date, which cannot hold its values"
            " (quantity takes text, whole number, decimal or floating point)",
        ),
        (
            "acquired",
            pl.Series([1.5]),
            "column acquired is of Parquet type floating point, which cannot hold its"
            " values (acquired takes text or date)",
        ),
        (
            "lot_id",
            pl.Series([["L1", "L2"]]),
            "column lot_id is of Parquet type list, which cannot hold its values"
            " (lot_id takes text or whole number)",
        ),
    ],
    ids=["date quantity", "float date", "list id"],
)
def test_check_types_when_a_parquet_column_cannot_hold_its_values_then_file_is_refused(
    column: str, values: pl.Series, message: str
):
    table = read_table(parquet_lots(**{column: values}), name="lots.parquet")

    with pytest.raises(FormatError) as refused:
        check_types(table, FORMATS["lots"], name="lots.parquet")

    assert str(refused.value) == f"lots.parquet: {message}; nothing was loaded"


def test_check_types_when_a_price_time_has_no_time_zone_then_the_parquet_file_is_refused():
    frame = pl.DataFrame(
        {
            "security_id": ["VTI"],
            "as_of": [datetime(2022, 12, 28, 21)],  # noqa: DTZ001 - no zone, on purpose
            "price": ["191.5"],
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    table = read_table(buffer.getvalue(), name="prices.parquet")

    with pytest.raises(FormatError, match="column as_of is of Parquet type timestamp without"):
        check_types(table, FORMATS["prices"], name="prices.parquet")


def test_check_types_when_parquet_columns_are_numbers_dates_and_text_then_they_are_read():
    table = read_table(
        parquet_lots(
            account_id=pl.Series([10000001]),
            quantity=pl.Series(["100.5"]).cast(pl.Decimal(12, 3)),
            cost_basis=pl.Series([1500]),
            acquired=pl.Series([date(2022, 1, 3)]),
        ),
        name="lots.parquet",
    )

    check_types(table, FORMATS["lots"], name="lots.parquet")
    batch = validate(
        table, FORMATS["lots"], known={**KNOWN, "accounts": pl.Series(["10000001"])}, today=TODAY
    )

    assert batch.rejects == ()
    assert batch.rows.select("account_id", "quantity", "cost_basis").rows() == [
        ("10000001", "100.5", "1500")
    ]
