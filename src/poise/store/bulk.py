"""Bulk upsert of validated rows by natural key, counting what changed.

Rows go first into a temporary staging table (``COPY`` on PostgreSQL, one
``executemany`` on SQLite); then one ``UPDATE`` touches the stored rows whose values
differ and one ``INSERT … SELECT`` adds the new ones, in key order. Everything happens
on the caller's connection, inside the caller's transaction: a load is all or none.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
import psycopg
import sqlalchemy as sa

__all__ = ["Counts", "upsert"]

# A PostgreSQL load of at least this many rows, into a table holding fewer, rebuilds
# the table's indexes instead of growing them row by row.
REBUILD_AT = 100_000


@dataclass(frozen=True, slots=True)
class Counts:
    inserted: int = 0
    updated: int = 0  # includes rows removed when a group was replaced
    unchanged: int = 0

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated


def _as_text(frame: pl.DataFrame, *, postgres: bool) -> pl.DataFrame:
    """Every column as the text the database takes (booleans stay booleans on SQLite)."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            text = col.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%d %H:%M:%S%.6f")
            exprs.append((text + "+00:00" if postgres else text).alias(name))
        elif isinstance(dtype, pl.Date):
            exprs.append(col.dt.to_string("%Y-%m-%d").alias(name))
        elif isinstance(dtype, pl.Boolean) and not postgres:
            exprs.append(col.cast(pl.Int8).alias(name))
        else:
            exprs.append(col)
    return frame.select(exprs)


def _stage(connection: sa.Connection, table: sa.Table, frame: pl.DataFrame, stage: str) -> None:
    names = ", ".join(frame.columns)
    postgres = connection.dialect.name == "postgresql"
    text = _as_text(frame, postgres=postgres)
    if postgres:
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        buffer = io.BytesIO()
        text.write_csv(buffer, include_header=False)
        pg = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
        with (
            pg.cursor() as cursor,
            cursor.copy(f"COPY {stage} ({names}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{stage}")
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE {stage} AS SELECT * FROM {table.name} WHERE 0"
        )
        marks = ", ".join("?" for _ in frame.columns)
        lite = cast("sqlite3.Connection", connection.connection.dbapi_connection)
        lite_cursor = lite.cursor()
        try:
            lite_cursor.executemany(
                f"INSERT INTO {stage} ({names}) VALUES ({marks})", text.iter_rows()
            )
        finally:
            lite_cursor.close()


def _rebuild_indexes(connection: sa.Connection, table: sa.Table) -> Callable[[], None] | None:
    """Drop a PostgreSQL table's indexes for a large load; return what puts them back.

    Building an index once, by sorting, is several times faster than growing it a row
    at a time. The drop and the rebuild are in the load's transaction, so a crash
    leaves the indexes as they were. Tables other tables refer to keep their keys.
    """
    referred = any(
        fk.column.table is table
        for other in table.metadata.tables.values()
        for fk in other.foreign_keys
    )
    if referred:
        return None
    primary, indexes = table.primary_key, list(table.indexes)
    for index in indexes:
        connection.execute(sa.schema.DropIndex(index))
    connection.execute(sa.schema.DropConstraint(primary))

    def rebuild() -> None:
        connection.execute(sa.schema.AddConstraint(primary))
        for index in indexes:
            connection.execute(sa.schema.CreateIndex(index))

    return rebuild


def upsert(
    connection: sa.Connection,
    *,
    table: sa.Table,
    rows: pl.DataFrame,
    key: tuple[str, ...],
    group: str | None = None,
) -> Counts:
    """Insert new rows, update changed ones, leave equal ones alone; say how many of each.

    With ``group``, every group (e.g. a model) present in ``rows`` is replaced whole:
    its stored rows that ``rows`` no longer holds are deleted (and counted as updated).
    The table is locked against other writers for the length of the caller's
    transaction, so two loads of the same kind run one after the other.
    """
    if rows.is_empty():
        return Counts()
    postgres = connection.dialect.name == "postgresql"
    name = table.name
    stage = f"stage_{name}"
    if postgres:
        connection.exec_driver_sql(f"LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE")
    _stage(connection, table, rows, stage)
    if postgres:
        connection.exec_driver_sql(f"ANALYZE {stage}")

    columns = rows.columns
    values = [c for c in columns if c not in key]
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    matches = " AND ".join(f"s.{k} = {name}.{k}" for k in key)
    updated = 0
    if values:
        changed = " OR ".join(f"{name}.{c} {differs} s.{c}" for c in values)
        sets = ", ".join(f"{c} = s.{c}" for c in values)
        update = f"UPDATE {name} SET {sets} FROM {stage} s WHERE {matches} AND ({changed})"
        updated = connection.exec_driver_sql(update).rowcount

    names = ", ".join(columns)
    missing = f"NOT EXISTS (SELECT 1 FROM {name} WHERE {matches})"
    rebuild = None
    if postgres and rows.height >= REBUILD_AT:
        held = connection.exec_driver_sql(
            f"SELECT reltuples::bigint FROM pg_class WHERE oid = '{name}'::regclass"
        ).scalar_one()
        if held < rows.height:  # -1: never analysed, as good as empty
            rebuild = _rebuild_indexes(connection, table)
    order = ", ".join(f"s.{k}" for k in key)
    inserted = connection.exec_driver_sql(
        f"INSERT INTO {name} ({names}) SELECT {names} FROM {stage} s WHERE {missing} "
        f"ORDER BY {order}"
    ).rowcount
    if rebuild is not None:
        rebuild()

    removed = 0
    if group is not None:
        removed = connection.exec_driver_sql(
            f"DELETE FROM {name} WHERE {group} IN (SELECT {group} FROM {stage}) "
            f"AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {matches})"
        ).rowcount
    connection.exec_driver_sql(f"DROP TABLE {stage}" if postgres else f"DROP TABLE temp.{stage}")
    return Counts(
        inserted=inserted,
        updated=updated + removed,
        unchanged=rows.height - inserted - updated,
    )
