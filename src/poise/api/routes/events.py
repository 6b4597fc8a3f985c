"""``GET /api/v1/events``: what happens, as it happens — rebalance requests raised and
answered, runs' progress — as server-sent events (:mod:`poise.api.live`), each only to
those who may see it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from poise.api.auth import Principal
from poise.api.live import Feed, sse
from poise.api.routes.answers import SIGNED_IN
from poise.api.scoping import ScopedDep, scoped_router

__all__ = ["MEDIA_TYPE", "router", "stream"]

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = 15.0  # seconds: a comment line keeps proxies from closing a quiet stream
LOOK = 1.0  # seconds between looks at whether the caller is still there
RETRY_MS = 3000  # the browser reconnects after this long

router = scoped_router(tags=["events"], responses=SIGNED_IN)

EXAMPLE = """\
retry: 3000

event: ready
data: {"firm": false, "households": ["H0001"]}

id: 1
event: request
data: {"account_id": "10000001", "as_of": "2022-12-28T23:59:59+00:00", ...}

id: 2
event: run
data: {"done": 120, "failed": 0, "households": 2000, "run_id": "20261206-…", ...}
"""

EVENT = {  # one event of the stream, as an SSE client parses it
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["ready", "request", "run"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}

SecondsQuery = Annotated[
    int,
    Query(ge=0, le=3600, description="End the stream after this many seconds (0: at once)"),
]


async def stream(
    feed: Feed, who: Principal, *, seconds: float, request: Request | None = None
) -> AsyncIterator[str]:
    """The events ``who`` may see for ``seconds``: first ``ready`` (what they see), then
    ``request`` and ``run`` events as they come, a comment every :data:`HEARTBEAT` s."""
    yield f"retry: {RETRY_MS}\n\n"
    scope = who.scope
    households = None if scope.firm else sorted(scope.households)
    yield sse("ready", {"firm": scope.firm, "households": households})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    told = 0
    async with feed.listening(scope, who.user.role) as queue:
        quiet = 0.0  # seconds since the last line sent
        while (left := deadline - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=min(LOOK, left))
            except TimeoutError:
                if request is not None and await request.is_disconnected():
                    return  # the caller has gone: stop listening for them
                quiet += LOOK
                if quiet >= HEARTBEAT:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                continue
            if event is None:
                return
            told, quiet = told + 1, 0.0
            yield sse(event.kind, event.data, event_id=str(told))


@router.get(
    "/events",
    summary="What happens, as it happens: server-sent events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "A stream of server-sent events: `ready` (what the caller sees), then"
                " `request` (a rebalance request raised, answered or failed — of the"
                " caller's households) and `run` (a firm-wide run's progress — for the"
                " firm-wide roles), as they happen."
            ),
            "content": {MEDIA_TYPE: {"schema": EVENT, "example": EXAMPLE}},
        }
    },
)
async def events(
    request: Request, who: ScopedDep, seconds: SecondsQuery = 1800
) -> StreamingResponse:
    """Open it with an ``EventSource`` (a browser) or any SSE client; it ends after
    ``seconds`` (30 minutes by default) or when the server stops, and the client
    reconnects."""
    feed: Feed = request.app.state.feed
    return StreamingResponse(
        stream(feed, who, seconds=seconds, request=request),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
