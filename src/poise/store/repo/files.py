"""Ingest's bookkeeping: which keys exist, files loaded, rows quarantined — and the
history of loads read back, a page at a time, for the service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poise.domain.errors import NotFoundError
from poise.store import tables as t
from poise.store.repo.pages import Page

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FileLoad",
    "IngestedFile",
    "Quarantined",
    "file_quarantine",
    "ingested_file",
    "ingested_files",
    "key_series",
    "latest_load_id",
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


def record_load(connection: sa.Connection, *, load: FileLoad) -> int:
    """Keep the load in the history; its id there."""
    result = connection.execute(
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
    key = result.inserted_primary_key
    assert key is not None  # an insert of one row
    file_id: int = key[0]
    return file_id


def _quarantined(row: sa.Row[Any]) -> Quarantined:
    return Quarantined(
        file_name=row.file_name,
        kind=row.kind,
        line=row.line,
        reason=row.reason,
        raw=row.raw,
        sha256=row.sha256,
        quarantined_at=row.quarantined_at,
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
    return [_quarantined(row) for row in connection.execute(query)]


def file_quarantine(connection: sa.Connection, *, sha256: str) -> list[Quarantined]:
    """The rows the file of ``sha256`` left in quarantine, by line: kept once, by its
    first load, whichever load of the same bytes asks."""
    q = t.quarantine
    query = sa.select(q).where(q.c.sha256 == sha256).order_by(q.c.line)
    return [_quarantined(row) for row in connection.execute(query)]


# ── the history of loads ─────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class IngestedFile:
    """One load of a file, as recorded: the same bytes loaded twice are two loads (the
    second all unchanged), with one digest and one set of quarantined rows."""

    file_id: int
    load: FileLoad


def _ingested(row: sa.Row[Any]) -> IngestedFile:
    return IngestedFile(
        file_id=row.id,
        load=FileLoad(
            sha256=row.sha256,
            name=row.name,
            kind=row.kind,
            read=row.rows_read,
            inserted=row.inserted,
            updated=row.updated,
            unchanged=row.unchanged,
            quarantined=row.quarantined,
            loaded_at=row.loaded_at,
        ),
    )


def ingested_files(
    connection: sa.Connection, *, kind: str | None = None, limit: int, offset: int
) -> Page[IngestedFile]:
    """The files loaded (of ``kind``), the latest load first."""
    f = t.ingest_files
    query = sa.select(f).order_by(f.c.loaded_at.desc(), f.c.id.desc())
    if kind is not None:
        query = query.where(f.c.kind == kind)
    total = connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
    rows = connection.execute(query.limit(limit).offset(offset))
    return Page([_ingested(row) for row in rows], int(total or 0))


def ingested_file(connection: sa.Connection, *, file_id: int) -> IngestedFile:
    """One load of a file, by its id in the history."""
    f = t.ingest_files
    row = connection.execute(sa.select(f).where(f.c.id == file_id)).first()
    if row is None:
        raise NotFoundError(f"no file {file_id}")
    return _ingested(row)


def latest_load_id(connection: sa.Connection) -> int:
    """The id of the latest file load (0: none yet): the book changes only through one."""
    return int(connection.execute(sa.select(sa.func.max(t.ingest_files.c.id))).scalar() or 0)
