"""Firm-wide rebalancing runs: every household selected, each a task, the firm read once.

A run reads the firm once (:func:`poise.workflow.households.load_firm`), ships what
every household shares to the workers once (:mod:`poise.workflow.fanout`: a local
process pool, or a Dask cluster), and plans each household where it lands. Each plan
is kept as it comes back, in one transaction with the run's record of that household
— so a run killed at any point holds every household it kept, and ``--resume RUN``
plans only the rest (a household that failed is tried again). Plans that come back
within :data:`KEEP_EVERY` of the last keep wait for the next, and are kept together
(at most :data:`KEEP_AT_MOST` households a transaction): a transaction costs about
16 ms on PostgreSQL and 5 ms on SQLite whatever it holds, and two workers hand back a
plan every 80 ms (bench/RESULTS.md). A household that fails — its data broken, its
problem unsolvable — is recorded with its reason and does not stop the run. At the
end the run's summary (households, proposals, trades, estimated tax, losses
harvested, failures) is kept with it.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.accounts import MinTrade
from poise.domain.errors import ValidationError
from poise.domain.location import Location, read_location
from poise.domain.money import ZERO
from poise.monitor.book import BandPolicy
from poise.optimize.household import HouseholdSettings
from poise.optimize.scenarios import Scenario, optimize_settings
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.repo.runs import DONE, FINISHED, INTERRUPTED
from poise.workflow import collector
from poise.workflow.comply import load_rules
from poise.workflow.fanout import Done, Failed, Fanout, Outcome, choose, fan_out, warm
from poise.workflow.households import (
    HouseholdBook,
    HouseholdPlan,
    PlanOptions,
    Reference,
    load_firm,
    plan_household,
    save_plans,
    shipped,
)
from poise.workflow.monitor import price_check
from poise.workflow.rebalance import harvest_minimum

__all__ = [
    "RunOptions",
    "RunReport",
    "Selection",
    "plan_options",
    "rebalance_run",
    "selected_households",
]

KEEP_EVERY = 1.0  # seconds: a plan back sooner after the last keep waits for the next
KEEP_AT_MOST = 100  # households kept in one transaction at most


@dataclass(frozen=True, slots=True)
class Selection:
    """Which households a run rebalances: every one, those named, those with an
    account on a model or at a custodian, or those with open rebalance requests."""

    all: bool = False
    households: tuple[str, ...] = ()
    model_id: str | None = None
    custodian: str | None = None
    requests: bool = False

    def __post_init__(self) -> None:
        given = [
            self.all,
            bool(self.households),
            self.model_id is not None,
            self.custodian is not None,
            self.requests,
        ]
        if sum(given) != 1:
            raise ValidationError(
                "choose the households one way: --all, --household, --model, --custodian"
                " or --requests"
            )

    def describe(self) -> str:
        if self.all:
            return "every household"
        if self.households:
            return f"household {', '.join(self.households)}"
        if self.model_id is not None:
            return f"households with an account on model {self.model_id}"
        if self.custodian is not None:
            return f"households with an account at {self.custodian}"
        return "households with open rebalance requests"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What a run was asked, as kept with it (so ``--resume`` plans the rest the same
    way): the method and the settings given; the rest comes from the settings."""

    method: str = "bands"
    risk: float = 1.0
    tax: float = 1.0
    cost: float = 1.0
    tax_budget: str | None = None
    max_turnover: str | None = None
    within_bands: bool = False
    min_trade: str | None = None  # the run's overrides, dollars and a fraction
    min_trade_fraction: str | None = None
    location_weight: float | None = None
    bands: str | None = None
    exact: bool | None = None  # whole shares searched exactly; None: POISE_EXACT_SHARES

    def json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def of_json(cls, text: str) -> RunOptions:
        return cls(**json.loads(text))


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def plan_options(options: RunOptions, settings: Settings) -> PlanOptions:
    """The plan options of a run: ``options`` over the settings."""
    dollars, fraction = _decimal(options.min_trade), _decimal(options.min_trade_fraction)
    base = optimize_settings(
        risk=options.risk,
        tax=options.tax,
        cost=options.cost,
        tax_budget=_decimal(options.tax_budget),
        max_turnover=_decimal(options.max_turnover),
        min_trade=settings.min_trade if dollars is None else dollars,
        min_trade_fraction=settings.min_trade_fraction if fraction is None else fraction,
        within_bands=options.within_bands,
        long_term_wait_days=settings.long_term_wait_days,
        exact=settings.exact_shares if options.exact is None else options.exact,
    )
    location = read_location(settings.location_file) if settings.location_file else Location()
    weight = (
        settings.location_weight if options.location_weight is None else options.location_weight
    )
    return PlanOptions(
        scenario=Scenario.of_method(options.method, base),
        firm_band=BandPolicy.preset(options.bands or settings.band_preset).band(),
        max_price_age=timedelta(days=settings.max_price_age_days),
        harvest=harvest_minimum(settings),
        firm_min_trade=MinTrade(settings.min_trade, settings.min_trade_fraction),
        run_min_trade=MinTrade(dollars, fraction),
        household=HouseholdSettings(location_weight=weight, location=location),
        rules=load_rules(settings),
    )


def selected_households(
    connection: sa.Connection, selection: Selection, *, as_of: datetime
) -> list[str]:
    """The ids of the households ``selection`` picks, in order."""
    h, a, r = t.households, t.accounts, t.rebalance_requests
    if selection.all:
        query = sa.select(h.c.household_id)
    elif selection.households:
        known = set(
            connection.execute(
                sa.select(h.c.household_id).where(h.c.household_id.in_(selection.households))
            ).scalars()
        )
        missing = [x for x in selection.households if x not in known]
        if missing:
            raise ValidationError(f"no household {', '.join(missing)}")
        return sorted(set(selection.households))
    elif selection.model_id is not None:
        on_model = sa.select(h.c.household_id).where(h.c.model_id == selection.model_id)
        found = set(connection.execute(on_model).scalars())
        query = sa.select(a.c.household_id).where(a.c.model_id == selection.model_id)
        return sorted(found | set(connection.execute(query).scalars()))
    elif selection.custodian is not None:
        query = sa.select(a.c.household_id).where(a.c.custodian == selection.custodian)
    else:
        query = (
            sa.select(a.c.household_id)
            .join(r, r.c.account_id == a.c.account_id)
            .where((r.c.status == "open") & (r.c.as_of <= as_of))
        )
    return sorted(set(connection.execute(query).scalars()))


def _plan(shared: tuple[Reference, PlanOptions], book: HouseholdBook) -> HouseholdPlan:
    """One household's task, where it runs: its plan, as the run keeps it."""
    reference, options = shared
    return shipped(plan_household(reference, book, options))


@dataclass(slots=True)
class RunReport:
    """What a run did, so far or in all."""

    run_id: str
    households: int  # selected
    resumed: int = 0  # finished by an earlier attempt of the run, not planned again
    done: int = 0
    proposals: int = 0  # accounts' proposals kept
    trades: int = 0
    estimated_tax: Decimal = ZERO
    harvested: Decimal = ZERO  # losses sold in taxable accounts
    held: int = 0  # accounts not rebalanced, for the reasons their plans give
    failed: dict[str, str] = field(default_factory=dict)  # household → reason
    answered: int = 0  # requests answered
    fanout: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "households": self.households,
            "resumed": self.resumed,
            "done": self.done,
            "proposals": self.proposals,
            "trades": self.trades,
            "estimated_tax": str(self.estimated_tax),
            "harvested_losses": str(self.harvested),
            "held_accounts": self.held,
            "failed": len(self.failed),
            "failures": dict(sorted(self.failed.items())),
            "requests_answered": self.answered,
            "fanout": self.fanout,
        }

    def add(self, plan: HouseholdPlan) -> None:
        self.done += 1
        self.held += len(plan.held)
        if plan.proposal is None:
            return
        for part in plan.proposal.accounts:
            p = part.proposal
            self.proposals += 1
            self.trades += len(p.trades)
            self.estimated_tax += p.estimated_tax
            if part.problem.account.registration.taxable:
                self.harvested += sum(
                    (-s.gain for tr in p.trades for s in tr.lots if s.gain < ZERO), ZERO
                )


Progress = Callable[[RunReport], None]


def rebalance_run(
    engine: sa.Engine,
    *,
    as_of: datetime,
    selection: Selection | None = None,
    options: RunOptions | None = None,
    resume: str | None = None,
    settings: Settings | None = None,
    fanout: Fanout | None = None,
    progress: Progress | None = None,
    started: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    prepared_by: str | None = None,
) -> RunReport:
    """Rebalance the households ``selection`` picks as one run (or, with ``resume``, the
    households an earlier run of that id did not finish, as it was asked), keeping each
    household's proposal as it comes back. ``started`` is told the run's id once the
    run is kept (before the firm is read); once ``stop`` is set, the plans back so far
    are kept and the run ends ``interrupted`` — a resume goes on with it. The proposals
    are prepared by the user ``prepared_by`` (None: the system), who cannot approve them."""
    settings = settings or Settings()
    begun = _begin(engine, as_of=as_of, selection=selection, options=options, resume=resume,
                   settings=settings)  # fmt: skip
    run_id, as_of, chosen, finished = begun.run_id, begun.as_of, begun.chosen, begun.finished
    plan_with = plan_options(begun.options, settings)
    if started is not None:
        started(run_id)
    todo = [h for h in chosen if h not in finished]
    report = RunReport(run_id, households=len(chosen), resumed=len(chosen) - len(todo))
    fanout = fanout or choose(
        tasks=len(todo), workers=settings.workers, dask_scheduler=settings.dask_scheduler
    )
    warm(fanout, _plan)  # the workers' imports while the firm is read
    firm = load_firm(
        engine,
        as_of=as_of,
        lookback=timedelta(days=settings.risk_lookback_days),
        check=price_check(settings),
        household_ids=todo,
    )
    books = [firm.books[h] for h in todo]
    if progress is not None:
        progress(report)
    with (
        collector.set_apart(),
        fan_out(
            _plan,
            books,
            shared=(firm.reference, plan_with),
            fanout=fanout,
        ) as outcomes,
    ):
        report.fanout = outcomes.fanout.name
        pending: list[Outcome[HouseholdBook, HouseholdPlan]] = []
        kept_at = -math.inf
        try:
            for outcome in outcomes:
                pending.append(outcome)
                if stop is not None and stop.is_set():
                    break  # leaving fan_out stops the workers
                if len(pending) >= KEEP_AT_MOST or time.monotonic() - kept_at >= KEEP_EVERY:
                    _keep(
                        engine, pending, run_id=run_id, as_of=as_of, report=report, by=prepared_by
                    )
                    pending, kept_at = [], time.monotonic()
                    if progress is not None:
                        progress(report)
        except KeyboardInterrupt:  # the plans already back are kept before the run stops
            _keep(engine, pending, run_id=run_id, as_of=as_of, report=report, by=prepared_by)
            raise
        _keep(engine, pending, run_id=run_id, as_of=as_of, report=report, by=prepared_by)
        if pending and progress is not None:
            progress(report)
    stopped = stop is not None and stop.is_set() and report.done + len(report.failed) < len(todo)
    with engine.execution_options(writes=True).begin() as connection:
        repo.finish_rebalance_run(
            connection,
            run_id=run_id,
            summary=report.summary(),
            finished_at=datetime.now(UTC),
            status=INTERRUPTED if stopped else FINISHED,
        )
    return report


@dataclass(frozen=True, slots=True)
class _Begun:
    run_id: str
    as_of: datetime
    options: RunOptions
    chosen: list[str]  # the households selected
    finished: frozenset[str]  # those an earlier attempt of the run did


def _begin(
    engine: sa.Engine,
    *,
    as_of: datetime,
    selection: Selection | None,
    options: RunOptions | None,
    resume: str | None,
    settings: Settings,
) -> _Begun:
    """The run kept as started — or, with ``resume``, taken up again as it was asked —
    and the households it selects."""
    if resume is not None:
        with engine.execution_options(writes=True).begin() as connection:
            run = repo.resume_rebalance_run(connection, run_id=resume)
        as_of = run.as_of
        selection = Selection(**_selection_of(run.selection))
        options = RunOptions.of_json(json.dumps(run.options))
    elif selection is None:
        raise ValidationError("a run needs a selection of households, or a run to resume")
    options = options or RunOptions()
    if options.exact is None:  # kept as it was, so that a resumed run plans the same way
        options = replace(options, exact=settings.exact_shares)
    with engine.connect() as connection:
        chosen = selected_households(connection, selection, as_of=as_of)
    if resume is not None:
        with engine.connect() as connection:  # those done stay done; failed ones go again
            finished = repo.finished_households(connection, run_id=resume)
        return _Begun(resume, as_of, options, chosen, finished)
    with engine.execution_options(writes=True).begin() as connection:
        run_id = repo.start_rebalance_run(
            connection,
            as_of=as_of,
            selection={**asdict(selection), "households": list(selection.households)},
            options=asdict(options),
            started_at=datetime.now(UTC),
            households=len(chosen),
        )
    return _Begun(run_id, as_of, options, chosen, frozenset())


def _keep(
    engine: sa.Engine,
    outcomes: Sequence[Outcome[HouseholdBook, HouseholdPlan]],
    *,
    run_id: str,
    as_of: datetime,
    report: RunReport,
    by: str | None = None,
) -> None:
    """Keep the households of ``outcomes`` in one transaction: each plan with the run's
    record of its household done, each failure with its reason. A household the run
    has done already (another process resuming it) is left as it was. ``by``: the user
    who started the run, who prepared its proposals (None: the system)."""
    if not outcomes:
        return
    ids = [o.task.household_id for o in outcomes]
    with engine.execution_options(writes=True).begin() as connection:
        before = repo.household_statuses(connection, run_id=run_id, household_ids=ids)
        fresh = [o for o in outcomes if before.get(o.task.household_id) != DONE]
        done = [o for o in fresh if isinstance(o, Done)]
        failed = {o.task.household_id: o.failure.reason for o in fresh if isinstance(o, Failed)}
        saved = save_plans(
            connection, [o.value for o in done], as_of=as_of, run_id=run_id, prepared_by=by
        )
        repo.households_finished(
            connection,
            run_id=run_id,
            done={
                o.task.household_id: s.household_proposal_id
                for o, s in zip(done, saved, strict=True)
            },
            failed=failed,
            statuses=before,
        )
    for o, s in zip(done, saved, strict=True):
        report.add(o.value)
        report.answered += len(s.answered)
    report.failed.update(failed)


def _selection_of(kept: Mapping[str, Any]) -> dict[str, Any]:
    return {**kept, "households": tuple(kept.get("households") or ())}


def households_of(books: Sequence[HouseholdBook]) -> list[str]:
    return [b.household_id for b in books]
