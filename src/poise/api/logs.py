"""Structured JSON logs, one object a line on standard error, each with the request
id of the request it was written for.

A request's id is the caller's ``X-Request-ID`` when it sends a sane one (so a proxy's
id follows the request through), else a new one; it is echoed in the response's
``X-Request-ID`` and written into every log line and problem written meanwhile.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestLog", "configure", "request_id"]

_request: ContextVar[str] = ContextVar("poise_request_id", default="-")
SANE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access = logging.getLogger("poise.api.access")


def request_id() -> str:
    """The id of the request being served ("-" outside one)."""
    return _request.get()


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time, level, logger, message, request id, and
    whatever the record was given in ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "info") -> None:
    """poise's and uvicorn's loggers, in JSON on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("poise", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # poise writes its own access lines


class RequestLog:
    """ASGI middleware: give each request its id and write one access line for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if SANE.match(given) else uuid.uuid4().hex
        token = _request.set(rid)
        scope.setdefault("state", {})["request_id"] = rid  # for handlers outside this one
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access.info(
                "%s %s %s",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "fields": {
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )
            _request.reset(token)
