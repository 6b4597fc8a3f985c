"""Replacements only where a harvest is worth something: in an account that harvests
(taxable, harvesting on), for a loss of at least the firm's minimum — the monitor's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from tests.cli.test_rebalance import load
from tests.optimize.test_optimize import SECURITIES, cov_of, make

from poise.domain.accounts import Registration
from poise.domain.lots import TaxLot
from poise.domain.models import Model, ModelTarget, ResolvedModel, TargetKind, resolve
from poise.monitor.book import BandPolicy
from poise.optimize.problem import HarvestMinimum, build_problem
from poise.optimize.tax_aware import rebalance_optimize
from poise.optimize.trades import TradeReason
from poise.store.engine import make_engine
from poise.workflow.rebalance import load_problem

D = Decimal
SPY_AT_A_LOSS = [TaxLot("L1", "A1", "SPY", D(100), D(12000), date(2024, 1, 10))]  # −$2,500
PRICES = {"SPY": "95", "VTI": "190"}


def test_optimize_when_the_account_is_an_ira_then_no_replacement_is_bought() -> None:
    # The same $2,500 loss a taxable account harvests into VTI: in an IRA it has no
    # tax value, so VTI is not even a candidate, and nothing is bought to replace SPY.
    problem = make(
        {"SPY": "0.95"}, SPY_AT_A_LOSS, PRICES, registration=Registration.TRADITIONAL_IRA
    )
    assert [h.security_id for h in problem.holdings] == ["SPY"]
    proposal = rebalance_optimize(problem, cov_of(problem))
    assert all(t.reason is not TradeReason.REPLACEMENT for t in proposal.trades)
    assert all(t.security_id == "SPY" for t in proposal.trades)


def test_build_problem_when_a_loss_is_below_the_harvest_minimum_then_no_replacement_joins() -> None:
    # A $2,500 loss on a $12,000 basis (21%): a harvest at the monitor's defaults
    # ($1,000 and 10% of basis), not at a $3,000 minimum nor at 25% of basis.
    taxable = make({"SPY": "0.95"}, SPY_AT_A_LOSS, PRICES)

    def candidates(minimum: HarvestMinimum) -> list[str]:
        problem = build_problem(
            account=taxable.account,
            lots=SPY_AT_A_LOSS,
            prices={s: D(p) for s, p in PRICES.items()},
            model=_model(),
            securities=SECURITIES,
            today=taxable.today,
            harvest=minimum,
        )
        return [h.security_id for h in problem.holdings]

    assert candidates(HarvestMinimum(D(1000), D("0.10"))) == ["SPY", "VTI"]
    assert candidates(HarvestMinimum(D(3000), D("0.10"))) == ["SPY"]
    assert candidates(HarvestMinimum(D(1000), D("0.25"))) == ["SPY"]


def _model() -> ResolvedModel:
    model = Model(
        "M",
        "M",
        (
            ModelTarget(TargetKind.SECURITY, "SPY", D("0.95")),
            ModelTarget(TargetKind.CASH, "", D("0.05")),
        ),
    )
    return resolve("M", {"M": model})


def test_load_problem_when_the_firm_sets_a_harvest_minimum_then_the_rebalancer_uses_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The small firm's taxable account holds SPYA at a $378 loss, 4.7% of its basis:
    # below the monitor's minimum ($1,000 and 10%), so its replacement TOTL is no
    # candidate — until the firm lowers the minimum, for the monitor and the
    # rebalancer alike.
    load(database_url, tmp_path)

    def candidates() -> set[str]:
        engine = make_engine(database_url)
        problem = load_problem(
            engine,
            account_id="10000001",
            as_of=datetime(2022, 12, 29, tzinfo=UTC),
            firm_band=BandPolicy.preset("5/25").band(),
            max_price_age=timedelta(days=4),
        )
        engine.dispose()
        return {h.security_id for h in problem.holdings}

    assert "TOTL" not in candidates()
    monkeypatch.setenv("POISE_HARVEST_MIN_LOSS", "100")
    monkeypatch.setenv("POISE_HARVEST_MIN_LOSS_FRACTION", "0.01")
    assert "TOTL" in candidates()
