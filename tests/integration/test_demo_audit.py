"""Over a demo firm, every bands and optimize proposal keeps the rules a reviewer checks
by hand — recomputed from the trades, the lots and the prices by ``bench/proposal_audit``,
not taken from the figures the engine reports: no security both bought and sold, no
trade below the firm's minimum, cash at least what must remain (or the proposal says
exactly why it cannot be raised), a tax budget of 0 held, no replacement bought where
a loss has no tax value."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from bench.proposal_audit import AS_OF, breaches

from poise.demo import generate_firm, write_firm
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO
from poise.monitor.book import BandPolicy
from poise.optimize.scenarios import Scenario, compare, optimize_settings
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths
from poise.workflow.rebalance import load_history, load_problem


@pytest.mark.slow
def test_demo_when_every_account_is_rebalanced_then_no_proposal_breaks_a_rule(
    tmp_path: Path,
) -> None:
    # The rules do not depend on the database: SQLite is enough.
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    paths = write_firm(generate_firm(households=25, seed=7), tmp_path)
    assert all(not r.refused for r in ingest_paths(engine, paths, today=date(2026, 1, 1)))
    settings = Settings()
    base = optimize_settings(
        min_trade=settings.min_trade, min_trade_fraction=settings.min_trade_fraction
    )
    methods = {
        "bands": Scenario.of_method("bands", base),
        "optimize": Scenario.of_method("optimize", base),
        "optimize, budget 0": Scenario.of_method("optimize", replace(base, tax_budget=ZERO)),
    }
    with engine.connect() as connection:
        ids = [a.account_id for a in repo.accounts(connection)]
    found: list[str] = []
    audited = 0
    for account_id in ids:
        try:
            problem = load_problem(
                engine,
                account_id=account_id,
                as_of=AS_OF,
                firm_band=BandPolicy.preset(settings.band_preset).band(),
                max_price_age=timedelta(days=settings.max_price_age_days),
            )
        except ValidationError:  # held, or no model
            continue
        audited += 1
        history = load_history(
            engine,
            problem=problem,
            as_of=AS_OF,
            lookback=timedelta(days=settings.risk_lookback_days),
        )
        smallest = max(settings.min_trade, settings.min_trade_fraction * problem.value)
        results = compare(problem, history.covariance(), list(methods.values()))
        for name, (_, proposal) in zip(methods, results, strict=True):
            broken = breaches(
                problem,
                proposal,
                budget=name.endswith("budget 0"),
                min_trade=smallest,
                smallest=smallest,
            )
            found += [f"{account_id} {name}: {rule} {why}" for rule, (_, why) in broken.items()]
    assert audited >= 40
    assert found == []
