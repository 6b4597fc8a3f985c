"""Rows that ingest accepted read back as valid domain objects, on both databases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from poise.demo import generate_firm, write_firm
from poise.domain.models import resolve
from poise.store import repo
from poise.workflow.ingest import ingest_paths

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_repo_when_the_demo_firm_is_loaded_then_every_row_builds_its_domain_object(
    engine: sa.Engine, tmp_path: Path
) -> None:
    firm = generate_firm(households=8, seed=11, data_dir=DATA)
    reports = ingest_paths(engine, write_firm(firm, tmp_path), today=date(2026, 1, 1))
    assert all(r.quarantined == 0 and not r.refused for r in reports)
    with engine.connect() as connection:
        securities = repo.securities(connection)
        models = repo.models(connection)
        accounts = repo.accounts(connection)
        lots = repo.lots(connection)
    assert len(accounts) == firm.accounts.height
    assert len(lots) == firm.lots.height
    for model_id in models:  # every model, models of models too, resolves to exactly 1
        resolved = resolve(model_id, models)
        assert sum(resolved.securities.values(), resolved.cash) == Decimal(1)
        assert set(resolved.securities) <= set(securities)
    for security in securities.values():
        assert set(security.replacements) <= set(securities)
    assert {lot.security_id for lot in lots} <= set(securities)
