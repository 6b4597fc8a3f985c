"""Fills into the books, through the whole of execution: the firm's released proposals
crossed and sent to the simulated broker over TCP, then booked — every account ends
holding what its proposal said it would (shares exactly, cash to the cent at the fill
prices), once, however often booking runs.

The firm is tests/workflow/execution_firm.py, with the lots its sales name: A1 holds
lot L1 (100 S1, cost 4,000, bought 2020-01-02), D1 lot L9 (10 S2, cost 900).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.workflow.execution_firm import MADE, buy, firm, proposal, sell

from poise.audit.ledger import entries
from poise.domain.relief import Method
from poise.execute.broker import Behaviour, BrokerServer
from poise.execute.crossing import CrossPolicy
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.store import FileStore
from poise.execute.routes import Route
from poise.optimize.trades import Proposal
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.workflow.books import book_fills
from poise.workflow.execute import Policy, plan_batch, policy_of
from poise.workflow.gateway import Gateway
from poise.workflow.taxes import tax_year

PRICES = {"S1": Decimal(50), "S2": Decimal(100)}
LOTS = [
    {"account_id": "A1", "lot_id": "L1", "security_id": "S1", "quantity": Decimal(100),
     "cost_basis": Decimal(4000), "acquired": date(2020, 1, 2), "disallowed_loss": Decimal(0)},
    {"account_id": "D1", "lot_id": "L9", "security_id": "S2", "quantity": Decimal(10),
     "cost_basis": Decimal(900), "acquired": date(2020, 1, 2), "disallowed_loss": Decimal(0)},
]  # fmt: skip
START_CASH = Decimal(100_000)


def execute_all(engine: sa.Engine, *, crossing: bool) -> None:
    """Plan the released proposals (crossing on or off) and trade the blocks with the
    simulated broker until none is working."""

    async def main() -> None:
        config = SessionConfig(sender_comp_id="BROKER", target_comp_id="POISE",
                               role=Role.ACCEPTOR, logout_timeout=1)  # fmt: skip
        with tempfile.TemporaryDirectory() as folder:
            store = FileStore(Path(folder), config.key)
            server = BrokerServer(config, store, PRICES.get, Behaviour())
            port = await server.start()
            route = Route(name="sim", host="127.0.0.1", port=port, reconnect=0.2)
            base = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
            policy = Policy(crossing=CrossPolicy(enabled=crossing), blocks=base.blocks,
                            limits=base.limits, routes=(route,))  # fmt: skip
            plan_batch(engine, policy=policy, actor="olu", at=MADE)
            gateway = Gateway(engine, route)
            gateway.initiator.start()
            try:
                await gateway.session.wait_logged_on(timeout=20)
                await gateway.send_outbox()
                for _ in range(400):
                    if gateway.working() == 0:
                        break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("orders still working after 20 s")
            finally:
                await gateway.initiator.stop("done")
                await server.stop()
                store.close()

    asyncio.run(main())


def books(engine: sa.Engine) -> tuple[dict[str, dict[str, Decimal]], dict[str, Decimal]]:
    """Each account's shares by security, and its cash."""
    with engine.connect() as connection:
        held: dict[str, dict[str, Decimal]] = {}
        for lot in repo.lots(connection):
            mine = held.setdefault(lot.account_id, {})
            mine[lot.security_id] = mine.get(lot.security_id, Decimal(0)) + lot.quantity
        cash = dict(connection.execute(sa.select(t.accounts.c.account_id, t.accounts.c.cash)).all())
    return held, cash


def proposals_after(engine: sa.Engine) -> tuple[dict[str, dict[str, Decimal]], dict[str, Decimal]]:
    """What the proposals said each account would hold — its lots before plus its trades
    — and its cash at the fill prices (S1 50, S2 100, no commission)."""
    held = {"A1": {"S1": Decimal(100)}, "D1": {"S2": Decimal(10)}}
    cash = dict.fromkeys(("A1", "A2", "B1", "C1", "D1"), START_CASH)
    with engine.connect() as connection:
        for row in connection.execute(sa.select(t.proposal_trades, t.proposals.c.account_id).join(
            t.proposals, t.proposals.c.proposal_id == t.proposal_trades.c.proposal_id
        )):  # fmt: skip
            sign = 1 if row.side == "buy" else -1
            mine = held.setdefault(row.account_id, {})
            mine[row.security_id] = mine.get(row.security_id, Decimal(0)) + sign * row.quantity
            cash[row.account_id] -= sign * row.quantity * PRICES[row.security_id]
    after = {a: {s: q for s, q in h.items() if q} for a, h in held.items()}
    return {a: h for a, h in after.items() if h}, cash


@pytest.mark.parametrize("crossing", [False, True], ids=["to-market", "crossed"])
def test_book_fills_when_every_trade_executed_then_each_account_holds_its_proposals_after_state(
    engine: sa.Engine, crossing: bool
) -> None:
    firm(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(t.lots), LOTS)
    execute_all(engine, crossing=crossing)

    done = book_fills(engine, default_method=Method.FIFO)

    assert done.refused == ()
    assert books(engine) == proposals_after(engine)
    with engine.connect() as connection:
        gains = connection.execute(sa.select(t.realised_gains)).all()
        closed = connection.execute(sa.select(t.closed_lots)).all()
        kinds = [x.kind for x in connection.execute(sa.select(t.transactions))]
        legs = connection.execute(sa.select(t.cross_legs)).all()
        logged = list(entries(connection, action="books.fill"))
    realised: dict[tuple[str, str, str], Decimal] = {}
    for g in gains:  # a sale partly crossed is two sales of one lot
        key = (g.account_id, g.lot_id, g.term)
        realised[key] = realised.get(key, Decimal(0)) + g.proceeds - g.basis
    assert realised == {
        ("A1", "L1", "long"): Decimal(1000),  # 100 × 50 less 4,000
        ("D1", "L9", "long"): Decimal(100),  # 10 × 100 less 900
    }
    # each as it stood before the sale that emptied it: its cost a share kept
    assert sorted((c.account_id, c.lot_id, c.cost_basis / c.quantity) for c in closed) == [
        ("A1", "L1", Decimal(40)), ("D1", "L9", Decimal(90)),
    ]  # fmt: skip
    assert sorted(kinds) == ["buy"] * 3 + ["sell"] * (3 if crossing else 2)
    assert (len(legs) > 0) is crossing
    assert {e.subject for e in logged} == {"A1", "A2", "B1", "C1", "D1"}


def test_book_fills_when_run_again_then_nothing_is_booked_twice(engine: sa.Engine) -> None:
    firm(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(t.lots), LOTS)
    execute_all(engine, crossing=True)
    first = book_fills(engine)
    after = books(engine)

    again = book_fills(engine)

    assert (first.transactions, again.transactions) == (6, 0)
    assert books(engine) == after


def test_book_fills_when_a_sale_exceeds_the_books_then_it_is_refused_and_booked_once_it_fits(
    engine: sa.Engine,
) -> None:
    firm(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(t.lots), LOTS[1:])  # A1's lot L1 is missing
    execute_all(engine, crossing=False)

    done = book_fills(engine)

    ((refused),) = done.refused
    assert refused.account_id == "A1"
    assert "only 0 are held" in refused.reason
    with engine.begin() as connection:
        connection.execute(sa.insert(t.lots), LOTS[:1])
    later = book_fills(engine)
    assert (later.transactions, later.refused) == (1, ())
    assert books(engine) == proposals_after(engine)


def release(engine: sa.Engine, *proposals: Proposal) -> None:
    with engine.begin() as connection:
        ids = [
            repo.save_proposal(connection, proposal=p, as_of=MADE, created_at=MADE).proposal_id
            for p in proposals
        ]
        connection.execute(
            sa.update(t.proposals)
            .where(t.proposals.c.proposal_id.in_(ids))
            .values(status="released")
        )


def test_book_fills_when_a_loss_sale_is_bought_back_then_the_new_lot_carries_the_loss(
    engine: sa.Engine,
) -> None:
    # A1 sells lot L1 (100 S1 that cost 6,000) at 50: a loss of 1,000; then buys 100 S1
    # back the same day. Publication 550: the loss is disallowed and added to the new
    # shares' basis, and their holding period starts when L1's did.
    firm(engine, proposals=(proposal("A1", sell("S1", "100", "50", "L1", "60")),))
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.lots),
            [{**LOTS[0], "cost_basis": Decimal(6000), "acquired": date(2025, 6, 2)}],
        )
    execute_all(engine, crossing=False)
    book_fills(engine)
    release(engine, proposal("A1", buy("S1", "100", "50")))
    execute_all(engine, crossing=False)

    done = book_fills(engine)

    assert done.washed > 0
    with engine.connect() as connection:
        (bought,) = repo.lots(connection, account_ids=["A1"])
        (loss,) = connection.execute(sa.select(t.realised_gains)).all()
    assert loss.proceeds - loss.basis == Decimal(-1000)
    assert (bought.cost_basis, bought.adjusted_basis, bought.disallowed_loss) == (
        Decimal(5000), Decimal(6000), Decimal(1000),
    )  # fmt: skip
    assert bought.holding_start == date(2025, 6, 2)


def test_tax_year_when_a_loss_sale_is_bought_back_then_form_8949_shows_code_w(
    engine: sa.Engine,
) -> None:
    # the same loop as above: the 1,000 loss disallowed, entered back in column (g)
    firm(engine, proposals=(proposal("A1", sell("S1", "100", "50", "L1", "60")),))
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.lots),
            [{**LOTS[0], "cost_basis": Decimal(6000), "acquired": date(2025, 6, 2)}],
        )
    execute_all(engine, crossing=False)
    book_fills(engine)
    release(engine, proposal("A1", buy("S1", "100", "50")))
    execute_all(engine, crossing=False)
    book_fills(engine)
    with engine.connect() as connection:
        (sale,) = connection.execute(sa.select(t.realised_gains)).all()
        year = tax_year(connection, household_id="H1", year=sale.sold.year)

    (row,) = year.rows
    assert (row.lot_id, row.proceeds, row.basis) == ("L1", Decimal(5000), Decimal(6000))
    assert (row.code, row.adjustment, row.gain) == ("W", Decimal(1000), Decimal(0))
    assert year.gains.disallowed == Decimal(1000)
    assert [(line.line, line.gain) for line in year.lines] == [("8b", Decimal(0))]  # long term
