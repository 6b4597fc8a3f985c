"""``poise reconcile``: fills into the books (docs/reconcile.md).

Every allocation of a block's fills and every leg of an internal cross not yet in the
books becomes a transaction, lots and cash; what sales realised is kept lot by lot; the
households touched are washed again. One transaction: a crash books nothing, a re-run
books each fill once. It acts as the user ``--as`` names: operations and admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poise.cli.common import AsOption, DatabaseOption, JsonOption, _engine, _print_json, app, out

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.domain.users import User

__all__ = ["reconcile"]

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
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Book the fills: allocations and crosses into lots, cash and realised gains."""
    from rich.table import Table

    from poise.domain.relief import Method
    from poise.settings import Settings
    from poise.workflow.books import book_fills

    engine = _engine(database_url)
    _bookkeeper(engine, username)
    settings = Settings()
    try:
        method = Method(settings.relief_method)
    except ValueError:
        from poise.domain.errors import ConfigError

        raise ConfigError(
            f"POISE_RELIEF_METHOD {settings.relief_method!r}: one of fifo, lifo, hifo, tax_min"
        ) from None
    with out.status("booking fills"):
        done = book_fills(engine, default_method=method)
    result: dict[str, Any] = {
        "executions": done.executions,
        "accounts": done.accounts,
        "transactions": done.transactions,
        "realised": done.realised,
        "gain": str(done.gain),
        "cash": str(done.cash),
        "lots_written": done.lots_written,
        "washed": done.washed,
        "refused": [
            {"txn_id": r.txn_id, "account_id": r.account_id, "reason": r.reason}
            for r in done.refused
        ],
    }
    if as_json:
        _print_json(result)
        return
    if not done.executions and not done.refused:
        out.print("nothing to book: every fill is in the books")
        return
    out.print(
        f"booked {done.executions} execution(s) into {done.accounts} account(s):"
        f" {done.realised} lot(s) sold for a realised gain of {done.gain:,.2f};"
        f" cash moved {done.cash:+,.2f}; {done.washed} lot row(s) changed by wash sales"
    )
    if done.refused:
        table = Table(title="not booked", title_justify="left")
        for name in ("execution", "account", "why"):
            table.add_column(name)
        for r in done.refused:
            table.add_row(r.txn_id, r.account_id, r.reason)
        out.print(table)
