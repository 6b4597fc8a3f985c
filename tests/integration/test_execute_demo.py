"""The demo firm end to end through execution: a firm-wide run's proposals approved by a
portfolio manager and released by operations, then ``poise execute`` — against
``poise broker`` started as its own process, and against QuickFIX's executor — until
every order is done. Then, from the store alone:

* every released trade is crossed or allocated in full, to the share;
* each block's allocations add up to its fills exactly, shares and cash to the cent;
* every account's cash is its shares at the block's fills' prices, to the cent;
* every proposal is executed.

Then ``poise reconcile`` books the fills, and:

* every account holds its proposal's after-state exactly — its shares before plus its
  trades, to the share; its cash before plus what its fills moved, to the cent;
* a custodian positions file made from the broker's side — the broker's own record of
  what it filled (its message store), shared out to the accounts by the allocation
  statements as a custodian shares out an allocated block, plus the internal crosses —
  reconciles with no break.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
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


def holdings(url: str) -> tuple[dict[tuple[str, str], Decimal], dict[str, Decimal]]:
    """Each account's shares by security, and its cash, as the books hold them."""
    engine = make_engine(url)
    with engine.connect() as connection:
        shares: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for lot in repo.lots(connection):
            shares[(lot.account_id, lot.security_id)] += lot.quantity
        cash = dict(connection.execute(sa.select(t.accounts.c.account_id, t.accounts.c.cash)).all())
    engine.dispose()
    return {k: v for k, v in shares.items() if v}, cash


def broker_filled(folder: Path) -> dict[str, Decimal]:
    """What the broker says it filled, by ClOrdID: the CumQty of the last execution report
    it sent for each, read from its own message store (any file under ``folder``)."""
    filled: dict[str, Decimal] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for raw in re.findall(rb"8=FIX\.4\.4\x01.*?\x0110=\d{3}\x01", path.read_bytes(), re.S):
            fields = dict(f.split(b"=", 1) for f in raw.split(b"\x01") if b"=" in f)
            if fields.get(b"35") == b"8" and b"11" in fields and b"14" in fields:
                order = fields[b"11"].decode()
                filled[order] = max(filled.get(order, Decimal(0)), Decimal(fields[b"14"].decode()))
    return filled


def custodian_positions(
    url: str, before: dict[tuple[str, str], Decimal], filled: dict[str, Decimal]
) -> dict[tuple[str, str], Decimal]:
    """The positions a custodian would show: the shares before, each block's filled shares
    shared out by its allocation statement (pro rata, largest remainder, ties to the
    account that sorts first), and the internal crosses journalled between accounts."""
    engine = make_engine(url)
    with engine.connect() as connection:
        blocks = {r.block_id: r for r in connection.execute(sa.select(t.block_orders))}
        orders = {r.cl_ord_id: r.block_id for r in connection.execute(sa.select(t.orders))}
        lines: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for r in connection.execute(sa.select(t.statement_lines)):
            lines[r.block_id].append((r.account_id, r.quantity))
        legs = connection.execute(
            sa.select(t.cross_legs, t.crosses.c.security_id).join(
                t.crosses, t.crosses.c.cross_id == t.cross_legs.c.cross_id
            )
        ).all()
    engine.dispose()
    after = defaultdict(Decimal, before)
    done: dict[str, Decimal] = defaultdict(Decimal)
    for order, shares in filled.items():
        if order in orders:
            done[orders[order]] += shares
    for block_id, shares in done.items():
        block = blocks[block_id]
        sign = 1 if block.side == "buy" else -1
        mine = sorted(lines[block_id])
        # whole shares where every line is whole; else millionths of a share
        unit = (
            Fraction(1) if all(q == q.to_integral_value() for _, q in mine) else Fraction(1, 10**6)
        )
        exact = [Fraction(q) * Fraction(shares) / Fraction(block.quantity) / unit for _, q in mine]
        given = [int(e) for e in exact]
        order_of = sorted(range(len(mine)), key=lambda i: (-(exact[i] - given[i]), i))
        for i in order_of[: int(Fraction(shares) / unit) - sum(given)]:
            given[i] += 1
        for (account, _), n in zip(mine, given, strict=True):
            share = Fraction(n) * unit
            after[(account, block.security_id)] += (
                sign * Decimal(share.numerator) / share.denominator
            )
    for leg in legs:
        after[(leg.account_id, leg.security_id)] += leg.quantity * (1 if leg.side == "buy" else -1)
    return {k: v for k, v in after.items() if v}


def check_reconciled(
    url: str,
    before: tuple[dict[tuple[str, str], Decimal], dict[str, Decimal]],
    broker: Path,
    cwd: Path,
) -> None:
    shares_before, cash_before = before
    booked = finish(start_poise("reconcile", "--as", "olu", "--json", database_url=url, cwd=cwd),
                    timeout=300)  # fmt: skip
    assert booked.code == 0, booked.stderr
    assert json.loads(booked.stdout)["refused"] == []
    shares, cash = holdings(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        wanted = defaultdict(Decimal, shares_before)
        for r in connection.execute(
            sa.select(t.proposal_trades, t.proposals.c.account_id)
            .join(t.proposals, t.proposals.c.proposal_id == t.proposal_trades.c.proposal_id)
            .where(t.proposals.c.status == "executed")
        ):
            wanted[(r.account_id, r.security_id)] += r.quantity * (1 if r.side == "buy" else -1)
        moved: dict[str, Decimal] = defaultdict(Decimal)
        for r in connection.execute(sa.select(t.allocations)):
            moved[r.account_id] += r.net if r.side == "sell" else -r.net
        for r in connection.execute(
            sa.select(t.cross_legs, t.crosses.c.price).join(
                t.crosses, t.crosses.c.cross_id == t.cross_legs.c.cross_id
            )
        ):
            gross = cents(r.quantity * r.price)
            moved[r.account_id] += gross if r.side == "sell" else -gross
    engine.dispose()
    assert shares == {k: v for k, v in wanted.items() if v}  # the after-state, to the share
    assert cash == {a: c + moved.get(a, Decimal(0)) for a, c in cash_before.items()}
    today = datetime.now(UTC).date().isoformat()
    custodian = custodian_positions(url, shares_before, broker_filled(broker))
    assert custodian == shares  # the broker's side agrees before poise is asked
    rows = [f"{a},{today},{s},{q}" for (a, s), q in sorted(custodian.items())]
    (cwd / "positions.csv").write_text(
        "account_id,as_of,security_id,quantity\n" + "\n".join(rows) + "\n"
    )
    compared = finish(
        start_poise("reconcile", "--as", "olu", "--positions", "positions.csv", "--json",
                    database_url=url, cwd=cwd),
        timeout=300,
    )  # fmt: skip
    assert compared.code == 0, compared.stderr
    assert json.loads(compared.stdout)["custodian"]["breaks"] == []


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
    before = holdings(url)
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
    check_reconciled(url, before, tmp_path / "broker", tmp_path)


def test_execute_when_the_demo_firm_trades_with_quickfix_then_the_books_add_up(
    demo_firm: sa.Engine, tmp_path: Path
) -> None:
    url = released_demo(demo_firm, tmp_path / "firm")
    before = holdings(url)
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
    check_reconciled(url, before, tmp_path / "qf", tmp_path)
