"""Errors as RFC 9457 problem details (``application/problem+json``).

Every typed error of :mod:`poise.domain.errors` carries its HTTP status; its message
becomes the ``detail``. A request the API cannot read (a missing field, a bad query
parameter) is a 422 with each complaint in ``errors``; an unexpected error is a 500
whose detail names only the request id, never the exception — the log has the rest.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from poise.api.logs import request_id
from poise.domain.errors import PoiseError

__all__ = ["MEDIA_TYPE", "install", "problem"]

MEDIA_TYPE = "application/problem+json"
TYPES = "https://poise.invalid/problems/"  # a problem type names its kind; not fetched
log = logging.getLogger("poise.api")


def problem(status: int, detail: str, *, kind: str | None = None, **extra: Any) -> JSONResponse:
    """A problem details response: ``type`` (a URI naming the kind), ``title`` (the
    status's phrase), ``status``, ``detail`` (this occurrence), ``instance`` (the
    request id), and any ``extra`` members."""
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPES + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"urn:poise:request:{request_id()}",
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="poise"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _poise_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PoiseError)
    kind = type(exc).__name__.removesuffix("Error").lower() or "error"
    return problem(exc.http_status, str(exc), kind=kind)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    shown = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:3])
    return problem(422, f"the request cannot be read: {shown}", kind="invalid", errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return problem(500, f"an unexpected error; quote request {request_id()} when reporting it")


def install(app: FastAPI) -> None:
    """Every error the application can raise answered as a problem."""
    app.add_exception_handler(PoiseError, _poise_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
