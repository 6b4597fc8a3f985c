"""The ingest pages: the history of files loaded, a load's quarantined rows, and a form
that loads files — the firm's operational records, for the firm-wide roles (anyone else
is answered 404, as through the API); the form for operations and admins.

A file loaded here goes through exactly what ``poise ingest`` and ``POST
/api/v1/ingest`` run (:func:`poise.workflow.ingest.ingest_uploads`), and each file's
report is the document those print (:func:`poise.workflow.documents.ingest_report_json`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from poise.api.deps import EngineDep, SettingsDep
from poise.api.routes.ingest import KINDS
from poise.api.scoping import FILE_IDS
from poise.api.uploads import read_form, uploads
from poise.domain.errors import ForbiddenError, NotFoundError, ValidationError
from poise.domain.users import FIRM_WIDE, LOADERS
from poise.store.repo import files
from poise.web.pages import templates
from poise.web.session import WebUser, check_csrf
from poise.workflow.documents import ingest_report_json, ingested_file_json, quarantined_json
from poise.workflow.ingest import ingest_uploads

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = 50  # loads a page of the history shows
OffsetQuery = Annotated[int, Query(ge=0, le=FILE_IDS)]


def _firm_wide(who: WebUser, what: str) -> None:
    if who.user.role not in FIRM_WIDE:  # as one that does not exist, as through the API
        raise NotFoundError(f"no page {what}")


def _history(
    request: Request, who: WebUser, engine: EngineDep, *, kind: str | None, offset: int,
    upload_mb: int, reports: list[dict[str, Any]] | None = None,
) -> Response:  # fmt: skip
    with engine.connect() as connection:
        page = files.ingested_files(connection, kind=kind, limit=PAGE, offset=offset)
    context = {
        "user": who.user,
        "loads": [ingested_file_json(f) for f in page.items],
        "total": page.total,
        "offset": offset,
        "page": PAGE,
        "kind": kind,
        "kinds": KINDS,
        "may_load": who.user.role in LOADERS,
        "upload_mb": upload_mb,
        "reports": reports,
    }
    return templates.TemplateResponse(request, "ingest.html", context)


@router.get("/ingest", response_class=HTMLResponse)
def ingest_page(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep, *,
    kind: str = "", offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    _firm_wide(who, "/ingest")
    shown = _kind(kind)
    return _history(request, who, engine, kind=shown, offset=offset, upload_mb=settings.upload_mb)


def _kind(asked: str) -> str | None:
    """A kind of file the form asks for; none ("") is every kind, or told from the
    header."""
    if asked and asked not in KINDS:
        raise ValidationError(f"no kind of file {asked!r}; kinds: {', '.join(KINDS)}")
    return asked or None


@router.post("/ingest", response_class=HTMLResponse)
async def ingest_form(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Load the files the form sends, then show what came of each above the history."""
    _firm_wide(who, "/ingest")
    if who.user.role not in LOADERS:
        raise ForbiddenError("only operations and admins load files")
    form = await read_form(request, megabytes=settings.upload_mb)
    try:
        csrf = form.get("csrf")
        check_csrf(request, csrf if isinstance(csrf, str) else None)
        asked = form.get("kind")
        kind = _kind(asked if isinstance(asked, str) else "")
        sent = [(f.filename, f.file) for f in uploads(form)]
        today = datetime.now(UTC).date()
        done = await run_in_threadpool(
            ingest_uploads, engine, sent, today=today, kind=kind, actor=who.user.user_id
        )
    finally:
        await form.close()
    return await run_in_threadpool(
        _history, request, who, engine, kind=None, offset=0, upload_mb=settings.upload_mb,
        reports=[ingest_report_json(r) for r in done],
    )  # fmt: skip


@router.get("/ingest/{file_id}", response_class=HTMLResponse)
def ingested_file_page(request: Request, file_id: str, who: WebUser, engine: EngineDep) -> Response:
    _firm_wide(who, f"/ingest/{file_id}")
    if not (file_id.isascii() and file_id.isdigit()) or int(file_id) > FILE_IDS:
        raise NotFoundError(f"no file {file_id}")
    with engine.connect() as connection:
        found = files.ingested_file(connection, file_id=int(file_id))
        rows = files.file_quarantine(connection, sha256=found.load.sha256)
    context = {
        "user": who.user,
        "load": ingested_file_json(found),
        "rows": [quarantined_json(q) for q in rows],
    }
    return templates.TemplateResponse(request, "ingested_file.html", context)
