"""Is the service up (``/health``), and can it serve (``/ready``: the store reached, at
the schema this poise expects)? Neither needs credentials: a load balancer asks."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from poise.api.deps import EngineDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    database: str  # "ok", or why not
    schema_revision: str | None
    expected_revision: str


@router.get("/health", response_model=Health, summary="The service is up")
def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Ready,
    summary="The service can serve: its store is reachable and at the current schema",
    responses={503: {"model": Ready, "description": "not ready, and why"}},
)
def ready(engine: EngineDep) -> Ready | JSONResponse:
    from poise.store.migrate import current_revision, head_revision  # noqa: PLC0415

    expected = head_revision()
    try:
        current = current_revision(engine)
    except Exception as exc:  # any fault of the store is "not ready"
        answer = Ready(
            status="not ready",
            database=type(exc).__name__,
            schema_revision=None,
            expected_revision=expected,
        )
        return JSONResponse(answer.model_dump(), status_code=503)
    if current != expected:
        answer = Ready(
            status="not ready",
            database=f"at schema {current}, not {expected}: run `poise db upgrade`",
            schema_revision=current,
            expected_revision=expected,
        )
        return JSONResponse(answer.model_dump(), status_code=503)
    return Ready(status="ready", database="ok", schema_revision=current, expected_revision=expected)
