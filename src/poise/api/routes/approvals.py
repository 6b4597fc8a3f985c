"""Approvals through the API: where a proposal stands, and people moving it on —
approve, reject, release, acknowledge a warning, override a block — under the rules of
the one approval machine (docs/approvals.md), by the functions ``poise approve`` and
its fellows use (:mod:`poise.workflow.approvals`); and the lists of what waits on
people: the approval inbox and the compliance queue.

A proposal is named as it is read: an account's under ``/proposals/{proposal_id}``, a
household's under ``/household-proposals/{household_proposal_id}`` — another
household's is a 404, as ever. An act a role may never do is a 403 before anything is
read (the machine's own :data:`~poise.domain.approvals.MAY`); what the machine refuses
answers as it says — 403 (four eyes), 409 (a state that does not allow it), 422 (a
reason missing) — and an approval or release that finds the proposal out of date is a
409 saying what it became (expired, superseded), which is kept.
"""

# No `from __future__ import annotations` here: each kind of proposal's routes are made
# by one function (`_routes`), whose handlers' annotations name its own local alias of
# the path parameter — FastAPI must see them evaluated, as they are written.

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

import sqlalchemy as sa
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.idempotency import Once, OnceDep
from poise.api.problems import MEDIA_TYPE, Problem
from poise.api.routes.answers import (
    NOT_FOUND,
    SIGNED_IN,
    WRITTEN,
    Document,
    Exact,
    Moment,
    answer,
    created,
)
from poise.api.routes.proposals import ProposalStatus
from poise.api.scoping import ScopedDep, only, scoped_router
from poise.domain.approvals import MAY, Act
from poise.domain.errors import ConflictError, NotFoundError
from poise.domain.users import FIRM_WIDE
from poise.settings import Settings
from poise.store import repo
from poise.workflow.approvals import (
    QUEUE_ROLES,
    Standing,
    act,
    approve_each,
    approve_run,
    choices,
    inbox,
    policy_of,
    queue,
    standing,
)
from poise.workflow.documents import bulk_json, outcome_json, standing_json

__all__ = ["router"]

router = scoped_router(tags=["approvals"], responses={**SIGNED_IN, **NOT_FOUND})

# An id (no control character: no id holds one, and PostgreSQL refuses a NUL), and words
# a person writes (any line breaks, but no NUL).
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Words = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=30)]


def _refusal(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }


ACTED = {
    **WRITTEN,
    403: _refusal(
        "The caller's role may not do this act, or the machine refuses them: whoever"
        " prepared a proposal does not approve it (four eyes)."
    ),
    409: _refusal(
        "The proposal's state does not allow it (the machine says why); or an approval or"
        " release found it out of date and ended it (expired, superseded: kept); or a"
        " request with this Idempotency-Key is still being answered."
    ),
    422: _refusal("A body that cannot be read; a reason missing; no such finding on it."),
}


# ── what is answered ──────────────────────────────────────────────────────────


class FindingOut(Document):
    finding_id: str  # F1, F2, … on this proposal: the id to acknowledge or override
    severity: Literal["block", "warn"]
    rule_id: str
    kind: str
    explanation: str
    detail: dict[str, Any] | None  # the finding whole: measured, limit, securities, accounts
    cleared: Literal["acknowledged", "overridden"] | None
    cleared_by: str | None  # a username
    cleared_at: Moment | None
    reason: str  # why it was cleared
    may_clear: bool | None  # whether the caller may clear it now
    why_not: str  # … and if not, why


class ActOut(Document):
    act: Literal["approve", "reject", "release"]
    may: bool  # whether the caller may do it now
    why_not: str


class StandingOut(Document):
    proposal_id: str
    household: bool  # a household's proposal, approved as one with its accounts'
    household_id: str | None
    account_id: str | None  # an account's proposal
    method: str | None
    as_of: Moment | None  # prices as of
    run_id: str | None  # the firm-wide run that made it (a household's)
    parts: list[str]  # a household's: its accounts' proposals
    part_of: str | None = Field(
        description="An account's proposal that is part of a household's: that one's id —"
        " its approval stands at /api/v1/household-proposals/{part_of}/approval, and this"
        " one's fields of approval are empty."
    )
    status: ProposalStatus | None
    status_reason: str  # why it was rejected, expired or superseded
    made_at: Moment | None
    prepared_by: str | None  # a username; "system" for proposals no person asked for
    notional: Exact | None  # dollars traded, buys and sells
    approvers_needed: int | None
    more_needed: int | None  # approvers still needed
    approved_by: list[str]  # usernames, in the order they approved
    findings: list[FindingOut]
    waiting: list[str]  # the findings not yet cleared
    acts: list[ActOut]  # what the caller's role may do, and whether they may now


class StandingPage(Document):
    items: list[StandingOut]
    total: int
    limit: int
    offset: int


class ClearedOut(Document):
    finding_id: str
    blocks: bool
    cleared_by: str | None  # a user's id
    cleared_at: Moment | None
    reason: str


class OutcomeOut(Document):
    proposal_id: str
    act: Literal["approve", "reject", "release", "acknowledge", "override"]
    changed: bool  # false: nothing to do (approved already), nothing written
    said: str  # what came of it, in words
    status_before: ProposalStatus
    status: ProposalStatus
    reason: str  # why it was rejected, expired or superseded
    notional: Exact
    approved_by: list[str]  # users' ids, in order
    findings: list[ClearedOut]
    ledger_entry: int | None  # the audit ledger entry written, if anything changed


class RefusedOut(Document):
    proposal_id: str
    why: str


class BulkOut(Document):
    run_id: str | None
    approved: list[OutcomeOut]  # approved, or approved in part: another approver needed
    approved_already: list[OutcomeOut]
    refused: list[RefusedOut]


# ── what is asked ─────────────────────────────────────────────────────────────


class Note(BaseModel):
    """Approve or release: nothing needed (``{}``); a reason, if given, is kept in the
    ledger entry."""

    model_config = ConfigDict(extra="forbid")

    reason: Words = Field("", description="Why, in words (optional; kept in the ledger).")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Words = Field(description="Why, in words (needed; kept in the ledger).")


class Clearing(Reason):
    finding_id: Id = Field(description="The finding's id on the proposal: F1, F2, …")


class BulkApproval(BaseModel):
    """Which proposals to approve: a run's household proposals (of ``households``
    only, when given), or those named — each trading at most ``max_notional``, when
    given."""

    model_config = ConfigDict(extra="forbid")

    run_id: Id | None = Field(None, description="Approve this run's household proposals.")
    households: list[Id] | None = Field(
        None, max_length=100_000, description="With run_id: only these households'."
    )
    proposal_ids: list[Id] = Field(
        [], max_length=10_000, description="Or approve these proposals (not with run_id)."
    )
    max_notional: Amount | None = Field(
        None, description="Only those trading at most this, in dollars (the others: refused)."
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.run_id is None) == (not self.proposal_ids):
            raise ValueError("name a run (run_id) or the proposals (proposal_ids), not both")
        if self.households is not None and self.run_id is None:
            raise ValueError("households go with run_id")
        return self


# ── a proposal: where it stands, and the acts ─────────────────────────────────


def _standing_json(stands: Standing, who: ScopedDep, settings: Settings) -> dict[str, Any]:
    return standing_json(stands, choices(stands, who.user, policy_of(settings)))


def _acted(
    engine: sa.Engine, settings: Settings, who: ScopedDep, *, proposal_id: str, what: Act,
    where: str, reason: str = "", finding_id: str | None = None,
) -> Response:  # fmt: skip
    outcome = act(
        engine, proposal_id=proposal_id, what=what, user=who.user, policy=policy_of(settings),
        reason=reason, finding_id=finding_id,
    )  # fmt: skip
    if outcome.ended:  # written so, and what was asked refused
        raise ConflictError(f"{proposal_id} was not {what.value}d but {outcome.said}")
    return created(OutcomeOut, outcome_json(outcome), where, status=200)


def _routes(base: str, name: str, named: Callable[..., str], what: str) -> None:
    """The approval routes of a kind of proposal: ``base`` its path, ``name`` its path
    parameter (found by ``named``), ``what`` it is called."""
    Named = Annotated[str, Depends(named)]  # noqa: N806 - a type alias, as FastAPI reads it
    where = base.replace(f"{{{name}:path}}", "{}").lstrip("/") + "/approval"

    @router.get(
        f"{base}/approval", response_model=StandingOut, summary=f"Where {what} stands in approval"
    )
    def get_standing(
        request: Request, proposal_id: Named, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep,
    ) -> Response:  # fmt: skip
        """Its status, who prepared it, who approved it of how many needed, its findings
        with who cleared each and why — and what the caller may do now, with why not
        (as ``poise proposals show`` says it)."""
        with engine.connect() as connection:
            stands = standing(connection, proposal_id=proposal_id, policy=policy_of(settings))
        return answer(request, StandingOut, _standing_json(stands, who, settings))

    def acted(
        proposal_id: str, who: ScopedDep, engine: sa.Engine, settings: Settings, once: Once,
        act_: Act, reason: str = "", finding_id: str | None = None,
    ) -> Response:  # fmt: skip
        return once(
            lambda: _acted(
                engine, settings, who, proposal_id=proposal_id, what=act_,
                where=where.format(proposal_id), reason=reason, finding_id=finding_id,
            )
        )  # fmt: skip

    def rule(a: Act) -> list[Any]:
        return [Depends(only(MAY[a], verb=a.value))]

    @router.post(
        f"{base}/approve",
        response_model=OutcomeOut,
        responses=ACTED,
        dependencies=rule(Act.APPROVE),
        summary=f"Approve {what}",
    )
    def approve(
        proposal_id: Named, body: Note, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep, once: OnceDep,
    ) -> Response:  # fmt: skip
        """Approve it, as ``poise approve``: an adviser or a portfolio manager who did not
        prepare it, once every finding is cleared; two different approvers above the
        firm's threshold. The same approval again is no change (``changed: false``)."""
        return acted(proposal_id, who, engine, settings, once, Act.APPROVE, body.reason)

    @router.post(
        f"{base}/reject",
        response_model=OutcomeOut,
        responses=ACTED,
        dependencies=rule(Act.REJECT),
        summary=f"Reject {what}",
    )
    def reject(
        proposal_id: Named, body: Reason, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep, once: OnceDep,
    ) -> Response:  # fmt: skip
        """Reject it, with a reason, as ``poise reject``: nothing more can happen to it."""
        return acted(proposal_id, who, engine, settings, once, Act.REJECT, body.reason)

    @router.post(
        f"{base}/release",
        response_model=OutcomeOut,
        responses=ACTED,
        dependencies=rule(Act.RELEASE),
        summary=f"Release {what} to trading",
    )
    def release(
        proposal_id: Named, body: Note, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep, once: OnceDep,
    ) -> Response:  # fmt: skip
        """Release an approved proposal to trading, as ``poise release``."""
        return acted(proposal_id, who, engine, settings, once, Act.RELEASE, body.reason)

    @router.post(
        f"{base}/acknowledge",
        response_model=OutcomeOut,
        responses=ACTED,
        dependencies=rule(Act.ACKNOWLEDGE),
        summary=f"Acknowledge a warning on {what}",
    )
    def acknowledge(
        proposal_id: Named, body: Clearing, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep, once: OnceDep,
    ) -> Response:  # fmt: skip
        """Acknowledge a warning finding, with a reason, as ``poise acknowledge``."""
        return acted(proposal_id, who, engine, settings, once, Act.ACKNOWLEDGE, body.reason,
                     body.finding_id)  # fmt: skip

    @router.post(
        f"{base}/override",
        response_model=OutcomeOut,
        responses=ACTED,
        dependencies=rule(Act.OVERRIDE),
        summary=f"Override a block on {what}",
    )
    def override(
        proposal_id: Named, body: Clearing, who: ScopedDep, engine: EngineDep,
        settings: SettingsDep, once: OnceDep,
    ) -> Response:  # fmt: skip
        """Override a block finding, with a reason, as ``poise override``: compliance
        only."""
        return acted(proposal_id, who, engine, settings, once, Act.OVERRIDE, body.reason,
                     body.finding_id)  # fmt: skip


def _account_proposal(proposal_id: str) -> str:
    return proposal_id


def _household_proposal(household_proposal_id: str) -> str:
    return household_proposal_id


_routes("/proposals/{proposal_id:path}", "proposal_id", _account_proposal, "an account's proposal")
_routes(
    "/household-proposals/{household_proposal_id:path}",
    "household_proposal_id",
    _household_proposal,
    "a household's proposal",
)


# ── many at once, and what waits ──────────────────────────────────────────────


@router.post(
    "/approvals/bulk",
    response_model=BulkOut,
    summary="Approve many proposals: a run's, or those named",
    responses=ACTED,
    dependencies=[Depends(only(MAY[Act.APPROVE], verb="approve"))],
)
def approve_bulk(
    body: BulkApproval, who: ScopedDep, engine: EngineDep, settings: SettingsDep, once: OnceDep
) -> Response:
    """Approve a run's household proposals that the caller sees (as ``poise approve
    --run RUN --household … --max-notional …``), or the proposals named, each on its
    own: what was approved, what the caller had approved already, and each refused
    with why (blocked, warnings standing, four eyes, expired, above the notional, …).
    A run none of whose households the caller sees is answered as one that does not
    exist."""
    policy = policy_of(settings)

    def make() -> Response:
        if body.run_id is None:
            bulk = approve_each(
                engine,
                proposal_ids=body.proposal_ids,
                user=who.user,
                policy=policy,
                max_notional=body.max_notional,
            )
            return created(BulkOut, bulk_json(bulk), "approvals/inbox", status=200)
        if who.user.role not in FIRM_WIDE:  # a run is the firm's: theirs only in part
            with engine.connect() as connection:
                units = repo.run_units(connection, run_id=body.run_id)
            if not any(who.scope.sees(u.household_id) for u in units):
                raise NotFoundError(f"no run {body.run_id}")
        bulk = approve_run(
            engine, run_id=body.run_id, user=who.user, policy=policy,
            max_notional=body.max_notional, households=body.households,
        )  # fmt: skip
        return created(BulkOut, bulk_json(bulk), "approvals/inbox", status=200)

    return once(make)


def _page(
    request: Request, who: ScopedDep, settings: Settings, found: list[Standing], *,
    limit: int, offset: int,
) -> Response:  # fmt: skip
    policy = policy_of(settings)
    items = [standing_json(s, choices(s, who.user, policy)) for s in found[offset : offset + limit]]
    document = {"items": items, "total": len(found), "limit": limit, "offset": offset}
    return answer(request, StandingPage, document)


@router.get(
    "/approvals/inbox",
    response_model=StandingPage,
    summary="The approval inbox: what waits for the caller's approval",
    dependencies=[Depends(only(MAY[Act.APPROVE], verb="approve"))],
)
def get_inbox(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep,
    max_notional: Annotated[
        Decimal | None, Query(ge=0, allow_inf_nan=False, max_digits=30,
                              description="Only those trading at most this, in dollars.")
    ] = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The proposals pending approval that the caller may approve — of the households
    they see, not prepared by them, not approved by them yet — the longest waiting
    first, each with its notional, the approvers it needs and has, and its findings
    (``waiting``: those to acknowledge before it can be approved). ``max_notional``:
    only those trading at most this. For advisers and portfolio managers."""
    found = inbox(engine, user=who.user, policy=policy_of(settings), max_notional=max_notional)
    return _page(request, who, settings, found, limit=limit, offset=offset)


@router.get(
    "/compliance/queue",
    response_model=StandingPage,
    summary="The compliance queue: proposals a finding holds up",
    dependencies=[Depends(only(QUEUE_ROLES))],
)
def get_queue(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The proposals of the households the caller sees that a finding holds up —
    blocked (a block stands: compliance overrides it), or pending with a warning not
    yet acknowledged — the longest waiting first, each with its findings. For those who
    clear findings: compliance, and advisers, portfolio managers and operations (who
    acknowledge warnings)."""
    found = queue(engine, user=who.user, policy=policy_of(settings))
    return _page(request, who, settings, found, limit=limit, offset=offset)
