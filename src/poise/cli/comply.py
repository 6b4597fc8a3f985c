"""``poise comply``: the firm's rules run on demand — on a stored proposal (against the
holdings and prices as they stand, as a release checks it), on every household
proposal of a run, or on every account's holdings (the daily check: breaches the
markets made, each new one raising a monitor request). The rules are the firm's files
in ``POISE_RULES_DIR``, or poise's own default (docs/rules.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from poise.cli.common import (
    AsOfOption,
    DatabaseOption,
    JsonOption,
    _as_of,
    _engine,
    _print_json,
    app,
    out,
)

if TYPE_CHECKING:
    from poise.comply.findings import Finding

__all__ = ["comply"]


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "kind": f.kind,
        "severity": f.severity.value,
        "explanation": f.explanation,
        "securities": list(f.securities),
        "accounts": list(f.accounts),
    }


def _table(title: str, rows: list[tuple[str, Finding]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("of", "rule", "severity", "finding"):
        table.add_column(name, overflow="fold")
    for owner, f in rows:
        style = "red" if f.blocks else "yellow"
        table.add_row(owner, f.rule_id, f"[{style}]{f.severity.value}[/{style}]", f.explanation)
    return table


@app.command("comply")
def comply(
    proposal_id: Annotated[
        str | None, typer.Argument(help="A proposal to check: an account's own, or a household's.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Check every household proposal of this run.")
    ] = None,
    holdings: Annotated[
        bool,
        typer.Option(
            "--holdings",
            help="Check every account's holdings as they stand; each new breach raises a"
            " monitor request.",
        ),
    ] = False,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Check proposals, or every account's holdings, against the firm's rules.

    A proposal still waiting (proposed, blocked or pending) keeps what is found as its
    findings — blocked or pending again, with an entry in the ledger; any other is only
    reported. Exits 1 when a block is found."""
    from poise.settings import Settings
    from poise.store import repo
    from poise.workflow.approvals import policy_of
    from poise.workflow.comply import check_holdings, check_proposals, load_rules

    if sum((proposal_id is not None, run is not None, holdings)) != 1:
        raise typer.BadParameter("name one: a PROPOSAL, --run RUN or --holdings")
    settings = Settings()
    book = load_rules(settings)
    engine = _engine(database_url)
    at = _as_of(as_of)
    blocked = False
    if holdings:
        found = check_holdings(engine, book=book, settings=settings, at=at)
        blocked = any(f.blocks for fs in found.findings.values() for f in fs)
        if as_json:
            _print_json(
                {
                    "households": found.households,
                    "breaches": {
                        h: [_finding_json(f) for f in fs] for h, fs in found.findings.items()
                    },
                    "requests_raised": list(found.raised),
                    "failed": dict(found.failed),
                }
            )
        else:
            rows = [(h, f) for h, fs in found.findings.items() for f in fs]
            out.print(_table(f"{found.households:,} households' holdings checked", rows))
            out.print(
                f"{len(rows):,} breaches; {len(found.raised):,} monitor requests raised"
                + (f"; {len(found.failed):,} could not be checked" if found.failed else "")
            )
            for household, why in found.failed.items():
                out.print(f"  {household}: {why}")
    else:
        if run is not None:
            with engine.connect() as connection:
                repo.rebalance_run(connection, run_id=run)  # a run never made: not found
                ids = [u.proposal_id for u in repo.run_units(connection, run_id=run)]
        else:
            ids = [proposal_id or ""]
        checked = check_proposals(
            engine, proposal_ids=ids, book=book, policy=policy_of(settings), at=at
        )
        blocked = any(f.blocks for c in checked for f in c.findings)
        if as_json:
            _print_json(
                {
                    "rules": book.digest,
                    "proposals": [
                        {
                            "proposal_id": c.proposal_id,
                            "status": c.status,
                            "kept": c.kept,
                            "findings": [_finding_json(f) for f in c.findings],
                        }
                        for c in checked
                    ],
                }
            )
        else:
            rows = [(c.proposal_id, f) for c in checked for f in c.findings]
            out.print(_table(f"{len(checked):,} proposals checked", rows))
            for c in checked:
                kept = "findings kept" if c.kept else "reported only"
                out.print(f"{c.proposal_id}: {c.status} ({len(c.findings)} findings, {kept})")
    engine.dispose()
    if blocked:
        raise typer.Exit(1)
