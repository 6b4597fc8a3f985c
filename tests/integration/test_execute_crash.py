"""``poise execute`` killed with SIGKILL at random points and started again, against
QuickFIX's executor over TCP: every order is filled exactly once — as the executor's
own store of what it sent says — no ClOrdID is sent twice as a new order, and the
sequence numbers continue on both sides (the executor never logs a reset).

A firm of 120 securities, each bought by two accounts that do not cross: 120 block
orders. Each seed kills the command up to three times, at a random moment between its
start and its probable end, then lets it finish.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.integration.quickfix import SENDER, executor
from tests.processes import finish, free_port, start_poise

from poise.domain.users import Role
from poise.optimize.trades import Proposal, Side, Trade, TradeReason
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

pytestmark = pytest.mark.slow

MADE = datetime(2022, 12, 28, 15, 0, tzinfo=UTC)
SECURITIES = 120
SEEDS = range(3) if os.environ.get("CI") else range(20)
ZERO = Decimal(0)


def many_orders(engine: sa.Engine) -> None:
    """Two accounts buying each of ``SECURITIES`` securities, released; an operations
    user, olu."""
    securities = [f"S{n:03d}" for n in range(SECURITIES)]
    accounts = [f"A{n:03d}" for n in range(2 * SECURITIES)]
    with engine.begin() as connection:
        connection.execute(sa.insert(t.households).values(household_id="H1", name="H1"))
        repo.add_user(connection, username="olu", role=Role.OPERATIONS)
        connection.execute(
            sa.insert(t.securities),
            [
                {"security_id": s, "symbol": s, "name": s, "kind": "stock", "asset_class": "equity",
                 "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
                for s in securities
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.accounts),
            [
                {"account_id": a, "household_id": "H1", "registration": "taxable",
                 "cross_consent": False, "custodian": "Schwab", "cash": Decimal(100_000),
                 "reserve_amount": ZERO, "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO,
                 "state_rate": ZERO, "harvest": False}
                for a in accounts
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.prices),
            [{"security_id": s, "as_of": MADE, "source": "close", "price": Decimal(25)}
             for s in securities],
        )  # fmt: skip
        ids = []
        for n, account in enumerate(accounts):
            trade = Trade(
                securities[n % SECURITIES],
                Side.BUY,
                Decimal(10 + n),
                Decimal(25),
                TradeReason.DRIFT,
            )
            made = Proposal(account, "bands", (trade,), *(ZERO,) * 8)
            ids.append(
                repo.save_proposal(
                    connection, proposal=made, as_of=MADE, created_at=MADE
                ).proposal_id
            )
        connection.execute(
            sa.update(t.proposals)
            .where(t.proposals.c.proposal_id.in_(ids))
            .values(status="released")
        )


def sent_fills(store: Path) -> Counter[str]:
    """Fills (ExecType F) the executor sent, by ClOrdID, read from its own message store."""
    body = (store / f"FIX.4.4-{SENDER}-POISE.body").read_bytes()
    fills: Counter[str] = Counter()
    for message in body.split(b"8=FIX.4.4\x01")[1:]:
        fields = dict(f.split(b"=", 1) for f in message.split(b"\x01") if b"=" in f)
        if fields.get(b"35") == b"8" and fields.get(b"150") == b"F":
            fills[fields[b"11"].decode()] += 1
    return fills


def phase(engine: sa.Engine) -> tuple[int, int]:
    """Where a killed run had got to: orders sent, fills booked."""
    with engine.connect() as connection:
        sent = connection.execute(
            sa.select(sa.func.count()).where(t.outbox.c.sent_seq.is_not(None))
        ).scalar_one()
        booked = connection.execute(
            sa.select(sa.func.count()).where(t.executions.c.exec_type == "F")
        ).scalar_one()
    return int(sent), int(booked)


def until_sent(engine: sa.Engine, process: subprocess.Popen[str]) -> None:
    """Until the run has marked an order sent (or ended, or 30 s have passed)."""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if phase(engine)[0]:
            return
        time.sleep(0.01)


@pytest.mark.parametrize("seed", SEEDS)
def test_execute_when_killed_at_random_then_every_order_fills_exactly_once(
    tmp_path: Path, seed: int
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    many_orders(engine)
    port = free_port()
    routes = tmp_path / "routes.toml"
    routes.write_text(
        f'[routes.qf]\nhost = "127.0.0.1"\nport = {port}\ntarget = "{SENDER}"\nreconnect = 0.2\n'
    )
    settings = {"POISE_ROUTES_FILE": str(routes)}
    rng = random.Random(seed)
    kills = 0
    phases: list[tuple[int, int]] = []
    (tmp_path / "qf").mkdir()
    with executor(tmp_path / "qf", port):
        for attempt in range(4):
            process = start_poise(
                "execute", "--as", "olu", "--wait", "60", "--json",
                database_url=url, cwd=tmp_path, settings=settings,
            )  # fmt: skip
            if attempt < 3:
                if attempt == 0:  # once the orders have gone: mid-booking, or just after
                    until_sent(engine, process)
                    time.sleep(rng.uniform(0.0, 0.2))
                else:  # anywhere: starting, planning, sending, booking
                    time.sleep(rng.uniform(0.4, 1.6))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    kills += 1
                process.communicate(timeout=60)
                phases.append(phase(engine))
                continue
            done = finish(process, timeout=120)
            assert done.code == 0, done.stderr
    print(f"seed {seed}: {kills} kills at (sent, filled) {phases}")
    assert kills >= 1
    assert phases[0][0] > 0  # the first kill came after the orders had gone
    with engine.connect() as connection:
        blocks = connection.execute(sa.select(t.block_orders)).all()
        orders = connection.execute(sa.select(t.orders)).all()
        fills = Counter(
            connection.execute(
                sa.select(t.executions.c.cl_ord_id).where(t.executions.c.exec_type == "F")
            ).scalars()
        )
        allocated = connection.execute(
            sa.select(sa.func.sum(t.allocations.c.quantity))
        ).scalar_one()
        statuses = set(connection.execute(sa.select(t.proposals.c.status)).scalars())
    assert len(blocks) == SECURITIES
    assert {b.status for b in blocks} == {"filled"}
    assert len(orders) == SECURITIES  # one order a block: nothing decided twice
    assert set(fills.values()) == {1}  # each booked once
    assert sent_fills(tmp_path / "qf" / "store") == Counter({o.cl_ord_id: 1 for o in orders})
    assert allocated == sum(Decimal(10 + n) for n in range(2 * SECURITIES))
    assert statuses == {"executed"}
    with engine.connect() as connection:
        ours = list(connection.execute(sa.select(t.fix_messages.c.seq)).scalars())
    assert sorted(ours) == list(range(1, len(ours) + 1))  # one run of numbers: never reset
    theirs = (tmp_path / "qf" / "store" / f"FIX.4.4-{SENDER}-POISE.seqnums").read_text()
    assert int(theirs.split(":")[1]) > len(ours)  # it heard them all, and our logons
