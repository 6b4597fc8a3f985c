"""The gateway against QuickFIX's executor, over TCP: released trades become orders,
the executor fills them, the fills are booked once and allocated, and the proposals
are executed — every account's shares equal its trades, its cash the fills' to the
cent. Then the line drops mid-session and the gateway logs on again, its sequence
numbers continued on both sides, and the next orders fill too.

The firm is tests/workflow/execution_firm.py (one route for both custodians here).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from tests.integration.quickfix import SENDER, executor
from tests.processes import free_port
from tests.workflow.execution_firm import MADE, firm

from poise.domain.orders import OrdType
from poise.execute.blocks import BlockPolicy
from poise.execute.routes import Route
from poise.settings import Settings
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.store.repo.execution import SessionRows
from poise.workflow.execute import Policy, plan_batch, policy_of
from poise.workflow.gateway import Gateway, run_routes


def plan(engine: sa.Engine, route: Route) -> None:
    base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    policy = Policy(crossing=base.crossing, blocks=base.blocks, limits=base.limits, routes=(route,))
    plan_batch(engine, policy=policy, actor="olu", at=MADE)


def test_execute_when_the_counterparty_is_quickfix_then_every_trade_fills_and_books_once(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    ids = firm(engine)
    port = free_port()
    route = Route(name="qf", host="127.0.0.1", port=port, target=SENDER, reconnect=0.2)
    plan(engine, route)
    with executor(tmp_path, port):
        done = asyncio.run(run_routes(engine, [route], wait=30, ack=10))
    assert done["qf"].orders == 4
    assert done["qf"].fills == 4
    assert done["qf"].breaks == 0
    with engine.connect() as connection:
        blocks = connection.execute(sa.select(t.block_orders)).all()
        allocations = connection.execute(sa.select(t.allocations)).all()
        proposals = connection.execute(sa.select(t.proposals.c.proposal_id, t.proposals.c.status))
        statuses = {row.proposal_id: row.status for row in proposals}
    assert {b.status for b in blocks} == {"filled"}
    assert {a.account_id: a.quantity for a in allocations} == {
        "A1": 40, "A2": 30, "C1": 50, "D1": 10,
    }  # fmt: skip
    for a in allocations:  # the executor fills at the limit: the cash is the limit's
        block = next(b for b in blocks if b.block_id == a.block_id)
        assert a.price == block.limit_price
        assert a.gross == a.quantity * block.limit_price
    assert set(statuses.values()) == {"executed"}
    assert set(statuses) == set(ids)
    sender, target = SessionRows(engine, "FIX.4.4-POISE-EXECUTOR").load()
    assert sender > 5  # a logon, four orders, a logout: numbers kept for the next session
    assert target > 5


async def _through_a_drop(engine: sa.Engine, route: Route) -> Gateway:
    gateway = Gateway(engine, route)
    gateway.initiator.start()
    try:
        await gateway.session.wait_logged_on(timeout=20)
        gateway.session.disconnect("the line dropped")  # no Logout: the wire is gone
        await gateway.session.wait_disconnected(timeout=20)
        await gateway.session.wait_logged_on(timeout=20)  # the initiator dials again
        await gateway.send_outbox()
        for _ in range(200):
            if gateway.working() == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await gateway.initiator.stop("done")
    return gateway


def test_gateway_when_the_line_drops_then_it_logs_on_again_and_its_orders_fill(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    firm(engine)
    port = free_port()
    route = Route(name="qf", host="127.0.0.1", port=port, target=SENDER, reconnect=0.2)
    plan(engine, route)
    with executor(tmp_path, port):
        gateway = asyncio.run(_through_a_drop(engine, route))
    assert (gateway.done.orders, gateway.done.fills, gateway.done.breaks) == (4, 4, 0)
    with engine.connect() as connection:
        assert {b.status for b in connection.execute(sa.select(t.block_orders))} == {"filled"}
    # QuickFIX's own store: one session throughout, never reset — it heard our two
    # Logons and four orders in one run of numbers (1–6), and answered in one of its own
    theirs, ours = (tmp_path / "store" / "FIX.4.4-EXECUTOR-POISE.seqnums").read_text().split(":")
    assert int(ours) >= 7
    assert int(theirs) >= 7
    assert SessionRows(engine, "FIX.4.4-POISE-EXECUTOR").load()[0] >= 7


def test_gateway_when_orders_are_never_acknowledged_then_they_are_chased_and_listed(
    tmp_path: Path,
) -> None:
    """QuickFIX's executor answers no market order (it rejects the message at the
    session level and sends no execution report): each is chased once with an
    OrderStatusRequest and listed, and stays sent — never taken for filled."""
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    firm(engine)
    port = free_port()
    route = Route(name="qf", host="127.0.0.1", port=port, target=SENDER, reconnect=0.2)
    base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    market = Policy(crossing=base.crossing, blocks=BlockPolicy(ord_type=OrdType.MARKET),
                    limits=base.limits, routes=(route,))  # fmt: skip
    plan_batch(engine, policy=market, actor="olu", at=MADE)
    with executor(tmp_path, port):
        done = asyncio.run(run_routes(engine, [route], wait=3, ack=0.5))
    with engine.connect() as connection:
        orders = connection.execute(sa.select(t.orders)).all()
    assert sorted(done["qf"].chased) == sorted(o.cl_ord_id for o in orders)
    assert {o.status for o in orders} == {"sent"}
    assert done["qf"].fills == 0
