"""The small firm of ``tests.firm_files`` (households H1, the Garcias, and H2) with one
of everything the API reads: transactions of both households, rebalance requests, a
firm-wide run over H1 — so that H1 has a household's proposal and its accounts'
proposals, answering H1's request, pending approval with a warning of the firm's rules
to acknowledge (:data:`WARNING`) — a backtest kept, the history of the files it was
loaded from, and a block order for one of H1's accounts in the outbox. Every path
parameter the API names has an example here (:data:`examples`), of H1 where the object
is a household's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.firm_files import write_firm

from poise.api import security
from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Policy
from poise.domain.orders import BlockOrder, OrdType, Side, StatementLine
from poise.domain.users import Role
from poise.monitor.triggers import manual_request
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.store.repo import BacktestMethod, BacktestRecord
from poise.store.repo.execution import keep_batch
from poise.workflow.approvals import check, findings_of
from poise.workflow.fanout import Inline
from poise.workflow.ingest import ingest_paths
from poise.workflow.run import Selection, rebalance_run

AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)  # the firm's prices are of that day
WARNING = Finding(
    rule_id="firm/cash", kind="minimum_cash", severity=Severity.WARN, measured=0.012,
    limit=0.02, explanation="cash would be 1.2% of the account, below 2%",
)  # fmt: skip

TRANSACTIONS = """\
account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots,description
10000001,T1001,deposit,2022-10-03,2022-10-03,,,5000.00,,"ACH deposit, checking"
10000001,T1002,dividend,2022-11-10,2022-11-10,AAPL,,31.20,,AAPL quarterly dividend
10000001,T1003,sell,2022-11-14,2022-11-16,AAPL,30,4470.123,L1:10;L2:20,Rebalance
10000002,T2001,fee,2022-12-01,2022-12-01,,,25.00,,Advisory fee Q4
10000003,T3001,fee,2022-12-01,2022-12-01,,,12.50,,Advisory fee Q4
"""


def build(folder: Path, url: str | None = None) -> tuple[sa.Engine, dict[str, str]]:
    """The firm in the store at ``url`` (else a SQLite file in ``folder``), its files
    written in ``folder``; and an example id for every path parameter the API names."""
    engine = make_engine(url or f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(folder)
    (folder / "transactions.csv").write_text(TRANSACTIONS)
    reports = ingest_paths(
        engine, [*paths, folder / "transactions.csv"], today=datetime.now(UTC).date()
    )
    assert not any(r.refused or r.failed or r.quarantined for r in reports), reports
    h1_account = manual_request(account_id="10000001", household_id="H1", as_of=AS_OF, note="")
    h2_account = manual_request(account_id="10000003", household_id="H2", as_of=AS_OF, note="")
    h2_whole = manual_request(account_id=None, household_id="H2", as_of=AS_OF, note="review")
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[q.to_payload() for q in (h1_account, h2_account, h2_whole)],
            received_at=AS_OF,
        )
    run = rebalance_run(engine, as_of=AS_OF, selection=Selection(households=("H1",)),
                        fanout=Inline())  # fmt: skip
    assert run.done == 1, run.failed
    with engine.connect() as connection:
        (h1,) = repo.run_households(connection, run_id=run.run_id)
    assert h1.household_proposal_id is not None
    check(engine, proposal_id=h1.household_proposal_id, findings=findings_of([WARNING]),
          policy=Policy())  # fmt: skip
    backtest = BacktestRecord(
        backtest_id=uuid.uuid4().hex,
        created_at=AS_OF,
        prices_file="closes.csv",
        prices_digest="0" * 64,
        model_id="CORE",
        start=date(2022, 1, 3),
        end=date(2022, 12, 28),
        inputs={"amount": "1000000", "accounts": "taxable"},
        digest="f" * 64,
        methods={
            "bands": BacktestMethod(
                method="bands",
                summary={"after_tax_return": 0.041234567891, "tax_paid": "1234.56", "trades": 12},
                years=[{"year": 2022, "tax": "1234.56"}],
                series={"days": ["2022-01-03"], "pre_tax": ["1000000"], "after_tax": ["1000000"]},
            )
        },
    )
    with engine.begin() as connection:
        repo.save_backtest(connection, record=backtest)
        (proposal,) = [p for p in repo.find_proposals(connection) if p["account_id"] == "10000001"]
        loaded = connection.execute(sa.select(sa.func.min(t.ingest_files.c.id))).scalar()
        order = _order(connection, proposal_id=proposal["proposal_id"])
        connection.execute(
            sa.insert(t.breaks),
            {"account_id": "10000001", "break_id": "quantity:AAPL:2022-12-28",
             "opened": AS_OF.date(), "closed": AS_OF.date(), "resolved_by": "system",
             "reason": "cleared", "kind": "quantity", "security_id": "AAPL",
             "books": Decimal(100), "custodian": Decimal(90),
             "description": "AAPL: the books hold 100, the custodian 90"},
        )  # fmt: skip
    examples = {
        "household_id": "H1",
        "account_id": "10000001",
        "proposal_id": proposal["proposal_id"],
        "household_proposal_id": proposal["household_proposal_id"],
        "request_id": h1_account.request_id,
        "run_id": run.run_id,
        "backtest_id": backtest.backtest_id,
        "file_id": str(loaded),
        "seq": "0",  # the audit ledger's first entry: the first file's load
        "cl_ord_id": order,  # a broker order of a block whose statement names an H1 account
        "break_id": "quantity:AAPL:2022-12-28",  # an H1 account's break, closed: no hold
        "security_id": "AAPL",
        "model_id": "CORE",
    }
    return engine, examples


def _order(connection: sa.Connection, *, proposal_id: str) -> str:
    """A block order in the outbox buying 10 AAPL for H1's account 10000001: its ClOrdID."""
    batch_id = "X20221228235959-reads"
    line = StatementLine(proposal_id=proposal_id, seq=1, account_id="10000001",
                         quantity=Decimal(10))  # fmt: skip
    block = BlockOrder(
        block_id=f"{batch_id}-AAPL-buy", route="simulated", security_id="AAPL", side=Side.BUY,
        quantity=Decimal(10), ord_type=OrdType.LIMIT, limit=Decimal("132.00"),
        reference=Decimal("130.00"), statement=(line,),
    )  # fmt: skip
    order = f"{batch_id}-00001-N"
    keep_batch(
        connection, batch_id=batch_id, at=AS_OF, created_by="system", policy={},
        proposal_ids=[proposal_id], crosses=[], blocks=[block], cl_ord_ids=[order],
    )  # fmt: skip
    return order


def add_people(
    engine: sa.Engine, people: Mapping[str, tuple[Role, dict[str, Any]]]
) -> dict[str, str]:
    """Each of ``people`` a user, with a personal access token that reads and writes."""
    tokens: dict[str, str] = {}
    with engine.begin() as connection:
        for username, (role, kw) in people.items():
            user = repo.add_user(connection, username=username, role=role, **kw)
            token_id, secret, text = security.new_token()
            repo.add_token(
                connection, user_id=user.user_id, token_id=token_id,
                secret_hash=security.token_hash(secret), name="tests", scopes=["read", "write"],
            )  # fmt: skip
            tokens[username] = text
    return tokens
