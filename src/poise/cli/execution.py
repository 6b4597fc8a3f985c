"""``poise execute``, ``orders``, ``crosses``: released proposals to the brokers and
back (docs/execution.md).

``poise execute`` plans what was released since the last batch (crosses, then block
orders with their allocation statements, all kept with the outbox in one
transaction), sends the outbox over each route's FIX session and books what comes
back until nothing is working, showing a live blotter. ``--halt`` is the kill switch.
It acts as the user ``--as`` names: operations and admin may trade.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import AsOption, DatabaseOption, JsonOption, _engine, _print_json, app, out

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.domain.users import User
    from poise.settings import Settings
    from poise.workflow.execute import Policy
    from poise.workflow.gateway import Sent

__all__ = ["crosses", "execute", "orders"]

TRADERS = frozenset({"operations", "admin"})


def _trader(engine: sa.Engine, username: str | None) -> User:
    from poise.domain.errors import ForbiddenError
    from poise.workflow.approvals import acting_user

    with engine.connect() as connection:
        user = acting_user(connection, username=username)
    if user.role.value not in TRADERS:
        raise ForbiddenError(
            f"{user.username} is {user.role.value}: only operations and admin may trade"
        )
    return user


def _blotter(done: dict[str, Sent], started: float) -> Any:
    from rich.table import Table

    table = Table(title="blotter", title_justify="left")
    for name in ("route", "orders", "cancels", "reports", "fills", "again", "breaks", "chased"):
        table.add_column(name, justify="left" if name == "route" else "right")
    seconds = max(time.monotonic() - started, 1e-9)
    for route, sent in sorted(done.items()):
        table.add_row(
            route,
            str(sent.orders),
            str(sent.cancels),
            str(sent.reports),
            str(sent.fills),
            str(sent.duplicates),
            str(sent.breaks),
            str(len(sent.chased)),
        )
    reports = sum(s.reports for s in done.values())
    table.caption = f"{reports / seconds:,.0f} reports/s"
    return table


def _plan(engine: sa.Engine, policy: Policy, user: User, *, quiet: bool) -> dict[str, Any]:
    from poise.workflow.execute import plan_batch

    batch = plan_batch(engine, policy=policy, actor=user.user_id)
    if not quiet:
        if batch.batch_id is None:
            out.print("nothing newly released to plan")
        else:
            out.print(
                f"batch {batch.batch_id}: {len(batch.proposals)} proposal(s),"
                f" {len(batch.crosses)} cross(es), {len(batch.blocks)} block order(s)"
            )
    return {
        "batch": batch.batch_id,
        "crosses": len(batch.crosses),
        "blocks": len(batch.blocks),
        "skipped": [
            {"proposal_id": s.proposal_id, "seq": s.seq, "reason": s.reason.value}
            for s in batch.skipped
        ],
    }


def _send(
    engine: sa.Engine, policy: Policy, settings: Settings, *, wait: float, quiet: bool
) -> dict[str, Any]:
    """Every route's outbox sent and its reports booked, under a live blotter."""
    import asyncio

    from rich.live import Live

    from poise.bus.registry import open_bus
    from poise.workflow.gateway import run_routes

    started = time.monotonic()
    live = None if quiet else Live(_blotter({}, started), console=out)

    def tick(now: dict[str, Sent]) -> None:
        if live is not None:
            live.update(_blotter(now, started))

    if live is not None:
        live.start()

    async def send() -> dict[str, Sent]:
        bus = await open_bus(settings.bus, url=settings.nats_url)
        try:
            return await run_routes(
                engine,
                policy.routes,
                wait=wait,
                ack=settings.ack_seconds,
                tick=tick,
                bus=bus,
            )
        finally:
            await bus.close()

    try:
        done = asyncio.run(send())
        tick(done)
    finally:
        if live is not None:
            live.stop()
    return {
        route: {
            "orders": s.orders,
            "cancels": s.cancels,
            "reports": s.reports,
            "fills": s.fills,
            "duplicates": s.duplicates,
            "breaks": s.breaks,
            "chased": s.chased,
        }
        for route, s in done.items()
    }


def _change(
    engine: sa.Engine,
    user: User,
    *,
    cancel: str | None,
    replace: str | None,
    quantity: str | None,
    limit: str | None,
    reason: str,
    quiet: bool,
) -> dict[str, Any]:
    """One order cancelled or replaced (queued, to go out with the run)."""
    from decimal import Decimal, InvalidOperation

    from poise.workflow.gateway import cancel_order, replace_order

    if cancel is not None:
        made = cancel_order(engine, cl_ord_id=cancel, actor=user.user_id, reason=reason)
        if not quiet:
            out.print(
                f"{cancel}: " + (f"cancel {made} queued" if made else "withdrawn, never sent")
            )
        return {"cancelled": cancel, "cancel": made}
    assert replace is not None
    if quantity is None:
        raise typer.BadParameter("--replace needs --quantity (the new total, filled included)")
    try:
        total = Decimal(quantity)
        price = None if limit is None else Decimal(limit)
    except InvalidOperation:
        raise typer.BadParameter("--quantity and --limit are numbers") from None
    made = replace_order(
        engine, cl_ord_id=replace, quantity=total, limit=price, actor=user.user_id, reason=reason
    )
    if not quiet:
        out.print(f"{replace}: replacement {made} queued")
    return {"replaced": replace, "replacement": made}


@app.command("execute")
def execute(
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the brokers' fills.")
    ] = 60.0,
    plan_only: Annotated[
        bool, typer.Option("--plan-only", help="Plan the batch and keep it; send nothing.")
    ] = False,
    halt: Annotated[
        bool,
        typer.Option("--halt", help="The kill switch: send nothing more, cancel every open order."),
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Lift the kill switch.")] = False,
    cancel: Annotated[
        str | None, typer.Option("--cancel", help="Cancel this working order (its ClOrdID).")
    ] = None,
    replace: Annotated[
        str | None, typer.Option("--replace", help="Replace this working order (its ClOrdID).")
    ] = None,
    quantity: Annotated[
        str | None, typer.Option("--quantity", help="With --replace: the new total quantity.")
    ] = None,
    limit: Annotated[
        str | None, typer.Option("--limit", help="With --replace: the new limit price.")
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (with --halt, --resume, --cancel, --replace).")
    ] = "",
    username: AsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Send released proposals to the brokers: cross what can be crossed, block the
    rest, send the orders over FIX and book the fills back to the accounts."""
    from poise.settings import Settings
    from poise.workflow.execute import policy_of
    from poise.workflow.gateway import halt as pull
    from poise.workflow.gateway import resume as lift

    if sum((halt, resume, cancel is not None, replace is not None)) > 1:
        raise typer.BadParameter("one of --halt, --resume, --cancel, --replace")
    engine = _engine(database_url)
    user = _trader(engine, username)
    settings = Settings()
    policy = policy_of(settings)
    if resume:
        lift(engine, actor=user.user_id, reason=reason)
        out.print("the kill switch is lifted: new orders may go out")
        return
    if cancel is not None or replace is not None:
        result: dict[str, Any] = _change(
            engine, user, cancel=cancel, replace=replace, quantity=quantity, limit=limit,
            reason=reason, quiet=as_json,
        )  # fmt: skip
    elif halt:
        cancels = pull(engine, actor=user.user_id, reason=reason)
        result = {"halted": True, "cancels": cancels}
        if not as_json:
            out.print(f"[red]halted[/red]: nothing new goes out; {len(cancels)} cancel(s) to send")
    else:
        result = _plan(engine, policy, user, quiet=as_json)
    if not plan_only:
        result["routes"] = _send(engine, policy, settings, wait=wait, quiet=as_json)
    if as_json:
        _print_json(result)


@app.command("orders")
def orders(
    open_only: Annotated[bool, typer.Option("--open", help="Only orders still working.")] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The orders sent to brokers (and waiting in the outbox), newest first."""
    import sqlalchemy as sa
    from rich.table import Table

    from poise.store import tables as t
    from poise.store.repo.execution import OPEN

    engine = _engine(database_url)
    o, b = t.orders, t.block_orders
    query = (
        sa.select(
            o.c.cl_ord_id,
            o.c.kind,
            o.c.route,
            b.c.security_id,
            b.c.side,
            o.c.quantity,
            o.c.limit_price,
            o.c.status,
            o.c.filled,
            o.c.created_at,
            o.c.text,
        )
        .select_from(o.join(b, b.c.block_id == o.c.block_id))
        .order_by(o.c.created_at.desc(), o.c.cl_ord_id)
    )
    if open_only:
        query = query.where(o.c.status.in_(OPEN) & (o.c.kind == "new"))
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    if as_json:
        _print_json(rows)
        return
    table = Table(title="orders")
    for name in ("ClOrdID", "kind", "route", "security", "side", "quantity", "limit", "status",
                 "filled"):  # fmt: skip
        table.add_column(name)
    for r in rows:
        limit = "market" if r["limit_price"] is None else str(r["limit_price"])
        table.add_row(
            r["cl_ord_id"], r["kind"], r["route"], r["security_id"], r["side"],
            str(r["quantity"]), limit, r["status"], str(r["filled"]),
        )  # fmt: skip
    out.print(table if rows else "no orders")


@app.command("crosses")
def crosses(as_json: JsonOption = False, database_url: DatabaseOption = None) -> None:
    """The trades crossed between the firm's accounts: both sides, the price and where
    the price came from."""
    import sqlalchemy as sa
    from rich.table import Table

    from poise.store import tables as t

    engine = _engine(database_url)
    c, leg = t.crosses, t.cross_legs
    with engine.connect() as connection:
        rows = [
            dict(r._mapping)
            for r in connection.execute(
                sa.select(
                    c.c.cross_id,
                    c.c.security_id,
                    c.c.price,
                    c.c.source,
                    leg.c.account_id,
                    leg.c.side,
                    leg.c.quantity,
                    leg.c.proposal_id,
                )
                .select_from(c.join(leg, leg.c.cross_id == c.c.cross_id))
                .order_by(c.c.cross_id, leg.c.number)
            )
        ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title="crosses")
    for name in ("cross", "security", "price", "account", "side", "quantity", "reference"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["cross_id"], r["security_id"], str(r["price"]), r["account_id"], r["side"],
            str(r["quantity"]), r["source"],
        )  # fmt: skip
    out.print(table if rows else "no crosses")
