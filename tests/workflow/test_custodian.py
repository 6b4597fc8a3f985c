"""Custodian reconciliation with breaks seeded: a fill the custodian has and the books
have not booked, a split the books do not know, a cash difference — each holds its
account and names its cause; booking the fill clears its breaks, and a person resolving
the rest with a reason lets the account trade again."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from poise.audit.ledger import entries
from poise.reconcile.positions import BreakKind
from poise.store import repo
from poise.store import tables as t
from poise.workflow.books import book_fills
from poise.workflow.custodian import reconcile_custodian, resolve_break

DAY = date(2026, 12, 4)
AT = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
Z = Decimal(0)


def firm(engine: sa.Engine) -> None:
    """A1 holds 100 S1 and 50 S2 with 10,000 cash, and was allocated 10 S1 at 50 that the
    books have not booked; A2 holds 5,000 cash. The custodian's snapshot of 4 December:
    A1 110 S1, 100 S2 (a 2-for-1 split), cash 9,500; A2 cash 5,100."""
    with engine.begin() as connection:
        connection.execute(sa.insert(t.households), {"household_id": "H1", "name": "H1"})
        connection.execute(sa.insert(t.securities), [
            {"security_id": s, "symbol": s, "name": s, "kind": "etf", "asset_class": "equity",
             "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
            for s in ("S1", "S2")
        ])  # fmt: skip
        connection.execute(sa.insert(t.accounts), [
            {"account_id": a, "household_id": "H1", "registration": "taxable",
             "custodian": "Schwab", "cash": cash, "reserve_amount": Z, "reserve_pct": Z,
             "st_rate": Z, "lt_rate": Z, "state_rate": Z, "harvest": False}
            for a, cash in (("A1", Decimal(10_000)), ("A2", Decimal(5_000)))
        ])  # fmt: skip
        connection.execute(sa.insert(t.lots), [
            {"account_id": "A1", "lot_id": lot, "security_id": s, "quantity": q,
             "cost_basis": q * 30, "acquired": date(2024, 1, 2), "disallowed_loss": Z}
            for lot, s, q in (("L1", "S1", Decimal(100)), ("L2", "S2", Decimal(50)))
        ])  # fmt: skip
        connection.execute(sa.insert(t.prices), [
            {"security_id": s, "as_of": AT, "source": "close", "price": p}
            for s, p in (("S1", Decimal(50)), ("S2", Decimal(20)))
        ])  # fmt: skip
        batch = {"batch_id": "X1", "created_at": AT, "created_by": "olu", "policy": "{}"}
        connection.execute(sa.insert(t.execution_batches), batch)
        connection.execute(sa.insert(t.block_orders), {
            "block_id": "B1", "batch_id": "X1", "route": "sim", "security_id": "S1",
            "side": "buy", "quantity": Decimal(10), "ord_type": "limit",
            "limit_price": Decimal(51), "reference": Decimal(50), "status": "filled",
            "filled": Decimal(10), "allocated_at": AT})  # fmt: skip
        connection.execute(sa.insert(t.allocations), {
            "block_id": "B1", "proposal_id": "P1", "seq": 1, "account_id": "A1", "side": "buy",
            "quantity": Decimal(10), "price": Decimal(50), "gross": Decimal(500),
            "commission": Z, "net": Decimal(500), "lots": "[]", "at": AT})  # fmt: skip
        connection.execute(sa.insert(t.positions), [
            {"account_id": "A1", "as_of": DAY, "security_id": s, "quantity": q}
            for s, q in (("S1", Decimal(110)), ("S2", Decimal(100)))
        ])  # fmt: skip
        connection.execute(sa.insert(t.custodian_cash), [
            {"account_id": "A1", "as_of": DAY, "cash": Decimal(9_500),
             "trade_date_cash": Decimal(9_500)},
            {"account_id": "A2", "as_of": DAY, "cash": Decimal(5_100), "trade_date_cash": None},
        ])  # fmt: skip


def held(engine: sa.Engine) -> dict[str, list[str]]:
    with engine.connect() as connection:
        return repo.open_breaks(connection)


def test_reconcile_when_breaks_are_seeded_then_each_holds_its_account_with_its_cause(
    engine: sa.Engine,
) -> None:
    firm(engine)

    done = reconcile_custodian(engine, at=AT)

    found = {(b.account_id, b.kind, b.security_id): b for b in done.breaks}
    assert set(found) == {
        ("A1", BreakKind.QUANTITY, "S1"), ("A1", BreakKind.QUANTITY, "S2"),
        ("A1", BreakKind.CASH, None), ("A2", BreakKind.CASH, None),
    }  # fmt: skip
    assert found[("A1", BreakKind.QUANTITY, "S1")].cause.startswith("an unbooked fill: fill-B1")
    assert found[("A1", BreakKind.CASH, None)].cause.startswith("an unbooked fill")
    assert found[("A1", BreakKind.QUANTITY, "S2")].cause == (
        "a corporate action the books do not know: a 2-for-1 split"
    )
    assert found[("A2", BreakKind.CASH, None)].cause == (
        "a deposit, withdrawal, fee or dividend the books do not have"
    )
    assert (done.opened, done.cleared) == (4, 0)
    assert sorted(held(engine)) == ["A1", "A2"]  # the monitor's hold: not traded


def test_reconcile_when_the_fill_is_booked_and_the_rest_resolved_then_the_holds_clear(
    engine: sa.Engine,
) -> None:
    firm(engine)
    reconcile_custodian(engine, at=AT)
    book_fills(engine, at=AT)

    again = reconcile_custodian(engine, at=AT)

    assert {(b.account_id, b.kind.value, b.security_id) for b in again.breaks} == {
        ("A1", "quantity", "S2"), ("A2", "cash", None),
    }  # fmt: skip
    assert (again.opened, again.cleared) == (0, 2)  # the fill's two breaks cleared
    why = "the deposit of 3 December is on its way from the custodian"
    resolve_break(engine, account_id="A2", break_id=f"cash:cash:{DAY}", actor="olu",
                  reason=why, at=AT)  # fmt: skip
    assert sorted(held(engine)) == ["A1"]
    resolve_break(engine, account_id="A1", break_id=f"quantity:S2:{DAY}", actor="olu",
                  reason="the 2-for-1 split of S2, booked by hand", at=AT)  # fmt: skip
    assert held(engine) == {}
    with engine.connect() as connection:
        actions = [e.action for e in entries(connection, action="books.break.*")]
    assert actions.count("books.break.open") == 4
    assert actions.count("books.break.clear") == 2
    assert actions.count("books.break.resolve") == 2
