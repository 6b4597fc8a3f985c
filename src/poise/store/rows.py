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
    "among",
    "as_stored",
    "decimal_of",
    "insert_rows",
    "set_where",
    "update_rows",
]


def _sqlite_value(column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    """How SQLAlchemy writes a value of ``column`` to SQLite (None: as it is)."""
    kind = column.type
    if isinstance(kind, Exact):
        return lambda v: None if v is None else str(v)
    if isinstance(kind, UTCDateTime):

        def utc(v: datetime | None) -> str | None:
            if v is None:
                return None
            if v.tzinfo is None:
                raise ValueError("times stored by poise are timezone-aware")
            return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

        return utc
    if isinstance(kind, sa.DateTime):
        return lambda v: None if v is None else v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(kind, sa.Date):
        return lambda v: None if v is None else date.isoformat(v)
    if isinstance(kind, sa.Boolean):
        return lambda v: None if v is None else int(bool(v))
    return None


def _sqlite_rows(
    table: sa.Table, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """``rows`` as SQLite takes them, converted a column at a time."""
    columns = []
    for name in names:
        write = _sqlite_value(table.c[name])
        values = [row[name] for row in rows]
        if write is not None and isinstance(table.c[name].type, sa.DateTime | UTCDateTime):
            memo: dict[Any, Any] = {}  # a batch's rows mostly share one time
            values = [memo[v] if v in memo else memo.setdefault(v, write(v)) for v in values]
        elif write is not None:
            values = [write(v) for v in values]
        columns.append(values)
    return list(zip(*columns, strict=True))


def insert_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert ``rows`` (each every column it sets, the same columns in each) into
    ``table``: see the module. Constraints hold as for any insert: a duplicate key
    fails the statement, and so the caller's transaction."""
    if not rows:
        return
    names = list(rows[0])
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        schema = f"{table.schema}." if table.schema else ""
        with (
            dbapi.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY {schema}{table.name} ({', '.join(names)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row([row[name] for name in names])
        return
    marks = ", ".join("?" * len(names))
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
            _sqlite_rows(table, names, rows),
        )
    finally:
        cursor.close()


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
        schema = f"{table.schema}." if table.schema else ""
        types = [table.c[k].type.compile(dialect=connection.dialect) for k in key_columns]
        unnest = ", ".join(f"%s::{kind}[]" for kind in types)
        matched = " AND ".join(f"t.{k} = k.{k}" for k in key_columns)
        sets = ", ".join(f"{name} = %s" for name in names)
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"UPDATE {schema}{table.name} AS t SET {sets} FROM unnest({unnest})"
                f" AS k({', '.join(key_columns)}) WHERE {matched}",
                [
                    *(values[name] for name in names),
                    *([key[i] for key in keys] for i in range(len(key_columns))),
                ],
            )
        return
    written = [
        value if write is None else write(value)
        for write, value in ((_sqlite_value(table.c[name]), values[name]) for name in names)
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
        schema = f"{table.schema}." if table.schema else ""
        types = [table.c[name].type.compile(dialect=connection.dialect) for name in columns]
        unnest = ", ".join(f"%s::{kind}[]" for kind in types)
        sets = ", ".join(setting(name, f"k.{name}", f"t.{name}") for name in names)
        matched = " AND ".join(
            [f"t.{k} = k.{k}" for k in key_columns] + [f"t.{name} = %s" for name in fixed]
        )
        with dbapi.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(
                f"UPDATE {schema}{table.name} AS t SET {sets} FROM unnest({unnest})"
                f" AS k({', '.join(columns)}) WHERE {matched}",
                [[row[name] for row in rows] for name in columns] + list(fixed.values()),
            )
        return
    sets = ", ".join(setting(name, "?", name) for name in names)
    matched = " AND ".join([f"{k} = ?" for k in key_columns] + [f"{name} = ?" for name in fixed])
    held = tuple(
        value if write is None else write(value)
        for write, value in ((_sqlite_value(table.c[name]), fixed[name]) for name in fixed)
    )
    cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            f"UPDATE {table.name} SET {sets} WHERE {matched}",
            [(*row, *held) for row in _sqlite_rows(table, [*names, *key_columns], rows)],
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
