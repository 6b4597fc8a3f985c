"""Loading files through the API, and the history of files loaded.

``POST /ingest`` runs exactly what ``poise ingest`` runs (:func:`poise.workflow.ingest.
ingest_uploads`, over :func:`~poise.workflow.ingest.ingest_paths`): the kind told from
each file's header (or given), dependency order, one transaction a file, every row
loaded or quarantined with its reason, a refused file reported with why — and it answers
the document ``poise ingest --json`` prints. The same bytes sent again change nothing
(all *unchanged*, no row quarantined twice); an ``Idempotency-Key``
(:mod:`poise.api.idempotency`) makes a retry answered as the first request was, matched
on the files' names and contents rather than the multipart body's bytes. Who may load:
operations and admins (:data:`poise.api.scoping.operations_only`), with a token that
may write.

The history (``GET /ingest/files``) and a load's quarantined rows are the firm's
operational records — a quarantined row may name any household's account — so they are
for the firm-wide roles (:data:`poise.api.scoping.firm_only`: 403 for the list, 404
for one to the others).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.idempotency import HEADER, KEY_PATTERN, Once
from poise.api.problems import MEDIA_TYPE, Problem
from poise.api.routes.answers import FORBIDDEN, NOT_FOUND, SIGNED_IN, Document, Moment, answer
from poise.api.scoping import ScopedDep, firm_only, operations_only, scoped_router
from poise.api.uploads import UPLOAD_BODY, read_form, uploads
from poise.store.repo import files
from poise.workflow.documents import (
    ingest_report_json,
    ingested_file_json,
    jsonable,
    quarantined_json,
)
from poise.workflow.ingest import ingest_uploads, upload_name

__all__ = ["KINDS", "Kind", "router"]

router = scoped_router(
    tags=["ingest"], dependencies=[Depends(firm_only)], responses={**SIGNED_IN, **FORBIDDEN}
)

Kind = Literal[  # poise.ingest.formats.FORMATS, in load order
    "securities", "models", "households", "accounts", "clients", "lots", "transactions",
    "prices", "cash_flows", "positions", "breaks", "cash",
]  # fmt: skip
KINDS: tuple[str, ...] = get_args(Kind)
PROBLEM = Problem.model_json_schema()
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        pattern=KEY_PATTERN,
        description=(
            "Send the same key again, with the same files, to have a retried upload answered"
            " as the first was (1–255 visible ASCII characters; kept 24 hours)"
        ),
    ),
]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM}}}


class RejectOut(Document):
    line: int  # the header is line 1; for Parquet, the row from 1
    reason: str


class FileReportOut(Document):
    path: str  # the file's name, as it was sent
    kind: str  # "" when refused or failed
    read: int
    loaded: int  # inserted + updated
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    refused: str | None  # why the whole file was refused, if it was: nothing of it loaded
    failed: str | None  # why its load failed, if it did: nothing of it loaded
    rejects: list[RejectOut]  # every row it quarantined


class IngestedFileOut(Document):
    file_id: int
    name: str  # as it was sent, or named on the command line
    kind: str
    sha256: str  # of the file's bytes
    loaded_at: Moment
    read: int
    loaded: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int


class QuarantinedOut(Document):
    file_name: str
    kind: str
    line: int
    reason: str
    raw: str  # the row as it stood in the file
    sha256: str
    quarantined_at: Moment  # by the first load of these bytes


class IngestedFileDetail(IngestedFileOut):
    quarantine: list[QuarantinedOut]  # the rows the file left in quarantine, by line


class IngestedFilesPage(Document):
    items: list[IngestedFileOut]
    total: int
    limit: int
    offset: int


_REPORTS = TypeAdapter(list[FileReportOut])


@router.post(
    "/ingest",
    status_code=201,
    response_model=list[FileReportOut],
    summary="Load files, as poise ingest does",
    dependencies=[Depends(operations_only)],
    openapi_extra=UPLOAD_BODY,
    responses={
        400: _problem("A form that cannot be read (more than 100 files, say)."),
        403: _problem("Only operations and admins load files; or a token that may only read."),
        409: _problem("The same Idempotency-Key while its first request is being answered."),
        413: _problem("A body larger than POISE_UPLOAD_MB."),
    },
)
async def upload(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep,
    kind: Annotated[Kind | None, Query(description="Read every file as this kind.")] = None,
    key: IdempotencyKey = None,
) -> Response:  # fmt: skip
    """Each file's load, as ``poise ingest --json`` prints it, in load order: its counts,
    every row it quarantined with the reason, or why it was refused. A refused file is
    in the answer, not an error: the other files load all the same. Sent again with the
    same ``Idempotency-Key`` and the same files (by name and content), answered as the
    first time."""
    form = await read_form(request, megabytes=settings.upload_mb)
    try:
        sent = uploads(form)

        def make() -> Response:
            today = datetime.now(UTC).date()
            reports = ingest_uploads(engine, [(f.filename, f.file) for f in sent],
                                     today=today, kind=kind, actor=who.user.user_id)  # fmt: skip
            shown = _REPORTS.validate_python(jsonable([ingest_report_json(r) for r in reports]))
            body = _REPORTS.dump_json(shown)
            return Response(body, status_code=201, media_type="application/json")

        def once() -> Response:
            asked = b"" if key is None else _asked(sent)
            return Once(request, who, engine, asked, key)(make)

        return await run_in_threadpool(once)
    finally:
        await form.close()


def _asked(sent: Sequence[UploadFile]) -> bytes:
    """What an idempotency key is matched on besides the method, path and query: each
    file's name and the SHA-256 of its bytes — not the multipart body itself, whose
    boundary a client makes anew each time it builds the request."""
    lines = []
    for f in sent:
        digest = hashlib.sha256()
        f.file.seek(0)
        while chunk := f.file.read(1 << 20):
            digest.update(chunk)
        f.file.seek(0)
        lines.append(f"{upload_name(f.filename)}\t{digest.hexdigest()}\n")
    return "".join(lines).encode()


@router.get("/ingest/files", response_model=IngestedFilesPage, summary="Files loaded")
def list_files(
    request: Request, who: ScopedDep, engine: EngineDep,
    kind: Kind | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """Every load of a file, the latest first: its name, kind, digest, when, and what came
    of its rows."""
    with engine.connect() as connection:
        page = files.ingested_files(connection, kind=kind, limit=limit, offset=offset)
    document = {"items": [ingested_file_json(f) for f in page.items], "total": page.total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, IngestedFilesPage, document)


@router.get(
    "/ingest/files/{file_id}",
    response_model=IngestedFileDetail,
    summary="A file loaded, and the rows it left in quarantine",
    responses=NOT_FOUND,
)
def get_file(request: Request, file_id: int, who: ScopedDep, engine: EngineDep) -> Response:
    """The load, and each row of the file in quarantine: its line, why, and the row as it
    stood in the file."""
    with engine.connect() as connection:
        found = files.ingested_file(connection, file_id=file_id)
        rows = files.file_quarantine(connection, sha256=found.load.sha256)
    document = {**ingested_file_json(found), "quarantine": [quarantined_json(q) for q in rows]}
    return answer(request, IngestedFileDetail, document)
