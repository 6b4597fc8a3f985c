"""``poise broker``: the simulated FIX 4.4 broker, listening until stopped."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from poise.cli.common import DatabaseOption, _engine, app, err

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["broker"]

DEFAULT_PORT = 9878


def _fraction(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option) from None
    if not value.is_finite():
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option)
    return value


def _prices(engine: sa.Engine) -> dict[str, Decimal]:
    """The latest price of every security, under its symbol and under its id."""
    from poise.store.repo.prices import prices_by_name

    with engine.connect() as connection:
        return prices_by_name(connection)


@app.command()
def broker(
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help=f"Port to listen on (0: any; default {DEFAULT_PORT})."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (127.0.0.1).")] = None,
    session_file: Annotated[
        Path | None,
        typer.Option(
            help="A QuickFIX-style session file ([SESSION] with SenderCompID, TargetCompID, "
            "HeartBtInt, ResetOnLogon, SocketAcceptPort, FileStorePath); options win over it."
        ),
    ] = None,
    sender_comp_id: Annotated[
        str | None, typer.Option(help="The broker's SenderCompID (BROKER).")
    ] = None,
    target_comp_id: Annotated[
        str | None, typer.Option(help="Its counterparty's CompID (POISE).")
    ] = None,
    heartbeat: Annotated[
        int | None,
        typer.Option(min=1, help="HeartBtInt, seconds (the client's Logon decides; 30)."),
    ] = None,
    reset_on_logon: Annotated[
        bool | None,
        typer.Option(
            "--reset-on-logon/--no-reset-on-logon",
            help="Start both sequence numbers at 1 at every logon.",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where the session's store lives (./broker-state)."),
    ] = None,
    partial: Annotated[
        str | None,
        typer.Option(help="Fill this fraction of each order first, the rest later (0.5)."),
    ] = None,
    rest_delay: Annotated[
        float, typer.Option(min=0, help="Seconds from a partial fill to the rest.")
    ] = 0.5,
    fill_delay: Annotated[
        float, typer.Option(min=0, help="Seconds from an order's acknowledgement to its fill.")
    ] = 0.0,
    reject_rate: Annotated[
        str | None, typer.Option(help="The share of orders rejected at random (0.1).")
    ] = None,
    reject_symbols: Annotated[
        str | None, typer.Option(help="Symbols always rejected, comma-separated.")
    ] = None,
    drop_after: Annotated[
        int | None,
        typer.Option(min=1, help="Drop the connection once, after this many messages."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the reject draws.")] = 0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    database_url: DatabaseOption = None,
) -> None:
    """Answer FIX 4.4 orders as a broker would, at the store's latest prices: acknowledge,
    fill (in part first with --partial), reject what is not priced; cancels, replaces and
    status requests too. Stops on Ctrl-C or SIGTERM, logging out first (docs/fix.md)."""
    import asyncio
    import logging
    import signal
    import time
    from datetime import UTC, datetime

    from poise.execute.broker import Behaviour, BrokerServer
    from poise.execute.fix.config import Role, SessionConfig, read_session_file
    from poise.execute.fix.store import FileStore

    overrides = {
        "sender_comp_id": sender_comp_id,
        "target_comp_id": target_comp_id,
        "heartbeat_interval": heartbeat,
        "reset_on_logon": reset_on_logon,
    }
    listen_host, listen_port, store_path = host, port, state_dir
    if session_file is not None:
        found = read_session_file(session_file, **overrides)
        config = found.config
        if config.role is not Role.ACCEPTOR:
            raise typer.BadParameter("the broker is an acceptor", param_hint="--session-file")
        listen_host = host or found.host
        listen_port = port if port is not None else found.port
        store_path = state_dir or found.store_path
    else:
        config = SessionConfig(
            sender_comp_id=sender_comp_id or "BROKER",
            target_comp_id=target_comp_id or "POISE",
            role=Role.ACCEPTOR,
            heartbeat_interval=heartbeat or 30,
            reset_on_logon=bool(reset_on_logon),
        )
    behaviour = Behaviour(
        partial=_fraction(partial, "--partial"),
        reject_rate=_fraction(reject_rate, "--reject-rate") or Decimal(0),
        reject_symbols=frozenset(s.strip() for s in (reject_symbols or "").split(",") if s.strip()),
        fill_delay=fill_delay,
        rest_delay=rest_delay,
        drop_after=drop_after,
        seed=seed,
        id_prefix=datetime.now(UTC).strftime("%Y%m%d%H%M%S-"),
    )
    engine = _engine(database_url)
    try:
        prices = _prices(engine)
    finally:
        engine.dispose()

    handler = logging.StreamHandler()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.basicConfig(level=log_level.upper(), handlers=[handler], force=True)

    store = FileStore(store_path or Path("broker-state"), config.key)

    async def serve() -> None:
        server = BrokerServer(
            config,
            store,
            prices.get,
            behaviour,
            host=listen_host or "127.0.0.1",
            port=DEFAULT_PORT if listen_port is None else listen_port,
        )
        bound = await server.start()
        err.print(
            f"poise broker listening on {listen_host or '127.0.0.1'}:{bound} as "
            f"{config.sender_comp_id} for {config.target_comp_id}; {len(prices)} prices; "
            f"state in {store.path.parent} (Ctrl-C to stop)",
            soft_wrap=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await stop.wait()
        await server.stop("the broker is stopping")

    try:
        asyncio.run(serve())
    finally:
        store.close()
