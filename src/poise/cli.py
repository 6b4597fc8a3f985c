"""The ``poise`` command: each stage on its own, for people (Rich) and scripts (--json)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from poise.bus.events import Event
from poise.bus.registry import open_bus
from poise.demo import generate_firm, write_firm
from poise.domain.errors import PoiseError
from poise.domain.models import resolve
from poise.domain.money import cents
from poise.ingest.formats import FORMATS
from poise.monitor.book import BandPolicy
from poise.monitor.triggers import RebalanceRequest, manual_request
from poise.report.summary import FirmSummary, Holding, holdings, summarise
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import current_revision, ensure_schema, head_revision, upgrade
from poise.workflow.ingest import FileReport, ingest_paths
from poise.workflow.monitor import Evaluation, evaluate, load_state, watch_settings
from poise.workflow.rebalance import load_problem, propose
from poise.workflow.watching import (
    MonitorService,
    PriceTick,
    price_event,
    read_price_history,
    request_event,
)

app = typer.Typer(
    help="poise: tax-aware portfolio rebalancing for advisers, on hardware you own.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The system of record's schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts and what they hold.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="POISE_DATABASE_URL", help="Where the data lives."),
]


def _engine(database_url: str | None, *, create: bool = False) -> sa.Engine:
    url = database_url or Settings().database_url
    engine = make_engine(url)
    ensure_schema(engine, create=create)
    return engine


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in items]
    return value


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2) + "\n")


def _money(amount: Decimal) -> str:
    return f"{cents(amount):,.2f}"


def _bar(value: Decimal, largest: Decimal, width: int = 24) -> str:
    if largest <= 0:
        return ""
    filled = int(width * value / largest)
    return "█" * filled + "░" * (width - filled)


def _progress(*, disable: bool = False) -> Progress:
    """A progress display on standard error, gone when the work is done."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=disable,
    )


# ── db ────────────────────────────────────────────────────────────────────────


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Bring the database to the current schema (creates it if new)."""
    engine = make_engine(database_url or Settings().database_url)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    out.print(
        f"schema {before or 'none'} → {after}" if before != after else f"schema {after}, up to date"
    )


@db_app.command("current")
def db_current(database_url: DatabaseOption = None) -> None:
    """Show the database's schema revision and the newest one poise knows."""
    engine = make_engine(database_url or Settings().database_url)
    out.print(f"database: {current_revision(engine) or 'none'}; poise: {head_revision()}")


# ── ingest ────────────────────────────────────────────────────────────────────


@contextmanager
def _ingest_progress(enabled: bool) -> Iterator[Callable[[str, FileReport | None], None] | None]:
    if not enabled:
        yield None
        return
    with _progress() as bar:
        task = bar.add_task("loading", total=None)
        done: list[str] = []

        def tick(name: str, report: FileReport | None) -> None:
            if report is None:
                bar.update(task, description=f"loading {name}")
            else:
                done.append(name)
                bar.update(task, completed=len(done))

        yield tick


def _ingest_table(reports: Sequence[FileReport]) -> Table:
    table = Table(title="ingest", show_lines=False)
    for column in ("file", "kind", "read", "loaded", "unchanged", "quarantined"):
        table.add_column(column, justify="left" if column in ("file", "kind") else "right")
    for r in reports:
        if r.refused:
            table.add_row(Path(r.path).name, "[red]refused[/red]", "", "", "", "")
        else:
            q = f"[yellow]{r.quarantined:,}[/yellow]" if r.quarantined else "0"
            table.add_row(
                Path(r.path).name, r.kind, f"{r.read:,}", f"{r.loaded:,}", f"{r.unchanged:,}", q
            )
    return table


def _report_json(r: FileReport) -> dict[str, Any]:
    return {
        "path": r.path,
        "kind": r.kind,
        "read": r.read,
        "loaded": r.loaded,
        "inserted": r.inserted,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "quarantined": r.quarantined,
        "refused": r.refused or None,
        "rejects": [{"line": x.line, "reason": x.reason} for x in r.rejects],
    }


def _show_quarantine(engine: sa.Engine, *, everything: bool, as_json: bool) -> None:
    with engine.connect() as connection:
        rows = repo.list_quarantine(connection, everything=everything)
    if as_json:
        _print_json([asdict(r) for r in rows])
        return
    if not rows:
        out.print("nothing in quarantine")
        return
    table = Table(title=f"quarantine ({len(rows):,} rows)")
    for column in ("file", "line", "kind", "reason", "row"):
        table.add_column(column, justify="right" if column == "line" else "left")
    for r in rows:
        table.add_row(r.file_name, str(r.line), r.kind, r.reason, r.raw[:60])
    out.print(table)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="CSV or Parquet files.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Read every file as this kind instead of telling it by its columns."),
    ] = None,
    quarantine: Annotated[
        bool, typer.Option("--quarantine", help="List quarantined rows instead of loading.")
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="With --quarantine: rows of every load, not the latest.")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 3 when any row was quarantined.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Load custodian and accounting files; every row is loaded or quarantined with a reason."""
    if verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if kind is not None and kind not in FORMATS:
        raise typer.BadParameter(f"kind must be one of {', '.join(FORMATS)}", param_hint="--kind")
    engine = _engine(database_url, create=True)
    if quarantine:
        _show_quarantine(engine, everything=everything, as_json=as_json)
        return
    if not paths:
        raise typer.BadParameter("name at least one file", param_hint="PATHS")
    with _ingest_progress(not as_json and not verbose) as tick:
        reports = ingest_paths(
            engine, paths, today=datetime.now(UTC).date(), kind=kind, progress=tick
        )
    if as_json:
        _print_json([_report_json(r) for r in reports])
    else:
        out.print(_ingest_table(reports))
        for r in reports:
            if r.refused:
                err.print(f"[red]refused:[/red] {r.refused}")
            for x in r.rejects[:5]:
                err.print(f"[yellow]{Path(r.path).name}:{x.line}[/yellow] {x.reason}")
            if len(r.rejects) > 5:
                err.print(f"… and {len(r.rejects) - 5:,} more: poise ingest --quarantine")
    if any(r.refused for r in reports):
        raise typer.Exit(4)
    if strict and any(r.quarantined for r in reports):
        raise typer.Exit(3)


# ── accounts ──────────────────────────────────────────────────────────────────


@accounts_app.command("list")
def accounts_list(
    household: Annotated[str | None, typer.Option(help="Only this household.")] = None,
    model: Annotated[str | None, typer.Option(help="Only accounts on this model.")] = None,
    registration: Annotated[str | None, typer.Option(help="Only this registration.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows (0: all).")] = 50,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Accounts with their household, registration, model and value."""
    engine = _engine(database_url)
    with engine.connect() as connection:
        found = repo.accounts(
            connection, household_id=household, model_id=model, registration=registration
        )
        shown = found[:limit] if limit else found
        lots = repo.lots(connection, account_ids=[a.account_id for a in shown])
        prices = {s: p for s, (p, _) in repo.latest_prices(connection).items()}
    held, _ = holdings(lots, prices)
    value = {a.account_id: a.cash for a in shown}
    for h in held:
        value[h.account_id] += h.value
    if as_json:
        _print_json(
            [
                {
                    "account_id": a.account_id,
                    "household_id": a.household_id,
                    "registration": a.registration.value,
                    "custodian": a.custodian,
                    "model_id": a.model_id,
                    "cash": a.cash,
                    "value": value[a.account_id],
                }
                for a in shown
            ]
        )
        return
    table = Table(title=f"accounts ({len(shown):,} of {len(found):,})")
    for column in ("account", "household", "registration", "custodian", "model", "cash", "value"):
        table.add_column(column, justify="right" if column in ("cash", "value") else "left")
    for a in shown:
        table.add_row(
            a.account_id,
            a.household_id,
            a.registration.value,
            a.custodian,
            a.model_id or "",
            _money(a.cash),
            _money(value[a.account_id]),
        )
    out.print(table)


@accounts_app.command("show")
def accounts_show(
    account_id: Annotated[str, typer.Argument(help="The account number.")],
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """One account: its settings, holdings and tax lots."""
    engine = _engine(database_url)
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        lots = repo.account_lots(connection, account_id=account_id)
        prices = {s: p for s, (p, _) in repo.latest_prices(connection).items()}
        models = repo.models(connection)
    held, _ = holdings(lots, prices)
    total = account.cash + sum((h.value for h in held), Decimal(0))
    targets = resolve(account.model_id, models).securities if account.model_id in models else {}
    if as_json:
        _print_json(
            {
                "account": asdict(account),
                "value": total,
                "holdings": [
                    asdict(h) | {"gain": h.gain, "target": targets.get(h.security_id)} for h in held
                ],
                "lots": [asdict(lot) for lot in lots],
            }
        )
        return
    a = account
    out.print(f"[bold]{a.account_id}[/bold]  {a.name}  household {a.household_id}")
    out.print(
        f"{a.registration.value} at {a.custodian or '—'}; model {a.model_id or '—'}; "
        f"harvesting {'on' if a.harvest else 'off'}"
    )
    out.print(
        f"value {_money(total)}; cash {_money(a.cash)} "
        f"(reserve {_money(a.reserve.amount)} or {a.reserve.fraction:%})"
    )
    rates = a.tax_rates
    out.print(
        f"tax rates: short {rates.short_term:%}, long {rates.long_term:%}, state {rates.state:%}"
    )
    if a.restrictions.do_not_buy or a.restrictions.do_not_sell or a.restrictions.excluded_tags:
        r = a.restrictions
        out.print(
            f"restrictions: do not buy {sorted(r.do_not_buy)}, do not sell {sorted(r.do_not_sell)},"
            f" excluded tags {sorted(r.excluded_tags)}"
        )
    table = Table(title="holdings")
    for column in ("security", "quantity", "basis", "value", "weight", "target", "gain"):
        table.add_column(column, justify="left" if column == "security" else "right")
    for h in sorted(held, key=lambda h: -h.value):
        gain = f"[green]{_money(h.gain)}[/green]" if h.gain >= 0 else f"[red]{_money(h.gain)}[/red]"
        weight = f"{h.value / total:.1%}" if total else ""
        target = f"{targets[h.security_id]:.1%}" if h.security_id in targets else "—"
        table.add_row(
            h.security_id, f"{h.quantity:,}", _money(h.basis), _money(h.value), weight, target, gain
        )
    for security_id in sorted(set(targets) - {h.security_id for h in held}):
        table.add_row(security_id, "0", "", "", "0.0%", f"{targets[security_id]:.1%}", "")
    out.print(table)
    lot_table = Table(title=f"tax lots ({len(lots)})")
    for column in ("lot", "security", "quantity", "basis", "acquired"):
        lot_table.add_column(column, justify="right" if column in ("quantity", "basis") else "left")
    for lot in lots:
        lot_table.add_row(
            lot.lot_id,
            lot.security_id,
            f"{lot.quantity:,}",
            _money(lot.basis),
            lot.acquired.isoformat(),
        )
    out.print(lot_table)


# ── monitoring ───────────────────────────────────────────────────────────────


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Evaluate as of this time (ISO 8601; a bare date is the end of that day, UTC). "
        "Default: now.",
    ),
]
BandsOption = Annotated[
    str | None, typer.Option(help="The firm's default bands: 5/25 or none (POISE_BAND_PRESET).")
]


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(23, 59, 59), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _evaluate(database_url: str | None, as_of: str | None, bands: str | None) -> Evaluation:
    engine = _engine(database_url)
    at = _as_of(as_of)
    with _progress() as bar:
        bar.add_task("evaluating the firm", total=None)
        state = load_state(engine, as_of=at)
        return evaluate(state, at=at, settings=watch_settings(Settings(), bands=bands))


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}"


DRIFT_BUCKETS = ((0.01, "under 1 point"), (0.02, "1–2 points"), (0.05, "2–5 points"),
                 (0.10, "5–10 points"), (float("inf"), "10 points or more"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class DriftRow:
    account_id: str
    household_id: str | None
    model_id: str
    value: float
    max_drift: float
    out_of_band: bool
    positions: list[str]
    cash: str
    held: str | None
    hold: str | None
    reasons: list[str]


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
    """The most drifted accounts: positions out of band, cash, holds — and why."""
    found = _evaluate(database_url, as_of, bands)
    held = {h.account_id: h for h in reversed(found.holds.holds)}
    requested = {r.account_id: r for r in found.requests}
    rows: list[DriftRow] = []
    for d in found.drifts:
        block = d.block
        for row, account_id in enumerate(block.account_ids):
            if model is not None and block.layout.model_id != model:
                continue
            if household is not None and found.watch.household_of.get(account_id) != household:
                continue
            request = requested.get(account_id)
            breached = [
                f"{block.layout.securities[j]} {_pct(d.drift[row, j])} "
                f"(±{d.width[row, j] * 100:.1f})"
                for j in np.flatnonzero(d.breach[row])
            ]
            cash = "short" if d.cash_short[row] else "excess" if d.cash_excess[row] else ""
            rows.append(
                DriftRow(
                    account_id=account_id,
                    household_id=found.watch.household_of.get(account_id),
                    model_id=block.layout.model_id,
                    value=round(float(d.value[row]), 2),
                    max_drift=round(float(d.max_drift[row]), 6),
                    out_of_band=bool(d.out_of_band[row]),
                    positions=breached,
                    cash=cash,
                    held=held[account_id].cause.value if account_id in held else None,
                    hold=held[account_id].detail if account_id in held else None,
                    reasons=[r.value for r in request.reasons] if request else [],
                )
            )
    rows.sort(key=lambda r: -r.max_drift)
    attention = [r for r in rows if r.reasons or r.held]
    shown = rows if everything else attention
    shown = shown[:limit] if limit else shown
    if as_json:
        _print_json(
            {
                "as_of": found.at,
                "accounts": [asdict(r) for r in shown],
                "unmodelled": list(found.book.unmodelled),
            }
        )
        return
    out.print(
        f"[bold]{len(rows):,}[/bold] accounts as of {found.at:%Y-%m-%d %H:%M} UTC: "
        f"{sum(r.out_of_band for r in rows):,} out of band, "
        f"{sum(r.cash == 'short' for r in rows):,} short of cash, "
        f"{sum(r.cash == 'excess' for r in rows):,} with cash to invest, "
        f"{len(found.holds.held):,} held"
    )
    histogram = Table(title="largest drift per account", show_header=False)
    histogram.add_column("bucket")
    histogram.add_column("accounts", justify="right")
    histogram.add_column("")
    counts = [0] * len(DRIFT_BUCKETS)
    for r in rows:
        counts[next(k for k, (edge, _) in enumerate(DRIFT_BUCKETS) if r.max_drift < edge)] += 1
    for (_, label), count in zip(DRIFT_BUCKETS, counts, strict=True):
        histogram.add_row(label, f"{count:,}", _bar(Decimal(count), Decimal(max(counts))))
    out.print(histogram)
    table = Table(title=f"accounts needing attention ({len(shown):,} of {len(attention):,})")
    for column in ("account", "model", "value", "max drift", "out of band (points)", "cash", "why"):
        table.add_column(column, justify="right" if column in ("value", "max drift") else "left")
    for r in shown:
        why = f"[red]held: {r.hold}[/red]" if r.held else ", ".join(r.reasons)
        table.add_row(
            r.account_id,
            r.model_id,
            f"{r.value:,.2f}",
            f"{r.max_drift * 100:.1f}",
            "; ".join(r.positions[:4]) + (" …" if len(r.positions) > 4 else ""),
            r.cash,
            why,
        )
    out.print(table)
    if found.book.unmodelled:
        out.print(
            f"[yellow]{len(found.book.unmodelled):,} accounts have no model that resolves[/yellow]"
        )


@app.command()
def holds(
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Accounts that will not be traded because their data is wrong, and why."""
    found = _evaluate(database_url, as_of, None)
    listed = [asdict(h) for h in found.holds.holds]
    if as_json:
        _print_json({"as_of": found.at, "holds": listed, "flagged": dict(found.holds.flagged)})
        return
    if not listed:
        out.print(f"no holds as of {found.at:%Y-%m-%d %H:%M} UTC")
        return
    if found.holds.flagged:
        flagged = Table(title="securities whose price cannot be used")
        flagged.add_column("security")
        flagged.add_column("why")
        for security, why in sorted(found.holds.flagged.items()):
            flagged.add_row(security, why)
        out.print(flagged)
    table = Table(title=f"holds ({len(listed):,} on {len(found.holds.held):,} accounts)")
    for column in ("account", "cause", "detail"):
        table.add_column(column)
    for h in found.holds.holds:
        table.add_row(h.account_id, h.cause.value, h.detail)
    out.print(table)


requests_app = typer.Typer(
    help="Rebalance requests: list them, or ask for one by hand.", no_args_is_help=True
)
app.add_typer(requests_app, name="requests")


@requests_app.command("list")
def requests_list(
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 50,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Rebalance requests raised so far, newest first."""
    engine = _engine(database_url)
    with engine.connect() as connection:
        found = repo.list_requests(connection, limit=limit)
    if as_json:
        _print_json(found)
        return
    table = Table(title=f"rebalance requests ({len(found):,})")
    for column in ("as of", "account", "household", "reasons", "max drift", "status"):
        table.add_column(column)
    for r in found:
        table.add_row(
            f"{r['as_of']:%Y-%m-%d %H:%M}",
            r["account_id"] or "",
            r["household_id"] or "",
            ", ".join(r["reasons"]),
            f"{r['figures'].get('max_drift', 0) * 100:.1f}",
            r["status"],
        )
    out.print(table)


def _publish(events: Sequence[Event], *, bus: str, url: str, show: str | None = None) -> None:
    """Publish ``events`` on the bus named, in order, with a progress bar if ``show``."""

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
    settings = Settings()
    engine = _engine(database_url)
    with engine.begin() as connection:
        account = repo.account(connection, account_id=account_id)
        request = manual_request(
            account_id=account.account_id,
            household_id=account.household_id,
            as_of=datetime.now(UTC),
            note=note,
        )
        new = repo.save_requests(
            connection, requests=[request.to_payload()], received_at=datetime.now(UTC)
        )

    _publish([request_event(request)], bus=bus or settings.bus, url=nats_url or settings.nats_url)
    if as_json:
        _print_json({"request_id": request.request_id, "new": bool(new)})
    else:
        out.print(f"{request.request_id}: " + ("requested" if new else "already requested today"))


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


# ── the watcher ──────────────────────────────────────────────────────────────

prices_app = typer.Typer(help="Prices as a stream of events.", no_args_is_help=True)
app.add_typer(prices_app, name="prices")

BusOption = Annotated[
    str | None, typer.Option("--bus", help="Event bus: inprocess or nats (POISE_BUS).")
]
NatsOption = Annotated[str | None, typer.Option("--nats-url", help="NATS server (POISE_NATS_URL).")]
FromOption = Annotated[str | None, typer.Option("--from", help="First day to replay.")]
ToOption = Annotated[str | None, typer.Option("--to", help="Last day to replay.")]


@dataclass(frozen=True, slots=True)
class WatchReport:
    started: datetime
    ticks: int
    requests: int
    stored: int
    by_reason: dict[str, int]


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


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
    return WatchReport(at, service.ticks, len(service.published), service.stored, by_reason)


def _print_watch(report: WatchReport, *, as_json: bool) -> None:
    if as_json:
        _print_json(asdict(report))
        return
    out.print(
        f"from {report.started:%Y-%m-%d %H:%M} UTC: {report.ticks:,} price events, "
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


# ── demo ──────────────────────────────────────────────────────────────────────


def _print_summary(summary: FirmSummary, *, engine_url: str, files: Path, as_of: date) -> None:
    s = summary
    out.rule("[bold]the demo firm[/bold]")
    out.print(
        f"{s.households:,} households, {s.accounts:,} accounts, "
        f"assets under management [bold]{_money(s.aum)}[/bold] (cash {_money(s.cash)})"
    )
    reg = Table(title="accounts by registration")
    for column in ("registration", "accounts", "value", ""):
        reg.add_column(column, justify="left" if column in ("registration", "") else "right")
    top = max((r.value for r in s.by_registration), default=Decimal(0))
    for r in s.by_registration:
        reg.add_row(r.registration, f"{r.accounts:,}", _money(r.value), _bar(r.value, top))
    out.print(reg)
    models = Table(title="assets by model")
    for column in ("model", "name", "accounts", "value", ""):
        models.add_column(column, justify="right" if column in ("accounts", "value") else "left")
    top = max((m.value for m in s.by_model), default=Decimal(0))
    for m in s.by_model:
        models.add_row(
            m.model_id or "—", m.name, f"{m.accounts:,}", _money(m.value), _bar(m.value, top)
        )
    out.print(models)

    def movers(title: str, rows: Sequence[Holding], colour: str) -> Table:
        table = Table(title=title)
        for column in ("account", "security", "quantity", "basis", "value", "unrealised"):
            table.add_column(
                column, justify="left" if column in ("account", "security") else "right"
            )
        for h in rows:
            table.add_row(
                h.account_id,
                h.security_id,
                f"{h.quantity:,}",
                _money(h.basis),
                _money(h.value),
                f"[{colour}]{_money(h.gain)}[/{colour}]",
            )
        return table

    out.print(movers("largest unrealised gains", s.largest_gains, "green"))
    out.print(movers("largest unrealised losses", s.largest_losses, "red"))
    out.print(f"unrealised gain, whole firm: {_money(s.unrealised_gain)}")
    if s.unpriced_lots:
        out.print(f"[yellow]{s.unpriced_lots:,} lots have no price and are left out[/yellow]")
    out.print(
        f"\nfiles: {files}/   database: {engine_url}\n"
        "next: poise accounts list · poise accounts show ACCOUNT · poise ingest --quarantine\n"
        f"      poise drift --as-of {as_of} · poise holds --as-of {as_of}"
    )


def firm_summary(engine: sa.Engine) -> FirmSummary:
    with engine.connect() as connection:
        return summarise(
            households=len(repo.households(connection)),
            accounts=repo.accounts(connection),
            lots=repo.lots(connection),
            prices={s: p for s, (p, _) in repo.latest_prices(connection).items()},
            model_names={mid: m.name for mid, m in repo.models(connection).items()},
        )


@app.command()
def demo(
    households: Annotated[int, typer.Option(min=1, help="Households in the firm.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the random choices.")] = 7,
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the firm's files.")] = Path(
        "demo-data"
    ),
    data_dir: Annotated[
        Path | None, typer.Option(help="Market data folder (default: ../shared/data).")
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Build a realistic firm from real market data, ingest it, and summarise it."""
    settings = Settings()
    url = database_url or settings.database_url
    with _progress(disable=as_json) as bar:
        task = bar.add_task("generating the firm", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        firm = generate_firm(
            households=households, seed=seed, data_dir=data_dir or settings.data_dir, progress=step
        )
        paths = write_firm(firm, out_dir)
        engine = _engine(url, create=True)
        load = bar.add_task("loading", total=len(paths))

        def tick(name: str, report: FileReport | None) -> None:
            bar.update(load, description=f"loading {name}", advance=0 if report is None else 1)

        reports = ingest_paths(engine, paths, today=datetime.now(UTC).date(), progress=tick)
    refused = [r for r in reports if r.refused]
    if refused:
        raise PoiseError("; ".join(r.refused for r in refused))
    summary = firm_summary(engine)
    if as_json:
        _print_json({"files": [_report_json(r) for r in reports], "summary": asdict(summary)})
        return
    out.print(_ingest_table(reports))
    _print_summary(summary, engine_url=url, files=out_dir, as_of=firm.as_of)


def main() -> None:
    """Run the command; typed errors become a one-line message and their exit code."""
    try:
        app()
    except PoiseError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(exc.exit_code)
