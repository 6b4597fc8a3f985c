"""The API's idempotency keys: each POST that creates something may carry an
``Idempotency-Key``; the first request with a key claims it, and the answer it was given
is kept with it, so that the same request sent again — a retry after a dropped
connection — is answered the same, and does not create a second thing.

A key is the caller's own (two users may use the same text), and holds for
:data:`KEEP_HOURS`. A claim is made in its own transaction before the work starts, so
two requests with one key at once find each other: the second is told the first is in
progress. A request that fails lets go of its key, so it can be sent again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from poise.domain.errors import ConflictError, ValidationError
from poise.store import tables as t

__all__ = ["KEEP_HOURS", "Kept", "claim_key", "keep_answer", "release_key"]

KEEP_HOURS = 24


@dataclass(frozen=True, slots=True)
class Kept:
    """The answer a key's first request was given."""

    status: int
    headers: dict[str, str]
    body: bytes


def claim_key(
    connection: sa.Connection, *, user_id: str, key: str, fingerprint: str, now: datetime
) -> Kept | None:
    """Claim ``key`` for a request (``fingerprint``: a digest of its method, path and
    body): None when it is this request's to answer now; the kept answer when the same
    request was answered before. A key in use by a request still in progress is a
    :class:`ConflictError`; one used for a different request, a :class:`ValidationError`.
    Keys older than :data:`KEEP_HOURS` are forgotten first."""
    k = t.idempotency_keys
    connection.execute(sa.delete(k).where(k.c.created_at < now - timedelta(hours=KEEP_HOURS)))
    try:
        with connection.begin_nested():
            connection.execute(
                sa.insert(k).values(
                    user_id=user_id, key=key, fingerprint=fingerprint, created_at=now
                )
            )
    except sa.exc.IntegrityError:
        pass
    else:
        return None
    row = connection.execute(
        sa.select(k.c.fingerprint, k.c.status, k.c.headers, k.c.body).where(
            (k.c.user_id == user_id) & (k.c.key == key)
        )
    ).one()
    if row.fingerprint != fingerprint:
        raise ValidationError(
            "this Idempotency-Key was used for a different request: use a new key for a new request"
        )
    if row.status is None:
        raise ConflictError("a request with this Idempotency-Key is still in progress")
    return Kept(int(row.status), json.loads(row.headers or "{}"), bytes(row.body or b""))


def keep_answer(
    connection: sa.Connection,
    *,
    user_id: str,
    key: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Keep the answer the request that claimed ``key`` was given."""
    k = t.idempotency_keys
    connection.execute(
        sa.update(k)
        .where((k.c.user_id == user_id) & (k.c.key == key))
        .values(status=status, headers=json.dumps(dict(headers), sort_keys=True), body=body)
    )


def release_key(connection: sa.Connection, *, user_id: str, key: str) -> None:
    """Let go of ``key``: its request failed, and may be sent again with it."""
    k = t.idempotency_keys
    connection.execute(sa.delete(k).where((k.c.user_id == user_id) & (k.c.key == key)))
