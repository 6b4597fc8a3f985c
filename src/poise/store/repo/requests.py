"""Rebalance requests: kept once by id, listed, and which are open."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from poise.store import tables as t

__all__ = ["list_requests", "open_request_reasons", "save_requests", "stored_request_ids"]


def save_requests(
    connection: sa.Connection, *, requests: Sequence[Mapping[str, Any]], received_at: datetime
) -> int:
    """Keep rebalance requests (payloads), each once by its id; how many were new."""
    if not requests:
        return 0
    r = t.rebalance_requests
    ids = [q["request_id"] for q in requests]
    seen = set(
        connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(ids))).scalars()
    )
    fresh = {q["request_id"]: q for q in requests if q["request_id"] not in seen}
    if fresh:
        connection.execute(
            sa.insert(r),
            [
                {
                    "request_id": q["request_id"],
                    "account_id": q.get("account_id"),
                    "household_id": q.get("household_id"),
                    "reasons": ";".join(q["reasons"]),
                    "figures": json.dumps(q.get("figures", {}), sort_keys=True),
                    "as_of": datetime.fromisoformat(q["as_of"]),
                    "received_at": received_at,
                    "status": "open",
                }
                for q in fresh.values()
            ],
        )
    return len(fresh)


def stored_request_ids(connection: sa.Connection, *, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the store already holds."""
    r = t.rebalance_requests
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(
            connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(chunk))).scalars()
        )
    return found


def open_request_reasons(connection: sa.Connection) -> dict[str, frozenset[str]]:
    """The reasons of each account's open rebalance requests."""
    r = t.rebalance_requests
    found: dict[str, set[str]] = {}
    query = sa.select(r.c.account_id, r.c.reasons).where(
        (r.c.status == "open") & r.c.account_id.is_not(None)
    )
    for account_id, reasons in connection.execute(query):
        found.setdefault(account_id, set()).update(reasons.split(";"))
    return {a: frozenset(rs) for a, rs in found.items()}


def list_requests(connection: sa.Connection, *, limit: int = 0) -> list[dict[str, Any]]:
    r = t.rebalance_requests
    query = sa.select(r).order_by(r.c.as_of.desc(), r.c.request_id)
    if limit:
        query = query.limit(limit)
    return [
        {
            "request_id": row.request_id,
            "account_id": row.account_id,
            "household_id": row.household_id,
            "reasons": row.reasons.split(";"),
            "figures": json.loads(row.figures),
            "as_of": row.as_of,
            "status": row.status,
        }
        for row in connection.execute(query)
    ]
