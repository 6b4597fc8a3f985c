"""Over a demo firm, every bands and optimize proposal keeps the rules a reviewer checks
by hand — recomputed from the trades, the lots and the prices by ``bench/proposal_audit``,
not taken from the figures the engine reports: no security both bought and sold, no
trade below the firm's minimum, cash at least what must remain (or the proposal says
exactly why it cannot be raised), a tax budget of 0 held, no replacement bought where
a loss has no tax value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from bench.proposal_audit import audit

from poise.demo import generate_firm, write_firm
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths


@pytest.mark.slow
def test_demo_when_every_account_is_rebalanced_then_no_proposal_breaks_a_rule(
    tmp_path: Path,
) -> None:
    # The rules do not depend on the database: SQLite is enough.
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(generate_firm(households=25, seed=7), tmp_path)
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    # Dust is any trade below the firm's minimum here, not only below a dollar.
    audited, found = audit(
        engine, methods=("bands", "optimize", "optimize, budget 0"), dust=Decimal(0)
    )
    assert audited >= 40
    assert found == []
