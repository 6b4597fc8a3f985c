"""``poise execute``, ``orders`` and ``crosses`` as an operations person runs them: only
operations and admin may trade; a batch planned and kept without sending; one order
withdrawn before it went; the kill switch pulled and lifted, each in the ledger.

The firm is tests/workflow/execution_firm.py (A1 sells 100 S1, B1 buys 60: they cross).
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from tests.processes import Run, run_poise
from tests.workflow.execution_firm import firm

from poise.audit.ledger import entries
from poise.domain.users import Role
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade


def poise(url: str, cwd: Path, *args: str) -> Run:
    return run_poise(*args, database_url=url, cwd=cwd, timeout=120)


def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    firm(engine)
    with engine.begin() as connection:
        repo.add_user(connection, username="olu", role=Role.OPERATIONS)
        repo.add_user(connection, username="ana", role=Role.ADVISER)
    engine.dispose()
    return url


def test_execute_when_an_adviser_asks_then_refused_and_nothing_planned(tmp_path: Path) -> None:
    url = store(tmp_path)
    run = poise(url, tmp_path, "execute", "--as", "ana", "--plan-only")
    assert run.code == 10
    assert "only operations and admin may trade" in run.stderr
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar() == 0


def test_execute_when_planned_only_then_kept_and_an_order_can_be_withdrawn_before_it_goes(
    tmp_path: Path,
) -> None:
    url = store(tmp_path)
    planned = poise(url, tmp_path, "execute", "--as", "olu", "--plan-only", "--json")
    assert planned.code == 0, planned.stderr
    batch = json.loads(planned.stdout)
    assert (batch["crosses"], batch["blocks"]) == (1, 4)
    listed = json.loads(poise(url, tmp_path, "orders", "--open", "--json").stdout)
    assert len(listed) == 4
    assert {o["status"] for o in listed} == {"pending"}
    crossed = json.loads(poise(url, tmp_path, "crosses", "--json").stdout)
    assert sorted((c["account_id"], c["side"], c["quantity"]) for c in crossed) == [
        ("A1", "sell", "60"),
        ("B1", "buy", "60"),
    ]
    first = listed[0]["cl_ord_id"]
    cancel = poise(
        url, tmp_path, "execute", "--as", "olu", "--cancel", first, "--reason", "wrong size",
        "--plan-only",
    )  # fmt: skip
    assert cancel.code == 0, cancel.stderr
    assert "withdrawn, never sent" in cancel.stdout
    assert len(json.loads(poise(url, tmp_path, "orders", "--open", "--json").stdout)) == 3
    again = poise(
        url, tmp_path, "execute", "--as", "olu", "--cancel", first, "--reason", "twice",
        "--plan-only",
    )  # fmt: skip
    assert again.code == 7
    assert "not a working order" in again.stderr


def test_execute_when_the_kill_switch_is_pulled_and_lifted_then_both_are_in_the_ledger(
    tmp_path: Path,
) -> None:
    url = store(tmp_path)
    assert poise(url, tmp_path, "execute", "--as", "olu", "--plan-only").code == 0
    halted = poise(
        url, tmp_path, "execute", "--as", "olu", "--halt", "--reason", "bad prices",
        "--plan-only", "--json",
    )  # fmt: skip
    assert halted.code == 0, halted.stderr
    assert json.loads(halted.stdout) == {"halted": True, "cancels": []}  # none had gone
    assert json.loads(poise(url, tmp_path, "orders", "--open", "--json").stdout) == []
    lifted = poise(url, tmp_path, "execute", "--as", "olu", "--resume", "--reason", "fixed")
    assert lifted.code == 0, lifted.stderr
    engine = make_engine(url)
    with engine.connect() as connection:
        tail = [(e.action, e.reason) for e in entries(connection)][-2:]
        blocks = set(connection.execute(sa.select(t.block_orders.c.status)).scalars())
    assert tail == [("execute.halt", "bad prices"), ("execute.resume", "fixed")]
    assert blocks == {"cancelled"}
