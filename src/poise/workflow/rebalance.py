"""The rebalancer's shell: load one account's problem and its price history, run the
scenarios (or one method), keep the first one's proposal."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, resolve
from poise.domain.money import ZERO
from poise.domain.transactions import Transaction, sale_gain
from poise.monitor.holds import find_holds
from poise.monitor.plausible import LOOKBACK, PriceCheck
from poise.optimize.history import PriceHistory
from poise.optimize.problem import (
    WASH_WINDOW,
    HarvestMinimum,
    Problem,
    RecentTrade,
    build_problem,
)
from poise.optimize.scenarios import Scenario, compare
from poise.optimize.trades import Proposal
from poise.settings import Settings
from poise.store import repo
from poise.workflow.monitor import find_implausible, price_check

__all__ = ["Proposed", "load_history", "load_problem", "propose", "recent_sales"]


def recent_sales(sales: Sequence[Transaction], lots: Sequence[TaxLot]) -> list[RecentTrade]:
    """The account's recent sales as the wash-sale rule sees them. A sale is at a loss
    when its proceeds are below the basis of the lots it relieved; when that cannot be
    known (it names no lots, or a lot the books no longer hold with shares), it counts
    as a loss: not buying the security back for 30 days is the safe side of the rule."""
    by_id = {lot.lot_id: lot for lot in lots}
    found = []
    for sale in sales:
        if sale.security_id is None:
            continue
        gain = sale_gain(sale, by_id)
        loss = gain is None or gain < ZERO
        found.append(RecentTrade(sale.security_id, sale.trade_date, bought=False, loss=loss))
    return found


def load_problem(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    firm_band: Band,
    max_price_age: timedelta,
    check: PriceCheck | None = None,
) -> Problem:
    """One account's problem from the store, with prices as they stood at ``as_of``.

    An account on hold — stale or implausible prices, lots that disagree with the
    custodian, an open break — is refused: bad data is never traded. Prices are judged
    by ``check`` (None: as the settings have it, like the monitor's), and a harvest
    replacement whose price is implausible is not offered.
    """
    since = as_of.date() - WASH_WINDOW
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        lots = repo.account_lots(connection, account_id=account_id)
        models = repo.models(connection)
        securities = repo.securities(connection)
        latest = repo.latest_prices(connection, as_of=as_of)
        flows = [f for f in repo.cash_flows(connection) if f.account_id == account_id]
        buys = repo.buys_since(connection, since=since)
        sales = repo.sales_since(connection, account_id=account_id, since=since)
        positions = repo.latest_positions(connection)
        breaks = repo.open_breaks(connection)
        wanted = {lot.security_id for lot in lots}
        if account.model_id in models:
            with contextlib.suppress(ValidationError):  # a model that does not resolve holds
                wanted |= set(resolve(account.model_id, models).securities)
        wanted |= {r for s in wanted if s in securities for r in securities[s].replacements}
        history = repo.price_history(
            connection,
            security_ids=sorted(wanted & latest.keys()),
            since=as_of - LOOKBACK,
            until=as_of,
        )
    prices = {s: p for s, (p, _) in latest.items()}
    price_times = {s: at for s, (_, at) in latest.items()}
    _, implausible = find_implausible(
        prices={s: prices[s] for s in history.security_ids},
        price_times=price_times,
        history=history,
        check=check or price_check(Settings()),
    )
    holds = find_holds(
        accounts=[account],
        lots=lots,
        securities=frozenset(securities),
        price_times=price_times,
        implausible=implausible,
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
    bought = [RecentTrade(s, d, bought=True) for a, s, d in buys if a == account_id]
    return build_problem(
        account=account,
        lots=lots,
        prices={s: p for s, p in prices.items() if s not in implausible},
        model=resolve(account.model_id, models),
        securities=securities,
        cash_flows=flows,
        recent=[*bought, *recent_sales(sales, lots)],
        today=as_of.date(),
        firm_band=firm_band,
        harvest=harvest_minimum(Settings()),
    )


def harvest_minimum(settings: Settings) -> HarvestMinimum:
    """The smallest loss worth harvesting — the monitor's setting, so the two agree."""
    return HarvestMinimum(settings.harvest_min_loss, settings.harvest_min_loss_fraction)


def load_history(
    engine: sa.Engine, *, problem: Problem, as_of: datetime, lookback: timedelta
) -> PriceHistory:
    """The daily prices of the problem's securities over ``lookback`` up to ``as_of``,
    aligned with its holdings: what the risk model is estimated from."""
    with engine.connect() as connection:
        return repo.price_history(
            connection,
            security_ids=[h.security_id for h in problem.holdings],
            since=as_of - lookback,
            until=as_of,
        )


@dataclass(frozen=True, slots=True)
class Proposed:
    """What one rebalance run did: every scenario's proposal, the first one kept."""

    proposal_id: str  # the kept proposal's
    results: tuple[tuple[Scenario, Proposal], ...]
    risk_model: str  # what the tracking errors rest on, in words
    risk_default: bool  # too little price history: the default covariance was used
    answered: tuple[str, ...] = ()  # the requests the kept proposal answers

    @property
    def kept(self) -> tuple[Scenario, Proposal]:
        return self.results[0]


def propose(
    engine: sa.Engine,
    *,
    problem: Problem,
    scenarios: Sequence[Scenario],
    history: PriceHistory,
    as_of: datetime,
) -> Proposed:
    """Run every scenario on ``problem`` with the risk model of ``history``, and keep
    the first one's proposal (status ``proposed``). It answers the account's open
    requests raised by ``as_of``, and takes over those of the proposals it supersedes."""
    if not scenarios:
        raise ValidationError("no scenario to run")
    if history.security_ids != tuple(h.security_id for h in problem.holdings):
        raise ValidationError("the price history is not aligned with the problem's holdings")
    results = compare(problem, history.covariance(), scenarios)
    scenario, proposal = results[0]
    described = history.describe()
    with engine.execution_options(writes=True).begin() as connection:
        saved = repo.save_proposal(
            connection,
            proposal=proposal,
            as_of=as_of,
            created_at=datetime.now(UTC),
            scenario=scenario.name or None,
            risk_model=described,
        )
        answered = repo.answer_requests(
            connection,
            proposal_id=saved.proposal_id,
            account_id=proposal.account_id,
            as_of=as_of,
            superseded=saved.superseded,
        )
    return Proposed(
        saved.proposal_id, tuple(results), described, history.falls_back, tuple(answered)
    )
