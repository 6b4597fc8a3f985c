"""The household rebalancer's shell: the firm read once, each household planned from
what was read — without the store, so a plan can run in another process or on another
machine — and each plan kept as it comes.

:func:`load_firm` reads everything a run needs in a handful of queries, whatever the
number of accounts: the reference data every household shares (securities, models,
prices, the risk model's price history) and each household's own book (accounts,
lots, cash flows, custodian positions and breaks, and its recent trades for the
wash-sale rule). :func:`plan_household` is pure: one household's book and the
reference in, its proposal (or why its accounts are held) out. :func:`save_plan`
keeps it: the household's proposal, each account's, and the requests they answer.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from poise.comply.findings import Finding
from poise.comply.rulesets import RuleBook
from poise.domain.accounts import Account, Household, MinTrade, model_of
from poise.domain.clients import ClientProfile
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, resolve
from poise.domain.recent import WASH_WINDOW, RecentTrade, WashWindow, wash_window
from poise.domain.securities import Security
from poise.domain.transactions import CashFlow, Transaction, sale_gain
from poise.monitor.holds import find_holds
from poise.monitor.plausible import LOOKBACK, PriceCheck
from poise.optimize.history import PriceHistory
from poise.optimize.household import (
    HouseholdProblem,
    HouseholdProposal,
    HouseholdSettings,
    rebalance_household,
)
from poise.optimize.problem import HarvestMinimum, Problem, build_problem
from poise.optimize.scenarios import Scenario, with_min_trade
from poise.store import repo
from poise.store.repo import Unit
from poise.workflow import collector
from poise.workflow.comply import (
    Made,
    account_terms,
    check_results,
    client_of,
    keep_made,
    problem_terms,
    scenario_terms,
)
from poise.workflow.fanout import pickled_by_fields
from poise.workflow.monitor import find_implausible
from poise.workflow.risks import risks

__all__ = [
    "Firm",
    "HouseholdBook",
    "HouseholdPlan",
    "PlanOptions",
    "Reference",
    "SavedPlan",
    "account_problem",
    "household_problems",
    "household_window",
    "load_firm",
    "plan_household",
    "recent_trades",
    "save_plan",
    "save_plans",
    "shipped",
]


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """How every household of a run is rebalanced."""

    scenario: Scenario
    firm_band: Band
    max_price_age: timedelta
    harvest: HarvestMinimum
    firm_min_trade: MinTrade  # the firm's smallest trade
    run_min_trade: MinTrade = field(default_factory=lambda: MinTrade(None, None))
    household: HouseholdSettings = field(default_factory=HouseholdSettings)
    rules: RuleBook | None = None  # the firm's rules: the optimiser's twins, and the check


@dataclass(frozen=True, slots=True)
class Reference:
    """What every household of a run shares, read once."""

    as_of: datetime
    securities: Mapping[str, Security]
    models: Mapping[str, Model]
    prices: Mapping[str, Decimal]  # the latest, implausible ones left out
    price_times: Mapping[str, datetime]
    implausible: Mapping[str, str]  # security → why its latest price is not believed
    history: PriceHistory  # daily prices over the risk model's lookback


@dataclass(frozen=True, slots=True)
class HouseholdBook:
    """One household's own records, as a run reads them."""

    household: Household
    accounts: tuple[Account, ...]
    lots: tuple[TaxLot, ...]
    cash_flows: tuple[CashFlow, ...] = ()
    positions: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    open_breaks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    recent: tuple[RecentTrade, ...] = ()  # trades in the wash-sale window
    broken: tuple[str, ...] = ()  # rows of its books the store holds but no rule allows
    clients: tuple[ClientProfile, ...] = ()  # its clients' profiles

    @property
    def household_id(self) -> str:
        return self.household.household_id


@dataclass(frozen=True, slots=True)
class Firm:
    reference: Reference
    books: Mapping[str, HouseholdBook]  # by household id, in order


def recent_trades(
    buys: Sequence[tuple[str, str, date]],
    sales: Sequence[Transaction],
    lots: Sequence[TaxLot],
    *,
    untaxed: Collection[str] = (),
) -> list[RecentTrade]:
    """Buys and sales as the wash-sale rule sees them. A sale is at a loss when its
    proceeds are below the basis of the lots it relieved; when that cannot be known
    (it names no lots, or a lot the books no longer hold with shares), it counts as a
    loss: not buying the security back for 30 days is the safe side of the rule. A
    sale in an ``untaxed`` account (an IRA, a Roth) is never a loss sale: the tax law
    sees no loss inside one."""
    by_account: dict[str, dict[str, TaxLot]] = defaultdict(dict)
    for lot in lots:
        by_account[lot.account_id][lot.lot_id] = lot
    found = [
        RecentTrade(security_id, day, bought=True, account_id=account_id)
        for account_id, security_id, day in buys
    ]
    for sale in sales:
        if sale.security_id is None:
            continue
        gain = sale_gain(sale, by_account.get(sale.account_id, {}))
        found.append(
            RecentTrade(
                sale.security_id,
                sale.trade_date,
                bought=False,
                loss=sale.account_id not in untaxed and (gain is None or gain < 0),
                account_id=sale.account_id,
            )
        )
    return found


def load_firm(
    engine: sa.Engine,
    *,
    as_of: datetime,
    lookback: timedelta,
    check: PriceCheck,
    household_ids: Collection[str] | None = None,
) -> Firm:
    """The firm (or the households named) as the store has it, prices as they stood at
    ``as_of``: one read of each table, not one per account."""
    with collector.paused():  # nothing read is cyclic garbage
        return _load_firm(
            engine, as_of=as_of, lookback=lookback, check=check, household_ids=household_ids
        )


def _load_firm(
    engine: sa.Engine,
    *,
    as_of: datetime,
    lookback: timedelta,
    check: PriceCheck,
    household_ids: Collection[str] | None,
) -> Firm:
    since = as_of.date() - WASH_WINDOW
    wanted = None if household_ids is None else set(household_ids)
    with engine.connect() as connection:
        every = repo.households(connection)
        households = [h for h in every if wanted is None or h.household_id in wanted]
        if wanted is not None:
            missing = wanted - {h.household_id for h in households}
            if missing:
                raise ValidationError(f"no household {', '.join(sorted(missing))}")
        kept = {h.household_id for h in households}
        broken: dict[str, list[str]] = {}  # a household's broken rows fail it, not the run
        accounts = [a for a in repo.accounts(connection, broken=broken) if a.household_id in kept]
        ids = {a.account_id for a in accounts}
        broken_lots: dict[str, list[str]] = {}
        lots = repo.lots(
            connection,
            account_ids=ids if len(households) < len(every) else None,  # all: no list
            broken=broken_lots,
        )
        securities = repo.securities(connection)
        models = repo.models(connection)
        latest = repo.latest_prices(connection, as_of=as_of)
        flows = [f for f in repo.cash_flows(connection) if f.account_id in ids]
        buys = [b for b in repo.buys_since(connection, since=since) if b[0] in ids]
        sales = [s for s in repo.sales_since(connection, since=since) if s.account_id in ids]
        positions = {k: v for k, v in repo.latest_positions(connection).items() if k in ids}
        breaks = {k: tuple(v) for k, v in repo.open_breaks(connection).items() if k in ids}
        clients_of: dict[str, list[ClientProfile]] = defaultdict(list)
        for profile in repo.client_profiles(
            connection, household_ids=None if wanted is None else kept
        ):
            clients_of[profile.household_id].append(profile)
        names = _wanted_securities(households, accounts, lots, models, securities)
        priced = sorted(names & latest.keys())
        history = repo.price_history(
            connection, security_ids=priced, since=as_of - lookback, until=as_of
        )
        checked = repo.price_history(
            connection, security_ids=priced, since=as_of - LOOKBACK, until=as_of
        )
    prices = {s: p for s, (p, _) in latest.items()}
    price_times = {s: at for s, (_, at) in latest.items()}
    _, implausible = find_implausible(
        prices={s: prices[s] for s in checked.security_ids},
        price_times=price_times,
        history=checked,
        check=check,
    )
    reference = Reference(
        as_of=as_of,
        securities=securities,
        models=models,
        prices={s: p for s, p in prices.items() if s not in implausible},
        price_times=price_times,
        implausible=implausible,
        history=history,
    )
    accounts_of: dict[str, list[Account]] = defaultdict(list)
    for a in accounts:
        accounts_of[a.household_id].append(a)
    household_of = {a.account_id: a.household_id for a in accounts}
    for account_id, reasons in broken_lots.items():
        if account_id in household_of:
            broken.setdefault(household_of[account_id], []).extend(reasons)
    lots_of: dict[str, list[TaxLot]] = defaultdict(list)
    for lot in lots:
        if lot.account_id in household_of:
            lots_of[household_of[lot.account_id]].append(lot)
    flows_of: dict[str, list[CashFlow]] = defaultdict(list)
    for f in flows:
        flows_of[household_of[f.account_id]].append(f)
    recent_of: dict[str, list[RecentTrade]] = defaultdict(list)
    untaxed = {a.account_id for a in accounts if not a.registration.taxable}
    for trade in recent_trades(buys, sales, lots, untaxed=untaxed):
        recent_of[household_of[trade.account_id]].append(trade)
    books = {
        h.household_id: HouseholdBook(
            household=h,
            accounts=tuple(accounts_of[h.household_id]),
            lots=tuple(lots_of[h.household_id]),
            cash_flows=tuple(flows_of[h.household_id]),
            positions={
                a.account_id: positions[a.account_id]
                for a in accounts_of[h.household_id]
                if a.account_id in positions
            },
            open_breaks={
                a.account_id: breaks[a.account_id]
                for a in accounts_of[h.household_id]
                if a.account_id in breaks
            },
            recent=tuple(recent_of[h.household_id]),
            broken=tuple(broken.get(h.household_id, ())),
            clients=tuple(clients_of.get(h.household_id, ())),
        )
        for h in households
    }
    return Firm(reference, books)


def _wanted_securities(
    households: Sequence[Household],
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    models: Mapping[str, Model],
    securities: Mapping[str, Security],
) -> set[str]:
    """Every security a run may price: held, in a model used, or a replacement."""
    names = {lot.security_id for lot in lots}
    used = {a.model_id for a in accounts if a.model_id} | {
        h.model_id for h in households if h.model_id
    }
    for model_id in used:
        if model_id in models:
            with contextlib.suppress(ValidationError):  # a model that does not resolve holds
                names |= set(resolve(model_id, models).securities)
    names |= {r for s in names if s in securities for r in securities[s].replacements}
    return names


# ── one household, pure ──────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class HouseholdPlan:
    """What a run decided for one household: its proposal (None when every account
    is held), why each held account was not rebalanced, and what each account's
    tracking errors rest on (in words, and whether the default risk model was used)."""

    household_id: str
    model_id: str | None
    proposal: HouseholdProposal | None
    held: Mapping[str, str]
    risk_models: Mapping[str, tuple[str, bool]]
    findings: tuple[Finding, ...] | None = None  # the rules' (None: not checked)
    rules: str = ""  # the digest of the rule book that checked it


def shipped(plan: HouseholdPlan) -> HouseholdPlan:
    """``plan`` as a run's worker sends it back to be kept: each account's problem
    without its holdings. Keeping reads the proposals (their trades, each sale with its
    lots) and of each problem only its account; the holdings — every lot the account
    holds, its prices and targets — were three quarters of a plan's weight in transit."""
    if plan.proposal is None:
        return plan
    accounts = tuple(
        replace(part, problem=replace(part.problem, holdings=())) for part in plan.proposal.accounts
    )
    return replace(plan, proposal=replace(plan.proposal, accounts=accounts))


# What a run's workers are sent and send back, pickled field by field.
pickled_by_fields(Reference, HouseholdBook, HouseholdPlan)


def _identity(securities: Mapping[str, Security]) -> Callable[[str], str]:
    def identity(security_id: str) -> str:
        known = securities.get(security_id)
        return known.wash_sale_identity if known is not None else security_id

    return identity


def _held(
    reference: Reference, book: HouseholdBook, accounts: Sequence[Account], max_price_age: timedelta
) -> dict[str, str]:
    """Why each of ``accounts`` is held for bad data (stale or implausible prices, lots
    that disagree with the custodian, an open break): bad data is never traded."""
    r = reference
    holds = find_holds(
        accounts=list(accounts),
        lots=list(book.lots),
        securities=frozenset(r.securities),
        price_times=r.price_times,
        implausible=r.implausible,
        models=r.models,
        positions=book.positions,
        open_breaks=book.open_breaks,
        now=r.as_of,
        max_price_age=max_price_age,
    )
    held: dict[str, str] = {}
    for h in holds.holds:
        reason = f"{h.cause.value}: {h.detail}"
        held[h.account_id] = f"{held[h.account_id]}; {reason}" if h.account_id in held else reason
    return held


def household_window(reference: Reference, book: HouseholdBook) -> WashWindow:
    """The household's wash-sale window: every account's trades of the last 30 days."""
    return wash_window(
        book.recent,
        book.lots,
        identity=_identity(reference.securities),
        today=reference.as_of.date(),
    )


def account_problem(
    reference: Reference,
    book: HouseholdBook,
    account_id: str,
    *,
    firm_band: Band,
    max_price_age: timedelta,
    harvest: HarvestMinimum,
    rules: RuleBook | None = None,
) -> Problem:
    """One account's problem, to its own model, under its household's wash-sale window
    and the optimiser's twins of its ``rules``; a held account, or one with no model,
    is refused with the reason."""
    account = next((a for a in book.accounts if a.account_id == account_id), None)
    if account is None:
        raise ValidationError(f"account {account_id} is not in household {book.household_id}")
    held = _held(reference, book, [account], max_price_age)
    if account_id in held:
        raise ValidationError(f"account {account_id} is held, not rebalanced: {held[account_id]}")
    if account.model_id is None:
        raise ValidationError(f"account {account_id} has no model")
    r = reference
    client = client_of(book.clients)
    problem = build_problem(
        account=account_terms(rules, book.household, account, client),
        lots=book.lots,
        prices=r.prices,
        model=resolve(account.model_id, r.models),
        securities=r.securities,
        cash_flows=book.cash_flows,
        wash=household_window(reference, book),
        today=r.as_of.date(),
        firm_band=firm_band,
        harvest=harvest,
    )
    return problem_terms(rules, book.household, problem)


def household_problems(
    reference: Reference,
    book: HouseholdBook,
    options: PlanOptions,
    window: WashWindow | None = None,
) -> tuple[list[Problem], dict[str, str]]:
    """The problem of each account of the household that may be rebalanced — to the
    household's model where it has one, else to the account's own — and why each of
    the others may not (held for bad data, or no model). ``window``: the household's
    wash-sale window, where the caller has it already."""
    r = reference
    held = _held(reference, book, book.accounts, options.max_price_age)
    window = household_window(reference, book) if window is None else window
    client = client_of(book.clients)
    rules = options.rules
    problems = []
    for account in book.accounts:
        if account.account_id in held:
            continue
        model_id = model_of(book.household, account)
        if model_id is None:
            held[account.account_id] = "no model"
            continue
        try:
            problem = build_problem(
                account=account_terms(rules, book.household, account, client),
                lots=book.lots,
                prices=r.prices,
                model=resolve(model_id, r.models),
                securities=r.securities,
                cash_flows=book.cash_flows,
                wash=window,
                today=r.as_of.date(),
                firm_band=options.firm_band,
                harvest=options.harvest,
            )
            problems.append(problem_terms(rules, book.household, problem))
        except ValidationError as e:
            held[account.account_id] = str(e)
    return problems, held


def plan_household(
    reference: Reference, book: HouseholdBook, options: PlanOptions
) -> HouseholdPlan:
    """One household's plan, from what was read — no store, no clock. A household whose
    books hold a row no rule allows is refused: it fails alone, with the rows named."""
    if book.broken:
        shown = "; ".join(book.broken[:3]) + (
            f"; {len(book.broken) - 3} more" if len(book.broken) > 3 else ""
        )
        raise ValidationError(f"household {book.household_id}: its books are broken: {shown}")
    window = household_window(reference, book)
    problems, held = household_problems(reference, book, options, window)
    kept = risks(reference.history)  # each set of securities' risk, worked out once
    risk_models = {
        p.account.account_id: kept.described([h.security_id for h in p.holdings]) for p in problems
    }
    if not problems:
        return HouseholdPlan(book.household_id, book.household.model_id, None, held, risk_models)
    scenario = options.scenario
    per_account = {
        p.account.account_id: scenario_terms(
            options.rules,
            book.household,
            p.account,
            with_min_trade(
                [scenario],
                p.account.min_trade,
                run=options.run_min_trade,
                firm=options.firm_min_trade,
            )[0],
        )
        for p in problems
    }
    proposal = rebalance_household(
        HouseholdProblem(
            book.household_id, tuple(problems), joint=book.household.model_id is not None
        ),
        kept.covariance,
        scenario,
        options.household,
        per_account=per_account,
        risk_model=kept.model,
    )
    findings = None
    if options.rules is not None:
        results = [(part.problem, part.proposal) for part in proposal.accounts]
        findings = tuple(check_results(options.rules, reference, book, results, window))
    digest = options.rules.digest if options.rules is not None else ""
    return HouseholdPlan(
        book.household_id, book.household.model_id, proposal, held, risk_models, findings, digest
    )


# ── keeping a plan ───────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SavedPlan:
    household_proposal_id: str | None
    proposals: Mapping[str, str]  # account → its proposal's id
    answered: tuple[str, ...]  # the requests the proposals answer


def save_plan(
    connection: sa.Connection,
    plan: HouseholdPlan,
    *,
    as_of: datetime,
    run_id: str | None = None,
    created_at: datetime | None = None,
    prepared_by: str | None = None,
) -> SavedPlan:
    """Keep a household's plan in ``connection``'s transaction: its household proposal,
    each account's proposal (superseding the account's earlier one of the method), and
    the account's open requests raised by ``as_of``, answered."""
    return save_plans(
        connection,
        [plan],
        as_of=as_of,
        run_id=run_id,
        created_at=created_at,
        prepared_by=prepared_by,
    )[0]


def save_plans(
    connection: sa.Connection,
    plans: Sequence[HouseholdPlan],
    *,
    as_of: datetime,
    run_id: str | None = None,
    created_at: datetime | None = None,
    prepared_by: str | None = None,
) -> list[SavedPlan]:
    """Keep many households' plans in ``connection``'s transaction, as :func:`save_plan`
    keeps each, one after another — in a few statements for them all. ``prepared_by``:
    the user who asked for them (None: the system)."""
    created_at = created_at or datetime.now(UTC)
    proposed = [
        (i, plan, plan.proposal) for i, plan in enumerate(plans) if plan.proposal is not None
    ]
    households = repo.save_household_proposals(
        connection,
        households=[
            repo.HouseholdProposalToKeep(
                household_id=plan.household_id,
                method=hp.method,
                model_id=plan.model_id,
                meetings=hp.meetings,
                location=hp.location,
                held=dict(plan.held),
                prepared_by=prepared_by,
            )
            for _, plan, hp in proposed
        ],
        as_of=as_of,
        created_at=created_at,
        run_id=run_id,
    )
    parts = [
        (i, plan.risk_models, household.proposal_id, part)
        for (i, plan, hp), household in zip(proposed, households, strict=True)
        for part in hp.accounts
    ]
    accounts = repo.save_proposals(
        connection,
        proposals=[
            repo.ProposalToKeep(
                part.proposal,
                risk_model=risk_models.get(part.problem.account.account_id, ("", False))[0] or None,
                household_proposal_id=household_proposal_id,
                prepared_by=prepared_by,
            )
            for _, risk_models, household_proposal_id, part in parts
        ],
        as_of=as_of,
        created_at=created_at,
    )
    answered = repo.answer_all_requests(
        connection,
        answering=[
            repo.Answering(kept.proposal_id, part.problem.account.account_id, kept.superseded)
            for (*_, part), kept in zip(parts, accounts, strict=True)
        ],
        as_of=as_of,
    )
    ids: dict[int, dict[str, str]] = defaultdict(dict)
    answers: dict[int, list[str]] = defaultdict(list)
    for (i, *_, part), kept in zip(parts, accounts, strict=True):
        ids[i][part.problem.account.account_id] = kept.proposal_id
        answers[i] += answered[kept.proposal_id]
    saved = [SavedPlan(None, {}, ())] * len(plans)
    for (i, *_), household in zip(proposed, households, strict=True):
        saved[i] = SavedPlan(household.proposal_id, ids[i], tuple(answers[i]))
    digest = next((p.rules for p in plans if p.rules), "")
    keep_made(
        connection,
        [
            Made(
                Unit(household.proposal_id, True, plan.household_id, None),
                prepared_by,
                ids[i],
                [
                    (part.problem.account.account_id, t)
                    for part in hp.accounts
                    for t in part.proposal.trades
                ],
                plan.findings,
                digest,
            )
            for (i, plan, hp), household in zip(proposed, households, strict=True)
        ],
        at=created_at,
    )
    return saved
