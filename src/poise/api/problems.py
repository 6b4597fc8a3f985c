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
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from poise.api.logs import request_id
from poise.domain.errors import PoiseError, ValidationError

__all__ = [
    "MEDIA_TYPE",
    "RESPONSES",
    "Problem",
    "http_problem",
    "install",
    "plain_text",
    "poise_problem",
    "problem",
]

MEDIA_TYPE = "application/problem+json"
TYPES = "https://poise.invalid/problems/"  # a problem type names its kind; not fetched
log = logging.getLogger("poise.api")


class Problem(BaseModel):
    """A problem details document (RFC 9457), as every error of the API answers."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, str]] | None = None  # a request that cannot be read: each complaint


def _documented(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }


# What any route may answer besides its own success, as the OpenAPI document says.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("no credentials, or credentials that do not hold"),
    403: _documented("the credentials may not do this"),
    404: _documented("no such object, or not one the caller may see"),
    422: _documented("the request cannot be read"),
    429: _documented("too many requests: wait and try again"),
    500: _documented("an unexpected error: quote the request id"),
}


def problem(
    status: int, detail: str, *, kind: str | None = None, rid: str | None = None, **extra: Any
) -> JSONResponse:
    """A problem details response: ``type`` (a URI naming the kind), ``title`` (the
    status's phrase), ``status``, ``detail`` (this occurrence), ``instance`` (the
    request id), and any ``extra`` members."""
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPES + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": f"urn:poise:request:{rid or request_id()}",
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="poise"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def poise_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PoiseError)
    kind = type(exc).__name__.removesuffix("Error").lower() or "error"
    response = problem(exc.http_status, str(exc), kind=kind)
    retry_after = getattr(exc, "retry_after", None)  # over a rate limit: when to come back
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    shown = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:3])
    return problem(422, f"the request cannot be read: {shown}", kind="invalid", errors=errors)


async def http_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # This handler runs outermost, after the request's own context is gone: its id is
    # read from the request's state, where the request log left it.
    rid = str(request.scope.get("state", {}).get("request_id") or request_id())
    log.exception("unexpected error", exc_info=exc, extra={"fields": {"request_id": rid}})
    response = problem(500, f"an unexpected error; quote request {rid} when reporting it", rid=rid)
    response.headers["X-Request-ID"] = rid
    return response


async def plain_text(request: Request) -> None:
    """Every route's first check: no query parameter holds a control character (a NUL
    byte, say), which no id, filter or date does and some databases refuse outright.
    (``async``: it only reads the request, and a plain ``def`` would cost every request
    a hop to the thread pool and back.)"""
    for name, value in request.query_params.multi_items():
        if any(ord(c) < 32 or ord(c) == 127 for c in name + value):
            raise ValidationError(f"the query parameter {name!r} holds a control character")


def install(app: FastAPI) -> None:
    """Every error the application can raise answered as a problem."""
    app.add_exception_handler(PoiseError, poise_problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, http_problem)
    app.add_exception_handler(Exception, _unexpected)
