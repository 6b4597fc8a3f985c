"""Bulk upsert of validated rows by natural key, counting what changed.

Rows go first into a temporary staging table (``COPY`` on PostgreSQL, one
``executemany`` on SQLite), then into the real table in one ``INSERT … SELECT … ON
CONFLICT DO UPDATE`` that only touches rows whose values differ. Everything happens
on the caller's connection, inside the caller's transaction: a load is all or none.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
import psycopg
import sqlalchemy as sa

__all__ = ["Counts", "upsert"]


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
    """
    if rows.is_empty():
        return Counts()
    stage = f"stage_{table.name}"
    _stage(connection, table, rows, stage)
    columns = rows.columns
    on_key = " AND ".join(f"t.{k} = s.{k}" for k in key)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {stage}")
    new = connection.exec_driver_sql(
        f"SELECT count(*) FROM {stage} s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {table.name} t WHERE {on_key})"
    ).scalar_one()

    values = [c for c in columns if c not in key]
    differs = "IS DISTINCT FROM" if connection.dialect.name == "postgresql" else "IS NOT"
    names = ", ".join(columns)
    if values:
        sets = ", ".join(f"{c} = excluded.{c}" for c in values)
        changed = " OR ".join(f"{table.name}.{c} {differs} excluded.{c}" for c in values)
        action = f"DO UPDATE SET {sets} WHERE {changed}"
    else:
        action = "DO NOTHING"
    written = connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} WHERE true "
        f"ON CONFLICT ({', '.join(key)}) {action}"
    ).rowcount

    removed = 0
    if group is not None:
        removed = connection.exec_driver_sql(
            f"DELETE FROM {table.name} WHERE {group} IN (SELECT {group} FROM {stage}) "
            f"AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE "
            + " AND ".join(f"s.{k} = {table.name}.{k}" for k in key)
            + ")"
        ).rowcount
    if connection.dialect.name != "postgresql":
        connection.exec_driver_sql(f"DROP TABLE temp.{stage}")
    else:
        connection.exec_driver_sql(f"DROP TABLE {stage}")
    updated = written - new + removed
    return Counts(inserted=new, updated=updated, unchanged=rows.height - written)
