"""The demo firm end to end through execution: a firm-wide run's proposals approved by a
portfolio manager and released by operations, then ``poise execute`` — against
``poise broker`` started as its own process, and against QuickFIX's executor — until
every order is done. Then, from the store alone:

* every released trade is crossed or allocated in full, to the share;
* each block's allocations add up to its fills exactly, shares and cash to the cent;
* every account's cash is its shares at the block's fills' prices, to the cent;
* every proposal is executed.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.integration.quickfix import SENDER, executor
from tests.processes import finish, free_port, start_poise

from poise.domain.approvals import Act
from poise.domain.money import cents
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.workflow.approvals import act, policy_of
from poise.workflow.fanout import Inline
from poise.workflow.run import Selection, rebalance_run

pytestmark = pytest.mark.slow

AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)
SOON = datetime(2022, 12, 29, 1, 0, tzinfo=UTC)


def released_demo(demo_firm: sa.Engine, folder: Path) -> str:
    """A copy of the demo firm with a run's proposals approved and released; its URL."""
    source = demo_firm.url.database
    assert source is not None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "poise.db"
    with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    report = rebalance_run(engine, as_of=AS_OF, selection=Selection(all=True), fanout=Inline())
    assert report.trades > 0
    with engine.begin() as connection:
        pam = repo.add_user(connection, username="pam", role=Role.PORTFOLIO_MANAGER)
        pat = repo.add_user(connection, username="pat", role=Role.PORTFOLIO_MANAGER)
        olu = repo.add_user(connection, username="olu", role=Role.OPERATIONS)
        units = [
            (row.proposal_id, row.status)
            for row in connection.execute(
                sa.select(t.household_proposals).where(
                    t.household_proposals.c.run_id == report.run_id
                )
            )
        ]
    policy = policy_of(Settings(_env_file=None))  # type: ignore[call-arg]
    released = 0
    for proposal_id, status in units:
        if status != "pending":
            continue
        for approver in (pam, pat):  # two above the firm's threshold
            approved = act(
                engine, proposal_id=proposal_id, what=Act.APPROVE, user=approver, policy=policy,
                at=SOON,
            )  # fmt: skip
            if approved.status.value == "approved":
                break
        outcome = act(
            engine, proposal_id=proposal_id, what=Act.RELEASE, user=olu, policy=policy, at=SOON
        )
        released += outcome.status.value == "released"
    assert released >= 5
    engine.dispose()
    return url


def check_books(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        trades = {
            (r.proposal_id, r.seq): r.quantity
            for r in connection.execute(
                sa.select(t.proposal_trades)
                .join(t.proposals, t.proposals.c.proposal_id == t.proposal_trades.c.proposal_id)
                .where(t.proposals.c.status.in_(("released", "executed")))
            )
        }
        got: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        for table in (t.cross_legs, t.allocations):
            for r in connection.execute(sa.select(table)):
                got[(r.proposal_id, r.seq)] += r.quantity
        fills: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)
        for r in connection.execute(
            sa.select(t.orders.c.block_id, t.executions.c.last_qty, t.executions.c.last_px)
            .join(t.orders, t.orders.c.cl_ord_id == t.executions.c.cl_ord_id)
            .where(t.executions.c.last_qty > 0)
        ):
            fills[r.block_id].append((r.last_qty, r.last_px))
        allocated: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)
        for r in connection.execute(sa.select(t.allocations)):
            allocated[r.block_id].append((r.quantity, r.gross))
        statuses = set(
            connection.execute(
                sa.select(t.proposals.c.status).where(
                    t.proposals.c.proposal_id.in_({p for p, _ in trades})
                )
            ).scalars()
        )
        breaks = connection.execute(sa.select(sa.func.count()).select_from(t.execution_breaks))
        assert breaks.scalar_one() == 0
    assert trades
    assert dict(got) == trades  # every trade crossed or allocated in full, to the share
    assert set(fills) == set(allocated)
    for block, filled in fills.items():
        shares = sum(q for q, _ in allocated[block])
        assert shares == sum(q for q, _ in filled)
        assert sum(g for _, g in allocated[block]) == cents(sum(q * p for q, p in filled))
    assert statuses == {"executed"}


def test_execute_when_the_demo_firm_trades_with_poise_broker_then_the_books_add_up(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    url = released_demo(demo_firm, tmp_path / "firm")
    port = free_port()
    broker = start_poise(
        "broker", "--port", str(port), "--state-dir", str(tmp_path / "broker"),
        database_url=url, cwd=tmp_path,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        run = finish(
            start_poise(
                "execute", "--as", "olu", "--wait", "120", "--json",
                database_url=url, cwd=tmp_path,
                settings={"POISE_BROKER_PORT": str(port)},
            ),
            timeout=300,
        )  # fmt: skip
        assert run.code == 0, run.stderr
    finally:
        broker.terminate()
        broker.communicate(timeout=30)
    check_books(url)


def test_execute_when_the_demo_firm_trades_with_quickfix_then_the_books_add_up(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    url = released_demo(demo_firm, tmp_path / "firm")
    port = free_port()
    routes = tmp_path / "routes.toml"
    routes.write_text(
        f'[routes.qf]\nhost = "127.0.0.1"\nport = {port}\ntarget = "{SENDER}"\nreconnect = 0.2\n'
    )
    (tmp_path / "qf").mkdir()
    with executor(tmp_path / "qf", port):
        run = finish(
            start_poise(
                "execute", "--as", "olu", "--wait", "120", "--json",
                database_url=url, cwd=tmp_path, settings={"POISE_ROUTES_FILE": str(routes)},
            ),
            timeout=300,
        )  # fmt: skip
    assert run.code == 0, run.stderr
    check_books(url)
