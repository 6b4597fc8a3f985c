"""Many rows at once past SQLAlchemy's per-row work: what ``insert_rows`` stores (and
``insert_plain`` of the plain values ``plain_columns`` makes, after a trip through
``marshal``) reads back exactly as what SQLAlchemy's own insert stores, on SQLite and
PostgreSQL, for every kind of column poise keeps (exact decimals, dates, UTC times,
booleans, text, nulls); keyed deletes and exact additions likewise."""

from __future__ import annotations

import marshal
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poise.store import tables as t
from poise.store.rows import (
    add_amounts,
    among,
    delete_where,
    insert_plain,
    insert_rows,
    plain_columns,
    update_rows,
)

DECIMALS = st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False)


def _row(n: int, data: st.DataObject) -> dict[str, object]:
    zone = timezone(timedelta(hours=data.draw(st.integers(-12, 12))))
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=data.draw(
        st.integers(0, 10**14)))  # fmt: skip
    return {
        "cl_ord_id": f"O{n}",
        "block_id": data.draw(st.text("ABCxyz-_.é", min_size=1, max_size=20)),
        "route": "r",
        "kind": "new",
        "orig_cl_ord_id": data.draw(st.none() | st.just("X")),
        "quantity": data.draw(DECIMALS),
        "limit_price": data.draw(st.none() | DECIMALS),
        "status": "sent",
        "filled": Decimal(0),
        "created_at": when.astimezone(zone),
        "sent_at": data.draw(st.none() | st.just(when)),
        "text": data.draw(
            st.none() | st.text(st.characters(exclude_characters="\x00"), max_size=30)
        ),
    }


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_insert_rows_when_rows_go_in_then_they_read_back_as_sqlalchemys_insert_would_store_them(
    engine: sa.Engine, data: st.DataObject
) -> None:
    rows = [_row(n, data) for n in range(data.draw(st.integers(1, 5)))]
    theirs = [{**row, "cl_ord_id": f"S{row['cl_ord_id']}"} for row in rows]
    plain = [{**row, "cl_ord_id": f"P{row['cl_ord_id']}"} for row in rows]
    names = list(plain[0])
    with engine.begin() as connection:
        connection.execute(sa.delete(t.orders))
        insert_rows(connection, t.orders, rows)
        connection.execute(sa.insert(t.orders), theirs)
        columns = {name: [row[name] for row in plain] for name in names}
        handed = plain_columns(t.orders, columns, dialect=connection.dialect.name)
        insert_plain(connection, t.orders, names, marshal.loads(marshal.dumps(handed)))
    with engine.connect() as connection:
        read = {r.cl_ord_id: r._asdict() for r in connection.execute(sa.select(t.orders))}
    for row in rows:
        mine = read[str(row["cl_ord_id"])]
        other = read[f"S{row['cl_ord_id']}"]
        assert {**mine, "cl_ord_id": None} == {**other, "cl_ord_id": None}
        assert {**read[f"P{row['cl_ord_id']}"], "cl_ord_id": None} == {**other, "cl_ord_id": None}


def test_insert_rows_when_dates_and_booleans_go_in_then_they_read_back(engine: sa.Engine) -> None:
    lot = {
        "account_id": "A", "lot_id": "L", "security_id": "S", "quantity": Decimal("1.5"),
        "cost_basis": Decimal("10.25"), "acquired": date(2024, 2, 29), "adjusted_basis": None,
        "holding_start": None, "disallowed_loss": Decimal(0),
    }  # fmt: skip
    other = {**lot, "lot_id": "P", "holding_start": date(2023, 12, 31)}
    with engine.begin() as connection:
        insert_rows(connection, t.lots, [lot])
        columns = {name: [value] for name, value in other.items()}
        handed = plain_columns(t.lots, columns, dialect=connection.dialect.name)
        insert_plain(connection, t.lots, list(other), marshal.loads(marshal.dumps(handed)))
    with engine.connect() as connection:
        row, plain = connection.execute(sa.select(t.lots).order_by(t.lots.c.lot_id)).all()
    assert row._asdict() == lot
    assert plain._asdict() == other


def test_insert_rows_when_a_key_repeats_then_the_statement_fails(engine: sa.Engine) -> None:
    lot = {
        "account_id": "A", "lot_id": "L", "security_id": "S", "quantity": Decimal(1),
        "cost_basis": Decimal(1), "acquired": date(2024, 1, 2), "disallowed_loss": Decimal(0),
    }  # fmt: skip
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), engine.begin() as connection:
        insert_rows(connection, t.lots, [lot, lot])


def test_update_rows_when_rows_are_set_by_key_then_each_reads_back_as_its_own_update_would(
    engine: sa.Engine,
) -> None:
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    base = {
        "block_id": "B", "route": "r", "kind": "new", "orig_cl_ord_id": None,
        "quantity": Decimal(100), "limit_price": Decimal("10.5"), "status": "sent",
        "filled": Decimal(0), "created_at": at, "sent_at": at, "text": None,
    }  # fmt: skip
    orders = [
        {**base, "cl_ord_id": "O1", "broker_order_id": "X1", "acked_at": at},
        {**base, "cl_ord_id": "O2", "broker_order_id": None, "acked_at": None, "text": "kept"},
        {**base, "cl_ord_id": "O3", "broker_order_id": None, "acked_at": None},
    ]
    later = at + timedelta(seconds=5)
    changes = [
        {"cl_ord_id": "O1", "status": "filled", "filled": Decimal("100"),
         "broker_order_id": None, "text": None, "acked_at": later},
        {"cl_ord_id": "O2", "status": "partial", "filled": Decimal("12.345678"),
         "broker_order_id": "Y2", "text": None, "acked_at": later},
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.delete(t.orders))
        connection.execute(sa.insert(t.orders), orders)
        update_rows(
            connection,
            t.orders,
            changes,
            ("cl_ord_id",),
            unless_null=("broker_order_id", "text"),
            where_null=("acked_at",),
        )
    with engine.connect() as connection:
        read = {r.cl_ord_id: r for r in connection.execute(sa.select(t.orders))}
    one, two, three = read["O1"], read["O2"], read["O3"]
    assert (one.status, one.filled, one.broker_order_id, one.acked_at) == (
        "filled", Decimal(100), "X1", at)  # fmt: skip
    assert (two.status, two.filled, two.broker_order_id, two.text, two.acked_at) == (
        "partial", Decimal("12.345678"), "Y2", "kept", later)  # fmt: skip
    assert (three.status, three.broker_order_id, three.acked_at) == ("sent", None, None)


def test_among_when_keys_are_looked_up_then_the_rows_are_those_in_reads(engine: sa.Engine) -> None:
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    orders = [
        {"cl_ord_id": f"O{n}", "block_id": f"B{n % 7}", "route": "r", "kind": "new",
         "quantity": Decimal(n + 1), "status": "sent", "filled": Decimal(0), "created_at": at}
        for n in range(60)
    ]  # fmt: skip
    wanted = [f"O{n}" for n in range(0, 80, 3)] + ["O'; DROP TABLE orders; --", ""]
    o = t.orders
    with engine.begin() as connection:
        connection.execute(sa.delete(o))
        insert_rows(connection, o, orders)
        for keys in (wanted, [], ["O5"]):
            mine = connection.execute(
                sa.select(o.c.cl_ord_id).where(among(connection, o.c.cl_ord_id, keys))
            ).scalars()
            theirs = connection.execute(sa.select(o.c.cl_ord_id).where(o.c.cl_ord_id.in_(keys)))
            assert sorted(mine) == sorted(theirs.scalars())
        blocks = connection.execute(
            sa.select(sa.func.count()).where(among(connection, o.c.block_id, ["B1", "B3"]))
        ).scalar_one()
    assert blocks == sum(1 for n in range(60) if n % 7 in (1, 3))


def test_update_rows_when_only_some_rows_hold_the_value_then_only_they_change(
    engine: sa.Engine,
) -> None:
    at = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    base = {"block_id": "B", "route": "r", "kind": "new", "quantity": Decimal(1),
            "filled": Decimal(0), "created_at": at}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.delete(t.orders))
        connection.execute(
            sa.insert(t.orders),
            [{**base, "cl_ord_id": "P", "status": "pending"},
             {**base, "cl_ord_id": "F", "status": "filled"}],
        )  # fmt: skip
        update_rows(
            connection,
            t.orders,
            [{"cl_ord_id": k, "status": "sent", "sent_at": at} for k in ("P", "F")],
            ("cl_ord_id",),
            only={"status": "pending"},
        )
        read = {
            r.cl_ord_id: (r.status, r.sent_at)
            for r in connection.execute(sa.select(t.orders.c.cl_ord_id, t.orders.c.status,
                                                  t.orders.c.sent_at))
        }  # fmt: skip
    assert read == {"P": ("sent", at), "F": ("filled", None)}


def _lots(n: int) -> list[dict[str, object]]:
    return [
        {"account_id": f"A{k % 3}", "lot_id": f"L{k}", "security_id": "S",
         "quantity": Decimal(k + 1), "cost_basis": Decimal("10.01"), "acquired": date(2024, 1, 2),
         "disallowed_loss": Decimal(0)}
        for k in range(n)
    ]  # fmt: skip


def test_delete_where_when_keys_are_named_then_only_their_rows_go(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, t.lots, _lots(9))
        delete_where(
            connection, t.lots, [("A0", "L0"), ("A1", "L4"), ("A2", "L0")], ("account_id", "lot_id")
        )
    with engine.connect() as connection:
        left = set(connection.execute(sa.select(t.lots.c.account_id, t.lots.c.lot_id)).all())
    assert left == {(f"A{k % 3}", f"L{k}") for k in range(9)} - {("A0", "L0"), ("A1", "L4")}


def test_add_amounts_when_amounts_are_added_then_each_row_holds_its_exact_sum(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(t.households), [{"household_id": "H", "name": "h"}])
        connection.execute(sa.insert(t.accounts), [
            {"account_id": a, "household_id": "H", "registration": "taxable", "custodian": "c",
             "cash": Decimal("0.1"), "reserve_amount": Decimal(0), "reserve_pct": Decimal(0),
             "st_rate": Decimal(0), "lt_rate": Decimal(0), "state_rate": Decimal(0),
             "harvest": False}
            for a in ("A", "B", "C")
        ])  # fmt: skip
        amounts = {"A": Decimal("0.2"), "B": Decimal("-1234567.89"), "X": Decimal(5)}
        add_amounts(connection, t.accounts, "cash", amounts, "account_id")
    with engine.connect() as connection:
        cash = dict(connection.execute(sa.select(t.accounts.c.account_id, t.accounts.c.cash)).all())
    assert cash == {"A": Decimal("0.3"), "B": Decimal("-1234567.79"), "C": Decimal("0.1")}
