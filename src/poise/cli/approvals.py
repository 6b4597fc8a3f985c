"""``poise approve``, ``reject``, ``override``, ``acknowledge``, ``release``: people moving a
proposal through approval (docs/approvals.md).

Each acts as the user named by ``--as`` (or ``POISE_USER``): an unknown or disabled one
is refused. The rules of who may do what are the approval machine's
(:mod:`poise.domain.approvals`); these commands only name the act and print what came
of it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer

from poise.cli.common import (
    AsOption,
    DatabaseOption,
    JsonOption,
    _engine,
    _print_json,
    app,
    err,
    out,
)
from poise.domain.approvals import Act
from poise.workflow.documents import bulk_json, outcome_json

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.domain.users import User
    from poise.workflow.approvals import Bulk

__all__ = ["acknowledge", "approve", "override", "reject", "release"]

ProposalArgument = Annotated[
    str, typer.Argument(help="The proposal: an account's own, or a household's.")
]
FindingArgument = Annotated[str, typer.Argument(help="The finding's id on it (F1, F2, …).")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, in words (kept in the ledger).")]


def _acting(engine: sa.Engine, username: str | None) -> User:
    from poise.workflow.approvals import acting_user

    with engine.connect() as connection:
        return acting_user(connection, username=username)


def _act(
    what: Act,
    proposal_id: str,
    *,
    username: str | None,
    database_url: str | None,
    as_json: bool,
    reason: str = "",
    finding_id: str | None = None,
) -> None:
    from poise.domain.errors import ConflictError
    from poise.settings import Settings
    from poise.workflow.approvals import act, policy_of

    engine = _engine(database_url)
    user = _acting(engine, username)
    outcome = act(
        engine,
        proposal_id=proposal_id,
        what=what,
        user=user,
        policy=policy_of(Settings()),
        reason=reason,
        finding_id=finding_id,
    )
    if as_json:
        _print_json(outcome_json(outcome))
    else:
        out.print(f"{outcome.proposal_id}: {outcome.said} (now {outcome.status.value})")
    if outcome.ended:  # written, and what was asked refused
        raise ConflictError(f"{proposal_id} was not {what.value}d but {outcome.said}")


@app.command("approve")
def approve(
    proposal_id: Annotated[
        str | None, typer.Argument(help="The proposal: an account's own, or a household's.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Approve the household proposals of this run.")
    ] = None,
    max_notional: Annotated[
        str | None,
        typer.Option("--max-notional", help="With --run: only those trading at most this."),
    ] = None,
    household: Annotated[
        list[str] | None,
        typer.Option("--household", help="With --run: only this household's (repeat for more)."),
    ] = None,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Approve a proposal — or a run's household proposals, each on its own. Whoever
    prepared one cannot approve it; above the firm's threshold it needs two approvers."""
    if (proposal_id is None) == (run is None):
        raise typer.BadParameter("name a proposal, or --run RUN (not both)")
    if run is None:
        if max_notional is not None or household:
            raise typer.BadParameter("--max-notional and --household go with --run")
        assert proposal_id is not None
        _act(
            Act.APPROVE,
            proposal_id,
            username=username,
            database_url=database_url,
            as_json=as_json,
        )
        return
    from poise.settings import Settings
    from poise.workflow.approvals import approve_run, policy_of

    engine = _engine(database_url)
    user = _acting(engine, username)
    bulk = approve_run(
        engine,
        run_id=run,
        user=user,
        policy=policy_of(Settings()),
        max_notional=_amount(max_notional),
        households=household or None,
    )
    _print_bulk(bulk, as_json=as_json)


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        amount = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise typer.BadParameter(
            f"{text!r} is not an amount", param_hint="--max-notional"
        ) from None
    if not amount.is_finite() or amount < 0:
        raise typer.BadParameter(f"{text!r} is not an amount", param_hint="--max-notional")
    return amount


def _print_bulk(bulk: Bulk, *, as_json: bool) -> None:
    if as_json:
        _print_json(bulk_json(bulk))
        return
    for o in bulk.approved:
        out.print(f"{o.proposal_id}: {o.said}")
    for o in bulk.already:
        out.print(f"{o.proposal_id}: {o.said}")
    for proposal_id, why in bulk.refused:
        err.print(f"[yellow]not approved:[/yellow] {proposal_id}: {why}", soft_wrap=True)
    out.print(
        f"run {bulk.run_id}: {len(bulk.approved)} approved, {len(bulk.already)} approved"
        f" already, {len(bulk.refused)} not approved"
    )


@app.command("reject")
def reject(
    proposal_id: ProposalArgument,
    reason: ReasonOption,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Reject a proposal, with a reason: nothing more can happen to it."""
    _act(
        Act.REJECT,
        proposal_id,
        username=username,
        database_url=database_url,
        as_json=as_json,
        reason=reason,
    )


@app.command("override")
def override(
    proposal_id: ProposalArgument,
    finding_id: FindingArgument,
    reason: ReasonOption,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Override a block finding, with a reason (compliance only)."""
    _act(
        Act.OVERRIDE,
        proposal_id,
        username=username,
        database_url=database_url,
        as_json=as_json,
        reason=reason,
        finding_id=finding_id,
    )


@app.command("acknowledge")
def acknowledge(
    proposal_id: ProposalArgument,
    finding_id: FindingArgument,
    reason: ReasonOption,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Acknowledge a warning, with a reason, so that the proposal may be approved."""
    _act(
        Act.ACKNOWLEDGE,
        proposal_id,
        username=username,
        database_url=database_url,
        as_json=as_json,
        reason=reason,
        finding_id=finding_id,
    )


@app.command("release")
def release(
    proposal_id: ProposalArgument,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Release an approved proposal to trading (a portfolio manager or operations)."""
    _act(
        Act.RELEASE,
        proposal_id,
        username=username,
        database_url=database_url,
        as_json=as_json,
    )
