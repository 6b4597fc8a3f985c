"""Backtests: what each was asked (the prices file by name and digest, the model, the
dates, every input), and what each method came to — its figures, its years and its
wealth day by day — with a digest of the results, so that two runs of the same inputs
can be compared for reproducibility.

A backtest is kept whole, in the caller's transaction: one insert for the backtest and
one for its methods. It is not changed afterwards; deleting a backtest deletes its
methods with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import sqlalchemy as sa

from poise.domain.errors import ConflictError, NotFoundError, ValidationError
from poise.store import tables as t

__all__ = ["BacktestMethod", "BacktestRecord", "backtest", "backtests", "save_backtest"]


def _json(value: Any) -> Any:
    """What JSON cannot write itself: money exact as a decimal string, dates and times
    ISO 8601, enums their value, paths as text, sets sorted."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not kept in a backtest's JSON")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json, sort_keys=True)


@dataclass(frozen=True, slots=True)
class BacktestMethod:
    """What one method came to over the backtest.

    ``summary``: its figures (annualised returns before and after tax, tax alpha,
    tracking error, turnover, trades, losses harvested, …); ``years``: a row per
    calendar year (tax, realised gains short and long, losses deducted and carried
    out, …); ``series``: ``{"days": [ISO dates], "pre_tax": [...], "after_tax": [...]}``.
    """

    method: str
    summary: dict[str, Any]
    years: list[dict[str, Any]]
    series: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    """A backtest as kept: what it was asked, the digest of its results, and each method
    by name.

    ``inputs``, and each method's summary, years and series, are kept as JSON: money as
    decimal strings and dates ISO 8601, and they read back so.
    """

    backtest_id: str  # a uuid4, in hex
    created_at: datetime
    prices_file: str  # the name it was given
    prices_digest: str  # sha256 of the prices file's bytes, in hex
    model_id: str
    start: date
    end: date
    inputs: dict[str, Any]  # everything asked, so the backtest can be run again
    digest: str  # sha256 of the results, in hex
    methods: dict[str, BacktestMethod]

    def __post_init__(self) -> None:
        if not self.backtest_id:
            raise ValidationError("a backtest needs its id")
        if self.created_at.tzinfo is None:
            raise ValidationError("a backtest's created_at is timezone-aware")
        if self.end < self.start:
            raise ValidationError(
                f"a backtest ends on or after its start, not {self.end} before {self.start}"
            )
        for name, method in self.methods.items():
            if name != method.method:
                raise ValidationError(
                    f"backtest {self.backtest_id}: method {method.method!r} is kept as {name!r}"
                )


def save_backtest(connection: sa.Connection, *, record: BacktestRecord) -> None:
    """Keep ``record`` and its methods: one insert per table, in the caller's
    transaction. A backtest is kept once: its id kept already is a :class:`ConflictError`,
    and the caller's transaction goes on."""
    row = {
        "backtest_id": record.backtest_id,
        "created_at": record.created_at,
        "prices_file": record.prices_file,
        "prices_digest": record.prices_digest,
        "model_id": record.model_id,
        "start": record.start,
        "end": record.end,
        "inputs": _dumps(record.inputs),
        "digest": record.digest,
    }
    try:
        with connection.begin_nested():  # a failed insert leaves the transaction usable
            connection.execute(sa.insert(t.backtests).values(**row))
    except sa.exc.IntegrityError:
        raise ConflictError(f"backtest {record.backtest_id!r} is kept already") from None
    if record.methods:
        connection.execute(
            sa.insert(t.backtest_methods),
            [
                {
                    "backtest_id": record.backtest_id,
                    "method": method.method,
                    "summary": _dumps(method.summary),
                    "years": _dumps(method.years),
                    "series": _dumps(method.series),
                }
                for method in record.methods.values()
            ],
        )


def _methods(
    connection: sa.Connection, backtest_ids: Iterable[str], *, series: bool
) -> dict[str, dict[str, BacktestMethod]]:
    """Each backtest's methods, in order of name; their series only if ``series``."""
    m = t.backtest_methods
    ids = list(backtest_ids)
    found: dict[str, dict[str, BacktestMethod]] = {backtest_id: {} for backtest_id in ids}
    columns = [m.c.backtest_id, m.c.method, m.c.summary, m.c.years]
    if series:
        columns.append(m.c.series)
    for begin in range(0, len(ids), 500):
        query = (
            sa.select(*columns)
            .where(m.c.backtest_id.in_(ids[begin : begin + 500]))
            .order_by(m.c.backtest_id, m.c.method)
        )
        for row in connection.execute(query):
            found[row.backtest_id][row.method] = BacktestMethod(
                method=row.method,
                summary=json.loads(row.summary),
                years=json.loads(row.years),
                series=json.loads(row.series) if series else {},
            )
    return found


def _record(row: sa.Row[Any], methods: Mapping[str, BacktestMethod]) -> BacktestRecord:
    return BacktestRecord(
        backtest_id=row.backtest_id,
        created_at=row.created_at,
        prices_file=row.prices_file,
        prices_digest=row.prices_digest,
        model_id=row.model_id,
        start=row.start,
        end=row.end,
        inputs=json.loads(row.inputs),
        digest=row.digest,
        methods=dict(methods),
    )


def backtest(connection: sa.Connection, *, backtest_id: str) -> BacktestRecord:
    """One backtest, whole: each method with its summary, years and series."""
    b = t.backtests
    row = connection.execute(sa.select(b).where(b.c.backtest_id == backtest_id)).first()
    if row is None:
        raise NotFoundError(f"no backtest {backtest_id!r}")
    return _record(row, _methods(connection, [backtest_id], series=True)[backtest_id])


def backtests(connection: sa.Connection, *, limit: int = 50) -> list[BacktestRecord]:
    """The backtests, the newest first; at most ``limit`` (0: all).

    Light, for a list: each method has its summary and years but not its series (``{}``,
    the bulk of a backtest) — :func:`backtest` reads one whole."""
    if limit < 0:
        raise ValidationError(f"a limit is 0 (all) or more, not {limit}")
    b = t.backtests
    query = sa.select(b).order_by(b.c.created_at.desc(), b.c.backtest_id.desc())
    if limit:
        query = query.limit(limit)
    rows = connection.execute(query).all()
    methods = _methods(connection, [row.backtest_id for row in rows], series=False)
    return [_record(row, methods[row.backtest_id]) for row in rows]
