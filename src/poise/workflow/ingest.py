"""Load files into the system of record: one transaction per file, in dependency order.

For each file: read it whole, refuse it if it is not a table of a known format,
validate every row against what the store already holds, then in one transaction
upsert the valid rows, keep the rejected ones in quarantine and record the load. A
crash part-way leaves that file all loaded or not loaded at all; running the same
command again finishes the job and changes nothing that was already there. A file of
lots or transactions brings the wash sales of the households it touches into their
lots in the same transaction (:mod:`poise.workflow.washsales`). Each file loaded is an
entry of the audit ledger (``ingest.file``: the file's id in the history, and the hash
of its digest, name, kind and counts), appended in the same transaction, so the ledger
records a load exactly when it lands.

Whatever happens to one file — refused, missing, or failed for a reason nobody
foresaw — becomes that file's report, and the next file is loaded all the same.

Files received over the network (the service's upload) are loaded by the very same
steps (:func:`ingest_uploads`): each is written to a private temporary folder under
the name it was sent with, and reported and recorded under that name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl
import sqlalchemy as sa

from poise.audit import ledger
from poise.domain.errors import FormatError, ValidationError
from poise.ingest.formats import FORMATS, FileFormat, format_for
from poise.ingest.layout import Layout, apply_layout
from poise.ingest.parse import LINE, PARQUET_MAGIC, Reject, csv_header, read_table
from poise.ingest.validate import check_types, validate
from poise.store import repo
from poise.store.bulk import upsert
from poise.workflow import washsales

__all__ = ["FileReport", "ingest_paths", "ingest_uploads", "sniff_kind", "upload_name"]

log = logging.getLogger(__name__)

# Kinds a format's rows may refer to (its reference columns and its row rules).
_EXTRA_REFS = {"models": ("securities", "models")}

Progress = Callable[[str, "FileReport | None"], None]


@dataclass(frozen=True, slots=True)
class FileReport:
    """What one file's load did."""

    path: str
    kind: str = ""
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    refused: str = ""  # why the whole file was refused, if it was
    failed: str = ""  # why its load failed for an unforeseen reason (nothing of it loaded)
    missing: bool = False  # refused because no file has that name (or matches that pattern)
    rejects: tuple[Reject, ...] = field(default=(), repr=False)
    wash_sale_lots: int = 0  # other lot rows the load's wash sales wrote or removed

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated


def _columns_of(path: Path) -> list[str]:
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head[:4] == PARQUET_MAGIC:
        try:
            return [c.strip().lower() for c in pl.read_parquet_schema(path)]
        except Exception:  # a broken file: its load will say why
            return []
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    try:
        return list(csv_header(line, name=path.name))
    except FormatError:  # its load will say why
        return []


def sniff_kind(path: Path) -> FileFormat | None:
    """The format a file's header says it is, without reading the whole file."""
    return format_for(_columns_of(path))


def _refusal(columns: Sequence[str], name: str) -> FormatError:
    """Say which format the columns came closest to, and what was wrong."""
    present = set(columns)

    def distance(f: FileFormat) -> int:
        return len(f.required - present) + len(present - set(f.names))

    best = min(FORMATS.values(), key=distance)
    missing = sorted(best.required - present)
    unknown = sorted(present - set(best.names))
    detail = "; ".join(
        part
        for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(unknown)}" if unknown else "",
        )
        if part
    )
    return FormatError(
        f"{name}: the columns match no poise format (closest: {best.kind}: {detail});"
        " see docs/formats.md"
    )


def _known(connection: sa.Connection, fmt: FileFormat) -> dict[str, pl.Series]:
    kinds = {c.ref for c in fmt.columns if c.ref is not None}
    kinds.update(_EXTRA_REFS.get(fmt.kind, ()))
    return {kind: repo.key_series(connection, kind=kind) for kind in kinds}


def ingest_file(
    engine: sa.Engine,
    path: Path,
    *,
    today: date,
    kind: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    actor: str = "system",
    layout: Layout | None = None,
) -> FileReport:
    """Load one file in one transaction; raise :class:`FormatError` if it is refused.
    ``actor`` is who loaded it, as the audit ledger records it: a user's id, or
    ``system``. ``layout``: the file is a custodian's own layout, read as the canonical
    format the layout names (:mod:`poise.ingest.layout`)."""
    data = path.read_bytes()
    name = _printable(path.name)
    sha = hashlib.sha256(data).hexdigest()  # the file as it came: loading it again is known
    if layout is not None:
        try:
            data = apply_layout(layout, data)
        except ValidationError as exc:
            raise FormatError(f"{name}: {exc}") from None
        kind = layout.kind
    table = read_table(data, name=name)
    if kind is not None:
        fmt = FORMATS[kind]
        unknown = set(table.columns) - set(fmt.names)
        missing = fmt.required - set(table.columns)
        if unknown or missing:
            raise _refusal(table.columns, name)
    else:
        found = format_for(list(table.columns))
        if found is None:
            raise _refusal(table.columns, name)
        fmt = found
    check_types(table, fmt, name=name)
    with engine.connect() as connection:
        known = _known(connection, fmt)
    batch = validate(table, fmt, known=known, today=today)
    log.info("writing %s: %d rows as %s", name, batch.rows.height, fmt.kind)
    with engine.execution_options(writes=True).begin() as connection:
        plan = washsales.before_load(connection, kind=fmt.kind, rows=batch.rows.drop(LINE))
        counts = upsert(
            connection,
            table=repo.table_for(fmt.table),
            rows=plan.rows,
            key=fmt.key,
            group=fmt.group,
        )
        washed = washsales.after_load(connection, plan)
        at = now()
        repo.store_quarantine(
            connection,
            rows=[
                repo.Quarantined(name, fmt.kind, r.line, r.reason, r.raw, sha, at)
                for r in batch.rejects
            ],
        )
        report = FileReport(
            path=_printable(str(path)),
            kind=fmt.kind,
            read=batch.read,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            quarantined=len(batch.rejects),
            rejects=batch.rejects,
            wash_sale_lots=washed,
        )
        load = repo.FileLoad(
            sha256=sha,
            name=name,
            kind=fmt.kind,
            read=report.read,
            inserted=report.inserted,
            updated=report.updated,
            unchanged=report.unchanged,
            quarantined=report.quarantined,
            loaded_at=at,
        )
        file_id = repo.record_load(connection, load=load)
        ledger.append(
            connection,
            actor=actor,
            action="ingest.file",
            subject=str(file_id),
            data={
                "file_id": file_id,
                "sha256": sha,
                "name": name,
                "kind": fmt.kind,
                "read": report.read,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "quarantined": report.quarantined,
                "wash_sale_lots": washed,
            },
            at=at,
        )
    log.info("committed %s", name)
    return report


def ingest_paths(
    engine: sa.Engine,
    paths: Sequence[Path],
    *,
    today: date,
    kind: str | None = None,
    progress: Progress | None = None,
    actor: str = "system",
    layout: Layout | None = None,
) -> list[FileReport]:
    """Load files in dependency order (securities before the lots that name them);
    ``layout``: every file is a custodian's own layout, read through it.

    A refused file is reported and loads nothing; so is a file whose load failed for
    any other reason (its transaction rolled back). The other files still load.
    """

    def rank(path: Path) -> int:
        try:
            fmt = FORMATS[kind] if kind else sniff_kind(path)
        except OSError:  # missing or unreadable: its load reports why
            fmt = None
        return fmt.rank if fmt is not None else len(FORMATS)

    reports: list[FileReport] = []
    for path in sorted(paths, key=rank):
        shown = _printable(str(path))
        if progress is not None:
            progress(Path(shown).name, None)
        try:
            report = ingest_file(engine, path, today=today, kind=kind, actor=actor, layout=layout)
        except FormatError as exc:
            report = FileReport(path=shown, refused=str(exc))
        except FileNotFoundError:
            report = FileReport(path=shown, refused=_no_such_file(shown), missing=True)
        except OSError as exc:
            report = FileReport(path=shown, refused=f"{shown}: {exc.strerror or exc}")
        except Exception as exc:  # unforeseen: this file's report, then the next file
            log.info("loading %s failed", shown, exc_info=True)
            report = FileReport(path=shown, failed=_failure(Path(shown).name, exc))
        reports.append(report)
        if progress is not None:
            progress(Path(shown).name, report)
    return reports


UPLOAD_NAME_BYTES = 200  # a file name's longest, in UTF-8: every file system holds it
UNNAMED = "upload"


def upload_name(sent: str | None) -> str:
    """The name a file sent over the network is kept under: the last part of what was
    sent (a browser sends only that; a folder named with it is dropped, whichever way its
    separators lean), without control characters, at most :data:`UPLOAD_NAME_BYTES`
    bytes; ``upload`` when nothing of it is left."""
    last = (sent or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in last if c.isprintable()).strip()
    name = name.encode("utf-8", "replace").decode("utf-8")  # no lone surrogate
    while len(name.encode("utf-8")) > UPLOAD_NAME_BYTES:
        name = name[:-1]
    return UNNAMED if name in ("", ".", "..") else name


def ingest_uploads(
    engine: sa.Engine,
    uploads: Sequence[tuple[str | None, BinaryIO]],
    *,
    today: date,
    kind: str | None = None,
    actor: str = "system",
) -> list[FileReport]:
    """Load files received over the network — each a name as sent and its bytes — as
    :func:`ingest_paths` loads files on disk, in dependency order, each in one
    transaction; each is reported, and kept in the history and the quarantine, under
    its :func:`upload_name`. The temporary copies are gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="poise-upload-") as folder:
        names: dict[str, str] = {}
        paths: list[Path] = []
        for n, (sent, content) in enumerate(uploads):
            name = upload_name(sent)
            path = Path(folder, str(n), name)
            path.parent.mkdir()
            with path.open("wb") as copy:
                shutil.copyfileobj(content, copy)
            names[_printable(str(path))] = name
            paths.append(path)
        reports = ingest_paths(engine, paths, today=today, kind=kind, actor=actor)
    return [_renamed(r, names.get(r.path, r.path)) for r in reports]


def _renamed(report: FileReport, name: str) -> FileReport:
    """``report`` of a temporary copy, as of the file sent: the copy's path is nowhere in
    it, not even in why it was refused."""
    return dataclasses.replace(
        report,
        path=name,
        refused=report.refused.replace(report.path, name),
        failed=report.failed.replace(report.path, name),
    )


def _printable(text: str) -> str:
    """A file name as text that can be stored and printed: bytes of a name that are
    not UTF-8 (a name written on another system) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _no_such_file(path: str) -> str:
    """Say that a named file does not exist; a pattern the shell left unexpanded
    (``my-files/*.csv`` when no file matched it) is said to match nothing."""
    if any(c in path for c in "*?["):
        return f"no file matches {path}"
    return f"{path}: no such file"


def _failure(name: str, exc: Exception) -> str:
    """One line on what failed, for the file's report."""
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else ""
    if len(detail) > 200:
        detail = detail[:199] + "…"
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return f"{name}: the load failed and nothing of it was loaded ({what})"
