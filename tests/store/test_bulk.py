"""The bulk upsert: counts, exactness, and the index rebuild of large loads."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
import sqlalchemy as sa

from poise.store import bulk
from poise.store import tables as t


def prices(n: int, price: str = "10.5") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "security_id": [f"S{i:05d}" for i in range(n)],
            "as_of": [date(2022, 12, 28)] * n,
            "source": ["close"] * n,
            "price": [price] * n,
        }
    ).with_columns(pl.col("as_of").cast(pl.Datetime("us", "UTC")))


def upsert_prices(engine: sa.Engine, frame: pl.DataFrame) -> bulk.Counts:
    with engine.begin() as connection:
        return bulk.upsert(
            connection, table=t.prices, rows=frame, key=("security_id", "as_of", "source")
        )


def test_upsert_when_rows_are_new_changed_or_equal_then_each_is_counted(
    engine: sa.Engine,
) -> None:
    assert upsert_prices(engine, prices(10)) == bulk.Counts(inserted=10)
    assert upsert_prices(engine, prices(10)) == bulk.Counts(unchanged=10)
    changed = prices(12).with_columns(
        pl.when(pl.col("security_id") == "S00003")
        .then(pl.lit("11"))
        .otherwise("price")
        .alias("price")
    )
    assert upsert_prices(engine, changed) == bulk.Counts(inserted=2, updated=1, unchanged=9)


def test_upsert_when_a_large_load_rebuilds_the_indexes_then_keys_are_still_enforced(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "REBUILD_AT", 5)
    assert upsert_prices(engine, prices(50)) == bulk.Counts(inserted=50)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("prices")["constrained_columns"] == [
        "security_id",
        "as_of",
        "source",
    ]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO prices (security_id, as_of, source, price) "
                "SELECT security_id, as_of, source, price FROM prices LIMIT 1"
            )
        )
    assert upsert_prices(engine, prices(60)) == bulk.Counts(inserted=10, unchanged=50)
