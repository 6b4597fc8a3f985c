"""The rebalancer's shell: load one account's problem, run a method, keep the proposal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from poise.domain.errors import ValidationError
from poise.domain.models import Band, resolve
from poise.monitor.holds import find_holds
from poise.optimize.bands import rebalance_bands
from poise.optimize.cash import rebalance_cash
from poise.optimize.problem import WASH_WINDOW, Problem, RecentTrade, build_problem
from poise.optimize.trades import Proposal
from poise.store import repo

__all__ = ["METHODS", "load_problem", "propose"]

# The methods, by the name a user gives.
METHODS: Mapping[str, Callable[[Problem], Proposal]] = {
    "bands": rebalance_bands,
    "cash": rebalance_cash,
}


def load_problem(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    firm_band: Band,
    max_price_age: timedelta,
) -> Problem:
    """One account's problem from the store, with prices as they stood at ``as_of``.

    An account on hold — stale prices, lots that disagree with the custodian, an open
    break — is refused: bad data is never traded.
    """
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        lots = repo.account_lots(connection, account_id=account_id)
        models = repo.models(connection)
        securities = repo.securities(connection)
        latest = repo.latest_prices(connection, as_of=as_of)
        flows = [f for f in repo.cash_flows(connection) if f.account_id == account_id]
        buys = repo.buys_since(connection, since=as_of.date() - WASH_WINDOW)
        positions = repo.latest_positions(connection)
        breaks = repo.open_breaks(connection)
    holds = find_holds(
        accounts=[account],
        lots=lots,
        securities=frozenset(securities),
        price_times={s: at for s, (_, at) in latest.items()},
        models=models,
        positions={k: v for k, v in positions.items() if k == account_id},
        open_breaks={k: v for k, v in breaks.items() if k == account_id},
        now=as_of,
        max_price_age=max_price_age,
    )
    if holds.holds:
        reasons = "; ".join(f"{h.cause.value}: {h.detail}" for h in holds.holds)
        raise ValidationError(f"account {account_id} is held, not rebalanced: {reasons}")
    if account.model_id is None:
        raise ValidationError(f"account {account_id} has no model")
    return build_problem(
        account=account,
        lots=lots,
        prices={s: p for s, (p, _) in latest.items()},
        model=resolve(account.model_id, models),
        securities=securities,
        cash_flows=flows,
        recent=[RecentTrade(s, d, bought=True) for a, s, d in buys if a == account_id],
        today=as_of.date(),
        firm_band=firm_band,
    )


def propose(
    engine: sa.Engine, *, problem: Problem, method: str, as_of: datetime
) -> tuple[str, Proposal]:
    """Run ``method`` on ``problem`` and keep the proposal (status ``proposed``)."""
    if method not in METHODS:
        raise ValidationError(f"no method {method!r}; methods: {', '.join(METHODS)}")
    proposal = METHODS[method](problem)
    with engine.begin() as connection:
        proposal_id = repo.save_proposal(
            connection, proposal=proposal, as_of=as_of, created_at=datetime.now(UTC)
        )
    return proposal_id, proposal
