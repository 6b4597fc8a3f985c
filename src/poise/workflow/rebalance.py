"""The rebalancer's shell: load one account's problem and its price history, run the
scenarios (or one method), keep the first one's proposal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from poise.comply.findings import Finding
from poise.comply.rulesets import RuleBook
from poise.domain.accounts import MinTrade
from poise.domain.errors import ValidationError
from poise.domain.models import Band
from poise.monitor.book import BandPolicy
from poise.monitor.plausible import LOOKBACK, PriceCheck
from poise.optimize.history import PriceHistory
from poise.optimize.problem import HarvestMinimum, Problem
from poise.optimize.scenarios import (
    ALL,
    Scenario,
    choose,
    compare,
    optimize_settings,
    with_min_trade,
)
from poise.optimize.trades import Proposal
from poise.settings import Settings
from poise.store import repo
from poise.store.repo import Unit
from poise.workflow.comply import Made, check_results, keep_made, load_rules, scenario_terms
from poise.workflow.households import HouseholdBook, Reference, account_problem, load_firm
from poise.workflow.monitor import price_check

__all__ = [
    "Asked",
    "Checker",
    "Proposed",
    "harvest_minimum",
    "load_history",
    "load_problem",
    "propose",
    "propose_scenarios",
    "rebalance_account",
]


def load_problem(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    firm_band: Band,
    max_price_age: timedelta,
    check: PriceCheck | None = None,
    rules: RuleBook | None = None,
) -> Problem:
    """One account's problem from the store, with prices as they stood at ``as_of``,
    under its household's wash-sale window (every account of the household's trades
    of the last 30 days) and the optimiser's twins of ``rules``.

    An account on hold — stale or implausible prices, lots that disagree with the
    custodian, an open break — is refused: bad data is never traded. Prices are judged
    by ``check`` (None: as the settings have it, like the monitor's), and a harvest
    replacement whose price is implausible is not offered.
    """
    return _load(
        engine,
        account_id=account_id,
        as_of=as_of,
        firm_band=firm_band,
        max_price_age=max_price_age,
        check=check,
        rules=rules,
    )[0]


def _load(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    firm_band: Band,
    max_price_age: timedelta,
    check: PriceCheck | None,
    rules: RuleBook | None,
) -> tuple[Problem, Reference, HouseholdBook]:
    """:func:`load_problem`, with what it was made from: the reference and the book."""
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
    firm = load_firm(
        engine,
        as_of=as_of,
        lookback=LOOKBACK,  # the risk model's history is read apart: load_history
        check=check or price_check(Settings()),
        household_ids=[account.household_id],
    )
    book = firm.books[account.household_id]
    problem = account_problem(
        firm.reference,
        book,
        account_id,
        firm_band=firm_band,
        max_price_age=max_price_age,
        harvest=harvest_minimum(Settings()),
        rules=rules,
    )
    return problem, firm.reference, book


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
class Checker:
    """What checks an account's proposal as it is made: the firm's rules, and the
    reference and household book its problem was made from."""

    book: RuleBook
    reference: Reference
    household: HouseholdBook

    def check(self, problem: Problem, proposal: Proposal) -> list[Finding]:
        return check_results(self.book, self.reference, self.household, [(problem, proposal)])


@dataclass(frozen=True, slots=True)
class Proposed:
    """What one rebalance run did: every scenario's proposal, the first one kept."""

    proposal_id: str  # the kept proposal's
    results: tuple[tuple[Scenario, Proposal], ...]
    risk_model: str  # what the tracking errors rest on, in words
    risk_default: bool  # too little price history: the default covariance was used
    answered: tuple[str, ...] = ()  # the requests the kept proposal answers
    status: str = "proposed"  # the kept one's, once the rules checked it
    findings: tuple[Finding, ...] = ()  # the rules' on the kept one

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
    prepared_by: str | None = None,
    checked: Checker | None = None,
) -> Proposed:
    """Run every scenario on ``problem`` with the risk model of ``history``, and keep
    the first one's proposal (``prepared_by`` the user who asked, None: the system),
    checked against the rules by ``checked`` (its findings kept with it, and its
    status ``blocked`` or ``pending``; None: left ``proposed``) and entered in the
    ledger. It answers the account's open requests raised by ``as_of``, and takes over
    those of the proposals it supersedes."""
    if not scenarios:
        raise ValidationError("no scenario to run")
    if history.security_ids != tuple(h.security_id for h in problem.holdings):
        raise ValidationError("the price history is not aligned with the problem's holdings")
    results = compare(problem, history.covariance(), scenarios)
    scenario, proposal = results[0]
    described = history.describe()
    findings = None if checked is None else checked.check(problem, proposal)
    created_at = datetime.now(UTC)
    with engine.execution_options(writes=True).begin() as connection:
        saved = repo.save_proposal(
            connection,
            proposal=proposal,
            as_of=as_of,
            created_at=created_at,
            scenario=scenario.name or None,
            risk_model=described,
            prepared_by=prepared_by,
        )
        account = problem.account
        made = Made(
            Unit(saved.proposal_id, False, account.household_id, None),
            prepared_by,
            {account.account_id: saved.proposal_id},
            [(account.account_id, t) for t in proposal.trades],
            findings,
            "" if checked is None else checked.book.digest,
        )
        [status] = keep_made(connection, [made], at=created_at)
        answered = repo.answer_requests(
            connection,
            proposal_id=saved.proposal_id,
            account_id=proposal.account_id,
            as_of=as_of,
            superseded=saved.superseded,
        )
    return Proposed(
        saved.proposal_id,
        tuple(results),
        described,
        history.falls_back,
        tuple(answered),
        status.value,
        tuple(findings or ()),
    )


@dataclass(frozen=True, slots=True)
class Asked:
    """What one account's rebalance is asked, as ``poise rebalance --account`` and
    ``POST /api/v1/accounts/{id}/rebalance`` take it: one method, or scenarios (``all``:
    every preset, side by side, the first kept); the optimiser's weights and limits;
    the smallest trade (dollars, a fraction of the account) over the account's own and
    the firm's; the band preset over the firm's."""

    method: str | None = None
    scenarios: tuple[str, ...] = ()
    risk: float = 1.0
    tax: float = 1.0
    cost: float = 1.0
    tax_budget: Decimal | None = None
    max_turnover: Decimal | None = None
    within_bands: bool = False
    min_trade: Decimal | None = None
    min_trade_fraction: Decimal | None = None
    bands: str | None = None


def rebalance_account(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    asked: Asked,
    settings: Settings,
    prepared_by: str | None = None,
) -> Proposed:
    """Rebalance one account as ``asked`` at ``as_of``: its problem and price history
    read, every scenario run, the first one's proposal kept (prepared by the user
    ``prepared_by``; None: the system)."""
    if asked.method is not None and asked.scenarios:
        raise ValidationError("give a method or scenarios, not both")
    base = optimize_settings(
        risk=asked.risk,
        tax=asked.tax,
        cost=asked.cost,
        tax_budget=asked.tax_budget,
        max_turnover=asked.max_turnover,
        min_trade=settings.min_trade if asked.min_trade is None else asked.min_trade,
        min_trade_fraction=(
            settings.min_trade_fraction
            if asked.min_trade_fraction is None
            else asked.min_trade_fraction
        ),
        within_bands=asked.within_bands,
        long_term_wait_days=settings.long_term_wait_days,
    )
    chosen = (
        choose(asked.scenarios, base)
        if asked.scenarios
        else [Scenario.of_method(asked.method or "bands", base)]
    )
    rules = load_rules(settings)
    problem, reference, book = _load(
        engine,
        account_id=account_id,
        as_of=as_of,
        firm_band=BandPolicy.preset(asked.bands or settings.band_preset).band(),
        max_price_age=timedelta(days=settings.max_price_age_days),
        check=None,
        rules=rules,
    )
    history = load_history(
        engine, problem=problem, as_of=as_of, lookback=timedelta(days=settings.risk_lookback_days)
    )
    chosen = with_min_trade(
        chosen,
        problem.account.min_trade,
        run=MinTrade(asked.min_trade, asked.min_trade_fraction),
        firm=MinTrade(settings.min_trade, settings.min_trade_fraction),
    )
    chosen = [scenario_terms(rules, book.household, problem.account, s) for s in chosen]
    return propose(
        engine,
        problem=problem,
        scenarios=chosen,
        history=history,
        as_of=as_of,
        prepared_by=prepared_by,
        checked=Checker(rules, reference, book),
    )


def propose_scenarios(
    engine: sa.Engine,
    *,
    account_id: str,
    as_of: datetime,
    settings: Settings,
    prepared_by: str | None = None,
) -> Proposed:
    """Every preset scenario for one account at ``as_of``, with the firm's settings —
    what "rebalance now" on an account's page does, as ``poise rebalance --account ID
    --scenario all`` does: the first (the full optimum) kept, the others shown beside
    it."""
    return rebalance_account(
        engine,
        account_id=account_id,
        as_of=as_of,
        asked=Asked(scenarios=(ALL,)),
        settings=settings,
        prepared_by=prepared_by,
    )
