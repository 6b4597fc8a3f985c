"""Files sent to the service, for the API and the pages alike: a multipart form read
within a bound, after the caller is known.

``POISE_UPLOAD_MB`` bounds a request's body. One that says it is larger
(``Content-Length``) is refused before a byte of it is read; one that turns out larger
as it arrives (sent in chunks, or with a length that lies) is refused as soon as it
passes the bound — a 413 either way, whose detail names the bound. The form is read by
Starlette's parser, which spools each file to a temporary file rather than memory.

A route reads the form itself, in its body, rather than declaring ``File`` parameters:
FastAPI reads declared ones before any dependency runs, so a caller not signed in could
make the server read and spool a whole upload before being refused.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from poise.api.problems import problem
from poise.domain.errors import PoiseError, ValidationError

__all__ = [
    "FIELD",
    "JSON_BODY",
    "MAX_FILES",
    "UPLOAD_BODY",
    "BoundedBodies",
    "TooLargeError",
    "read_form",
    "uploads",
]

FIELD = "files"  # the form field the files come in
MAX_FILES = 100  # files in one request
MAX_FIELDS = 20  # other fields (a form's security token, a kind)
MEGABYTE = 1024 * 1024


class TooLargeError(PoiseError):
    """A request's body is larger than the service takes."""

    exit_code = 3
    http_status = 413


def _too_large(megabytes: int) -> TooLargeError:
    return TooLargeError(
        f"the upload is larger than {megabytes} MB, the most this service takes"
        " (POISE_UPLOAD_MB): send the files in several requests"
    )


JSON_BODY = MEGABYTE  # any other body the API takes (a rebalance's, a run's): a few hundred bytes


class BoundedBodies:
    """Every body the API takes but a form's (an upload, bounded by ``read_form``) at
    most :data:`JSON_BODY` bytes: one that says it is larger is answered 413 before a
    byte is read, one that turns out larger as it arrives, as soon as it passes."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self._prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not str(scope["path"]).startswith(self._prefix)
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or Headers(scope=scope).get("content-type", "").startswith("multipart/")
        ):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > JSON_BODY:
            await problem(413, _too_large_body(), kind="toolarge")(scope, receive, send)
            return
        seen, over = 0, False

        async def bounded() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > JSON_BODY:
                    over = True
                    raise TooLargeError(_too_large_body())
            return message

        async def answering(message: Message) -> None:
            if not over:  # past the bound, what the route made of it is not the answer
                await send(message)

        with contextlib.suppress(TooLargeError):
            await self.app(scope, bounded, answering)
        if over:
            await problem(413, _too_large_body(), kind="toolarge")(scope, receive, send)


def _too_large_body() -> str:
    return f"the body is larger than {JSON_BODY // MEGABYTE} MB, the most this route takes"


class _Bounded(Request):
    """The request, its body read no further than ``limit`` bytes."""

    def __init__(self, request: Request, *, limit: int, megabytes: int) -> None:
        super().__init__(request.scope, request.receive)
        self._limit = limit
        self._megabytes = megabytes

    async def stream(self) -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in super().stream():
            seen += len(chunk)
            if seen > self._limit:
                raise _too_large(self._megabytes)
            yield chunk


async def read_form(request: Request, *, megabytes: int) -> FormData:
    """The request's form, its body at most ``megabytes``; close it when done (its
    files are temporary files). A form the parser cannot read is a 400."""
    limit = megabytes * MEGABYTE
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(megabytes)
    bounded = _Bounded(request, limit=limit, megabytes=megabytes)
    return await bounded.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)


def uploads(form: FormData) -> list[UploadFile]:
    """The files of the form's :data:`FIELD`, at least one (else a 422)."""
    files = [f for f in form.getlist(FIELD) if isinstance(f, UploadFile)]
    if not files:
        raise ValidationError(f"send one or more files, in the form field {FIELD!r}")
    return files


UPLOAD_BODY: dict[str, Any] = {  # the OpenAPI document's word for the form
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": MAX_FILES,
                            "description": "CSV or Parquet files, each under its own name.",
                        }
                    },
                }
            }
        },
    }
}
