"""Commands that find rebalance proposals and show one whole. The one JSON shape of a
proposal (which ``poise rebalance --json`` and the API show too) is
:func:`poise.workflow.documents.proposal_json`; an unsaved one is read by it through
:func:`poise.workflow.documents.record_of`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _day,
    _engine,
    _money,
    _print_json,
    app,
    command_group,
    out,
)
from poise.workflow.documents import (  # the one shape, which the API answers too
    household_json,
    proposal_json,
)

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    from poise.store.repo import HouseholdProposalRecord
    from poise.workflow.approvals import Standing

proposals_app = command_group("Rebalance proposals: find them, or show one whole.")
app.add_typer(proposals_app, name="proposals")


# ── options ──────────────────────────────────────────────────────────────────

AccountFilter = Annotated[str | None, typer.Option("--account", help="Only this account.")]
HouseholdFilter = Annotated[
    str | None, typer.Option("--household", help="Only this household's accounts.")
]
SinceFilter = Annotated[
    str | None, typer.Option("--from", help="Only as of this day (YYYY-MM-DD, UTC) or later.")
]
UntilFilter = Annotated[
    str | None, typer.Option("--to", help="Only as of this day (YYYY-MM-DD, UTC) or earlier.")
]
LimitOption = Annotated[int, typer.Option(help="At most this many (0: all).")]


def one_of(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    """``value`` if it is one of ``allowed`` (or not given); else a usage error naming them."""
    if value is not None and value not in allowed:
        raise typer.BadParameter(
            f"{value!r} is not one of: {', '.join(allowed)}", param_hint=option
        )
    return value


def of_total(count: int, total: int) -> str:
    """``50 of 591`` in a table's title, or ``3`` when every one is shown."""
    return f"{count:,}" if count == total else f"{count:,} of {total:,}"


# ── commands ─────────────────────────────────────────────────────────────────


@proposals_app.command("list")
def proposals_list(
    account: AccountFilter = None,
    household: HouseholdFilter = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="Only this status: proposed, blocked, pending, approved, released, executed,"
            " rejected, expired or superseded."
        ),
    ] = None,
    method: Annotated[str | None, typer.Option(help="Only this method.")] = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Proposals kept so far, newest as-of first, with their figures."""
    from poise.optimize.scenarios import METHODS
    from poise.store import repo

    where = repo.ProposalFilter(
        account_id=account,
        household_id=household,
        status=one_of(status, repo.PROPOSAL_STATUSES, "--status"),
        method=one_of(method, tuple(METHODS), "--method"),
        since=_day(since, "--from"),
        until=_day(until, "--to"),
    )
    engine = _engine(database_url)
    with engine.connect() as connection:
        total = repo.count_proposals(connection, where=where)
        found = repo.find_proposals(connection, where=where, limit=limit)
    rows = [proposal_json(p, whole=False) for p in found]
    if as_json:
        _print_json({"total": total, "proposals": rows})
        return
    title = f"proposals ({of_total(len(rows), total)})"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("proposal", no_wrap=True)  # whole, to give to `proposals show`
    table.add_column("status", no_wrap=True)
    for column in ("trades", "est. tax", "drift", "requests"):
        table.add_column(column, justify="right", no_wrap=True)
    for p in rows:
        table.add_row(
            p["proposal_id"],
            p["status"],
            f"{p['trade_count']:,}",
            _money(p["estimated_tax"]),
            f"{p['drift_before'] * 100:.1f}→{p['drift_after'] * 100:.1f}",
            f"{p['request_count']:,}",
        )
    table.caption = "drift: the largest, in points, before → after; `poise proposals show ID`"
    out.print(table)


@proposals_app.command("show")
def proposals_show(
    proposal_id: Annotated[str, typer.Argument(help="The proposal's id.")],
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """One proposal whole: its figures, trades and lots, what bound it, the requests it
    answers."""
    from poise.domain.errors import NotFoundError
    from poise.settings import Settings
    from poise.store import repo
    from poise.workflow.approvals import policy_of, standing

    engine = _engine(database_url)
    with engine.connect() as connection:
        stands = standing(connection, proposal_id=proposal_id, policy=policy_of(Settings()))
        try:
            shown = proposal_json(repo.proposal(connection, proposal_id=proposal_id))
        except NotFoundError as missing:  # a household's: its accounts' proposals, each whole
            try:
                household = repo.household_proposal(connection, proposal_id=proposal_id)
            except NotFoundError:
                raise missing from None
            parts = [
                proposal_json(repo.proposal(connection, proposal_id=part))
                for part in household.accounts
            ]
            if as_json:
                _print_json(household_json(household, parts))
                return
            _print_household(household, parts)
            _print_standing(stands)
            return
    if as_json:
        _print_json(shown)
        return
    _print_whole(shown)
    _print_standing(stands)


def _print_standing(stands: Standing) -> None:
    """Where a proposal stands in approval, for a person: who prepared it, who approved
    it of how many needed, and each finding by its id (to acknowledge or override)."""
    if stands.part_of is not None:
        out.print(f"approved as one with its household's proposal {stands.part_of}")
        return
    state = stands.state
    assert state is not None

    def name(user_id: str | None) -> str:
        return stands.names.get(user_id or "", user_id or "the system")

    approvers = ", ".join(name(u) for u in state.approved_by) or "nobody yet"
    why = f" ({state.reason})" if state.reason else ""
    out.print(
        f"[bold]approval:[/bold] {state.status.value}{why}; prepared by {name(state.prepared_by)};"
        f" notional {_money(state.notional)}, {stands.needed} approver(s) needed;"
        f" approved by {approvers}"
    )
    cleared = {f.finding_id: f for f in state.findings}
    for f in stands.findings:
        kind = "[red]block[/red]" if f.blocks else "[yellow]warning[/yellow]"
        done = cleared.get(f.finding_id)
        how = "overridden" if f.blocks else "acknowledged"
        after = (
            f" — {how} by {name(done.cleared_by)}: {done.reason}"
            if done is not None and done.cleared_by
            else ""
        )
        out.print(f"{f.finding_id} {kind} {f.rule_id}: {f.explanation}{after}")


def _print_household(household: HouseholdProposalRecord, parts: list[dict[str, Any]]) -> None:
    """A household's proposal for a person: how its accounts were decided together,
    then each account's proposal whole."""
    model = f", one model across its accounts: {household.model_id}" if household.model_id else ""
    run = f", run {household.run_id}" if household.run_id else ""
    out.print(f"[bold]{household.proposal_id}[/bold]  {household.status}")
    out.print(
        f"household {household.household_id}, {household.method}{model}{run};"
        f" prices as of {household.as_of:%Y-%m-%d %H:%M} UTC; {len(parts)} account proposals"
    )
    for line in household.meetings:
        out.print(f"[cyan]wash sale avoided:[/cyan] {line}")
    for line in household.location:
        out.print(f"[cyan]location:[/cyan] {line}")
    for account_id, reason in sorted(household.held.items()):
        out.print(f"[yellow]not rebalanced:[/yellow] {account_id}: {reason}")
    for p in parts:
        out.print()
        _print_whole(p)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _print_whole(p: Mapping[str, Any]) -> None:
    """A proposal for a person: who and what, the trades with their lots, the figures,
    what bound it, and the requests it answers."""
    status = p["status"] + (f" by {p['superseded_by']}" if p["superseded_by"] else "")
    out.print(f"[bold]{p['proposal_id']}[/bold]  {status}")
    scenario = f", scenario {p['scenario']}" if p["scenario"] else ""
    out.print(
        f"account {p['account_id']} (household {p['household_id'] or '—'}), {p['method']}"
        f"{scenario}; prices as of {p['as_of']:%Y-%m-%d %H:%M} UTC;"
        f" made {p['created_at']:%Y-%m-%d %H:%M} UTC"
    )
    table = Table(title=f"trades ({len(p['trades'])})")
    for column in ("side", "security", "quantity", "price", "value", "reason", "lots"):
        table.add_column(
            column, justify="right" if column in ("quantity", "price", "value") else "left"
        )
    for t in p["trades"]:
        lots = ", ".join(
            f"{s['lot_id']} {s['quantity']:,} ({_money(s['gain'])} {s['term']})" for s in t["lots"]
        )
        table.add_row(
            t["side"],
            t["security_id"],
            f"{t['quantity']:,}",
            _money(t["price"]),
            _money(t["value"]),
            t["reason"],
            lots,
        )
    out.print(table)
    tracking = ""
    if p["tracking_before"] is not None and p["tracking_after"] is not None:
        tracking = f"; tracking error {_pct(p['tracking_before'])} → {_pct(p['tracking_after'])}"
    out.print(
        f"realised: short {_money(p['realised_short'])}, long {_money(p['realised_long'])}; "
        f"estimated tax {_money(p['estimated_tax'])}; cost {_money(p['cost'])}; "
        f"turnover {_money(p['turnover'])}; "
        f"cash {_money(p['cash_before'])} → {_money(p['cash_after'])}; "
        f"largest drift {p['drift_before'] * 100:.1f} → {p['drift_after'] * 100:.1f} points"
        f"{tracking}"
    )
    if p["risk_model"]:
        out.print(p["risk_model"])
    for reason in p["binding"]:
        out.print(f"[yellow]held back:[/yellow] {reason}")
    if p["superseded_by"]:
        out.print(f"the requests it answered are answered by {p['superseded_by']}")
        return
    if not p["requests"]:
        out.print("answers no rebalance request")
        return
    requests = Table(title=f"rebalance requests it answers ({len(p['requests']):,})")
    requests.add_column("request", overflow="fold")
    for column in ("as of", "reasons"):
        requests.add_column(column)
    for q in p["requests"]:
        requests.add_row(q["request_id"], f"{q['as_of']:%Y-%m-%d %H:%M}", ", ".join(q["reasons"]))
    out.print(requests)
