"""What every read answers alike: pages, and entity tags.

A list takes ``limit`` (1–500, default 100) and ``offset`` and answers
``{"items": [...], "total": n, "limit": …, "offset": …}``. Every read answers with an
``ETag`` (a digest of the body); a request whose ``If-None-Match`` names it gets
``304 Not Modified`` and no body.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request, Response
from pydantic import BaseModel

__all__ = ["LimitQuery", "OffsetQuery", "PageOut", "tagged"]

T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]
# At most what a database's integer holds: a larger offset is a 422, not an overflow.
OffsetQuery = Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")]


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def tagged(request: Request, body: BaseModel | bytes) -> Response:
    """``body`` as JSON (a model, or JSON made already) with its ETag — or 304 when the
    caller holds it already."""
    content = body if isinstance(body, bytes) else body.__pydantic_serializer__.to_json(body)
    tag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
    held = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if tag in held or "*" in held:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(content, media_type="application/json", headers={"ETag": tag})
