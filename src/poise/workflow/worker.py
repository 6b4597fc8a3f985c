"""The rebalancing worker: rebalance requests in, household proposals out, once each.

A request names an account; its **household** is what is rebalanced (the wash-sale
rule and a household model span every account of it). For each request the worker
reads the household (:func:`~poise.workflow.households.load_firm`), plans it
(:func:`~poise.workflow.households.plan_household`, pure) and keeps the plan
(:func:`~poise.workflow.households.save_plan`), which answers the request.

**Exactly once per request**, whatever is killed when — the store is the truth, the
bus only a way of hearing about requests:

- the request is stored (once, by id: the monitor's ``poise-requests`` consumer may
  not have stored it yet) and read back before anything is planned; one already
  answered or failed is skipped — a redelivery, or a request an earlier plan of its
  household answered;
- the plan, the requests it answers and the ones it cannot are written in **one
  transaction**, after the request's row is locked and found still open;
- only after that commit does the handler return, and the bus acknowledge. A worker
  killed before the commit left nothing behind and gets the request again; one
  killed after it gets it again and skips it.

**Coalescing.** A household is planned at the latest as-of time of its open requests,
and the plan answers all of them: the accounts' requests by their proposals, the
household's own by its household proposal. Their events, when they come, are skipped.

**Failures.** Planning is pure, so a household that cannot be planned — broken books,
no household, a problem the engine refuses — would fail the same way every time: its
open requests are marked ``failed`` with the reason (and never tried again), and the
request is acknowledged. A request whose account the plan does not rebalance (held
for bad data, no model) fails with the hold. A fault of the store or the bus is not
the request's: the handler raises, and the bus retries it as
:mod:`poise.bus.delivery` says (a few times, then it is terminated and logged; the
request stays open in the store, where the next sweep finds it).

**Sweeps.** :meth:`WorkerService.sweep` answers the requests open in the store, oldest
first, without the bus: at start (what was stored while no worker ran, or whose event
never came) and every ``poll`` seconds. On the in-process bus, where no other process
can publish, the sweep is how a worker beside ``poise monitor`` hears of requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from poise.bus.events import REQUESTS, Event
from poise.bus.port import Bus, BusError, Subscription
from poise.domain.errors import StoreError, ValidationError
from poise.monitor.plausible import PriceCheck
from poise.monitor.triggers import RebalanceRequest
from poise.settings import Settings
from poise.store import repo
from poise.store.repo.requests import ANSWERED, OPEN, RequestState
from poise.workflow.households import (
    HouseholdBook,
    HouseholdPlan,
    PlanOptions,
    load_firm,
    plan_household,
    save_plan,
)
from poise.workflow.monitor import price_check
from poise.workflow.run import RunOptions, plan_options

__all__ = [
    "WORKER_CONSUMER",
    "Handled",
    "Result",
    "WorkerOptions",
    "WorkerService",
    "answer_request",
    "plan_time",
    "serve",
    "unanswered",
    "worker_options",
]

log = logging.getLogger("poise.worker")

WORKER_CONSUMER = "poise-worker"

TRANSIENT: tuple[type[BaseException], ...] = (
    StoreError,
    BusError,
    sa.exc.SQLAlchemyError,
    OSError,
)
"""Faults of the store or the bus, not of a request: retried, never recorded against it."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How the worker plans every household: a run's options over the settings."""

    plan: PlanOptions
    method: str
    lookback: timedelta  # of the risk model's price history
    check: PriceCheck  # the price check the monitor applies


def worker_options(options: RunOptions, settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        plan=plan_options(options, settings),
        method=options.method,
        lookback=timedelta(days=settings.risk_lookback_days),
        check=price_check(settings),
    )


class Result(enum.StrEnum):
    ANSWERED = "answered"  # its household planned and kept: the plan answers it
    SKIPPED = "skipped"  # already answered or failed in the store
    FAILED = "failed"  # its household could not be planned, or its account was held


@dataclass(frozen=True, slots=True)
class Handled:
    """What the worker did with one request."""

    request_id: str
    result: Result
    household_id: str | None
    as_of: datetime | None  # the time its household was planned for
    household_proposal_id: str | None
    answered: tuple[str, ...] = ()  # the requests the plan answered, this one among them
    failed: Mapping[str, str] = field(default_factory=dict)  # requests failed, and why
    reason: str = ""  # skipped: how it stands; failed: why
    seconds: float = 0.0  # from the request read to the commit

    def fields(self) -> dict[str, Any]:
        """The log line's fields, in order."""
        found: dict[str, Any] = {"request": self.request_id, "household": self.household_id}
        if self.result is Result.SKIPPED:
            return {**found, "why": self.reason}
        found |= {"as_of": self.as_of.isoformat() if self.as_of else None}
        if self.household_proposal_id:
            found["proposal"] = self.household_proposal_id
        if self.answered:
            found["answered"] = len(self.answered)
        if self.failed:
            found["failed"] = len(self.failed)
        if self.result is Result.FAILED:
            found["why"] = self.reason
        return {**found, "seconds": round(self.seconds, 3)}


# ── the decisions, pure ────────────────────────────────────────────────────────


def plan_time(as_of: datetime, pending: Sequence[RequestState]) -> datetime:
    """The time a household is planned for: the latest of the request's and of its
    household's other open requests' as-of times, so one plan answers them all."""
    return max([as_of, *(p.as_of for p in pending)])


def unanswered(
    pending: Sequence[RequestState], plan: HouseholdPlan, answered: Collection[str]
) -> dict[str, str]:
    """Why each of ``pending`` that the kept ``plan`` did not answer could not be."""
    found = {}
    for p in pending:
        if p.request_id in answered:
            continue
        if p.account_id is not None and p.account_id in plan.held:
            why = f"account {p.account_id} is not rebalanced: {plan.held[p.account_id]}"
        elif plan.proposal is None:
            why = f"household {plan.household_id}: no account of it can be rebalanced"
        else:
            why = f"account {p.account_id} is not in household {plan.household_id}'s proposal"
        found[p.request_id] = why
    return found


def _failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# ── one request, against the store ─────────────────────────────────────────────


def _store_and_read(engine: sa.Engine, payload: Mapping[str, Any]) -> RequestState:
    """The request as the store has it, stored first if it is not there yet."""
    request_id = payload["request_id"]
    with engine.connect() as connection:
        found = repo.request_states(connection, ids=[request_id])
    if request_id not in found:
        with engine.execution_options(writes=True).begin() as connection:
            repo.save_requests(connection, requests=[payload], received_at=datetime.now(UTC))
            found = repo.request_states(connection, ids=[request_id])
    return found[request_id]


def _how_it_stands(state: RequestState) -> str:
    if state.status == ANSWERED:
        return f"answered by {state.answered_by}"
    return f"{state.status}: {state.failure}" if state.failure else state.status


def _household_of(engine: sa.Engine, request: RebalanceRequest) -> str:
    if request.household_id is not None:
        return request.household_id
    account_id = request.account_id or ""
    with engine.connect() as connection:
        found = repo.households_of(connection, account_ids=[account_id])
    if not found:
        raise ValidationError(f"no account {account_id}")
    return next(iter(found))


def _fail(
    engine: sa.Engine,
    state: RequestState,
    household_id: str | None,
    reason: str,
    *,
    until: datetime,
    started: float,
) -> Handled:
    """Record the request, and its household's other open requests up to ``until``,
    failed with ``reason``, in one transaction."""
    with engine.execution_options(writes=True).begin() as connection:
        now = repo.request_states(connection, ids=[state.request_id], lock=True)
        if now[state.request_id].status != OPEN:
            return _skipped(now[state.request_id], household_id, started)
        pending = [state]
        if household_id is not None:
            pending += repo.household_requests(
                connection, household_id=household_id, until=until, lock=True
            )
        failed = repo.fail_requests(connection, failures={p.request_id: reason for p in pending})
    return Handled(
        state.request_id,
        Result.FAILED,
        household_id,
        until,
        None,
        failed=dict.fromkeys(failed, reason),
        reason=reason,
        seconds=time.perf_counter() - started,
    )


def _skipped(state: RequestState, household_id: str | None, started: float) -> Handled:
    return Handled(
        state.request_id,
        Result.SKIPPED,
        household_id or state.household_id,
        None,
        None,
        reason=_how_it_stands(state),
        seconds=time.perf_counter() - started,
    )


def _keep(
    engine: sa.Engine,
    state: RequestState,
    book: HouseholdBook,
    plan: HouseholdPlan,
    *,
    as_of: datetime,
    started: float,
) -> Handled:
    """Keep ``plan`` and close every open request of the household it covers — answered,
    or failed with why — in one transaction, if the request is still open."""
    household_id = book.household_id
    with engine.execution_options(writes=True).begin() as connection:
        now = repo.request_states(connection, ids=[state.request_id], lock=True)
        if now[state.request_id].status != OPEN:  # another worker answered it meanwhile
            return _skipped(now[state.request_id], household_id, started)
        pending = {
            p.request_id: p
            for p in repo.household_requests(
                connection,
                household_id=household_id,
                account_ids=[a.account_id for a in book.accounts],
                until=as_of,
                lock=True,
            )
        }
        pending.setdefault(state.request_id, now[state.request_id])
        saved = save_plan(connection, plan, as_of=as_of)
        if saved.household_proposal_id is not None:
            repo.answer_household_requests(
                connection,
                household_id=household_id,
                proposal_id=saved.household_proposal_id,
                as_of=as_of,
            )
        after = repo.request_states(connection, ids=list(pending))
        answered = tuple(i for i in pending if after[i].status == ANSWERED)
        failures = unanswered(list(pending.values()), plan, answered)
        repo.fail_requests(connection, failures=failures)
    mine = failures.get(state.request_id)
    return Handled(
        state.request_id,
        Result.FAILED if mine else Result.ANSWERED,
        household_id,
        as_of,
        saved.household_proposal_id,
        answered=answered,
        failed=failures,
        reason=mine or "",
        seconds=time.perf_counter() - started,
    )


def answer_request(
    engine: sa.Engine, payload: Mapping[str, Any], options: WorkerOptions
) -> Handled:
    """Answer one request (a request event's payload): plan its household and keep the
    plan, or record why it cannot be; skip it if the store has it answered or failed.

    Raises only for a fault of the store (or a payload that is not a request): that is
    not the request's, and is worth trying again.
    """
    started = time.perf_counter()
    try:
        request = RebalanceRequest.from_payload(payload)
        if payload["request_id"] != request.request_id:
            raise ValueError(f"its id {payload['request_id']!r} is not {request.request_id!r}")
    except (KeyError, TypeError, ValueError) as error:
        raise ValidationError(f"not a rebalance request: {error!r}") from error
    state = _store_and_read(engine, payload)
    if state.status != OPEN:
        return _skipped(state, request.household_id, started)
    household_id: str | None = None
    as_of = request.as_of
    try:
        household_id = _household_of(engine, request)
        with engine.connect() as connection:
            pending = repo.household_requests(connection, household_id=household_id)
        as_of = plan_time(request.as_of, pending)
        firm = load_firm(
            engine,
            as_of=as_of,
            lookback=options.lookback,
            check=options.check,
            household_ids=[household_id],
        )
        book = firm.books[household_id]
        plan = plan_household(firm.reference, book, options.plan)
    except TRANSIENT:
        raise
    except Exception as error:  # planning is pure: it would fail the same way again
        return _fail(engine, state, household_id, _failure(error), until=as_of, started=started)
    return _keep(engine, state, book, plan, as_of=as_of, started=started)


# ── the service ────────────────────────────────────────────────────────────────

OnHandled = Callable[[Handled], Awaitable[None] | None]


def log_handled(handled: Handled) -> None:
    """One line per request: what was done, and the figures behind it, as ``key=value``."""
    fields = " ".join(f"{k}={_shown(v)}" for k, v in handled.fields().items())
    level = logging.WARNING if handled.result is Result.FAILED else logging.INFO
    log.log(level, "%s %s", handled.result.value, fields)


def _shown(value: object) -> str:
    text = str(value)
    return f'"{text}"' if any(c.isspace() for c in text) or not text else text


@dataclass
class WorkerService:
    """Answers rebalance requests from the bus (durable ``poise-worker``) and the store.

    One request at a time: the bus delivers one at a time, and a sweep takes turns
    with it. ``on_handled`` is called after each request's commit and before it is
    acknowledged.
    """

    engine: sa.Engine
    bus: Bus | None
    options: WorkerOptions
    on_handled: OnHandled | None = None
    counts: Counter[str] = field(default_factory=Counter)  # requests taken, by result
    plans: int = 0  # household proposals kept
    answered: int = 0  # requests those proposals answered
    failed: int = 0  # requests failed
    _subscription: Subscription | None = None
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    _stopping: bool = False

    async def start(self, *, sweep: bool = True, follow: bool = True) -> None:
        """Answer what the store holds open (``sweep``), then follow the bus (``follow``)."""
        if sweep:
            await self.sweep()
        if follow and self.bus is not None and not self._stopping:
            self._subscription = await self.bus.subscribe(
                f"{REQUESTS}.>", durable=WORKER_CONSUMER, handler=self._event
            )

    def halt(self) -> None:
        """Begin no more requests from a sweep (the bus's are stopped by :meth:`stop`)."""
        self._stopping = True

    async def stop(self) -> None:
        """Stop taking requests; the one in hand is finished, kept and acknowledged."""
        self._stopping = True
        if self._subscription is not None:
            await self._subscription.stop()
            self._subscription = None
        async with self._turn:  # a sweep's request in hand
            pass

    async def _event(self, event: Event) -> None:
        try:
            await self.answer(event.payload)
        except ValidationError:  # not a request at all: trying again cannot help
            log.exception("dropped event %s on %s: not a request", event.event_id, event.subject)

    async def answer(self, payload: Mapping[str, Any]) -> Handled:
        """Answer one request, in turn with any other."""
        async with self._turn:
            handled = await asyncio.to_thread(answer_request, self.engine, payload, self.options)
            self.counts[handled.result.value] += 1
            self.plans += handled.household_proposal_id is not None
            self.answered += len(handled.answered)
            self.failed += len(handled.failed)
            log_handled(handled)
            if self.on_handled is not None:
                called = self.on_handled(handled)
                if inspect.isawaitable(called):
                    await called
        return handled

    def summary(self) -> dict[str, int]:
        """What the worker has done: requests taken (from the bus or a sweep), those
        skipped, household proposals kept, and the requests answered and failed."""
        return {
            "taken": sum(self.counts.values()),
            "skipped": self.counts[Result.SKIPPED.value],
            "proposals": self.plans,
            "answered": self.answered,
            "failed": self.failed,
        }

    async def sweep(self) -> int:
        """Answer the requests the store holds open, oldest first; how many were open.
        A fault of the store ends the sweep (the next one tries again)."""
        with self.engine.connect() as connection:
            found = repo.list_requests(connection, where=repo.RequestFilter(status=OPEN))
        for row in sorted(found, key=lambda r: (r["as_of"], r["request_id"])):  # oldest first
            if self._stopping:
                break
            try:
                await self.answer(_payload(row))
            except ValidationError:
                log.exception("left request %s open: it is not a request", row["request_id"])
            except TRANSIENT as error:
                log.warning("sweep stopped: %s", _failure(error))
                break
        return len(found)


def _payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored request as its event carries it."""
    return {
        "request_id": row["request_id"],
        "account_id": row["account_id"],
        "household_id": row["household_id"],
        "reasons": list(row["reasons"]),
        "as_of": row["as_of"].isoformat(),
        "figures": row["figures"],
    }


async def serve(
    engine: sa.Engine,
    bus: Bus | None,
    options: WorkerOptions,
    *,
    stop: asyncio.Event,
    poll: float = 5.0,
    sweep: bool = True,
    once: bool = False,
    on_handled: OnHandled | None = None,
) -> WorkerService:
    """Run a worker until ``stop`` is set: a sweep at start (``sweep``), the bus, and a
    sweep every ``poll`` seconds (0: none after the first); ``once``: the first sweep
    alone. Once ``stop`` is set no request is begun, and the one in hand is finished."""
    service = WorkerService(engine, bus, options, on_handled=on_handled)
    halting = asyncio.create_task(_halt_on(stop, service))
    try:
        await service.start(sweep=sweep or once, follow=not once)
        while not once and not stop.is_set():
            if poll <= 0:
                await stop.wait()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)
            if not stop.is_set():
                await service.sweep()
    finally:
        halting.cancel()
        await service.stop()
    return service


async def _halt_on(stop: asyncio.Event, service: WorkerService) -> None:
    await stop.wait()
    service.halt()
