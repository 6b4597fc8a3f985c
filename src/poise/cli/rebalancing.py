"""Commands that propose trades."""

from __future__ import annotations

import contextlib
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poise.cli.common import (
    AsOfOption,
    BandsOption,
    DatabaseOption,
    JsonOption,
    _as_of,
    _bar,
    _column,
    _engine,
    _money,
    _print_json,
    app,
    out,
)
from poise.domain.errors import ValidationError
from poise.optimize.names import ALL, METHOD_NAMES, SCENARIO_NAMES

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    import sqlalchemy as sa

    from poise.cli.runs import RunProgress
    from poise.optimize.scenarios import Tradeoff
    from poise.optimize.trades import Proposal
    from poise.workflow.rebalance import Proposed
    from poise.workflow.run import RunReport

# ── options ──────────────────────────────────────────────────────────────────


def _number(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option) from None
    if not value.is_finite():
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option)
    return value


def _weight(value: float | None) -> float:
    return 1.0 if value is None else value


# ── rebalancing ──────────────────────────────────────────────────────────────


@app.command()
def rebalance(
    account: Annotated[
        str | None, typer.Option("--account", help="The account to rebalance.", show_default=False)
    ] = None,
    household: Annotated[
        list[str] | None,
        typer.Option(
            "--household",
            help="Rebalance this household as one (repeat for several).",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Rebalance every household of the firm.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="Rebalance the households with an account on this model.", show_default=False
        ),
    ] = None,
    custodian: Annotated[
        str | None,
        typer.Option(
            help="Rebalance the households with an account at this custodian.", show_default=False
        ),
    ] = None,
    requests: Annotated[
        bool,
        typer.Option("--requests", help="Rebalance the households with open rebalance requests."),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Finish an interrupted run: plan only the households it did not.",
            show_default=False,
        ),
    ] = None,
    location_weight: Annotated[
        float | None,
        typer.Option(
            help="Households with one model: asset-location weight (POISE_LOCATION_WEIGHT).",
            show_default=False,
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(help=f"{', '.join(METHOD_NAMES)} (default bands).", show_default=False),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Compare scenarios side by side and keep the first: {', '.join(SCENARIO_NAMES)},"
            f" or {ALL}. Repeat for several.",
            show_default=False,
        ),
    ] = None,
    risk_weight: Annotated[
        float | None, typer.Option(help="optimize: weight of tracking error (1).")
    ] = None,
    tax_weight: Annotated[
        float | None, typer.Option(help="optimize: weight of estimated tax (1).")
    ] = None,
    cost_weight: Annotated[
        float | None, typer.Option(help="optimize: weight of trading cost (1).")
    ] = None,
    tax_budget: Annotated[
        str | None,
        typer.Option(help="optimize: the most net realised gain, in dollars (0: none)."),
    ] = None,
    max_turnover: Annotated[
        str | None,
        typer.Option(help="optimize: the most traded, a fraction of the account (0.2)."),
    ] = None,
    within_bands: Annotated[
        bool,
        typer.Option(
            "--within-bands",
            help="optimize: every position ends inside its band where the rules allow.",
        ),
    ] = False,
    min_trade: Annotated[
        str | None, typer.Option(help="The smallest trade, in dollars (POISE_MIN_TRADE, 100).")
    ] = None,
    min_trade_pct: Annotated[
        str | None,
        typer.Option(help="The smallest trade, in percent of the account (0.05; 0: none)."),
    ] = None,
    as_of: AsOfOption = None,
    bands: BandsOption = None,
    username: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="POISE_USER",
            help="Who asks (POISE_USER): kept as who prepared the proposals, who may not"
            " approve them. Default: the system.",
        ),
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Propose trades for one account, or for households as a run, and keep the
    proposals, each checked against the firm's rules (status blocked or pending).

    With --account: one account, to its own model, under its household's wash-sale
    window. With --scenario, every scenario named is run on the same account and risk
    model, their trade-offs are printed side by side, and the first one's proposal is
    kept.

    With --household, --all, --model, --custodian or --requests: a run — each household
    rebalanced as one (its accounts' trades decided together: no wash sale across them;
    one model across them where the household has one), each kept as it finishes, on a
    process pool or the Dask cluster of POISE_DASK_SCHEDULER. --resume RUN finishes an
    interrupted run.
    """
    selectors = bool(household) or every or model is not None or custodian is not None
    if selectors or requests or resume is not None:
        if account is not None or scenario:
            raise ValidationError("--account and --scenario are for one account, not a run")
        _run(
            household=tuple(household or ()),
            every=every,
            model=model,
            custodian=custodian,
            requests=requests,
            resume=resume,
            method=method,
            weights=(risk_weight, tax_weight, cost_weight),
            tax_budget=_number(tax_budget, "--tax-budget"),
            max_turnover=_number(max_turnover, "--max-turnover"),
            within_bands=within_bands,
            min_trade=_number(min_trade, "--min-trade"),
            min_trade_pct=_number(min_trade_pct, "--min-trade-pct"),
            location_weight=location_weight,
            as_of=as_of,
            bands=bands,
            as_json=as_json,
            database_url=database_url,
            username=username,
        )
        return
    if account is None:
        raise ValidationError(
            "give --account, or households to run: --household, --all, --model, --custodian,"
            " --requests or --resume"
        )
    from poise.optimize.scenarios import choose
    from poise.settings import Settings
    from poise.workflow.rebalance import Asked, rebalance_account

    optimize_only = {
        "--risk-weight": risk_weight,
        "--tax-weight": tax_weight,
        "--cost-weight": cost_weight,
        "--tax-budget": tax_budget,
        "--max-turnover": max_turnover,
        "--within-bands": within_bands or None,
    }
    if scenario:
        if method is not None:
            raise ValidationError("give --method or --scenario, not both")
        choose(scenario)  # the names, checked before the store is opened
    else:
        given = [name for name, value in optimize_only.items() if value is not None]
        if given and method != "optimize":
            raise ValidationError(
                f"{', '.join(given)}: only the optimize method (and scenarios) use them"
            )
    pct = _number(min_trade_pct, "--min-trade-pct")
    asked = Asked(
        method=None if scenario else method,
        scenarios=tuple(scenario or ()),
        risk=_weight(risk_weight),
        tax=_weight(tax_weight),
        cost=_weight(cost_weight),
        tax_budget=_number(tax_budget, "--tax-budget"),
        max_turnover=_number(max_turnover, "--max-turnover"),
        within_bands=within_bands,
        min_trade=_number(min_trade, "--min-trade"),
        min_trade_fraction=None if pct is None else pct / 100,
        bands=bands,
    )
    engine = _engine(database_url)
    at = _as_of(as_of)
    proposed = rebalance_account(
        engine,
        account_id=account,
        as_of=at,
        asked=asked,
        settings=Settings(),
        prepared_by=_preparer(engine, username),
    )
    kept_json: dict[str, object] = {}
    if as_json:  # the kept proposal as the store has it, in the one JSON shape of a proposal
        from poise.store import repo
        from poise.workflow.documents import proposal_json

        with engine.connect() as connection:
            kept_json = proposal_json(repo.proposal(connection, proposal_id=proposed.proposal_id))
    if scenario:
        _print_scenarios(proposed, at, as_json=as_json, kept_json=kept_json)
        return
    _, proposal = proposed.kept
    if as_json:
        _print_json({**kept_json, "risk_model_default": proposed.risk_default})
        return
    out.print(
        f"[bold]{proposed.proposal_id}[/bold]  ({proposal.method}, prices as of {at:%Y-%m-%d};"
        f" {proposed.status})"
    )
    _print_findings(proposed)
    _print_proposal(proposal, proposed)


def _preparer(engine: sa.Engine, username: str | None) -> str | None:
    """The id of the user ``--as`` names (refused when unknown or disabled); None: the
    system prepares it."""
    if username is None:
        return None
    from poise.workflow.approvals import acting_user

    with engine.connect() as connection:
        return acting_user(connection, username=username).user_id


def _run(
    *,
    household: tuple[str, ...],
    every: bool,
    model: str | None,
    custodian: str | None,
    requests: bool,
    resume: str | None,
    method: str | None,
    weights: tuple[float | None, float | None, float | None],
    tax_budget: Decimal | None,
    max_turnover: Decimal | None,
    within_bands: bool,
    min_trade: Decimal | None,
    min_trade_pct: Decimal | None,
    location_weight: float | None,
    as_of: str | None,
    bands: str | None,
    as_json: bool,
    database_url: str | None,
    username: str | None,
) -> None:
    """A firm-wide run (or the rest of one), with a progress bar and its summary."""
    from poise.cli.runs import RunProgress
    from poise.workflow.run import RunOptions, Selection, rebalance_run

    engine = _engine(database_url)
    prepared_by = _preparer(engine, username)
    selection = None
    if resume is None:
        selection = Selection(
            all=every,
            households=household,
            model_id=model,
            custodian=custodian,
            requests=requests,
        )
    elif household or every or model or custodian or requests:
        raise ValidationError("--resume finishes a run as it was asked: give no households")
    risk, tax, cost = weights
    options = RunOptions(
        method=method or "bands",
        risk=_weight(risk),
        tax=_weight(tax),
        cost=_weight(cost),
        tax_budget=None if tax_budget is None else str(tax_budget),
        max_turnover=None if max_turnover is None else str(max_turnover),
        within_bands=within_bands,
        min_trade=None if min_trade is None else str(min_trade),
        min_trade_fraction=None if min_trade_pct is None else str(min_trade_pct / 100),
        location_weight=location_weight,
        bands=bands,
    )
    bars: list[RunProgress] = []  # made when the run knows how many households it has
    with contextlib.ExitStack() as stack:

        def tick(report: RunReport) -> None:
            if not bars:
                bars.append(
                    stack.enter_context(
                        RunProgress(
                            total=report.households, resumed=report.resumed, enabled=not as_json
                        )
                    )
                )
            failed = len(report.failed)
            bars[0].update(done=report.resumed + report.done + failed, failed=failed)

        report = rebalance_run(
            engine,
            as_of=_as_of(as_of),
            selection=selection,
            options=options,
            resume=resume,
            progress=tick,
            prepared_by=prepared_by,
        )
    if as_json:
        _print_json({"run_id": report.run_id, **report.summary()})
    else:
        _print_run(report)
    if report.failed:
        raise typer.Exit(1)


def _print_run(report: RunReport) -> None:
    table = Table(title=f"run {report.run_id}", show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("", justify="right")
    rows = [
        ("households", f"{report.households:,}"),
        ("finished earlier (resumed)", f"{report.resumed:,}"),
        ("planned now", f"{report.done:,}"),
        ("account proposals", f"{report.proposals:,}"),
        ("trades", f"{report.trades:,}"),
        ("estimated tax", _money(report.estimated_tax)),
        ("losses harvested", _money(report.harvested)),
        ("accounts held", f"{report.held:,}"),
        ("requests answered", f"{report.answered:,}"),
        ("failed", f"{len(report.failed):,}"),
        ("ran on", report.fanout),
    ]
    for name, value in rows:
        if name == "finished earlier (resumed)" and not report.resumed:
            continue
        table.add_row(name, value)
    out.print(table)
    for household_id, reason in sorted(report.failed.items()):
        out.print(f"[red]failed:[/red] {household_id}: {reason}")
    if report.failed:
        out.print(f"finish it with: poise rebalance --resume {report.run_id}")


def _pct_of(value: Decimal | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _tracking(proposal: Proposal) -> str:
    if proposal.tracking_before is None or proposal.tracking_after is None:
        return ""
    before, after = _pct_of(proposal.tracking_before), _pct_of(proposal.tracking_after)
    return f"tracking error {before} → {after}"


def _print_proposal(p: Proposal, proposed: Proposed) -> None:
    """A proposal's trades, each sale with its lots, and its figures."""
    table = Table(title=f"trades ({len(p.trades)})")
    for column in ("side", "security", "quantity", "price", "value", "reason", "lots"):
        _column(table, column, number=column in ("quantity", "price", "value"))
    for trade in p.trades:
        lots = ", ".join(
            f"{s.lot_id} {s.quantity:,} ({_money(s.gain)} {s.term.value})" for s in trade.lots
        )
        table.add_row(
            trade.side.value,
            trade.security_id,
            f"{trade.quantity:,}",
            _money(trade.price),
            _money(trade.value),
            trade.reason.value,
            lots,
        )
    out.print(table)
    out.print(
        f"realised: short {_money(p.realised_short)}, long {_money(p.realised_long)}; "
        f"estimated tax {_money(p.estimated_tax)}; cost {_money(p.cost)}; "
        f"cash {_money(p.cash_before)} → {_money(p.cash_after)}; "
        f"largest drift {p.drift_before * 100:.1f} → {p.drift_after * 100:.1f} points; "
        f"{_tracking(p)}"
    )
    out.print(_risk_line(proposed))
    for reason in p.binding:
        out.print(f"[yellow]held back:[/yellow] {reason}")
    if proposed.answered:
        out.print(
            f"answers {len(proposed.answered):,} rebalance request(s):"
            f" {', '.join(proposed.answered)}"
        )


def _risk_line(proposed: Proposed) -> str:
    # The default risk model makes every tracking error a rough one: say so, loudly.
    described = proposed.risk_model
    return f"[yellow]{described}[/yellow]" if proposed.risk_default else described


def _print_scenarios(
    proposed: Proposed, at: datetime, *, as_json: bool, kept_json: dict[str, object]
) -> None:
    from poise.optimize.scenarios import tradeoffs
    from poise.workflow.documents import scenarios_json

    rows = tradeoffs(proposed.results)
    kept, proposal = proposed.kept
    if as_json:
        _print_json(scenarios_json(proposed, rows, as_of=at, kept=kept_json))
        return
    before = proposal.tracking_before
    out.print(
        f"[bold]{proposal.account_id}[/bold]  {len(rows)} scenarios, prices as of {at:%Y-%m-%d};"
        f" now: tracking error {_pct_of(before)}, largest drift"
        f" {proposal.drift_before * 100:.1f} points"
    )
    out.print(_risk_line(proposed))
    out.print(_tradeoff_table(rows))
    out.print(_tax_and_tracking_chart(rows))
    out.print(
        f"kept: [bold]{proposed.proposal_id}[/bold]  (scenario {kept.name}, {kept.method},"
        f" status {proposed.status})"
    )
    _print_findings(proposed)
    _print_proposal(proposal, proposed)


def _print_findings(proposed: Proposed) -> None:
    """What the firm's rules found on the kept proposal, a line each."""
    for n, f in enumerate(proposed.findings, start=1):
        style = "red" if f.blocks else "yellow"
        out.print(f"  [{style}]F{n} {f.severity.value}[/{style}] {f.rule_id}: {f.explanation}")


def _dollars(amount: Decimal) -> str:
    return f"{amount:,.0f}"


def _tradeoff_table(rows: list[Tradeoff]) -> Table:
    table = Table(title="scenarios: what each costs and what it buys")
    table.add_column("scenario", no_wrap=True)
    for column in ("trades", "turnover $", "tax $", "cost $", "tracking\nafter", "drift\nafter"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.scenario,
            str(row.trades),
            _dollars(row.turnover),
            _dollars(row.estimated_tax),
            _dollars(row.cost),
            _pct_of(row.tracking_after),
            f"{row.drift_after * 100:.1f}",
        )
    table.caption = "tax: estimated, a loss harvested is negative; drift: largest, in points"
    return table


def _tax_and_tracking_chart(rows: list[Tradeoff]) -> Table:
    """Tax against tracking error, each as a bar on its own scale (a tax benefit in
    green): the trade-off at a glance."""
    largest_tax = max((abs(r.estimated_tax) for r in rows), default=Decimal(0))
    tracking = [r.tracking_after or Decimal(0) for r in rows]
    largest_tracking = max(tracking, default=Decimal(0))
    chart = Table(title="tax against tracking error", box=None, pad_edge=False)
    chart.add_column("", no_wrap=True)
    chart.add_column("estimated tax")
    chart.add_column("", justify="right")
    chart.add_column("tracking error after")
    chart.add_column("", justify="right")
    for row, after in zip(rows, tracking, strict=True):
        colour = "green" if row.estimated_tax < 0 else "red"
        chart.add_row(
            row.scenario,
            f"[{colour}]{_bar(abs(row.estimated_tax), largest_tax, 20)}[/{colour}]",
            _dollars(row.estimated_tax),
            f"[blue]{_bar(after, largest_tracking, 20)}[/blue]",
            _pct_of(row.tracking_after),
        )
    return chart
