"""Planning a batch in the store, on SQLite and PostgreSQL: released proposals crossed
where they may be and blocked per security, side and route, each block with its
statement and an order in the outbox, all kept in one transaction with the ledger's
entries — and planned once.

The firm is tests/workflow/execution_firm.py: A1 (H1) sells 100 S1; B1 (H2) buys 60 and
C1 (H3, no consent, at Fidelity) 50; A2 (H1's IRA) buys 30 S2 and D1 (a 401k) sells 10.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from tests.workflow.execution_firm import MADE, firm

from poise.audit.ledger import entries
from poise.domain.approvals import Policy as ApprovalPolicy
from poise.domain.errors import ConflictError
from poise.domain.orders import Side
from poise.execute.book import OrderState, Report
from poise.execute.routes import Route
from poise.execute.safety import Limits
from poise.settings import Settings
from poise.store import tables as t
from poise.workflow.execute import Policy, book_report, finish_executed, plan_batch, policy_of

APPROVALS = ApprovalPolicy(two_approvers_above=Decimal(1_000_000), expire_after=timedelta(days=3),
                           expire_on_move=Decimal("0.05"))  # fmt: skip

ROUTES = (
    Route(name="schwab", host="127.0.0.1", port=9878, custodians=frozenset({"Schwab"})),
    Route(name="fidelity", host="127.0.0.1", port=9879, custodians=frozenset({"Fidelity"})),
)


def policy(**changes: object) -> Policy:
    base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    values = {"crossing": base.crossing, "blocks": base.blocks, "limits": base.limits,
              "routes": ROUTES, **changes}  # fmt: skip
    return Policy(**values)  # type: ignore[arg-type]


def test_plan_when_opposite_consenting_trades_then_they_cross_and_only_the_rest_goes_out(
    engine: sa.Engine,
) -> None:
    a1, a2, b1, c1, d1 = firm(engine)
    batch = plan_batch(engine, policy=policy(), actor="olu", at=MADE)
    assert batch.batch_id is not None
    (crossed,) = batch.crosses
    assert (crossed.security_id, crossed.quantity, crossed.price) == ("S1", 60, 50)
    assert sorted((leg.account_id, leg.side.value, leg.quantity) for leg in crossed.legs) == [
        ("A1", "sell", 60),
        ("B1", "buy", 60),
    ]
    blocks = {(b.security_id, b.side, b.route): b for b in batch.blocks}
    assert sorted(blocks) == [
        ("S1", Side.BUY, "fidelity"),
        ("S1", Side.SELL, "schwab"),
        ("S2", Side.BUY, "schwab"),
        ("S2", Side.SELL, "schwab"),
    ]
    sold = blocks[("S1", Side.SELL, "schwab")]
    assert [(s.account_id, s.quantity, [(x.lot_id, x.quantity) for x in s.lots])
            for s in sold.statement] == [("A1", 40, [("L1", 40)])]  # fmt: skip
    assert blocks[("S1", Side.BUY, "fidelity")].statement[0].account_id == "C1"
    assert sold.limit == Decimal("49.00")  # 2% under the reference of 50
    with engine.connect() as connection:
        outbox = connection.execute(sa.select(t.outbox).order_by(t.outbox.c.outbox_id)).all()
        orders = connection.execute(sa.select(t.orders)).all()
        planned = set(connection.execute(sa.select(t.batch_proposals.c.proposal_id)).scalars())
        actions = [(e.action, e.actor) for e in entries(connection)]
    assert [row.cl_ord_id for row in outbox] == list(batch.cl_ord_ids)
    assert all(row.sent_seq is None for row in outbox)
    assert {o.status for o in orders} == {"pending"}
    assert planned == {a1, a2, b1, c1, d1}
    assert actions == [("execute.cross", "olu")] + [("execute.block", "olu")] * 4


def test_plan_when_run_again_then_nothing_is_planned_twice(engine: sa.Engine) -> None:
    firm(engine)
    first = plan_batch(engine, policy=policy(), actor="olu", at=MADE)
    again = plan_batch(engine, policy=policy(), actor="olu", at=MADE)
    assert first.batch_id is not None
    assert again.batch_id is None
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 4


def test_plan_when_crossing_is_off_then_every_trade_goes_to_market(engine: sa.Engine) -> None:
    firm(engine)
    base = policy()
    off = policy(crossing=type(base.crossing)(enabled=False))
    batch = plan_batch(engine, policy=off, actor="olu", at=MADE)
    assert batch.crosses == ()
    assert sum(b.quantity for b in batch.blocks if b.security_id == "S1") == 210


def test_plan_when_past_the_run_limit_then_refused_whole_and_nothing_kept(
    engine: sa.Engine,
) -> None:
    firm(engine)
    tight = policy(limits=Limits(max_orders=3))
    with pytest.raises(ConflictError, match="refused, nothing sent"):
        plan_batch(engine, policy=tight, actor="olu", at=MADE)
    with engine.connect() as connection:
        for table in (t.execution_batches, t.orders, t.outbox, t.crosses, t.audit_entries):
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def fill(cl_ord_id: str, exec_id: str, *figures: str) -> Report:
    """A fill report: ``figures`` are LastQty, LastPx, CumQty, LeavesQty."""
    last, price, cum, left = figures
    done = Decimal(left) == 0
    return Report(exec_id=exec_id, cl_ord_id=cl_ord_id, exec_type="F",
                  ord_status="2" if done else "1", last_qty=Decimal(last), last_px=Decimal(price),
                  cum_qty=Decimal(cum), leaves_qty=Decimal(left), order_id="B-1")  # fmt: skip


def test_book_when_a_block_fills_in_parts_then_it_is_allocated_once_and_the_proposal_executed(
    engine: sa.Engine,
) -> None:
    a1, _, b1, _, _ = firm(engine)
    batch = plan_batch(engine, policy=policy(), actor="olu", at=MADE)
    (sold,) = [b for b in batch.blocks if (b.security_id, b.side) == ("S1", Side.SELL)]
    order = batch.cl_ord_ids[batch.blocks.index(sold)]
    first = fill(order, "E1", "25", "49.50", "25", "15")
    assert book_report(engine, route="schwab", report=first, raw="", at=MADE).fill == 25
    assert not book_report(engine, route="schwab", report=first, raw="", at=MADE).new  # again
    last = book_report(
        engine, route="schwab", report=fill(order, "E2", "15", "49.70", "40", "0"), raw="", at=MADE
    )
    assert (last.state, last.allocated) == (OrderState.FILLED, sold.block_id)
    with engine.connect() as connection:
        (allocation,) = connection.execute(sa.select(t.allocations)).all()
    # 25 at 49.50 and 15 at 49.70: 1,237.50 + 745.50 = 1,983.00 for 40, 49.575 a share
    assert (allocation.account_id, allocation.quantity) == ("A1", 40)
    assert (allocation.price, allocation.gross) == (Decimal("49.575"), Decimal("1983.00"))
    assert json.loads(allocation.lots) == [{"lot_id": "L1", "quantity": "40"}]
    # A1: 60 crossed and 40 sold — marked executed as its block was booked; B1: its 60
    # crossed, no block to book — marked by the sweep
    assert finish_executed(engine, at=MADE) == [b1]
    assert finish_executed(engine, at=MADE) == []
    with engine.connect() as connection:
        status = connection.execute(
            sa.select(t.proposals.c.status).where(t.proposals.c.proposal_id == a1)
        ).scalar_one()
        last_three = [(e.action, e.subject) for e in entries(connection)][-3:]
    assert status == "executed"
    assert last_three == [
        ("execute.allocate", sold.block_id),
        ("proposal.execute", a1),
        ("proposal.execute", b1),
    ]


def test_book_when_a_report_names_no_order_then_a_break_is_kept_and_nothing_booked(
    engine: sa.Engine,
) -> None:
    firm(engine)
    plan_batch(engine, policy=policy(), actor="olu", at=MADE)
    stray = fill("NOT-OURS", "E9", "5", "50", "5", "0")
    booked = book_report(engine, route="schwab", report=stray, raw="8=FIX.4.4|35=8|", at=MADE)
    assert "names no order" in booked.problem
    with engine.connect() as connection:
        (kept,) = connection.execute(sa.select(t.execution_breaks)).all()
        assert connection.execute(sa.select(sa.func.sum(t.orders.c.filled))).scalar() == 0
    assert (kept.kind, kept.raw) == ("unknown_order", "8=FIX.4.4|35=8|")
