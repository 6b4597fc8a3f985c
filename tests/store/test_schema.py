"""The migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from poise.domain.errors import StoreError
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import (
    MIGRATIONS,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from poise.store.repo.fills import pending_fills


def test_upgrade_when_run_then_the_schema_matches_the_declared_tables(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), t.metadata)
    assert differences == []
    assert current_revision(engine) == head_revision()


@pytest.mark.parametrize(
    "amount",
    ["0", "0.1", "1234567.89", "-42.000001", "12345678901234567890.123456789012345678"],
)
def test_exact_when_money_is_stored_then_it_reads_back_to_the_last_digit(
    engine: sa.Engine, amount: str
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.prices).values(
                security_id="X",
                as_of=datetime(2022, 1, 3, tzinfo=UTC),
                source="",
                price=Decimal(amount),
            )
        )
        stored = connection.execute(sa.select(t.prices.c.price)).scalar_one()
    assert stored == Decimal(amount)
    assert isinstance(stored, Decimal)


def test_ensure_schema_when_the_database_is_new_then_create_builds_it_and_otherwise_refuses(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    with pytest.raises(StoreError, match="poise db upgrade"):
        ensure_schema(engine, create=False)
    ensure_schema(engine, create=True)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_head_revision_when_read_from_the_files_then_it_is_alembics_own_head() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_upgrade_to_0018_when_allocations_were_booked_then_their_marks_are_kept(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0017")
    at = datetime(2026, 12, 4, 20, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(sa.insert(t.securities).values(
            security_id="S", symbol="S", name="S", kind="etf", asset_class="equity",
            currency="USD", trade_unit="whole", trade_step=Decimal(1)))  # fmt: skip
        connection.execute(sa.insert(t.households).values(household_id="H", name="h"))
        connection.execute(sa.insert(t.execution_batches).values(
            batch_id="X", created_at=at, created_by="t", policy="{}"))  # fmt: skip
        connection.execute(sa.insert(t.block_orders).values(
            block_id="B", batch_id="X", route="r", security_id="S", side="buy",
            quantity=Decimal(2), ord_type="limit", limit_price=Decimal(1), reference=Decimal(1),
            status="filled", filled=Decimal(2), allocated_at=at))  # fmt: skip
        for seq, booked in ((1, "2026-12-05 09:00:00.000000"), (2, None)):
            connection.execute(
                sa.text(
                    "INSERT INTO allocations (block_id, proposal_id, seq, account_id, side,"
                    " quantity, price, gross, commission, net, lots, at, booked_at) VALUES"
                    " ('B', 'P', :seq, 'A', 'buy', 1, 1, 1, 0, 1, '[]', :at, :booked)"
                ),
                {"seq": seq, "at": at, "booked": booked and datetime(2026, 12, 5, 9, tzinfo=UTC)},
            )
    upgrade(engine)
    with engine.connect() as connection:
        marks = connection.execute(sa.select(t.booked_allocations)).all()
        pending = pending_fills(connection)
    assert [tuple(m) for m in marks] == [("B", "P", 1, datetime(2026, 12, 5, 9, tzinfo=UTC))]
    assert pending == {"A": 1}
    engine.dispose()
