"""``poise reconcile``, ``poise breaks``: fills into the books, and the custodian's
positions and cash against them (docs/reconcile.md).

Every allocation of a block's fills and every leg of an internal cross not yet in the
books becomes a transaction, lots and cash; what sales realised is kept lot by lot; the
households touched are washed again. One transaction: a crash books nothing, a re-run
books each fill once. It acts as the user ``--as`` names: operations and admin.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import AsOption, DatabaseOption, JsonOption, _engine, _print_json, app, out

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.domain.users import User

__all__ = ["breaks", "reconcile"]

BOOKKEEPERS = frozenset({"operations", "admin"})


def _bookkeeper(engine: sa.Engine, username: str | None) -> User:
    from poise.domain.errors import ForbiddenError
    from poise.workflow.approvals import acting_user

    with engine.connect() as connection:
        user = acting_user(connection, username=username)
    if user.role.value not in BOOKKEEPERS:
        raise ForbiddenError(
            f"{user.username} is {user.role.value}: only operations and admin keep the books"
        )
    return user


@app.command("reconcile")
def reconcile(
    positions: Annotated[
        list[Path] | None,
        typer.Option(
            "--positions",
            metavar="FILE",
            help="Custodian positions or cash files to load first (repeatable).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The snapshot day to compare; default the latest."),
    ] = None,
    layout: Annotated[
        Path | None,
        typer.Option("--layout", help="The custodian's layout file (TOML) for --positions."),
    ] = None,
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Book the fills, then compare the custodian's positions and cash with the books."""
    from datetime import date

    from poise.domain.relief import Method
    from poise.settings import Settings
    from poise.workflow.books import book_fills
    from poise.workflow.custodian import reconcile_custodian

    engine = _engine(database_url)
    user = _bookkeeper(engine, username)
    settings = Settings()
    try:
        method = Method(settings.relief_method)
    except ValueError:
        from poise.domain.errors import ConfigError

        raise ConfigError(
            f"POISE_RELIEF_METHOD {settings.relief_method!r}: one of fifo, lifo, hifo, tax_min"
        ) from None
    with out.status("booking fills"):
        done = book_fills(engine, default_method=method, workers=settings.workers)
    loaded = _load(engine, positions or [], user.user_id, quiet=as_json, layout=layout)
    with out.status("comparing with the custodian"):
        found = reconcile_custodian(
            engine,
            as_of=date.fromisoformat(as_of) if as_of else None,
            tolerance=settings.price_tolerance,
        )
    result: dict[str, Any] = {
        "executions": done.executions,
        "accounts": done.accounts,
        "transactions": done.transactions,
        "realised": done.realised,
        "gain": str(done.gain),
        "cash": str(done.cash),
        "lots_written": done.lots_written,
        "washed": done.washed,
        "processes": done.processes,
        "refused": [
            {"txn_id": r.txn_id, "account_id": r.account_id, "reason": r.reason}
            for r in done.refused
        ],
        "files": loaded,
        "custodian": {
            "as_of": found.as_of.isoformat() if found.as_of else None,
            "accounts": found.accounts,
            "opened": found.opened,
            "cleared": found.cleared,
            "breaks": [_break_json(b) for b in found.breaks],
        },
    }
    if as_json:
        _print_json(result)
        return
    _say(done, found)


def _load(
    engine: sa.Engine, paths: list[Path], actor: str, *, quiet: bool, layout: Path | None
) -> list[dict[str, Any]]:
    """The custodian's files loaded as ``poise ingest`` loads them."""
    if not paths:
        return []
    from datetime import UTC, datetime

    from poise.domain.errors import ValidationError
    from poise.ingest.layout import read_layout
    from poise.workflow.ingest import ingest_paths

    through = read_layout(layout) if layout is not None else None
    reports = ingest_paths(
        engine, paths, today=datetime.now(UTC).date(), actor=actor, layout=through
    )
    for report in reports:
        if report.refused or report.failed:
            raise ValidationError(f"{report.path}: {report.refused or report.failed}")
        if report.kind not in {"positions", "cash"}:
            raise ValidationError(f"{report.path} is a {report.kind} file, not positions or cash")
        if not quiet:
            out.print(
                f"{report.path}: {report.kind}, {report.loaded} row(s) loaded,"
                f" {report.quarantined} quarantined"
            )
    return [
        {"path": r.path, "kind": r.kind, "loaded": r.loaded, "quarantined": r.quarantined}
        for r in reports
    ]


def _break_json(found: Any) -> dict[str, Any]:
    return {
        "account_id": found.account_id,
        "kind": found.kind.value,
        "security_id": found.security_id,
        "books": str(found.books),
        "custodian": str(found.custodian),
        "cause": found.cause or None,
    }


def _say(done: Any, found: Any) -> None:
    from rich.table import Table

    if not done.executions and not done.refused:
        out.print("nothing to book: every fill is in the books")
    else:
        out.print(
            f"booked {done.executions} execution(s) into {done.accounts} account(s):"
            f" {done.realised} lot(s) sold for a realised gain of {done.gain:,.2f};"
            f" cash moved {done.cash:+,.2f}; {done.washed} lot row(s) changed by wash sales"
            + (
                f" (in {done.parts} parts on {done.processes} processes)"
                if done.processes > 1
                else ""
            )
        )
    if done.refused:
        table = Table(title="not booked", title_justify="left")
        for name in ("execution", "account", "why"):
            table.add_column(name)
        for r in done.refused:
            table.add_row(r.txn_id, r.account_id, r.reason)
        out.print(table)
    if found.as_of is None:
        out.print("no custodian snapshot loaded: nothing to compare (--positions FILE)")
        return
    out.print(
        f"custodian snapshot of {found.as_of}: {found.accounts} account(s) compared,"
        f" {len(found.breaks)} break(s) ({found.opened} new), {found.cleared} cleared"
    )
    if found.breaks:
        table = Table(title="breaks: these accounts are held", title_justify="left")
        for name in ("account", "kind", "security", "books", "custodian", "likely cause"):
            table.add_column(name)
        for b in found.breaks:
            table.add_row(b.account_id, b.kind.value, b.security_id or "", str(b.books),
                          str(b.custodian), b.cause or "not found")  # fmt: skip
        out.print(table)


@app.command("breaks")
def breaks(
    show_all: Annotated[
        bool, typer.Option("--all", help="Closed breaks too, with why they closed.")
    ] = False,
    resolve: Annotated[
        str | None,
        typer.Option("--resolve", metavar="ACCOUNT/BREAK", help="Close this open break."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (with --resolve).")] = "",
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Reconciliation breaks: an account with an open one is held, not traded."""
    import sqlalchemy as sa
    from rich.table import Table

    from poise.store import tables as t
    from poise.workflow.custodian import resolve_break

    engine = _engine(database_url)
    if resolve is not None:
        user = _bookkeeper(engine, username)
        account_id, _, break_id = resolve.partition("/")
        if not break_id:
            raise typer.BadParameter("--resolve ACCOUNT/BREAK, as poise breaks lists them")
        resolve_break(engine, account_id=account_id, break_id=break_id, actor=user.user_id,
                      reason=reason)  # fmt: skip
        out.print(f"{resolve}: resolved — {reason}")
        return
    b = t.breaks
    query = sa.select(b).order_by(b.c.opened.desc(), b.c.account_id, b.c.break_id)
    if not show_all:
        query = query.where(b.c.closed.is_(None))
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no open breaks" if not show_all else "no breaks")
        return
    table = Table(title="breaks", title_justify="left")
    for name in ("account/break", "opened", "closed", "what", "why closed"):
        table.add_column(name)
    for r in rows:
        key = f"{r['account_id']}/{r['break_id']}"
        table.add_row(key, str(r["opened"]), str(r["closed"] or ""), r["description"] or "",
                      r["reason"] or "")  # fmt: skip
    out.print(table)
