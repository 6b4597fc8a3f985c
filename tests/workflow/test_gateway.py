"""The gateway against the simulated broker over TCP, on SQLite and PostgreSQL: a
partial fill then a cancel, a cancel/replace, a reject, a line dropped mid-session
and recovered by resend, and the kill switch — every open order cancelled, nothing
new sent.

The firm is tests/workflow/execution_firm.py with crossing off: blocks S1 sell 100
(A1), S1 buy 110 (B1 60, C1 50), S2 buy 30 (A2), S2 sell 10 (D1); S1 at 50, S2 at 100,
limits 2% through the price, so every order is marketable.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.workflow.execution_firm import MADE, firm

from poise.audit.ledger import entries
from poise.bus.events import Event
from poise.bus.inprocess import InProcessBus
from poise.domain.errors import ConflictError
from poise.execute.broker import Behaviour, BrokerServer
from poise.execute.crossing import CrossPolicy
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.store import FileStore
from poise.execute.routes import Route
from poise.settings import Settings
from poise.store import tables as t
from poise.workflow.execute import Policy, plan_batch, policy_of
from poise.workflow.gateway import Gateway, halt, halted, replace_order, resume

PRICES = {"S1": Decimal(50), "S2": Decimal(100)}
WAIT = 20.0


def plan(engine: sa.Engine, route: Route) -> None:
    base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    policy = Policy(crossing=CrossPolicy(enabled=False), blocks=base.blocks, limits=base.limits,
                    routes=(route,))  # fmt: skip
    plan_batch(engine, policy=policy, actor="olu", at=MADE)


def with_broker(
    engine: sa.Engine,
    behaviour: Behaviour,
    steps: Callable[[Gateway, BrokerServer], Awaitable[None]],
    bus: InProcessBus | None = None,
) -> Gateway:
    """The broker started, the batch planned for its port, the gateway logged on, then
    ``steps``; the gateway (what it did) after both have stopped."""

    async def main() -> Gateway:
        config = SessionConfig(sender_comp_id="BROKER", target_comp_id="POISE",
                               role=Role.ACCEPTOR, logout_timeout=1)  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            store = FileStore(Path(folder), config.key)
            server = BrokerServer(config, store, PRICES.get, behaviour)
            port = await server.start()
            route = Route(name="sim", host="127.0.0.1", port=port, reconnect=0.2)
            plan(engine, route)
            gateway = Gateway(engine, route, bus=bus)
            gateway.initiator.start()
            try:
                await gateway.session.wait_logged_on(timeout=WAIT)
                await steps(gateway, server)
            finally:
                await gateway.initiator.stop("done")
                await server.stop()
                store.close()
            return gateway

    return asyncio.run(main())


async def until(check: Callable[[], bool], gateway: Gateway) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not reached in {WAIT} s; orders: {statuses(gateway.engine)}")


def statuses(engine: sa.Engine) -> dict[str, tuple[str, str, Decimal]]:
    """Each order's kind, status and filled shares, by ClOrdID."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.orders)).all()
    return {r.cl_ord_id: (r.kind, r.status, r.filled) for r in rows}


def allocations(engine: sa.Engine) -> dict[str, Decimal]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.allocations)).all()
    return {r.account_id: r.quantity for r in rows}


def test_gateway_when_every_order_fills_then_accounts_get_their_trades_exactly(
    engine: sa.Engine,
) -> None:
    ids = firm(engine)

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        await gateway.send_outbox()
        await until(lambda: gateway.working() == 0, gateway)

    done = with_broker(engine, Behaviour(), steps)
    assert (done.done.orders, done.done.breaks) == (4, 0)
    assert allocations(engine) == {"A1": 100, "A2": 30, "B1": 60, "C1": 50, "D1": 10}
    with engine.connect() as connection:
        cash = {r.account_id: r.gross for r in connection.execute(sa.select(t.allocations))}
        marked = connection.execute(sa.select(t.proposals.c.proposal_id, t.proposals.c.status))
        executed = {r.proposal_id: r.status for r in marked}
    # the broker fills at its price: S1 50, S2 100
    assert cash == {"A1": Decimal("5000.00"), "A2": Decimal("3000.00"), "B1": Decimal("3000.00"),
                    "C1": Decimal("2500.00"), "D1": Decimal("1000.00")}  # fmt: skip
    assert executed == dict.fromkeys(ids, "executed")


def test_gateway_when_partly_filled_then_cancelled_then_the_fill_is_allocated_pro_rata(
    engine: sa.Engine,
) -> None:
    firm(engine)

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        await gateway.send_outbox()
        await until(lambda: all(s == "partial" for _, s, _ in statuses(engine).values()), gateway)
        cancels = halt(engine, actor="olu", reason="end of day")
        assert len(cancels) == 4
        await gateway.send_outbox()
        await until(lambda: gateway.working() == 0, gateway)

    with_broker(engine, Behaviour(partial=Decimal("0.5"), rest_delay=60), steps)
    orders = statuses(engine)
    news = {k: v for k, v in orders.items() if v[0] == "new"}
    assert {s for _, s, _ in news.values()} == {"cancelled"}
    assert sorted(f for _, _, f in news.values()) == [5, 15, 50, 55]  # half of 10, 30, 100, 110
    # the S1 buy block filled 55 of 110: B1 60 and C1 50 get half each
    assert allocations(engine) == {"A1": 50, "A2": 15, "B1": 30, "C1": 25, "D1": 5}
    with engine.connect() as connection:
        assert halted(connection)
        actions = [e.action for e in entries(connection)]
    assert "execute.halt" in actions


def test_kill_switch_when_pulled_then_nothing_new_is_sent_until_it_is_lifted(
    engine: sa.Engine,
) -> None:
    firm(engine)

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        assert halt(engine, actor="olu", reason="a fat finger upstream") == []  # none sent yet
        assert await gateway.send_outbox() == 0
        await asyncio.sleep(0.3)
        assert server.broker.order(next(iter(statuses(engine)))) is None  # the broker saw none

    gateway = with_broker(engine, Behaviour(), steps)
    assert gateway.done.orders == 0
    assert {s for _, s, _ in statuses(engine).values()} == {"cancelled"}  # withdrawn
    resume(engine, actor="olu", reason="checked")
    with pytest.raises(ConflictError, match="not pulled"):
        resume(engine, actor="olu", reason="again")


def test_gateway_when_an_order_is_replaced_then_the_replacement_fills_and_the_first_is_replaced(
    engine: sa.Engine,
) -> None:
    firm(engine)
    replacement: list[str] = []

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        await gateway.send_outbox()
        await until(lambda: all(s == "partial" for _, s, _ in statuses(engine).values()), gateway)
        s1_buy = next(
            k
            for k, (_, _, f) in statuses(engine).items()
            if f == 55  # half of 110
        )
        with pytest.raises(ConflictError, match="more than block"):
            replace_order(engine, cl_ord_id=s1_buy, quantity=Decimal(111), limit=Decimal(51),
                          actor="olu", reason="too many")  # fmt: skip
        made = replace_order(
            engine,
            cl_ord_id=s1_buy,
            quantity=Decimal(80),
            limit=Decimal(51),
            actor="olu",
            reason="take 80 only",
        )
        replacement.append(made)
        await gateway.send_outbox()
        await until(lambda: statuses(engine)[replacement[0]][1] == "filled", gateway)

    with_broker(engine, Behaviour(partial=Decimal("0.5"), rest_delay=60), steps)
    orders = statuses(engine)
    (first,) = [k for k, v in orders.items() if v[0] == "new" and v[1] == "replaced"]
    assert orders[replacement[0]] == ("replace", "filled", 80)
    assert orders[first][2] == 55
    # 80 of the 110 block: B1 60 → 43.6, C1 50 → 36.4; 44 and 36 by largest remainder
    got = allocations(engine)
    assert (got["B1"], got["C1"]) == (44, 36)


def test_gateway_when_the_broker_rejects_a_symbol_then_its_orders_are_rejected_and_unallocated(
    engine: sa.Engine,
) -> None:
    firm(engine)

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        await gateway.send_outbox()
        await until(lambda: gateway.working() == 0, gateway)

    with_broker(engine, Behaviour(reject_symbols=frozenset({"S2"})), steps)
    with engine.connect() as connection:
        blocks = {
            (b.security_id, b.side): b.status for b in connection.execute(sa.select(t.block_orders))
        }
    assert blocks == {("S1", "buy"): "filled", ("S1", "sell"): "filled",
                      ("S2", "buy"): "rejected", ("S2", "sell"): "rejected"}  # fmt: skip
    assert set(allocations(engine)) == {"A1", "B1", "C1"}


def test_gateway_when_the_line_drops_mid_session_then_resend_recovers_and_each_fills_once(
    engine: sa.Engine,
) -> None:
    firm(engine)

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        await gateway.send_outbox()
        await until(lambda: gateway.working() == 0, gateway)

    gateway = with_broker(engine, Behaviour(drop_after=2, fill_delay=0.05), steps)
    with engine.connect() as connection:
        fills = connection.execute(
            sa.select(t.executions.c.cl_ord_id, sa.func.count())
            .where(t.executions.c.exec_type == "F")
            .group_by(t.executions.c.cl_ord_id)
        ).all()
    assert len(fills) == 4
    assert {count for _, count in fills} == {1}
    assert allocations(engine) == {"A1": 100, "A2": 30, "B1": 60, "C1": 50, "D1": 10}
    assert gateway.done.breaks == 0


def test_gateway_when_orders_go_and_fills_come_then_each_is_an_event_on_the_bus(
    engine: sa.Engine,
) -> None:
    firm(engine)
    heard: list[Event] = []
    bus = InProcessBus()

    async def steps(gateway: Gateway, server: BrokerServer) -> None:
        async def record(event: Event) -> None:
            heard.append(event)

        listening = await bus.listen("poise.executions.>", handler=record)
        await gateway.send_outbox()
        await until(lambda: gateway.working() == 0, gateway)
        await asyncio.sleep(0.1)
        await listening.stop()

    with_broker(engine, Behaviour(), steps, bus=bus)
    kinds = sorted((e.payload["kind"], e.payload.get("exec_type", "")) for e in heard)
    assert kinds == [("report", "0")] * 4 + [("report", "F")] * 4 + [("sent", "")] * 4
    assert {e.subject for e in heard} == {"poise.executions.sim"}
