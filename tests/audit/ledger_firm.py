"""A firm's ledger for the tests of the service's audit routes and pages: the small firm
of ``tests.firm_files`` loaded (an ``ingest.file`` entry a file), then a day of
decisions recorded one a transaction, an hour apart from 09:00 on 7 December 2026 —
proposals checked, acknowledged, approved and expired by several people — the first
eight of which a checkpoint signed with the firm's key (a file in the test's folder),
and four after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from tests.firm_files import write_firm

from poise.audit import ledger
from poise.audit.keys import load_private_key, make_key
from poise.audit.proofs import sign_checkpoint
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

__all__ = ["DECISIONS", "T0", "Built", "build"]

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DECISIONS = [  # actor, action, subject, reason — decision n is DECISIONS[n % 6]
    ("u-ana", "proposal.check", "10000001/2026-12-07/bands", ""),
    ("u-ana", "proposal.check", "10000003/2026-12-07/bands", ""),
    ("u-cora", "proposal.acknowledge", "10000001/2026-12-07/bands", "cash held for a gift"),
    ("u-pam", "proposal.approve", "10000001/2026-12-07/bands", "within the mandate"),
    ("u-pam", "proposal.approve", "10000003/2026-12-07/bands", "within the mandate"),
    ("system", "proposal.expire", "10000002/2026-12-01/bands", "older than 72 hours"),
]
SIGNED = 8  # decisions the checkpoint holds
MADE = 12  # decisions in all


@dataclass(frozen=True)
class Built:
    engine: sa.Engine
    key: Path  # the firm's private key file
    loaded: int  # entries of the files loaded, before the decisions
    signed: int  # entries the checkpoint holds

    @property
    def size(self) -> int:
        return self.loaded + MADE


def decide(engine: sa.Engine, first: int, count: int) -> None:
    writing = engine.execution_options(writes=True)
    for n in range(first, first + count):
        actor, action, subject, reason = DECISIONS[n % len(DECISIONS)]
        with writing.begin() as connection:
            ledger.append(connection, actor=actor, action=action, subject=subject,
                          data={"n": n, "notional": "1250.00"}, reason=reason,
                          at=T0 + timedelta(hours=n))  # fmt: skip


def build(folder: Path, url: str | None = None) -> Built:
    """The ledger in the store at ``url`` (else a SQLite file in ``folder``)."""
    engine = make_engine(url or f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    reports = ingest_paths(engine, write_firm(folder / "files"), today=date(2026, 12, 6))
    assert not any(r.refused or r.failed for r in reports), reports
    key = folder / "config" / "audit-key.pem"
    make_key(key)
    decide(engine, 0, SIGNED)
    with engine.execution_options(writes=True).begin() as connection:
        sign_checkpoint(connection, key=load_private_key(key), at=T0 + timedelta(hours=SIGNED))
    decide(engine, SIGNED, MADE - SIGNED)
    return Built(engine, key, len(reports), len(reports) + SIGNED)
