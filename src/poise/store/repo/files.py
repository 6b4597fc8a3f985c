"""Ingest's bookkeeping: which keys exist, files loaded, rows quarantined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from poise.store import tables as t

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FileLoad",
    "Quarantined",
    "key_series",
    "list_quarantine",
    "record_load",
    "store_quarantine",
    "table_for",
]


# The key other files refer to, by kind.
_REFERRED = {
    "securities": t.securities.c.security_id,
    "households": t.households.c.household_id,
    "models": t.model_targets.c.model_id,
    "accounts": t.accounts.c.account_id,
}


def table_for(name: str) -> sa.Table:
    return t.metadata.tables[name]


def key_series(connection: sa.Connection, *, kind: str) -> pl.Series:
    """Every key of ``kind`` that rows may refer to, as one text series."""
    import polars as pl  # only ingest wants a series; reading commands start without it

    column = _REFERRED[kind]
    values = connection.execute(sa.select(column).distinct()).scalars().all()
    return pl.Series(kind, values, dtype=pl.Utf8)


@dataclass(frozen=True, slots=True)
class Quarantined:
    file_name: str
    kind: str
    line: int
    reason: str
    raw: str
    sha256: str
    quarantined_at: datetime


@dataclass(frozen=True, slots=True)
class FileLoad:
    sha256: str
    name: str
    kind: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    loaded_at: datetime


def store_quarantine(connection: sa.Connection, *, rows: Sequence[Quarantined]) -> None:
    """Keep rejected rows; the same line of the same file is kept once."""
    if not rows:
        return
    sha = rows[0].sha256
    seen = set(
        connection.execute(
            sa.select(t.quarantine.c.line).where(t.quarantine.c.sha256 == sha)
        ).scalars()
    )
    fresh = [
        {
            "sha256": r.sha256,
            "line": r.line,
            "file_name": r.file_name,
            "kind": r.kind,
            "reason": r.reason,
            "raw": r.raw,
            "quarantined_at": r.quarantined_at,
        }
        for r in rows
        if r.line not in seen
    ]
    if fresh:
        connection.execute(sa.insert(t.quarantine), fresh)


def record_load(connection: sa.Connection, *, load: FileLoad) -> None:
    connection.execute(
        sa.insert(t.ingest_files).values(
            sha256=load.sha256,
            name=load.name,
            kind=load.kind,
            rows_read=load.read,
            inserted=load.inserted,
            updated=load.updated,
            unchanged=load.unchanged,
            quarantined=load.quarantined,
            loaded_at=load.loaded_at,
        )
    )


def list_quarantine(connection: sa.Connection, *, everything: bool = False) -> list[Quarantined]:
    """Rows quarantined by the latest load of each file name (or by every load)."""
    q = t.quarantine
    query = sa.select(q).order_by(q.c.file_name, q.c.line)
    if not everything:
        f = t.ingest_files
        latest = sa.select(f.c.name, sa.func.max(f.c.id).label("id")).group_by(f.c.name).subquery()
        shas = sa.select(f.c.sha256).join(latest, f.c.id == latest.c.id)
        query = query.where(q.c.sha256.in_(shas))
    return [
        Quarantined(
            file_name=row.file_name,
            kind=row.kind,
            line=row.line,
            reason=row.reason,
            raw=row.raw,
            sha256=row.sha256,
            quarantined_at=row.quarantined_at,
        )
        for row in connection.execute(query)
    ]
