"""Many rows into one table at once, past SQLAlchemy's per-row work: ``COPY`` on
PostgreSQL (psycopg adapts decimals, dates and times itself), one driver
``executemany`` on SQLite with each value written as SQLAlchemy would have written it
(a decimal as its text, a date as ISO text, a time as naive UTC text, a boolean as 0 or
1). A booking's or a run's tens of thousands of rows cost a third of what
``connection.execute(insert, rows)`` costs, where each row's parameters are processed in
Python one by one. Inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from poise.store.types import Exact, UTCDateTime

__all__ = [
    "Dates",
    "add_amounts",
    "among",
    "as_stored",
    "decimal_of",
    "delete_where",
    "insert_plain",
    "insert_rows",
    "plain_columns",
    "set_where",
    "update_rows",
]


def _sqlite_time(v: datetime) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S.%f")


def _writer(column: sa.Column[Any], *, sqlite: bool = True) -> Callable[[Any], Any] | None:
    """How SQLAlchemy writes a value of ``column`` to SQLite (None: as it is); with
    ``sqlite`` false, how it is written as text PostgreSQL's ``COPY`` reads back exactly
    (text, numbers and booleans the driver writes itself)."""
    kind = column.type
    if isinstance(kind, Exact):
        return lambda v: None if v is None else str(v)
    if isinstance(kind, UTCDateTime):

        def utc(v: datetime | None) -> str | None:
            if v is None:
                return None
            if v.tzinfo is None:
                raise ValueError("times stored by poise are timezone-aware")
            if not sqlite:
                return v.isoformat()
            return _sqlite_time(v.astimezone(UTC).replace(tzinfo=None))

        return utc
    if isinstance(kind, sa.DateTime):
        text = _sqlite_time if sqlite else datetime.isoformat
        return lambda v: None if v is None else text(v)
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else date.isoformat(v)
    if isinstance(kind, sa.Boolean) and sqlite:
        return lambda v: None if v is None else int(bool(v))
    return None


def _driver_rows(
    table: sa.Table,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    sqlite: bool = True,
) -> list[tuple[Any, ...]]:
    """``rows`` as SQLite takes them (with ``sqlite`` false: as text for PostgreSQL's
    ``COPY``), converted a column at a time (:func:`_column_rows`)."""
    return _column_rows(table, {name: [row[name] for row in rows] for name in names}, sqlite)


def _column_rows(
    table: sa.Table, columns: Mapping[str, Sequence[Any]], sqlite: bool
) -> list[tuple[Any, ...]]:
    converted = []
    for name, values in columns.items():
        write = _writer(table.c[name], sqlite=sqlite)
        if write is None:
            converted.append(values)
        elif isinstance(table.c[name].type, sa.Date | sa.DateTime | UTCDateTime):
            memo: dict[Any, Any] = {}  # a batch's rows mostly share a few dates and times
            converted.append(
                [memo[v] if v in memo else memo.setdefault(v, write(v)) for v in values]
            )
        elif isinstance(table.c[name].type, Exact):  # ``write``, without a call a value
            converted.append([None if v is None else str(v) for v in values])
        else:
            converted.append([write(v) for v in values])
    return list(zip(*converted, strict=True))


def insert_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each every column it sets, the same columns in each) into
    ``table``: see the module. Constraints hold as for any insert: a duplicate key
    fails the statement, and so the caller's transaction."""
    if not rows:
        return
    names = list(rows[0])
    if connection.dialect.name == "postgresql":  # psycopg adapts the values itself
        insert_plain(connection, table, names, [[row[name] for name in names] for row in rows])
    else:
        insert_plain(connection, table, names, _driver_rows(table, names, rows))


def plain_columns(
    table: sa.Table, columns: Mapping[str, Sequence[Any]], *, dialect: str
) -> list[tuple[Any, ...]]:
    """The rows whose values ``columns`` (of ``table``, all as long) hold column by
    column, as plain values — text, numbers, booleans and None — that
    :func:`insert_plain` writes on ``dialect`` as :func:`insert_rows` would have written
    them: what another process can make and hand over cheaply (``marshal`` takes them;
    it takes no decimal or date)."""
    return _column_rows(table, columns, dialect != "postgresql")


def insert_plain(
    connection: sa.Connection, table: sa.Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` — values the driver takes as they are, such as
    :func:`plain_columns` makes for ``connection``'s database — into ``table``'s
    ``names``, in the caller's transaction: ``COPY`` on PostgreSQL, one driver
    ``executemany`` on SQLite."""
    if not rows:
        return
    columns = ", ".join(names)
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        schema = f"{table.schema}." if table.schema else ""
        with (
            dbapi.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY {schema}{table.name} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(names))})", rows
        )
    finally:
        cursor.close()


def _unnested(
    connection: sa.Connection,
    table: sa.Table,
    key_columns: Sequence[str],
    columns: Sequence[str] | None = None,
) -> tuple[str, str, str]:
    """For a PostgreSQL statement over many rows: ``table``'s name; the rows as ``k``,
    ``columns`` (default: the keys) unnested from one array parameter a column (sent
    binary: no quoting of each element); and the condition matching ``t`` (the table)
    to them by ``key_columns``."""
    columns = key_columns if columns is None else columns
    schema = f"{table.schema}." if table.schema else ""
    types = [table.c[name].type.compile(dialect=connection.dialect) for name in columns]
    unnest = ", ".join(f"%b::{kind}[]" for kind in types)
    matched = " AND ".join(f"t.{k} = k.{k}" for k in key_columns)
    return f"{schema}{table.name}", f"unnest({unnest}) AS k({', '.join(columns)})", matched


def set_where(
    connection: sa.Connection,
    table: sa.Table,
    values: Mapping[str, Any],
    keys: Sequence[Sequence[Any]],
    key_columns: Sequence[str],
) -> None:
    """``UPDATE table SET values`` on the rows whose ``key_columns`` are each of
    ``keys``: on PostgreSQL one statement over the keys unnested from arrays, on SQLite
    one driver ``executemany``. Inside the caller's transaction."""
    if not keys:
        return
    names = list(values)
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        target, keyed, matched = _unnested(connection, table, key_columns)
        sets = ", ".join(f"{name} = %s" for name in names)
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"UPDATE {target} AS t SET {sets} FROM {keyed} WHERE {matched}",
                [
                    *(values[name] for name in names),
                    *([key[i] for key in keys] for i in range(len(key_columns))),
                ],
            )
        return
    written = [
        value if write is None else write(value)
        for write, value in ((_writer(table.c[name]), values[name]) for name in names)
    ]
    sets = ", ".join(f"{name} = ?" for name in names)
    matched = " AND ".join(f"{k} = ?" for k in key_columns)
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"UPDATE {table.name} SET {sets} WHERE {matched}",
            [(*written, *key) for key in keys],
        )
    finally:
        cursor.close()


def delete_where(
    connection: sa.Connection,
    table: sa.Table,
    keys: Sequence[Sequence[Any]],
    key_columns: Sequence[str],
) -> None:
    """``DELETE`` the rows of ``table`` whose ``key_columns`` are each of ``keys`` (plain
    values: text and numbers): on PostgreSQL one statement over the keys unnested from
    arrays, on SQLite one driver ``executemany``. Inside the caller's transaction."""
    if not keys:
        return
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        target, keyed, matched = _unnested(connection, table, key_columns)
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"DELETE FROM {target} AS t USING {keyed} WHERE {matched}",
                [[key[i] for key in keys] for i in range(len(key_columns))],
            )
        return
    matched = " AND ".join(f"{k} = ?" for k in key_columns)
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"DELETE FROM {table.name} WHERE {matched}", keys)
    finally:
        cursor.close()


def add_amounts(
    connection: sa.Connection,
    table: sa.Table,
    column: str,
    amounts: Mapping[str, Decimal],
    key_column: str,
) -> None:
    """Add each of ``amounts`` to ``column`` (an exact decimal) of the row of ``table``
    whose ``key_column`` is its key: on PostgreSQL one statement over the amounts
    unnested from arrays, added by the server; on SQLite, read, added here (SQLite
    would add the decimals as floats) and written with one driver ``executemany``.
    Inside the caller's transaction."""
    if not amounts:
        return
    keys = sorted(amounts)
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        schema = f"{table.schema}." if table.schema else ""
        kind = table.c[key_column].type.compile(dialect=connection.dialect)
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"UPDATE {schema}{table.name} AS t SET {column} = t.{column} + k.amount"
                f" FROM unnest(%b::{kind}[], %b::numeric[]) AS k(key, amount)"
                f" WHERE t.{key_column} = k.key",
                [keys, [amounts[k] for k in keys]],
            )
        return
    held = {}
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(keys), 30_000):  # SQLite takes at most 32,766 values
            chunk = keys[start : start + 30_000]
            marks = ", ".join("?" * len(chunk))
            held.update(
                cursor.execute(
                    f"SELECT {key_column}, {column} FROM {table.name}"
                    f" WHERE {key_column} IN ({marks})",
                    chunk,
                ).fetchall()
            )
        cursor.executemany(
            f"UPDATE {table.name} SET {column} = ? WHERE {key_column} = ?",
            [(str(Decimal(held[k]) + amounts[k]), k) for k in keys if k in held],
        )
    finally:
        cursor.close()


def update_rows(
    connection: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    key_columns: Sequence[str],
    *,
    unless_null: Collection[str] = (),
    where_null: Collection[str] = (),
    only: Mapping[str, Any] | None = None,
) -> None:
    """``UPDATE table`` row by row: each of ``rows`` (the same columns in each) names
    its row by ``key_columns`` and sets the rest — on PostgreSQL one statement over the
    rows unnested from arrays, on SQLite one driver ``executemany``. A column in
    ``unless_null`` is left as it is where the new value is null; one in ``where_null``
    is set only where the row holds null; ``only`` names values a row must hold to be
    updated at all (the same for every row). Inside the caller's transaction."""
    if not rows:
        return
    names = [name for name in rows[0] if name not in key_columns]
    columns = [*key_columns, *names]
    fixed = dict(only or {})

    def setting(name: str, new: str, old: str) -> str:
        if name in unless_null:
            return f"{name} = COALESCE({new}, {old})"
        if name in where_null:
            return f"{name} = COALESCE({old}, {new})"
        return f"{name} = {new}"

    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        target, keyed, matched = _unnested(connection, table, key_columns, columns)
        sets = ", ".join(setting(name, f"k.{name}", f"t.{name}") for name in names)
        matched = " AND ".join([matched] + [f"t.{name} = %s" for name in fixed])
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"UPDATE {target} AS t SET {sets} FROM {keyed} WHERE {matched}",
                [[row[name] for row in rows] for name in columns] + list(fixed.values()),
            )
        return
    sets = ", ".join(setting(name, "?", name) for name in names)
    matched = " AND ".join([f"{k} = ?" for k in key_columns] + [f"{name} = ?" for name in fixed])
    held = tuple(
        value if write is None else write(value)
        for write, value in ((_writer(table.c[name]), fixed[name]) for name in fixed)
    )
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"UPDATE {table.name} SET {sets} WHERE {matched}",
            [(*row, *held) for row in _driver_rows(table, [*names, *key_columns], rows)],
        )
    finally:
        cursor.close()


def among(
    connection: sa.Connection, column: sa.ColumnElement[Any], values: Collection[Any]
) -> sa.ColumnElement[bool]:
    """``column IN values`` as ``connection``'s database reads a long list fastest: one
    array parameter (``= ANY``) on PostgreSQL, which plans and binds a list of thousands
    as one value where ``IN`` takes thousands (2–3 times as long at 4,000); ``IN`` on
    SQLite."""
    if connection.dialect.name == "postgresql":
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(column.type)))
    return column.in_(values)


# ── reading many rows ─────────────────────────────────────────────────────────────
# SQLAlchemy converts each value of each row it reads in Python (an exact decimal from
# its text, a date by a regular expression); a booking or a firm's read takes hundreds
# of thousands. These select a column as the driver gives it and convert it here:
# decimals by ``Decimal`` itself, dates and times once for each distinct value.


def as_stored(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``column`` selected as the driver gives it (text on SQLite for exact decimals,
    dates and times; their own types on PostgreSQL), under its own name."""
    return sa.type_coerce(column, sa.String).label(column.key)


def decimal_of(value: Any) -> Decimal | None:
    """An exact decimal as the driver gave it (its text on SQLite)."""
    if value is None or type(value) is Decimal:
        return value
    return Decimal(value)


class Dates:
    """Dates as the driver gives them (ISO text on SQLite), each distinct one read once."""

    def __init__(self) -> None:
        self._seen: dict[Any, date | None] = {None: None}

    def __call__(self, value: Any) -> date | None:
        found = self._seen.get(value, _UNSEEN)
        if found is _UNSEEN:
            found = self._seen[value] = (
                value if isinstance(value, date) else date.fromisoformat(value)
            )
        return found  # type: ignore[return-value]


_UNSEEN = object()
