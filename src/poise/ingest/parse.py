"""Read a file's bytes into a table of text cells, or refuse the whole file.

A file is refused (:class:`FormatError`, nothing of it loaded) when it is not the
format at all: empty, binary, not UTF-8, no usable header, a Parquet file that does
not open or has a column that holds no text, number, date, time, true/false or list
(a struct, binary data that is not UTF-8), or a CSV file that ends part-way through
a row (truncated). A single row with the wrong number of fields is not a reason to
refuse the file: it is reported as a rejected row with its line number.

CSV is read as RFC 4180 says: a quoted field may hold commas, doubled quotes and line
breaks. A row is counted by the physical line it starts on, so a row after a field
with a line break keeps the line number an editor shows.

Every cell comes out as stripped text, an empty cell as null; the validator gives
cells their types. ``_line`` holds the line number (CSV) or row number (Parquet)
that error messages quote, ``_raw`` the row as it stood in the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from poise.domain.errors import FormatError
from poise.ingest.formats import ParquetType

__all__ = ["LINE", "RAW", "RawTable", "Reject", "csv_header", "read_table"]

LINE = "_line"
RAW = "_raw"
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that is not loaded, and why."""

    line: int
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class RawTable:
    columns: tuple[str, ...]
    frame: pl.DataFrame  # one Utf8 column per header column, plus _line and _raw
    rejects: tuple[Reject, ...]  # rows that could not even be split into fields
    # The Parquet type of each column, for the format to accept or refuse; empty for
    # a CSV file, whose every column is text.
    types: Mapping[str, ParquetType] = field(default_factory=dict)

    @property
    def read(self) -> int:
        """Rows read: split into fields, or rejected for not splitting."""
        return self.frame.height + len(self.rejects)


def read_table(data: bytes, *, name: str) -> RawTable:
    """Split ``data`` (the whole file) into text cells; refuse it if it is not a table."""
    if not data.strip():
        raise FormatError(f"{name}: the file is empty")
    if data[:4] == PARQUET_MAGIC:
        return _read_parquet(data, name=name)
    if b"\x00" in data:
        raise FormatError(f"{name}: binary data, not a CSV text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise FormatError(
            f"{name}: not UTF-8 text (byte 0x{data[offset]:02x} at offset {offset});"
            " save the file as UTF-8"
        ) from None
    return _read_csv(text, name=name)


def csv_header(line: str, *, name: str) -> tuple[str, ...]:
    """The column names of a CSV header line, lower-cased; refuse a header that is unusable."""
    try:
        fields = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        raise FormatError(f"{name}: the first line is not a CSV header") from None
    return _column_names([f.strip().lower() for f in fields], name=name, what="the header")


def _column_names(columns: list[str], *, name: str, what: str) -> tuple[str, ...]:
    if not columns or any(not c for c in columns):
        raise FormatError(f"{name}: {what} has an empty column name")
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise FormatError(f"{name}: {what} names a column twice: {', '.join(dupes)}")
    # No poise column starts with "_": such names are the reader's own (_line, _raw).
    own = sorted(c for c in columns if c.startswith("_"))
    if own:
        raise FormatError(
            f"{name}: {what} names a column no poise format has: {', '.join(own)};"
            " see docs/formats.md"
        )
    return tuple(columns)


def _fields(record: str) -> list[str] | None:
    """The fields of one CSV record (which may span lines), or None if it is not CSV."""
    try:
        return next(csv.reader([record], strict=True))
    except (csv.Error, StopIteration):
        return None


def _multiline_records(lines: list[str], odd: list[int], width: int) -> list[tuple[int, int, str]]:
    """Rows whose quoted fields hold line breaks: (first line, last line, text).

    A line with an odd number of double quotes opens a quoted field that a later such
    line closes (quotes inside a field are doubled, so the lines between have an even
    number). The lines from the one to the other are one row if, read together, they
    are valid CSV with the header's number of fields. Otherwise the first line stands
    alone and is rejected, its quotes unpaired: a stray quote costs its own line, not
    every row down to the next stray quote.
    """
    records: list[tuple[int, int, str]] = []
    i = 0
    while i < len(odd) - 1:
        first, last = odd[i], odd[i + 1]
        text = "\n".join(lines[first - 1 : last])
        found = _fields(text)
        if found is not None and len(found) == width:
            records.append((first, last, text))
            i += 2
        else:
            i += 1
    return records


def _read_csv(text: str, *, name: str) -> RawTable:
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    columns = csv_header(lines[0], name=name)
    width = len(columns)

    body = pl.DataFrame(
        {LINE: pl.int_range(2, len(lines) + 1, eager=True), RAW: lines[1:]},
        schema={LINE: pl.Int64, RAW: pl.Utf8},
    )
    if '"' in text:
        odd = body.filter(pl.col(RAW).str.count_matches('"', literal=True) % 2 == 1)
        records = _multiline_records(lines, odd[LINE].to_list(), width)
        if records:
            inside = pl.concat(
                pl.int_range(first, last + 1, eager=True) for first, last, _ in records
            )
            joined = pl.DataFrame(
                {LINE: [r[0] for r in records], RAW: [r[2] for r in records]},
                schema={LINE: pl.Int64, RAW: pl.Utf8},
            )
            body = pl.concat([body.filter(~pl.col(LINE).is_in(inside.implode())), joined])
            body = body.sort(LINE)
    body = body.filter(pl.col(RAW).str.strip_chars() != "")
    quoted = body.filter(pl.col(RAW).str.contains('"', literal=True))
    plain = body.filter(~pl.col(RAW).str.contains('"', literal=True)).with_columns(
        (pl.col(RAW).str.count_matches(",", literal=True) + 1).alias("_n")
    )

    rejects: list[tuple[Reject, int]] = []
    quoted_rows: list[tuple[int, str, list[str]]] = []
    for line_no, raw in quoted.iter_rows():
        fields = _fields(raw) if raw.count('"') % 2 == 0 else None
        if fields is None:
            rejects.append((Reject(line_no, UNPAIRED, raw), 0))
        elif len(fields) == width:
            quoted_rows.append((line_no, raw, fields))
        else:
            rejects.append((_ragged(line_no, raw, len(fields), width), len(fields)))

    short: dict[int, bool] = {r.line: found < width for r, found in rejects}
    for line_no, raw, n in plain.filter(pl.col("_n") != width).iter_rows():
        rejects.append((_ragged(line_no, raw, n, width), n))
        short[line_no] = n < width
    if not ends_with_newline and body.height and short.get(body[LINE][-1], False):
        raise FormatError(
            f"{name}: the file looks truncated: its last line ({body[LINE][-1]}) has fewer"
            f" fields than the header's {width} and no line end; nothing was loaded"
        )

    good = plain.filter(pl.col("_n") == width).drop("_n")
    split = good.with_columns(
        pl.col(RAW).str.split_exact(",", width - 1).struct.rename_fields(list(columns)).alias("_f")
    ).unnest("_f")
    frames = [split.select(*columns, LINE, RAW)]
    if quoted_rows:
        frames.append(
            pl.DataFrame(
                {
                    **{c: [row[2][i] for row in quoted_rows] for i, c in enumerate(columns)},
                    LINE: [row[0] for row in quoted_rows],
                    RAW: [row[1] for row in quoted_rows],
                },
                schema={**dict.fromkeys(columns, pl.Utf8), LINE: pl.Int64, RAW: pl.Utf8},
            )
        )
    frame = pl.concat(frames).sort(LINE) if len(frames) > 1 else frames[0]
    padded = body.select(pl.col(RAW).str.contains(r"^\s|\s,|,\s|\s$").any()).item()
    frame = frame.with_columns(_clean(c, strip=bool(padded) or bool(quoted_rows)) for c in columns)
    ordered = tuple(sorted((r for r, _ in rejects), key=lambda r: r.line))
    return RawTable(columns=columns, frame=frame, rejects=ordered)


UNPAIRED = (
    "the row's double quotes do not pair up (a quoted field must end in a quote, and a"
    ' quote inside it is written twice: "")'
)


def _clean(column: str, *, strip: bool = True) -> pl.Expr:
    """Cells without surrounding blanks; an empty cell is null."""
    cell = pl.col(column).str.strip_chars() if strip else pl.col(column)
    return pl.when(cell.str.len_bytes() > 0).then(cell).alias(column)


def _ragged(line: int, raw: str, found: int, width: int) -> Reject:
    return Reject(line, f"the row has {found} fields, the header has {width}", raw)


# ── Parquet ──────────────────────────────────────────────────────────────────────────


_PARQUET_TYPES: Mapping[type[pl.DataType], ParquetType] = {
    pl.String: ParquetType.TEXT,
    pl.Categorical: ParquetType.TEXT,
    pl.Enum: ParquetType.TEXT,
    pl.Binary: ParquetType.TEXT,  # if it holds UTF-8 text; checked when read
    pl.Null: ParquetType.TEXT,
    pl.Decimal: ParquetType.DECIMAL,
    pl.Date: ParquetType.DATE,
    pl.Boolean: ParquetType.BOOLEAN,
}


def _parquet_type(dtype: pl.DataType) -> ParquetType | None:
    """What a Parquet column holds, or None for a type that holds no poise value
    (a struct, a time of day, a duration, a list of lists or of binary data)."""
    if dtype.is_integer():
        return ParquetType.WHOLE
    if dtype.is_float():
        return ParquetType.FLOAT
    if isinstance(dtype, pl.Datetime):
        return ParquetType.TIMESTAMP if dtype.time_zone else ParquetType.NAIVE_TIMESTAMP
    if isinstance(dtype, pl.List | pl.Array):
        inner = _inner(dtype)
        item = None if isinstance(inner, pl.Binary) else _parquet_type(inner)
        return ParquetType.LIST if item not in (None, ParquetType.LIST) else None
    return _PARQUET_TYPES.get(dtype.base_type())


def _inner(dtype: pl.List | pl.Array) -> pl.DataType:
    inner = dtype.inner
    return inner if isinstance(inner, pl.DataType) else inner()


def _type_name(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.List | pl.Array):
        return f"list of {_type_name(_inner(dtype))}"
    found = _parquet_type(dtype)
    return str(found) if found is not None else type(dtype).__name__.lower()


def _not_utf8_row(series: pl.Series) -> int:
    """The row number (from 1) of the first value of a binary column that is not UTF-8."""
    for row, value in enumerate(series.to_list(), start=1):
        if value is not None:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                return row
    return 0


def _read_parquet(data: bytes, *, name: str) -> RawTable:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several error types for a broken file
        raise FormatError(
            f"{name}: not a readable Parquet file ({exc.__class__.__name__})"
        ) from None
    if not frame.columns:
        raise FormatError(f"{name}: the Parquet file has no columns")
    columns = tuple(c.strip().lower() for c in frame.columns)
    if len(set(columns)) != len(columns) or any(not c for c in columns):
        raise FormatError(f"{name}: the Parquet schema has empty or repeated column names")
    columns = _column_names(list(columns), name=name, what="the Parquet schema")
    frame = frame.rename(dict(zip(frame.columns, columns, strict=True)))
    types: dict[str, ParquetType] = {}
    for column in columns:
        dtype = frame.schema[column]
        found = _parquet_type(dtype)
        if found is None:
            raise FormatError(
                f"{name}: column {column} is of Parquet type {_type_name(dtype)}, which"
                " holds no value poise reads; nothing was loaded"
            )
        if isinstance(dtype, pl.Binary) and (row := _not_utf8_row(frame[column])):
            raise FormatError(
                f"{name}: column {column} holds binary data that is not UTF-8 text"
                f" (row {row}); nothing was loaded"
            )
        types[column] = found
    frame = frame.select(_parquet_text(c, frame.schema[c]) for c in columns)
    for column in columns:
        nul = frame.select(pl.col(column).str.contains("\x00", literal=True).arg_true().first())
        if (row := nul.item()) is not None:
            raise FormatError(
                f"{name}: column {column} holds a NUL character (row {row + 1}): binary"
                " data, not text; nothing was loaded"
            )
    frame = frame.with_columns(_clean(c) for c in columns)
    frame = frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(LINE),
        pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=",").alias(RAW),
    )
    return RawTable(columns=columns, frame=frame, rejects=(), types=types)


def _parquet_text(column: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%:z" if dtype.time_zone else "")
        return col.dt.to_string(fmt).alias(column)
    if isinstance(dtype, pl.Date):
        return col.dt.to_string("%Y-%m-%d").alias(column)
    if isinstance(dtype, pl.Boolean):
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).alias(column)
    if isinstance(dtype, pl.Array):
        col = col.arr.to_list()
    if isinstance(dtype, pl.List | pl.Array):
        return col.cast(pl.List(pl.Utf8)).list.join(";").alias(column)
    return col.cast(pl.Utf8).alias(column)
