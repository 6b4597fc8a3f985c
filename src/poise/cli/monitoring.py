"""Commands that watch the firm: drift, holds, requests, the monitor and price replays."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from poise.cli.common import (
    AsOfOption,
    BandsOption,
    BusOption,
    DatabaseOption,
    FromOption,
    JsonOption,
    NatsOption,
    ToOption,
    _as_of,
    _bar,
    _day,
    _engine,
    _pct,
    _print_json,
    _progress,
    app,
    command_group,
    err,
    out,
)

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    import sqlalchemy as sa

    from poise.bus.events import Event
    from poise.monitor.triggers import Reason, RebalanceRequest
    from poise.workflow.drift import DriftRow
    from poise.workflow.monitor import Evaluation
    from poise.workflow.watching import PriceTick


# ── monitoring ───────────────────────────────────────────────────────────────


def _evaluate(
    database_url: str | None, as_of: str | None, bands: str | None
) -> tuple[Evaluation, Mapping[str, frozenset[Reason]]]:
    """The firm evaluated at ``as_of``, and the reasons of each account's open requests."""
    from poise.settings import Settings
    from poise.workflow.monitor import evaluate, load_state, watch_settings

    engine = _engine(database_url)
    at = _as_of(as_of)
    with _progress() as bar:
        bar.add_task("evaluating the firm", total=None)
        state = load_state(engine, as_of=at)
        found = evaluate(state, at=at, settings=watch_settings(Settings(), bands=bands))
    return found, state.requested


DRIFT_BUCKETS = ((0.01, "under 1 point"), (0.02, "1–2 points"), (0.05, "2–5 points"),
                 (0.10, "5–10 points"), (float("inf"), "10 points or more"))  # fmt: skip


@app.command()
def drift(
    model: Annotated[str | None, typer.Option(help="Only accounts on this model.")] = None,
    household: Annotated[str | None, typer.Option(help="Only this household.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every account, not only those needing attention.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows (0: all).")] = 20,
    as_of: AsOfOption = None,
    bands: BandsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The most drifted accounts: positions out of band, cash, holds — and why.

    Every account out of band, short of cash, with cash to invest or held is listed,
    whether or not a rebalance request is already open for it (the "request" column
    says which are).
    """
    from poise.workflow.drift import drift_rows

    found, open_requests = _evaluate(database_url, as_of, bands)
    rows = drift_rows(found, open_requests, model=model, household=household)
    attention = [r for r in rows if r.attention]
    listed = rows if everything else attention
    shown = listed[:limit] if limit else listed
    if as_json:
        _print_json(
            {
                "as_of": found.at,
                "accounts_total": len(rows),
                "listed_total": len(listed),
                "accounts": [r.json() for r in shown],
                "unmodelled": list(found.book.unmodelled),
            }
        )
        return
    out.print(
        f"[bold]{len(rows):,}[/bold] accounts as of {found.at:%Y-%m-%d %H:%M} UTC: "
        f"{sum(r.out_of_band for r in rows):,} out of band, "
        f"{sum(r.cash_status == 'short' for r in rows):,} short of cash, "
        f"{sum(r.cash_status == 'excess' for r in rows):,} with cash to invest, "
        f"{len(found.holds.held):,} held"
    )
    out.print(_drift_histogram(rows))
    title = "every account" if everything else "accounts needing attention"
    table = Table(
        title=f"{title} ({len(shown):,} of {len(listed):,})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("account", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("drift", justify="right", no_wrap=True)
    table.add_column("out of band", min_width=10, max_width=13)
    table.add_column("request", no_wrap=True)
    table.add_column("why", min_width=11, overflow="fold")
    for r in shown:
        positions = ", ".join(f"{p.security_id} {_pct(p.drift)}" for p in r.positions[:3])
        why = ", ".join(
            r.reasons or r.open_request or ([f"cash_{r.cash_status}"] if r.cash_status else [])
        )
        table.add_row(
            r.account_id,
            r.model_id,
            f"{Decimal(r.value):,.2f}",
            f"{r.max_drift * 100:.1f}",
            positions + (" …" if len(r.positions) > 3 else ""),
            "open" if r.open_request else "new" if r.reasons else "",
            f"[red]held: {r.hold}[/red]" if r.held else why,
        )
    table.caption = (
        "drift: the largest, in points of weight; request: raised now (new) or already open"
    )
    out.print(table)
    if found.book.unmodelled:
        out.print(
            f"[yellow]{len(found.book.unmodelled):,} accounts have no model that resolves[/yellow]"
        )


def _drift_histogram(rows: Sequence[DriftRow]) -> Table:
    histogram = Table(title="largest drift per account", show_header=False)
    histogram.add_column("bucket")
    histogram.add_column("accounts", justify="right")
    histogram.add_column("")
    counts = [0] * len(DRIFT_BUCKETS)
    for r in rows:
        counts[next(k for k, (edge, _) in enumerate(DRIFT_BUCKETS) if r.max_drift < edge)] += 1
    for (_, label), count in zip(DRIFT_BUCKETS, counts, strict=True):
        histogram.add_row(label, f"{count:,}", _bar(Decimal(count), Decimal(max(counts))))
    return histogram


@app.command()
def holds(
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Accounts that will not be traded because their data is wrong, and why."""
    from poise.workflow.drift import holds_json

    found, _ = _evaluate(database_url, as_of, None)
    if as_json:
        _print_json(holds_json(found))
        return
    if not found.holds.holds:
        out.print(f"no holds as of {found.at:%Y-%m-%d %H:%M} UTC")
        return
    if found.holds.flagged:
        flagged = Table(title="securities whose price cannot be used")
        flagged.add_column("security")
        flagged.add_column("why")
        for security, why in sorted(found.holds.flagged.items()):
            flagged.add_row(security, why)
        out.print(flagged)
    table = Table(title=f"holds ({len(found.holds.holds):,} on {len(found.holds.held):,} accounts)")
    for column in ("account", "cause", "detail"):
        table.add_column(column)
    for h in found.holds.holds:
        table.add_row(h.account_id, h.cause.value, h.detail)
    out.print(table)


requests_app = command_group("Rebalance requests: list them, or ask for one by hand.")
app.add_typer(requests_app, name="requests")


@requests_app.command("list")
def requests_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    household: Annotated[
        str | None, typer.Option("--household", help="Only this household.")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: open, answered or failed.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only requests with this reason (band_breach, …).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Only as of this day (YYYY-MM-DD, UTC) or later.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Only as of this day (YYYY-MM-DD, UTC) or earlier.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 50,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Rebalance requests raised so far, newest first, and the proposal that answered
    each (or, for one the worker could not answer, why)."""
    from poise.cli.proposals import of_total, one_of
    from poise.monitor.triggers import Reason
    from poise.store import repo
    from poise.workflow.documents import request_json

    where = repo.RequestFilter(
        account_id=account,
        household_id=household,
        status=one_of(status, repo.REQUEST_STATUSES, "--status"),
        reason=one_of(reason, tuple(Reason), "--reason"),
        since=_day(since, "--from"),
        until=_day(until, "--to"),
    )
    engine = _engine(database_url)
    with engine.connect() as connection:
        total = repo.count_requests(connection, where=where)
        found = [request_json(r) for r in repo.list_requests(connection, where=where, limit=limit)]
    if as_json:
        _print_json({"total": total, "requests": found})
        return
    from rich.markup import escape

    table = Table(title=f"rebalance requests ({of_total(len(found), total)})")
    columns = ("as of", "account", "household", "reasons", "max drift", "status", "answered by")
    for column in columns:
        table.add_column(column)
    for r in found:
        table.add_row(
            f"{r['as_of']:%Y-%m-%d %H:%M}",
            r["account_id"] or "",
            r["household_id"] or "",
            ", ".join(r["reasons"]),
            f"{r['figures'].get('max_drift', 0) * 100:.1f}",
            r["status"],
            r["answered_by"] or (f"[red]{escape(r['failure'])}[/red]" if r["failure"] else ""),
        )
    out.print(table)


def _publish(events: Sequence[Event], *, bus: str, url: str, show: str | None = None) -> None:
    """Publish ``events`` on the bus named, in order, with a progress bar if ``show``."""
    import asyncio

    from poise.bus.registry import open_bus

    async def publish() -> None:
        opened = await open_bus(bus, url=url)
        try:
            with _progress(disable=show is None) as bar:
                for event in bar.track(events, description=show or ""):
                    await opened.publish(event)
        finally:
            await opened.close()

    asyncio.run(publish())


@requests_app.command("add")
def requests_add(
    account_id: Annotated[str, typer.Argument(help="The account to rebalance.")],
    note: Annotated[str, typer.Option(help="Why, for the people who act on it.")] = "",
    bus: BusOption = None,
    nats_url: NatsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Ask for a rebalance by hand (a manual request), stored and published."""
    from poise.settings import Settings
    from poise.workflow.watching import ask_for_rebalance, request_event

    settings = Settings()
    engine = _engine(database_url)
    request, new = ask_for_rebalance(engine, account_id=account_id, note=note, at=datetime.now(UTC))
    _publish([request_event(request)], bus=bus or settings.bus, url=nats_url or settings.nats_url)
    if as_json:
        _print_json({"request_id": request.request_id, "new": bool(new)})
    else:
        out.print(f"{request.request_id}: " + ("requested" if new else "already requested today"))


# ── the watcher ──────────────────────────────────────────────────────────────

prices_app = command_group("Prices as a stream of events.")
app.add_typer(prices_app, name="prices")


@dataclass(frozen=True, slots=True)
class WatchReport:
    started: datetime  # the firm as it stood then is where watching began
    first_day: date | None  # the days of the prices replayed (None: watched live)
    last_day: date | None
    ticks: int
    requests: int
    stored: int
    by_reason: dict[str, int]


async def _watch(
    engine: sa.Engine,
    *,
    at: datetime,
    bus_name: str,
    nats_url: str,
    replay: list[PriceTick] | None,
    calendar: str | None,
    bands: str | None,
    quiet: bool,
) -> WatchReport:
    import asyncio

    from poise.bus.registry import open_bus
    from poise.settings import Settings
    from poise.workflow.monitor import evaluate, load_state, watch_settings
    from poise.workflow.watching import MonitorService, price_event

    settings = Settings()
    found = evaluate(
        load_state(engine, as_of=at), at=at, settings=watch_settings(settings, bands=bands)
    )
    bus = await open_bus(bus_name, url=nats_url)
    by_reason: dict[str, int] = {}

    def count(request: RebalanceRequest) -> None:
        for reason in request.reasons:
            by_reason[reason.value] = by_reason.get(reason.value, 0) + 1

    service = MonitorService(engine, bus, found.watch, calendar=calendar, on_request=count)
    try:
        await service.start(initial=found.requests)
        if replay is None:
            err.print(f"watching prices on the {bus_name} bus; Ctrl-C to stop")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        else:
            with _progress(disable=quiet) as bar:
                task = bar.add_task("replaying prices", total=len(replay))
                for tick in replay:
                    await bus.publish(price_event(tick))
                waiting = asyncio.create_task(service.wait_for(len(replay), timeout=3600))
                while not waiting.done():
                    bar.update(task, completed=service.ticks)
                    await asyncio.sleep(0.1)
                await waiting
    finally:
        await service.stop()
        await bus.close()
    days = sorted({tick.at.date() for tick in replay or ()})
    return WatchReport(
        started=at,
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
        ticks=service.ticks,
        requests=len(service.published),
        stored=service.stored,
        by_reason=by_reason,
    )


def _print_watch(report: WatchReport, *, as_json: bool) -> None:
    if as_json:
        _print_json(asdict(report))
        return
    if report.first_day is not None:
        when = f"prices of {report.first_day} to {report.last_day} replayed"
    else:
        when = f"watched from {report.started:%Y-%m-%d %H:%M} UTC"
    out.print(
        f"{when}: {report.ticks:,} price events, "
        f"{report.requests:,} rebalance requests raised, {report.stored:,} new in the store"
    )
    table = Table(title="requests by reason")
    table.add_column("reason")
    table.add_column("requests", justify="right")
    table.add_column("")
    top = max(report.by_reason.values(), default=0)
    for reason, number in sorted(report.by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, f"{number:,}", _bar(Decimal(number), Decimal(top)))
    out.print(table)


def _replay_ticks(
    engine: sa.Engine, path: Path, start: date | None, end: date | None
) -> list[PriceTick]:
    from poise.store import repo
    from poise.workflow.watching import read_price_history

    with engine.connect() as connection:
        known = repo.key_series(connection, kind="securities")
    return read_price_history(path, securities=known, start=start, end=end)


@app.command()
def monitor(
    replay: Annotated[
        Path | None, typer.Option(help="Feed this prices file as a stream, then stop.")
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    as_of: AsOfOption = None,
    calendar: Annotated[
        str | None, typer.Option(help="Also request every account monthly, quarterly, …")
    ] = None,
    bus: BusOption = None,
    nats_url: NatsOption = None,
    bands: BandsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Watch the firm: price events in, rebalance requests out (stored and published)."""
    import asyncio

    from poise.settings import Settings

    settings = Settings()
    engine = _engine(database_url)
    first, last = _day(start, "--from"), _day(end, "--to")
    ticks = _replay_ticks(engine, replay, first, last) if replay is not None else None
    if as_of is not None or first is None:
        at = _as_of(as_of)
    else:  # a replay starts from the prices as they stood the evening before
        at = datetime.combine(first, time(0), tzinfo=UTC) - timedelta(microseconds=1)
    report = asyncio.run(
        _watch(
            engine,
            at=at,
            bus_name=bus or settings.bus,
            nats_url=nats_url or settings.nats_url,
            replay=ticks,
            calendar=calendar or settings.calendar,
            bands=bands,
            quiet=as_json,
        )
    )
    _print_watch(report, as_json=as_json)


@prices_app.command("replay")
def prices_replay(
    path: Annotated[Path, typer.Argument(help="A prices file in the canonical format.")],
    start: FromOption = None,
    end: ToOption = None,
    bus: BusOption = None,
    nats_url: NatsOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Publish a price history as a stream of price events, in time order.

    On NATS, a `poise monitor --bus nats` running elsewhere consumes them. On the
    in-process bus there is no one else to listen, so the monitor runs here.
    """
    from poise.settings import Settings
    from poise.workflow.watching import price_event

    settings = Settings()
    bus_name = bus or settings.bus
    if bus_name == "inprocess":
        monitor(
            replay=path,
            start=start,
            end=end,
            as_of=None,
            calendar=None,
            bus=bus_name,
            nats_url=nats_url,
            bands=None,
            as_json=as_json,
            database_url=database_url,
        )
        return
    engine = _engine(database_url)
    ticks = _replay_ticks(engine, path, _day(start, "--from"), _day(end, "--to"))

    _publish(
        [price_event(tick) for tick in ticks],
        bus=bus_name,
        url=nats_url or settings.nats_url,
        show=None if as_json else "publishing prices",
    )
    if as_json:
        _print_json({"published": len(ticks)})
    else:
        out.print(f"published {len(ticks):,} price events on {bus_name}")
