"""What the routes share beyond the book's: a document that a command prints too,
answered in the same shape; the kinds of value answers hold; and the problems a route
documents.

A document (a proposal, a request, a run, a backtest, the drift report) is made by the
function its command uses (:mod:`poise.workflow.documents`), written in the one JSON
convention — money, prices and quantities exact decimal strings, ratios rounded
numbers, times ISO 8601 — and checked against the model the OpenAPI document shows
for it (:class:`Document`: no field it does not name), so that what the document
promises and what is answered cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from poise.api.http import tagged
from poise.api.problems import MEDIA_TYPE
from poise.workflow.documents import jsonable

__all__ = [
    "FORBIDDEN",
    "NOT_FOUND",
    "SIGNED_IN",
    "WRITTEN",
    "Document",
    "Exact",
    "Moment",
    "answer",
    "created",
]

Exact = Annotated[str, Field(description="An exact decimal, as a string.", examples=["1234.50"])]
Moment = Annotated[
    str,
    Field(
        description="A time, ISO 8601, UTC.",
        examples=["2022-12-28T23:59:59+00:00"],
        json_schema_extra={"format": "date-time"},
    ),
]


class Document(BaseModel):
    """A document's shape: exactly the fields named (a field the shared function adds
    and the model does not name is an error, found by the tests, not a silent extra)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)


D = TypeVar("D", bound=Document)


def answer(request: Request, shape: type[D], document: Any) -> Response:
    """``document`` in the one JSON convention, as ``shape``, with its ETag."""
    return tagged(request, shape.model_validate(jsonable(document)))


def created(shape: type[D], document: Any, location: str, *, status: int = 201) -> Response:
    """``document`` as ``shape``: what a POST made (``201``, or ``202`` for a job that
    goes on), with ``Location`` — ``location`` under the API's prefix."""
    body = shape.model_validate(jsonable(document)).model_dump_json().encode()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"Location": f"/api/v1/{quote(location, safe='/')}"},
    )


class _Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str


class _Invalid(_Problem):
    errors: list[dict[str, str]] = []  # each complaint: where (query.limit, say), message


def _problem(description: str, shape: type[BaseModel] = _Problem) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": shape.model_json_schema()}},
    }


SIGNED_IN: dict[int | str, dict[str, Any]] = {  # every route of a router answers these
    401: _problem("No credentials, or credentials that do not hold."),
    422: _problem("A parameter that cannot be read (each complaint in `errors`).", _Invalid),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: _problem("No such object — or one the caller may not see: the same answer."),
}
WRITTEN: dict[int | str, dict[str, Any]] = {  # every POST with a body answers these too
    400: _problem("A body that cannot be read as JSON."),
    409: _problem("A request with this Idempotency-Key is still being answered."),
    413: _problem("A body larger than the route takes."),
}
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: _problem("The caller's role may not see these."),
}
