"""Backtests in the store, on both databases: what a backtest was asked and what each
method came to read back as kept, the list is newest first and light, and a backtest
goes with its methods."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from poise.domain.errors import ConflictError, NotFoundError, ValidationError
from poise.store import repo
from poise.store import tables as t

CREATED = datetime(2026, 12, 8, 9, 30, 15, 123456, tzinfo=UTC)
PRICES_DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def method(name: str, *, after_tax: float) -> repo.BacktestMethod:
    """A three-day backtest of ``name``: $1,000,000 at the start, ``after_tax`` at the end."""
    return repo.BacktestMethod(
        method=name,
        summary={
            "annualised_pre_tax": 0.071,
            "annualised_after_tax": 0.064,
            "tax_alpha": 0.0112,
            "tracking_error": 0.0081,
            "turnover": 0.23,
            "trades": 41,
            "losses_harvested": Decimal("18250.40"),
        },
        years=[
            {
                "year": 2022,
                "tax": Decimal("1520.75"),
                "realised_short": Decimal("-18250.40"),
                "realised_long": Decimal("9400.00"),
                "deducted": Decimal("3000.00"),
                "carried_out": Decimal("5850.40"),
            }
        ],
        series={
            "days": [date(2022, 1, 3), date(2022, 1, 4), date(2022, 1, 5)],
            "pre_tax": [1_000_000.0, 1_004_210.5, after_tax + 800.0],
            "after_tax": [1_000_000.0, 1_003_900.25, after_tax],
        },
    )


def record(
    *, created_at: datetime = CREATED, methods: tuple[str, ...] = ("bands", "tax-aware")
) -> repo.BacktestRecord:
    return repo.BacktestRecord(
        backtest_id=uuid.uuid4().hex,
        created_at=created_at,
        prices_file="sp500_prices.csv.gz",
        prices_digest=PRICES_DIGEST,
        model_id="M-GROWTH",
        start=date(2022, 1, 3),
        end=date(2022, 12, 30),
        inputs={
            "model": "M-GROWTH",
            "start": date(2022, 1, 3),
            "end": date(2022, 12, 30),
            "cash": Decimal("1000000.00"),
            "methods": list(methods),
            "st_rate": Decimal("0.37"),
            "lt_rate": Decimal("0.20"),
            "rebalance_every": "month",
        },
        digest="3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
        methods={
            name: method(name, after_tax=1_050_000.0 + 10_000.0 * i)
            for i, name in enumerate(methods)
        },
    )


def fields(kept: repo.BacktestRecord) -> dict[str, Any]:
    return {name: getattr(kept, name) for name in repo.BacktestRecord.__slots__}


def save(engine: sa.Engine, kept: repo.BacktestRecord) -> None:
    with engine.execution_options(writes=True).begin() as connection:
        repo.save_backtest(connection, record=kept)


def as_json(value: Any) -> Any:
    """``value`` as it reads back from the store's JSON: money as decimal strings, dates
    ISO 8601."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def test_backtest_when_kept_then_it_reads_back_whole_with_every_method(
    engine: sa.Engine,
) -> None:
    kept = record()
    save(engine, kept)
    with engine.connect() as connection:
        found = repo.backtest(connection, backtest_id=kept.backtest_id)
    assert (found.backtest_id, found.created_at) == (kept.backtest_id, CREATED)
    assert (found.prices_file, found.prices_digest) == ("sp500_prices.csv.gz", PRICES_DIGEST)
    assert (found.model_id, found.start, found.end) == ("M-GROWTH", date(2022, 1, 3), kept.end)
    assert found.digest == kept.digest
    # Money exact as a decimal string, dates ISO 8601: enough to run it again.
    assert found.inputs["cash"] == "1000000.00"
    assert found.inputs["start"] == "2022-01-03"
    assert found.inputs == as_json(kept.inputs)
    assert list(found.methods) == ["bands", "tax-aware"]
    for name, m in found.methods.items():
        assert m.method == name
        assert m.summary == as_json(kept.methods[name].summary)
        assert m.years == as_json(kept.methods[name].years)
        assert m.series == as_json(kept.methods[name].series)
    assert found.methods["tax-aware"].series["after_tax"][-1] == 1_060_000.0
    assert found.methods["bands"].years[0]["carried_out"] == "5850.40"


def test_backtest_when_the_same_inputs_are_kept_twice_then_the_digests_compare(
    engine: sa.Engine,
) -> None:
    """Two runs of the same inputs are two backtests; their digests say whether they
    came to the same results."""
    first, second = record(), record(created_at=CREATED + timedelta(minutes=5))
    save(engine, first)
    save(engine, second)
    with engine.connect() as connection:
        a = repo.backtest(connection, backtest_id=first.backtest_id)
        b = repo.backtest(connection, backtest_id=second.backtest_id)
    assert a.backtest_id != b.backtest_id
    assert (a.inputs, a.prices_digest, a.digest) == (b.inputs, b.prices_digest, b.digest)


def test_backtests_when_listed_then_newest_first_limited_and_without_series(
    engine: sa.Engine,
) -> None:
    kept = [record(created_at=CREATED + timedelta(hours=h)) for h in (1, 0, 2)]
    for each in kept:
        save(engine, each)
    with engine.connect() as connection:
        listed = repo.backtests(connection)
        assert [b.backtest_id for b in repo.backtests(connection, limit=2)] == [
            kept[2].backtest_id,
            kept[0].backtest_id,
        ]
        assert len(repo.backtests(connection, limit=0)) == 3
        with pytest.raises(ValidationError, match="limit"):
            repo.backtests(connection, limit=-1)
    assert [b.backtest_id for b in listed] == [kept[i].backtest_id for i in (2, 0, 1)]
    for found in listed:
        assert list(found.methods) == ["bands", "tax-aware"]
        assert all(m.series == {} for m in found.methods.values())  # light: no series
        assert found.methods["tax-aware"].summary["trades"] == 41
        assert found.methods["tax-aware"].years[0]["year"] == 2022


def test_backtests_when_none_is_kept_then_the_list_is_empty(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        assert repo.backtests(connection) == []


def test_backtest_when_the_id_is_unknown_then_not_found(engine: sa.Engine) -> None:
    with engine.connect() as connection, pytest.raises(NotFoundError, match="NOPE"):
        repo.backtest(connection, backtest_id="NOPE")


def test_save_backtest_when_the_id_is_kept_already_then_a_conflict_and_the_first_stays(
    engine: sa.Engine,
) -> None:
    kept = record()
    save(engine, kept)
    again = repo.BacktestRecord(
        **{**fields(record(methods=("buy-and-hold",))), "backtest_id": kept.backtest_id}
    )
    with engine.execution_options(writes=True).begin() as connection:
        with pytest.raises(ConflictError, match=kept.backtest_id):
            repo.save_backtest(connection, record=again)
        # The caller's transaction goes on.
        connection.execute(sa.select(sa.func.count()).select_from(t.backtests)).scalar_one()
    with engine.connect() as connection:
        assert list(repo.backtest(connection, backtest_id=kept.backtest_id).methods) == [
            "bands",
            "tax-aware",
        ]


def test_save_backtest_when_the_transaction_rolls_back_then_nothing_is_kept(
    engine: sa.Engine,
) -> None:
    kept = record()
    with engine.execution_options(writes=True).connect() as connection:
        transaction = connection.begin()
        repo.save_backtest(connection, record=kept)
        transaction.rollback()
        assert repo.backtests(connection) == []


def test_delete_when_a_backtest_is_deleted_then_its_methods_go_with_it(
    engine: sa.Engine,
) -> None:
    gone, stays = record(), record()
    save(engine, gone)
    save(engine, stays)
    with engine.execution_options(writes=True).begin() as connection:
        connection.execute(
            sa.delete(t.backtests).where(t.backtests.c.backtest_id == gone.backtest_id)
        )
    with engine.connect() as connection:
        left = connection.execute(sa.select(t.backtest_methods.c.backtest_id)).scalars().all()
    assert set(left) == {stays.backtest_id}
    assert len(left) == 2


def test_record_when_built_wrong_then_it_is_refused() -> None:
    good = fields(record())
    with pytest.raises(ValidationError, match="ends on or after its start"):
        repo.BacktestRecord(**{**good, "start": date(2023, 1, 2)})
    with pytest.raises(ValidationError, match="timezone-aware"):
        repo.BacktestRecord(**{**good, "created_at": datetime(2026, 12, 8, 9, 30)})  # noqa: DTZ001
    with pytest.raises(ValidationError, match="'bands' is kept as 'tax-aware'"):
        repo.BacktestRecord(
            **{**good, "methods": {"tax-aware": method("bands", after_tax=1_000_000.0)}}
        )
