"""Rebalancing on request: one account (a method, or scenarios side by side), one
household (its accounts decided together), or a firm-wide run — a background job the
caller follows at ``/api/v1/runs/{run_id}`` and on ``/api/v1/events``.

What each does is what its command does — ``poise rebalance --account``, ``poise
rebalance --household``, ``poise rebalance --all`` and the other selections — by the
same functions, kept in the store the same way. Who may: an account or a household,
the roles that propose trades (:data:`~poise.domain.users.REBALANCERS`), within their
scope; a firm-wide run, the firm-wide ones that do (:data:`~poise.domain.users.RUNNERS`).
Every one of them takes an ``Idempotency-Key`` (:mod:`poise.api.idempotency`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from poise.api.deps import EngineDep, SettingsDep
from poise.api.idempotency import OnceDep
from poise.api.routes.answers import (
    FORBIDDEN,
    NOT_FOUND,
    SIGNED_IN,
    WRITTEN,
    Document,
    Moment,
    created,
)
from poise.api.routes.monitoring import RequestOut
from poise.api.routes.proposals import HouseholdProposalOut, ProposalOut
from poise.api.routes.runs import RunOut
from poise.api.scoping import ScopedDep, only, scoped_router
from poise.bus.events import Event
from poise.domain.errors import ConflictError, ValidationError
from poise.domain.users import REBALANCERS, RUNNERS
from poise.optimize.names import ALL, METHOD_NAMES, SCENARIO_NAMES
from poise.settings import Settings
from poise.store import repo
from poise.store.repo import pages
from poise.workflow.documents import household_json, proposal_json, request_json, run_json

__all__ = ["router"]

router = scoped_router(
    tags=["rebalancing"],
    dependencies=[Depends(only(REBALANCERS, verb="do"))],
    responses={**SIGNED_IN, **WRITTEN, **FORBIDDEN, **NOT_FOUND},
)

Method = Literal["bands", "cash", "optimize"]  # optimize.names.METHOD_NAMES
ScenarioName = Literal["full", "no-gains", "harvest", "cash", "bands", "all"]
assert set(Method.__args__) == set(METHOD_NAMES)  # type: ignore[attr-defined]
assert set(ScenarioName.__args__) == {*SCENARIO_NAMES, ALL}  # type: ignore[attr-defined]

Weight = Annotated[float, Field(ge=0, le=1e6)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=30)]
Fraction = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False, max_digits=30)]


class _Asked(BaseModel):
    """What every rebalance may be asked; each left out is the firm's setting."""

    model_config = ConfigDict(extra="forbid")

    method: Method | None = Field(None, description="bands (the default), cash or optimize")
    risk_weight: Weight | None = Field(None, description="optimize: the weight of risk")
    tax_weight: Weight | None = Field(None, description="optimize: the weight of tax")
    cost_weight: Weight | None = Field(None, description="optimize: the weight of costs")
    tax_budget: Amount | None = Field(None, description="optimize: net gains to realise at most")
    max_turnover: Fraction | None = Field(None, description="optimize: a fraction of the value")
    within_bands: bool = Field(False, description="optimize: trade only what is out of band")
    min_trade: Amount | None = Field(None, description="the smallest trade, in dollars")
    min_trade_fraction: Fraction | None = Field(
        None, description="the smallest trade, a fraction of the account"
    )
    bands: str | None = Field(None, description="a band preset over the firm's", max_length=64)
    as_of: datetime | date | None = Field(
        None, description="prices as of (a date: its end, UTC); default now"
    )

    def moment(self) -> datetime:
        """``as_of`` as a time: a date is its last second, UTC; a naive time is UTC."""
        if self.as_of is None:
            return datetime.now(UTC)
        if not isinstance(self.as_of, datetime):
            return datetime.combine(self.as_of, time(23, 59, 59), tzinfo=UTC)
        return self.as_of if self.as_of.tzinfo else self.as_of.replace(tzinfo=UTC)

    def _optimize_only(self) -> list[str]:
        given = {
            "risk_weight": self.risk_weight, "tax_weight": self.tax_weight,
            "cost_weight": self.cost_weight, "tax_budget": self.tax_budget,
            "max_turnover": self.max_turnover, "within_bands": self.within_bands or None,
        }  # fmt: skip
        return [name for name, value in given.items() if value is not None]


class AccountRebalance(_Asked):
    scenarios: list[ScenarioName] = Field(
        [],
        max_length=10,
        description="scenarios side by side, the first kept (all: every one); not with method",
    )

    @model_validator(mode="after")
    def _fits(self) -> AccountRebalance:
        if self.scenarios and self.method is not None:
            raise ValueError("give method or scenarios, not both")
        given = self._optimize_only()
        if given and not self.scenarios and self.method != "optimize":
            raise ValueError(
                f"{', '.join(given)}: only the optimize method (and scenarios) use them"
            )
        return self


class HouseholdRebalance(_Asked):
    location_weight: Weight | None = Field(
        None, description="optimize: the weight of asset location across the accounts"
    )

    @model_validator(mode="after")
    def _fits(self) -> HouseholdRebalance:
        given = self._optimize_only()
        if given and self.method != "optimize":
            raise ValueError(f"{', '.join(given)}: only the optimize method uses them")
        return self


class Selection(BaseModel):
    """Which households: every one, those named, those with an account on a model or
    at a custodian, or those with open rebalance requests — exactly one of these."""

    model_config = ConfigDict(extra="forbid")

    all: bool = False
    households: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        [], max_length=100_000
    )
    model_id: str | None = Field(None, min_length=1, max_length=64)
    custodian: str | None = Field(None, min_length=1, max_length=64)
    requests: bool = False

    @model_validator(mode="after")
    def _one(self) -> Selection:
        chosen = [self.all, bool(self.households), self.model_id is not None,
                  self.custodian is not None, self.requests]  # fmt: skip
        if sum(chosen) != 1:
            raise ValueError(
                "choose the households one way: all, households, model_id, custodian or requests"
            )
        return self


class RunRequest(HouseholdRebalance):
    selection: Selection | None = Field(None, description="which households (not with resume)")
    resume: str | None = Field(
        None, description="finish an interrupted run, as it was asked", max_length=64
    )

    @model_validator(mode="after")
    def _what(self) -> RunRequest:
        asked = self.model_dump(exclude={"selection", "resume"}, exclude_defaults=True)
        if self.resume is not None and (self.selection is not None or asked):
            raise ValueError("resume finishes a run as it was asked: give nothing else")
        if self.resume is None and self.selection is None:
            raise ValueError("give a selection of households, or a run to resume")
        return self


class ScenarioOut(Document):
    name: str
    method: str
    about: str
    settings: dict[str, Any]  # what it was run with
    figures: dict[str, Any]  # trades, turnover, tax, cost, tracking error, drift
    proposal: ProposalOut  # the first one's as kept; the others' unsaved (no id)


class AccountRebalanceOut(Document):
    proposal_id: str  # the kept proposal: GET /api/v1/proposals/{proposal_id}
    kept: str  # the scenario kept ("" for a method)
    account_id: str
    as_of: Moment
    risk_model: str
    risk_model_default: bool  # too little price history: tracking errors are rough
    scenarios: list[ScenarioOut]


class HouseholdRebalanceOut(HouseholdProposalOut):
    pass


def _weight(value: float | None) -> float:
    return 1.0 if value is None else value


@router.post(
    "/accounts/{account_id}/rebalance",
    response_model=AccountRebalanceOut,
    status_code=201,
    summary="Rebalance an account now",
)
def rebalance_account(
    request: Request, account_id: str, body: AccountRebalance, who: ScopedDep,
    engine: EngineDep, settings: SettingsDep, once: OnceDep,
) -> Response:  # fmt: skip
    """A method's proposal, or scenarios side by side with the first kept — as ``poise
    rebalance --account ID [--scenario …] --json``. The kept proposal answers the
    account's open requests and supersedes its earlier proposal."""
    from poise.optimize.scenarios import tradeoffs  # noqa: PLC0415 - the engine loads late
    from poise.workflow.documents import scenarios_json  # noqa: PLC0415
    from poise.workflow.rebalance import Asked  # noqa: PLC0415
    from poise.workflow.rebalance import rebalance_account as rebalance  # noqa: PLC0415

    def make() -> Response:
        at = body.moment()
        asked = Asked(
            method=body.method, scenarios=tuple(body.scenarios), risk=_weight(body.risk_weight),
            tax=_weight(body.tax_weight), cost=_weight(body.cost_weight),
            tax_budget=body.tax_budget, max_turnover=body.max_turnover,
            within_bands=body.within_bands, min_trade=body.min_trade,
            min_trade_fraction=body.min_trade_fraction, bands=body.bands,
        )  # fmt: skip
        proposed = rebalance(engine, account_id=account_id, as_of=at, asked=asked,
                             settings=settings, prepared_by=who.user.user_id)  # fmt: skip
        with engine.connect() as connection:
            kept = proposal_json(repo.proposal(connection, proposal_id=proposed.proposal_id))
        document = scenarios_json(proposed, tradeoffs(proposed.results), as_of=at, kept=kept)
        return created(AccountRebalanceOut, document, f"proposals/{proposed.proposal_id}")

    return once(make)


@router.post(
    "/households/{household_id}/rebalance",
    response_model=HouseholdRebalanceOut,
    status_code=201,
    summary="Rebalance a household now",
    responses={
        409: {
            "description": "nothing to propose: every account is held; or a"
            " request with this Idempotency-Key is still being answered"
        }
    },
)
def rebalance_household(
    request: Request, household_id: str, body: HouseholdRebalance, who: ScopedDep,
    engine: EngineDep, settings: SettingsDep, once: OnceDep,
) -> Response:  # fmt: skip
    """Its accounts decided together — no wash sale across them, one model across them
    where the household has one, assets located — as ``poise rebalance --household ID``:
    a run of one household, kept as such. Answers the household's proposal, each
    account's whole."""
    from poise.workflow.run import Selection as Chosen  # noqa: PLC0415 - the engine loads late
    from poise.workflow.run import rebalance_run  # noqa: PLC0415

    def make() -> Response:
        report = rebalance_run(
            engine, as_of=body.moment(), selection=Chosen(households=(household_id,)),
            options=_options(body), settings=settings, prepared_by=who.user.user_id,
        )  # fmt: skip
        if report.failed:
            raise ValidationError(f"{household_id} could not be rebalanced: "
                                  f"{report.failed[household_id]}")  # fmt: skip
        with engine.connect() as connection:
            (done,) = repo.run_households(connection, run_id=report.run_id)
            if done.household_proposal_id is None:
                raise ConflictError(f"nothing to propose for {household_id}: every account is"
                                    " held (see /api/v1/holds)")  # fmt: skip
            household = repo.household_proposal(connection, proposal_id=done.household_proposal_id)
            parts = [proposal_json(repo.proposal(connection, proposal_id=p))
                     for p in household.accounts]  # fmt: skip
        return created(
            HouseholdRebalanceOut,
            household_json(household, parts),
            f"household-proposals/{household.proposal_id}",
        )

    return once(make)


class AskForRebalance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500, description="Why, for the people who act on it")


@router.post(
    "/accounts/{account_id}/requests",
    response_model=RequestOut,
    status_code=201,
    summary="Ask for an account to be rebalanced",
    responses={200: {"description": "asked already today: that request", "model": RequestOut}},
)
def ask_for_rebalance(
    request: Request, account_id: str, body: AskForRebalance, who: ScopedDep,
    engine: EngineDep, settings: SettingsDep, once: OnceDep,
) -> Response:  # fmt: skip
    """A manual rebalance request, as ``poise requests add``: stored, and published on
    the bus for a worker (``poise worker``) to answer with a proposal. One a day an
    account: asked again the same day, it is the same request (``200``)."""
    from poise.workflow.watching import ask_for_rebalance as ask  # noqa: PLC0415
    from poise.workflow.watching import request_event  # noqa: PLC0415

    def make() -> Response:
        raised, new = ask(engine, account_id=account_id, note=body.note, at=datetime.now(UTC))
        if settings.bus != "inprocess":  # no worker hears this process's own bus
            asyncio.run(_publish(request_event(raised), settings))
        with engine.connect() as connection:
            found = pages.rebalance_request(connection, request_id=raised.request_id)
        return created(RequestOut, request_json(found), f"requests/{raised.request_id}",
                       status=201 if new else 200)  # fmt: skip

    return once(make)


async def _publish(event: Event, settings: Settings) -> None:
    from poise.bus.registry import open_bus  # noqa: PLC0415

    bus = await open_bus(settings.bus, url=settings.nats_url)
    try:
        await bus.publish(event)
    finally:
        await bus.close()


def _options(body: HouseholdRebalance) -> Any:
    from poise.workflow.run import RunOptions  # noqa: PLC0415

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return RunOptions(
        method=body.method or "bands", risk=_weight(body.risk_weight),
        tax=_weight(body.tax_weight), cost=_weight(body.cost_weight),
        tax_budget=text(body.tax_budget), max_turnover=text(body.max_turnover),
        within_bands=body.within_bands, min_trade=text(body.min_trade),
        min_trade_fraction=text(body.min_trade_fraction),
        location_weight=body.location_weight, bands=body.bands,
    )  # fmt: skip


runs_router = scoped_router(
    tags=["runs"],
    dependencies=[Depends(only(RUNNERS, verb="do"))],
    responses={**SIGNED_IN, **WRITTEN, **FORBIDDEN},
)


@runs_router.post(
    "/runs",
    response_model=RunOut,
    status_code=202,
    summary="Start a firm-wide run",
    responses={
        409: {
            "description": "a run is in progress in this server; or a request"
            " with this Idempotency-Key is still being answered"
        }
    },
)
def start_run(
    request: Request, body: RunRequest, who: ScopedDep, engine: EngineDep, once: OnceDep
) -> Response:
    """Rebalance the households selected, each as one, in the background — as ``poise
    rebalance --all`` (or ``--model``, ``--custodian``, ``--requests``, ``--household``
    …, or ``--resume RUN``). Answers ``202`` once the run is kept, with where to follow
    it: ``GET /api/v1/runs/{run_id}`` (households done and failed of how many), and
    ``run`` events on ``GET /api/v1/events``. One run at a time in a server."""
    from poise.api.jobs import jobs_of  # noqa: PLC0415
    from poise.workflow.run import Selection as Chosen  # noqa: PLC0415

    def make() -> Response:
        chosen = None
        if body.selection is not None:
            s = body.selection
            chosen = Chosen(all=s.all, households=tuple(s.households), model_id=s.model_id,
                            custodian=s.custodian, requests=s.requests)  # fmt: skip
        run_id = jobs_of(request.app).start(
            as_of=body.moment(), selection=chosen,
            options=None if body.resume else _options(body), resume=body.resume,
            prepared_by=who.user.user_id,
        )  # fmt: skip
        with engine.connect() as connection:
            run = repo.rebalance_run(connection, run_id=run_id)
        return created(RunOut, run_json(run), f"runs/{run_id}", status=202)

    return once(make)
