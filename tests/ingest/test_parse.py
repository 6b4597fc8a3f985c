"""Reading a file's bytes into text cells: what a custodian export may look like, and what
makes poise refuse the whole file.

Each test writes the file as it would arrive — header, rows, line ends — and checks the
cells, the line numbers quoted back to the operations team, and the refusals' words.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from poise.domain.errors import FormatError
from poise.ingest.formats import ParquetType
from poise.ingest.parse import LINE, RAW, UNPAIRED, RawTable, Reject, read_table

NAME = "lots.csv"
NEW_YORK = ZoneInfo("America/New_York")


def read(text: str | bytes) -> RawTable:
    return read_table(text.encode() if isinstance(text, str) else text, name=NAME)


def cells(table: RawTable) -> list[tuple[object, ...]]:
    """The rows as (cells..., line), without the raw text."""
    return table.frame.select(*table.columns, LINE).rows()


# --- the header ---------------------------------------------------------------------


def test_read_when_header_has_mixed_case_and_padding_then_names_are_lower_cased_and_stripped():
    table = read(" Account_ID ,LOT_ID,  Security_Id\nACC-1001,L1,VTI\n")

    assert table.columns == ("account_id", "lot_id", "security_id")
    assert cells(table) == [("ACC-1001", "L1", "VTI", 2)]


def test_read_when_header_names_a_column_twice_in_different_case_then_file_is_refused():
    with pytest.raises(FormatError) as refused:
        read("account_id,lot_id,Lot_ID\nACC-1001,L1,L2\n")

    assert str(refused.value) == "lots.csv: the header names a column twice: lot_id"


def test_read_when_header_has_an_empty_column_name_then_file_is_refused():
    with pytest.raises(FormatError) as refused:
        read("account_id,,security_id\nACC-1001,L1,VTI\n")

    assert str(refused.value) == "lots.csv: the header has an empty column name"


@pytest.mark.parametrize("column", ["_line", "_raw", "_n"])
def test_read_when_header_names_a_column_like_the_readers_own_then_file_is_refused(column: str):
    with pytest.raises(FormatError) as refused:
        read(f"account_id,{column}\nACC-1001,7\n")

    assert str(refused.value) == (
        f"lots.csv: the header names a column no poise format has: {column}; see docs/formats.md"
    )


def test_read_when_header_has_a_blank_trailing_column_then_file_is_refused():
    with pytest.raises(FormatError) as refused:
        read("account_id,lot_id, \nACC-1001,L1,\n")

    assert str(refused.value) == "lots.csv: the header has an empty column name"


def test_read_when_file_has_a_header_and_no_rows_then_table_is_empty():
    table = read("account_id,lot_id\n")

    assert table.columns == ("account_id", "lot_id")
    assert table.frame.height == 0
    assert table.rejects == ()
    assert table.read == 0


# --- quoting, line ends, encodings --------------------------------------------------


def test_read_when_fields_are_quoted_with_commas_and_doubled_quotes_then_cells_are_unquoted():
    table = read(
        "security_id,name,sub_class\n"
        'VTI,"Vanguard Total Stock Market, ETF","large ""blend"""\n'
        "BND,Vanguard Total Bond,core\n"
    )

    assert cells(table) == [
        ("VTI", "Vanguard Total Stock Market, ETF", 'large "blend"', 2),
        ("BND", "Vanguard Total Bond", "core", 3),
    ]
    assert table.frame[RAW].to_list() == [
        'VTI,"Vanguard Total Stock Market, ETF","large ""blend"""',
        "BND,Vanguard Total Bond,core",
    ]


def test_read_when_quoted_fields_have_padding_then_cells_are_stripped():
    table = read('security_id,name\n" VTI ","  Vanguard Total  "\n')

    assert cells(table) == [("VTI", "Vanguard Total", 2)]


def test_read_when_cells_are_padded_or_empty_then_they_are_stripped_and_empty_is_null():
    table = read("account_id,lot_id,quantity\n ACC-1001 , L1 ,\nACC-1001,L2,  \n")

    assert cells(table) == [("ACC-1001", "L1", None, 2), ("ACC-1001", "L2", None, 3)]
    assert table.frame.schema["quantity"] == pl.Utf8


def test_read_when_lines_end_in_crlf_then_no_carriage_return_is_left_in_cells():
    table = read(b"account_id,lot_id\r\nACC-1001,L1\r\nACC-1001,L2\r\n")

    assert table.columns == ("account_id", "lot_id")
    assert cells(table) == [("ACC-1001", "L1", 2), ("ACC-1001", "L2", 3)]
    assert table.frame[RAW].to_list() == ["ACC-1001,L1", "ACC-1001,L2"]


def test_read_when_file_starts_with_a_utf8_bom_then_first_column_name_is_clean():
    table = read(b"\xef\xbb\xbfaccount_id,lot_id\r\nACC-1001,L1\r\n")

    assert table.columns == ("account_id", "lot_id")
    assert cells(table) == [("ACC-1001", "L1", 2)]


def test_read_when_file_holds_non_ascii_utf8_then_text_is_kept():
    table = read("household_id,name\nHH-7,Société Générale — Müller\n")

    assert cells(table) == [("HH-7", "Société Générale — Müller", 2)]


# --- line numbers and ragged rows ---------------------------------------------------


def test_read_when_blank_lines_sit_between_rows_then_they_are_skipped_and_lines_stay_true():
    table = read("account_id,lot_id\n\nACC-1001,L1\n   \n\nACC-1001,L2\n")

    assert cells(table) == [("ACC-1001", "L1", 3), ("ACC-1001", "L2", 6)]
    assert table.rejects == ()
    assert table.read == 2


def test_read_when_rows_have_too_few_or_too_many_fields_then_only_those_rows_are_rejected():
    table = read(
        "account_id,lot_id,security_id\n"
        "ACC-1001,L1,VTI\n"
        "ACC-1001,L2\n"
        "ACC-1001,L3,VTI,100\n"
        "ACC-1001,L4,BND\n"
    )

    assert cells(table) == [("ACC-1001", "L1", "VTI", 2), ("ACC-1001", "L4", "BND", 5)]
    assert table.rejects == (
        Reject(3, "the row has 2 fields, the header has 3", "ACC-1001,L2"),
        Reject(4, "the row has 4 fields, the header has 3", "ACC-1001,L3,VTI,100"),
    )
    assert table.read == 4


def test_read_when_a_quoted_row_has_too_many_fields_then_it_is_rejected_with_its_line():
    table = read('security_id,name\nVTI,"Vanguard, Total",extra\n\nBND,"Bond, Total"\n')

    assert cells(table) == [("BND", "Bond, Total", 4)]
    assert table.rejects == (
        Reject(2, "the row has 3 fields, the header has 2", 'VTI,"Vanguard, Total",extra'),
    )


def test_read_when_a_ragged_row_follows_blank_lines_then_its_reject_quotes_the_file_line():
    table = read(b"account_id,lot_id\r\n\r\nACC-1001\r\nACC-1001,L2\r\n")

    assert table.rejects == (Reject(3, "the row has 1 fields, the header has 2", "ACC-1001"),)
    assert cells(table) == [("ACC-1001", "L2", 4)]


# --- fields that hold line breaks (RFC 4180) ------------------------------------------


def test_read_when_a_quoted_description_holds_line_breaks_then_the_row_is_read_whole():
    """A custodian's transaction description runs over three lines, one of them blank;
    the rows after it keep the line numbers an editor shows."""
    table = read(
        "txn_id,description,amount\r\n"
        'T1,"ACH deposit\r\nfrom checking\r\n\r\nref 0042",5000.00\r\n'
        "T2,Advisory fee Q4,25.00\r\n"
        'T3,"Dividend, ""AAPL""\nreinvested",31.20\r\n'
        "T4,Cash sweep interest,1.84\r\n"
    )

    assert cells(table) == [
        ("T1", "ACH deposit\nfrom checking\n\nref 0042", "5000.00", 2),
        ("T2", "Advisory fee Q4", "25.00", 6),
        ("T3", 'Dividend, "AAPL"\nreinvested', "31.20", 7),
        ("T4", "Cash sweep interest", "1.84", 9),
    ]
    assert table.rejects == ()
    assert table.read == 4


def test_read_when_a_multiline_row_is_ragged_then_it_is_rejected_by_its_first_line():
    table = read('txn_id,description\nT1,"line one\nline two",extra\nT2,fee\n')

    assert cells(table) == [("T2", "fee", 4)]
    assert [(r.line, r.reason) for r in table.rejects] == [(2, UNPAIRED), (3, UNPAIRED)]


def test_read_when_a_row_has_a_stray_quote_then_only_that_line_is_rejected():
    """A quote that opens a field and never closes it does not swallow the rows below;
    a lone quote in an unquoted field is unpaired too (RFC 4180 has no such field)."""
    table = read(
        "txn_id,description\n"
        'T1,"Wire to broker\n'
        "T2,Advisory fee\n"
        'T3,Said "hi" twice\n'
        'T4,Pipe 12" steel\n'
        'T5,"Dividend, AAPL"\n'
    )

    assert cells(table) == [
        ("T2", "Advisory fee", 3),
        ("T3", 'Said "hi" twice', 4),
        ("T5", "Dividend, AAPL", 6),
    ]
    assert table.rejects == (
        Reject(2, UNPAIRED, 'T1,"Wire to broker'),
        Reject(5, UNPAIRED, 'T4,Pipe 12" steel'),
    )


def test_read_when_file_is_cut_inside_a_multiline_field_then_file_is_refused():
    with pytest.raises(FormatError, match="the file looks truncated: its last line"):
        read('txn_id,description,amount\nT1,fee,25\nT2,"ACH deposit\nfrom check')


# --- the end of the file ------------------------------------------------------------


def test_read_when_last_line_is_cut_short_without_a_line_end_then_file_is_refused():
    with pytest.raises(FormatError) as refused:
        read("account_id,lot_id,security_id\nACC-1001,L1,VTI\nACC-1001,L2")

    assert str(refused.value) == (
        "lots.csv: the file looks truncated: its last line (3) has fewer fields than the"
        " header's 3 and no line end; nothing was loaded"
    )


def test_read_when_last_line_is_cut_inside_a_quoted_field_then_file_is_refused():
    with pytest.raises(FormatError, match="the file looks truncated: its last line"):
        read('security_id,name\nVTI,"Vanguard Tot')


def test_read_when_last_line_is_complete_without_a_line_end_then_it_is_read():
    table = read("account_id,lot_id,security_id\nACC-1001,L1,VTI\nACC-1001,L2,BND")

    assert cells(table) == [("ACC-1001", "L1", "VTI", 2), ("ACC-1001", "L2", "BND", 3)]
    assert table.rejects == ()


def test_read_when_a_short_row_ends_with_a_line_end_then_only_that_row_is_rejected():
    table = read("account_id,lot_id,security_id\nACC-1001,L1,VTI\nACC-1001,L2\n")

    assert cells(table) == [("ACC-1001", "L1", "VTI", 2)]
    assert table.rejects == (Reject(3, "the row has 2 fields, the header has 3", "ACC-1001,L2"),)


def test_read_when_last_line_without_line_end_has_too_many_fields_then_only_it_is_rejected():
    table = read("account_id,lot_id\nACC-1001,L1\nACC-1001,L2,VTI")

    assert cells(table) == [("ACC-1001", "L1", 2)]
    assert table.rejects == (
        Reject(3, "the row has 3 fields, the header has 2", "ACC-1001,L2,VTI"),
    )


# --- files that are not CSV text ----------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\n", b" \r\n\t\n"], ids=repr)
def test_read_when_file_is_empty_or_only_whitespace_then_it_is_refused(data: bytes):
    with pytest.raises(FormatError) as refused:
        read(data)

    assert str(refused.value) == "lots.csv: the file is empty"


def test_read_when_file_holds_a_nul_byte_then_it_is_refused_as_binary():
    with pytest.raises(FormatError) as refused:
        read(b"account_id,lot_id\nACC-1001,L\x001\n")

    assert str(refused.value) == "lots.csv: binary data, not a CSV text file"


def test_read_when_file_is_latin1_then_it_is_refused_naming_the_byte_and_offset():
    data = "household_id,name\nHH-7,Société Générale\n".encode("latin-1")

    with pytest.raises(FormatError) as refused:
        read(data)

    assert str(refused.value) == (
        "lots.csv: not UTF-8 text (byte 0xe9 at offset 27); save the file as UTF-8"
    )
    assert data[27] == 0xE9


def test_read_when_file_has_a_bom_and_a_latin1_byte_then_message_quotes_that_byte():
    data = b"\xef\xbb\xbfname\nCaf\xe9\n"

    with pytest.raises(FormatError) as refused:
        read(data)

    assert str(refused.value) == (
        "lots.csv: not UTF-8 text (byte 0xe9 at offset 11); save the file as UTF-8"
    )


def test_read_when_refused_then_message_names_the_file_it_was_given():
    with pytest.raises(FormatError, match=r"^custodian-2024-06-14\.csv: the file is empty$"):
        read_table(b"", name="custodian-2024-06-14.csv")


# --- Parquet ------------------------------------------------------------------------


def parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_read_when_file_is_parquet_then_every_type_comes_out_as_text_numbered_from_one():
    eastern = timezone(timedelta(hours=-5))
    frame = pl.DataFrame(
        {
            "Security_ID": ["VTI", "BND", "VXUS"],
            "shares": [100, 0, 25],
            "price": [231.5, 72.25, 1500.0],
            "acquired": [date(2022, 1, 3), date(2023, 12, 29), None],
            "as_of": [
                datetime(2022, 12, 28, 21, 0, tzinfo=UTC),
                datetime(2022, 12, 28, 16, 0, tzinfo=eastern),
                None,
            ],
            "harvest": [True, False, None],
            "name": ["Vanguard Total, ETF", "  Total Bond  ", ""],
        }
    ).with_columns(pl.col("as_of").dt.convert_time_zone("UTC"))

    table = read_table(parquet(frame), name="prices.parquet")

    assert table.columns == (
        "security_id",
        "shares",
        "price",
        "acquired",
        "as_of",
        "harvest",
        "name",
    )
    assert all(table.frame.schema[c] == pl.Utf8 for c in table.columns)
    assert cells(table) == [
        (
            "VTI",
            "100",
            "231.5",
            "2022-01-03",
            "2022-12-28T21:00:00+00:00",
            "true",
            "Vanguard Total, ETF",
            1,
        ),
        ("BND", "0", "72.25", "2023-12-29", "2022-12-28T21:00:00+00:00", "false", "Total Bond", 2),
        ("VXUS", "25", "1500.0", None, None, None, None, 3),
    ]
    assert table.rejects == ()


def test_read_when_parquet_time_is_in_a_named_zone_then_the_offset_is_kept():
    frame = pl.DataFrame({"as_of": [datetime(2022, 12, 28, 16, 0, tzinfo=NEW_YORK)]})

    table = read_table(parquet(frame), name="prices.parquet")

    assert cells(table) == [("2022-12-28T16:00:00-05:00", 1)]


def test_read_when_parquet_is_corrupted_then_file_is_refused():
    good = parquet(pl.DataFrame({"security_id": ["VTI"] * 50, "price": [231.5] * 50}))

    with pytest.raises(FormatError) as refused:
        read_table(good[: len(good) // 2], name="prices.parquet")

    assert str(refused.value).startswith("prices.parquet: not a readable Parquet file (")


def test_read_when_file_only_starts_like_parquet_then_it_is_refused_as_parquet():
    with pytest.raises(FormatError, match=r"^prices\.parquet: not a readable Parquet file"):
        read_table(b"PAR1 this is not parquet", name="prices.parquet")


def test_read_when_parquet_names_a_column_twice_in_different_case_then_file_is_refused():
    data = parquet(pl.DataFrame({"price": [1.0], "PRICE": [2.0]}))

    with pytest.raises(FormatError) as refused:
        read_table(data, name="prices.parquet")

    assert str(refused.value) == (
        "prices.parquet: the Parquet schema has empty or repeated column names"
    )


def test_read_when_parquet_text_is_binary_utf8_then_it_is_read_as_text():
    data = parquet(pl.DataFrame({"security_id": [b"VTI", None], "name": ["Total", "Bond"]}))

    table = read_table(data, name="securities.parquet")

    assert cells(table) == [("VTI", "Total", 1), (None, "Bond", 2)]
    assert table.types == {"security_id": ParquetType.TEXT, "name": ParquetType.TEXT}


def test_read_when_a_parquet_column_is_binary_that_is_not_utf8_then_file_is_refused():
    data = parquet(
        pl.DataFrame({"account_id": ["ACC-1001"] * 3, "lot_id": [b"L1", b"L2", b"\xff\xfeL3"]})
    )

    with pytest.raises(FormatError) as refused:
        read_table(data, name="lots.parquet")

    assert str(refused.value) == (
        "lots.parquet: column lot_id holds binary data that is not UTF-8 text (row 3);"
        " nothing was loaded"
    )


def test_read_when_a_parquet_text_cell_holds_a_nul_then_file_is_refused():
    data = parquet(
        pl.DataFrame({"account_id": ["ACC-1001", "ACC-1001"], "lot_id": ["L1", "L\x002"]})
    )

    with pytest.raises(FormatError) as refused:
        read_table(data, name="lots.parquet")

    assert str(refused.value) == (
        "lots.parquet: column lot_id holds a NUL character (row 2): binary data, not text;"
        " nothing was loaded"
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (pl.Series([{"units": 100, "scale": 2}]), "struct"),
        (pl.Series([[[1, 2]]]), "list of list of whole number"),
        (pl.Series([timedelta(days=1)]), "duration"),
    ],
    ids=["struct", "list of lists", "duration"],
)
def test_read_when_a_parquet_column_holds_no_value_poise_reads_then_file_is_refused(
    values: pl.Series, named: str
):
    data = parquet(pl.DataFrame({"lot_id": ["L1"], "quantity": values}))

    with pytest.raises(FormatError) as refused:
        read_table(data, name="lots.parquet")

    assert str(refused.value) == (
        f"lots.parquet: column quantity is of Parquet type {named}, which holds no value"
        " poise reads; nothing was loaded"
    )


def test_read_when_parquet_columns_have_types_then_the_table_says_which():
    frame = pl.DataFrame(
        {
            "account_id": [10000001],
            "quantity": pl.Series(["1.5"]).cast(pl.Decimal(10, 3)),
            "price": [1.5],
            "acquired": [date(2022, 1, 3)],
            "as_of": [datetime(2022, 1, 3, tzinfo=UTC)],
            "seen": [datetime(2022, 1, 3)],  # noqa: DTZ001 - a time without a zone, on purpose
            "harvest": [True],
            "tags": [["esg", "tech"]],
        }
    )

    table = read_table(parquet(frame), name="mixed.parquet")

    assert dict(table.types) == {
        "account_id": ParquetType.WHOLE,
        "quantity": ParquetType.DECIMAL,
        "price": ParquetType.FLOAT,
        "acquired": ParquetType.DATE,
        "as_of": ParquetType.TIMESTAMP,
        "seen": ParquetType.NAIVE_TIMESTAMP,
        "harvest": ParquetType.BOOLEAN,
        "tags": ParquetType.LIST,
    }
    assert cells(table)[0][:2] == ("10000001", "1.500")
    assert cells(table)[0][-2] == "esg;tech"


def test_read_when_a_parquet_file_has_no_columns_then_it_is_refused_saying_so():
    with pytest.raises(FormatError) as refused:
        read_table(parquet(pl.DataFrame()), name="lots.parquet")

    assert str(refused.value) == "lots.parquet: the Parquet file has no columns"
