"""``poise worker``: answer rebalance requests as they arrive, one household proposal each."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer

from poise.cli.common import (
    BandsOption,
    BusOption,
    DatabaseOption,
    JsonOption,
    NatsOption,
    _engine,
    _print_json,
    app,
    err,
    out,
)
from poise.optimize.names import METHOD_NAMES

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    import sqlalchemy as sa

    from poise.workflow.worker import WorkerOptions, WorkerService

__all__ = ["worker"]


class _Line(logging.Formatter):
    """``2026-12-07T10:15:02Z INFO answered request=… household=… …``: one line a
    request, times in UTC, fields as ``key=value`` — for people and for ``grep``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{when} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _number(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option) from None
    if not value.is_finite():
        raise typer.BadParameter(f"{text!r} is not a number", param_hint=option)
    return str(value)


@app.command()
def worker(
    method: Annotated[
        str, typer.Option(help=f"{', '.join(METHOD_NAMES)} (default optimize).")
    ] = "optimize",
    risk_weight: Annotated[float, typer.Option(help="optimize: weight of tracking error.")] = 1.0,
    tax_weight: Annotated[float, typer.Option(help="optimize: weight of estimated tax.")] = 1.0,
    cost_weight: Annotated[float, typer.Option(help="optimize: weight of trading cost.")] = 1.0,
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
    location_weight: Annotated[
        float | None,
        typer.Option(
            help="Households with one model: asset-location weight (POISE_LOCATION_WEIGHT).",
            show_default=False,
        ),
    ] = None,
    bands: BandsOption = None,
    poll: Annotated[
        float,
        typer.Option(help="Also answer the requests open in the store every this many seconds."),
    ] = 5.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Answer the requests open in the store, then stop."),
    ] = False,
    bus: BusOption = None,
    nats_url: NatsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Answer rebalance requests as they arrive: each request's household rebalanced
    and kept as a household proposal, which answers it — exactly once per request.

    Follows the bus (durable consumer poise-worker on NATS) and the store: it first
    answers the requests open in the store, then every --poll seconds. A household
    that cannot be planned fails its requests with the reason. Ctrl-C (or SIGTERM)
    stops it after the request in hand is kept. One log line per request on standard
    error; a summary on standard output when it stops.
    """
    import asyncio

    from poise.settings import Settings
    from poise.workflow.run import RunOptions
    from poise.workflow.worker import worker_options

    if method not in METHOD_NAMES:
        raise typer.BadParameter(f"choose one of {', '.join(METHOD_NAMES)}", param_hint="--method")
    if poll < 0:
        raise typer.BadParameter("may not be negative", param_hint="--poll")
    settings = Settings()
    pct = _number(min_trade_pct, "--min-trade-pct")
    options = RunOptions(
        method=method,
        risk=risk_weight,
        tax=tax_weight,
        cost=cost_weight,
        tax_budget=_number(tax_budget, "--tax-budget"),
        max_turnover=_number(max_turnover, "--max-turnover"),
        within_bands=within_bands,
        min_trade=_number(min_trade, "--min-trade"),
        min_trade_fraction=None if pct is None else str(Decimal(pct) / 100),
        location_weight=location_weight,
        bands=bands,
    )
    engine = _engine(database_url)
    planned = worker_options(options, settings)
    bus_name = bus or settings.bus
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Line())
    poise_log = logging.getLogger("poise")
    poise_log.addHandler(handler)
    level = poise_log.level
    poise_log.setLevel(logging.INFO)
    try:
        service = asyncio.run(
            _serve(
                engine,
                planned,
                bus_name=None if once else bus_name,
                nats_url=nats_url or settings.nats_url,
                poll=poll,
            )
        )
    finally:
        poise_log.removeHandler(handler)
        poise_log.setLevel(level)
    _print_summary(service, as_json=as_json)


async def _serve(
    engine: sa.Engine, planned: WorkerOptions, *, bus_name: str | None, nats_url: str, poll: float
) -> WorkerService:
    import asyncio

    from poise.bus.registry import open_bus
    from poise.workflow.worker import WORKER_CONSUMER, serve

    log = logging.getLogger("poise.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if not stop.is_set():
            log.info("stopping: the request in hand is finished and kept first")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping)
    if bus_name is None:  # --once: the store's open requests, no bus
        log.info("started method=%s: the requests open in the store, once", planned.method)
        try:
            return await serve(engine, None, planned, stop=stop, once=True)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    opened = await open_bus(bus_name, url=nats_url)
    try:
        if bus_name == "inprocess":  # no other process can publish on it
            how = f"every {poll:g} s" if poll else "once"
            log.info(
                "started method=%s bus=inprocess: the requests open in the store, %s",
                planned.method,
                how,
            )
        else:
            log.info(
                "started method=%s bus=%s durable=%s", planned.method, bus_name, WORKER_CONSUMER
            )
        return await serve(engine, opened, planned, stop=stop, poll=poll)
    finally:
        await opened.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_summary(service: WorkerService, *, as_json: bool) -> None:
    summary = service.summary()
    if as_json:
        _print_json(summary)
        return
    out.print(
        f"{summary['taken']:,} requests taken, {summary['skipped']:,} of them already answered"
        f" or failed; {summary['proposals']:,} household proposals kept, answering "
        f"{summary['answered']:,} requests; {summary['failed']:,} requests failed",
        soft_wrap=True,
    )
    if summary["failed"]:
        err.print("[yellow]poise requests list --status failed[/yellow] says why")
