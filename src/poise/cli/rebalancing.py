"""Commands that propose trades."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from poise.cli.common import (
    AsOfOption,
    BandsOption,
    DatabaseOption,
    JsonOption,
    _as_of,
    _engine,
    _money,
    _print_json,
    app,
    out,
)
from poise.monitor.book import BandPolicy
from poise.settings import Settings
from poise.workflow.rebalance import load_problem, propose

# ── rebalancing ──────────────────────────────────────────────────────────────


@app.command()
def rebalance(
    account: Annotated[str, typer.Option("--account", help="The account to rebalance.")],
    method: Annotated[str, typer.Option(help="bands or cash.")] = "bands",
    as_of: AsOfOption = None,
    bands: BandsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Propose trades for one account and keep the proposal (status proposed)."""
    settings = Settings()
    engine = _engine(database_url)
    at = _as_of(as_of)
    problem = load_problem(
        engine,
        account_id=account,
        as_of=at,
        firm_band=BandPolicy.preset(bands or settings.band_preset).band(),
        max_price_age=timedelta(days=settings.max_price_age_days),
    )
    proposal_id, proposal = propose(engine, problem=problem, method=method, as_of=at)
    if as_json:
        _print_json({"proposal_id": proposal_id, **asdict(proposal)})
        return
    p = proposal
    out.print(f"[bold]{proposal_id}[/bold]  ({p.method}, prices as of {at:%Y-%m-%d})")
    table = Table(title=f"trades ({len(p.trades)})")
    for column in ("side", "security", "quantity", "price", "value", "reason", "lots"):
        table.add_column(
            column, justify="right" if column in ("quantity", "price", "value") else "left"
        )
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
        f"largest drift {p.drift_before * 100:.1f} → {p.drift_after * 100:.1f} points"
    )
    for reason in p.binding:
        out.print(f"[yellow]held back:[/yellow] {reason}")
