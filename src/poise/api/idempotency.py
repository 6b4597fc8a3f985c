"""Idempotency keys on the POSTs that create something: a request sent again with the
same ``Idempotency-Key`` — a retry after a timeout or a dropped connection — is answered
as the first was (with ``Idempotent-Replayed: true``), and creates nothing more.

A route that creates something takes :data:`OnceDep` and makes its answer through it::

    @router.post("/accounts/{account_id}/rebalance", status_code=201)
    def rebalance(..., once: OnceDep) -> Response:
        return once(lambda: make_the_answer())

- The key is optional; without one, every request is acted on. With one (1 to 255
  visible ASCII characters, e.g. a UUID), it is the caller's own and holds for
  :data:`~poise.store.repo.idempotency.KEEP_HOURS` hours.
- The same key with a different request (method, path, query or body) is a 422; the
  same key while its first request is still being answered, a 409.
- Only a success is kept: a request that fails lets go of its key, so that the caller
  may correct it and send it again with the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, Request, Response

from poise.api.auth import Principal, PrincipalDep
from poise.api.deps import EngineDep
from poise.store import repo

__all__ = ["HEADER", "Once", "OnceDep"]

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
KEPT_HEADERS = ("content-type", "location")


class Once:
    """Answers a request at most once per idempotency key: see the module."""

    def __init__(
        self, request: Request, who: Principal, engine: sa.Engine, body: bytes, key: str | None
    ) -> None:
        self._request = request
        self._who = who
        self._engine = engine
        self._body = body
        self.key = key

    def _fingerprint(self) -> str:
        url = self._request.url
        head = f"{self._request.method} {url.path}?{url.query}\n".encode()
        return hashlib.sha256(head + self._body).hexdigest()

    def __call__(self, make: Callable[[], Response]) -> Response:
        if self.key is None:
            return make()
        user_id = self._who.user.user_id
        writes = self._engine.execution_options(writes=True)
        with writes.begin() as connection:
            kept = repo.claim_key(
                connection,
                user_id=user_id,
                key=self.key,
                fingerprint=self._fingerprint(),
                now=datetime.now(UTC),
            )
        if kept is not None:
            return Response(
                kept.body,
                status_code=kept.status,
                headers={**kept.headers, "Idempotent-Replayed": "true"},
            )
        try:
            response = make()
        except BaseException:
            with writes.begin() as connection:
                repo.release_key(connection, user_id=user_id, key=self.key)
            raise
        with writes.begin() as connection:
            if 200 <= response.status_code < 300:
                repo.keep_answer(
                    connection,
                    user_id=user_id,
                    key=self.key,
                    status=response.status_code,
                    headers={h: response.headers[h] for h in KEPT_HEADERS if h in response.headers},
                    body=bytes(response.body),
                )
            else:
                repo.release_key(connection, user_id=user_id, key=self.key)
        return response


async def _body(request: Request) -> bytes:
    return await request.body()


def _once(
    request: Request,
    who: PrincipalDep,
    engine: EngineDep,
    body: Annotated[bytes, Depends(_body)],
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            pattern=KEY_PATTERN,
            description=(
                "Send the same key again to have a retried request answered as the first"
                " was, without creating anything twice (1–255 visible ASCII characters;"
                " kept 24 hours)"
            ),
        ),
    ] = None,
) -> Once:
    return Once(request, who, engine, body, key)


OnceDep = Annotated[Once, Depends(_once)]
