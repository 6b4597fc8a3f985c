"""``poise reconcile`` as an operations person runs it: only operations and admin keep
the books; the fills are booked once, however often it runs.

The firm is tests/workflow/execution_firm.py, planned with crossing on and nothing sent:
A1 sells 60 S1 to B1 in an internal cross at 50 — fills that need no broker.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from tests.processes import Run, run_poise
from tests.workflow.execution_firm import firm

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
        connection.execute(
            sa.insert(t.lots),
            {"account_id": "A1", "lot_id": "L1", "security_id": "S1", "quantity": Decimal(100),
             "cost_basis": Decimal(4000), "acquired": date(2020, 1, 2),
             "disallowed_loss": Decimal(0)},
        )  # fmt: skip
    engine.dispose()
    return url


def test_reconcile_when_crosses_are_planned_then_both_sides_are_booked_once(
    tmp_path: Path,
) -> None:
    url = store(tmp_path)
    planned = poise(url, tmp_path, "execute", "--as", "olu", "--plan-only", "--json")
    assert planned.code == 0, planned.stderr

    refused = poise(url, tmp_path, "reconcile", "--as", "ana")
    first = poise(url, tmp_path, "reconcile", "--as", "olu", "--json")
    again = poise(url, tmp_path, "reconcile", "--as", "olu")

    assert refused.code == 10
    assert "only operations and admin keep the books" in refused.stderr
    assert first.code == 0, first.stderr
    booked = json.loads(first.stdout)
    assert (booked["executions"], booked["accounts"], booked["realised"]) == (2, 2, 1)
    assert Decimal(booked["gain"]) == Decimal(600)  # 60 × (50 − 40)
    assert Decimal(booked["cash"]) == Decimal(0)  # what B1 paid, A1 received
    assert again.code == 0, again.stderr
    assert "nothing to book" in again.stdout
    engine = make_engine(url)
    with engine.connect() as connection:
        held = {(x.account_id, x.security_id): x.quantity for x in repo.lots(connection)}
    assert held == {("A1", "S1"): Decimal(40), ("B1", "S1"): Decimal(60)}


def test_report_8949_when_a_sale_is_booked_then_its_row_and_schedule_d_line_are_printed(
    tmp_path: Path,
) -> None:
    url = store(tmp_path)
    assert poise(url, tmp_path, "execute", "--as", "olu", "--plan-only").code == 0
    assert poise(url, tmp_path, "reconcile", "--as", "olu").code == 0

    form = poise(url, tmp_path, "report", "8949", "H1", "--json", "--csv", "rows.csv")
    gains = poise(url, tmp_path, "report", "gains", "H1", "--json")

    assert form.code == 0, form.stderr
    document = json.loads(form.stdout)
    (row,) = document["rows"]
    # 60 S1 bought in 2020 at 40 (an ETF bought after 2010: its basis reported), sold at 50
    assert (row["box"], row["description"], row["code"]) == ("D", "60 sh. S1", "")
    assert (Decimal(row["proceeds"]), Decimal(row["basis"]), Decimal(row["gain"])) == (
        Decimal(3000), Decimal(2400), Decimal(600),
    )  # fmt: skip
    assert [(x["line"], Decimal(x["gain"])) for x in document["schedule_d"]] == [
        ("8b", Decimal(600))
    ]
    assert (tmp_path / "rows.csv").read_text().startswith("box,description,acquired,sold")
    assert gains.code == 0, gains.stderr
    assert Decimal(json.loads(gains.stdout)["long_term"]) == Decimal(600)


def test_reconcile_when_the_custodian_disagrees_then_the_break_is_listed_until_resolved(
    tmp_path: Path,
) -> None:
    url = store(tmp_path)
    assert poise(url, tmp_path, "execute", "--as", "olu", "--plan-only").code == 0
    today = datetime.now(UTC).date().isoformat()
    # after the cross: A1 40 S1 and 103,000 cash, as the books will hold them; B1 60 S1
    # and 97,000 — but the custodian shows B1 with 30
    (tmp_path / "positions.csv").write_text(
        f"account_id,as_of,security_id,quantity\nA1,{today},S1,40\nB1,{today},S1,30\n"
    )
    (tmp_path / "cash.csv").write_text(
        "account_id,as_of,cash,trade_date_cash\n"
        f"A1,{today},100000,103000\nB1,{today},100000,97000\n"
    )

    run = poise(url, tmp_path, "reconcile", "--as", "olu", "--positions", "positions.csv",
                "--positions", "cash.csv", "--json")  # fmt: skip

    assert run.code == 0, run.stderr
    custodian = json.loads(run.stdout)["custodian"]
    (found,) = custodian["breaks"]
    assert (found["account_id"], found["kind"], found["security_id"]) == ("B1", "quantity", "S1")
    assert (Decimal(found["books"]), Decimal(found["custodian"])) == (Decimal(60), Decimal(30))
    listed = json.loads(poise(url, tmp_path, "breaks", "--json").stdout)
    assert [(b["account_id"], b["break_id"]) for b in listed] == [("B1", f"quantity:S1:{today}")]
    refused = poise(url, tmp_path, "breaks", "--resolve", f"B1/quantity:S1:{today}",
                    "--reason", "the custodian's file was a day old", "--as", "ana")  # fmt: skip
    assert refused.code == 10
    resolved = poise(url, tmp_path, "breaks", "--resolve", f"B1/quantity:S1:{today}",
                     "--reason", "the custodian's file was a day old", "--as", "olu")  # fmt: skip
    assert resolved.code == 0, resolved.stderr
    assert json.loads(poise(url, tmp_path, "breaks", "--json").stdout) == []


def test_report_statement_when_asked_then_one_pdf_for_the_household(tmp_path: Path) -> None:
    url = store(tmp_path)
    assert poise(url, tmp_path, "execute", "--as", "olu", "--plan-only").code == 0
    assert poise(url, tmp_path, "reconcile", "--as", "olu").code == 0

    run = poise(url, tmp_path, "report", "statement", "H1", "--out", "out", "--json")
    missing = poise(url, tmp_path, "report", "statement", "NOPE", "--out", "out")

    assert run.code == 0, run.stderr
    (written,) = json.loads(run.stdout)["written"]
    assert (tmp_path / written).read_bytes().startswith(b"%PDF")
    assert missing.code == 5  # not found
    assert "no household NOPE" in missing.stderr
