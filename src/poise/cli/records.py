"""Commands over the system of record: the schema, ingest, accounts and the demo firm."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _bar,
    _column,
    _engine,
    _money,
    _print_json,
    _progress,
    accounts_app,
    app,
    db_app,
    err,
    out,
    ratio,
)
from poise.domain.errors import PoiseError

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    import sqlalchemy as sa

    from poise.domain.accounts import Account
    from poise.report.summary import FirmSummary, Holding
    from poise.settings import Settings
    from poise.workflow.demo_loop import StageDone
    from poise.workflow.ingest import FileReport

# ── db ────────────────────────────────────────────────────────────────────────


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOption = False, database_url: DatabaseOption = None) -> None:
    """Bring the database to the current schema (creates it if new)."""
    from poise.settings import Settings
    from poise.store.migrate import current_revision, open_store, upgrade

    engine = open_store(database_url or Settings().database_url, schema=False)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    if as_json:
        _print_json({"before": before, "after": after, "changed": before != after})
        return
    out.print(
        f"schema {before or 'none'} → {after}" if before != after else f"schema {after}, up to date"
    )


@db_app.command("current")
def db_current(as_json: JsonOption = False, database_url: DatabaseOption = None) -> None:
    """Show the database's schema revision and the newest one poise knows."""
    from poise.settings import Settings
    from poise.store.migrate import current_revision, head_revision, open_store

    engine = open_store(database_url or Settings().database_url, schema=False)
    current, head = current_revision(engine), head_revision()
    if as_json:
        _print_json({"database": current, "poise": head, "up_to_date": current == head})
        return
    out.print(f"database: {current or 'none'}; poise: {head}")


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
        _column(table, column, number=column not in ("file", "kind"))
    for r in reports:
        if r.missing:
            table.add_row(r.path, "[red]no such file[/red]", "", "", "", "")
        elif r.refused or r.failed:
            outcome = "[red]refused[/red]" if r.refused else "[red]failed[/red]"
            table.add_row(Path(r.path).name, outcome, "", "", "", "")
        else:
            q = f"[yellow]{r.quarantined:,}[/yellow]" if r.quarantined else "0"
            table.add_row(
                Path(r.path).name, r.kind, f"{r.read:,}", f"{r.loaded:,}", f"{r.unchanged:,}", q
            )
    return table


def _show_quarantine(engine: sa.Engine, *, everything: bool, as_json: bool) -> None:
    from poise.store import repo
    from poise.workflow.documents import quarantined_json

    with engine.connect() as connection:
        rows = repo.list_quarantine(connection, everything=everything)
    if as_json:
        _print_json([quarantined_json(r) for r in rows])
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
    layout: Annotated[
        Path | None,
        typer.Option(
            "--layout",
            help="A custodian layout file (TOML): read every file through it (docs/ingest.md).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Load custodian and accounting files; every row is loaded or quarantined with a reason."""
    from poise.ingest.formats import FORMATS
    from poise.workflow.documents import ingest_report_json
    from poise.workflow.ingest import ingest_paths

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
    read_through = None
    if layout is not None:
        from poise.ingest.layout import read_layout

        read_through = read_layout(layout)
    with _ingest_progress(not as_json and not verbose) as tick:
        reports = ingest_paths(
            engine, paths, today=datetime.now(UTC).date(), kind=kind, progress=tick,
            layout=read_through,
        )  # fmt: skip
    if as_json:
        _print_json([ingest_report_json(r) for r in reports])
    else:
        out.print(_ingest_table(reports))
        _ingest_notes(reports)
    # A file that failed is a fault to report (1); one refused is the sender's (4).
    if any(r.failed for r in reports):
        raise typer.Exit(1)
    if any(r.refused for r in reports):
        raise typer.Exit(4)
    if strict and any(r.quarantined for r in reports):
        raise typer.Exit(3)


def _ingest_notes(reports: Sequence[FileReport]) -> None:
    """Why each file was refused or failed, and its first rejected rows, on stderr."""
    for r in reports:
        if r.refused:
            err.print(f"[red]refused:[/red] {r.refused}")
        if r.failed:
            err.print(f"[red]failed:[/red] {r.failed} (--verbose shows where)")
        for x in r.rejects[:5]:
            err.print(f"[yellow]{Path(r.path).name}:{x.line}[/yellow] {x.reason}")
        if r.wash_sale_lots:
            err.print(
                f"{Path(r.path).name}: wash sales adjusted {r.wash_sale_lots:,} other lot rows"
                " (poise washsales --household ID shows them)"
            )
        if len(r.rejects) > 5:
            err.print(f"… and {len(r.rejects) - 5:,} more: poise ingest --quarantine")


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
    from poise.report.summary import holdings
    from poise.store import repo

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
        _column(table, column, number=column in ("cash", "value"))
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
    from poise.domain.models import resolve
    from poise.report.summary import holdings
    from poise.store import repo

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
                "account": _account_json(account),
                "value": total,
                "holdings": [
                    asdict(h)
                    | {
                        "gain": h.gain,
                        "weight": ratio(h.value / total) if total else None,
                        "target": ratio(targets.get(h.security_id)),
                    }
                    for h in sorted(held, key=lambda h: h.security_id)
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
    own = a.min_trade
    if own.amount is not None or own.fraction is not None:
        parts = [
            "" if own.amount is None else _money(own.amount),
            "" if own.fraction is None else f"{own.fraction:%} of the account",
        ]
        out.print(f"smallest trade (the account's own): {' or '.join(p for p in parts if p)}")
    table = Table(title="holdings")
    for column in ("security", "quantity", "basis", "value", "weight", "target", "gain"):
        _column(table, column, number=column != "security")
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
        _column(lot_table, column, number=column in ("quantity", "basis"))
    for lot in lots:
        lot_table.add_row(
            lot.lot_id,
            lot.security_id,
            f"{lot.quantity:,}",
            _money(lot.basis),
            lot.acquired.isoformat(),
        )
    out.print(lot_table)


def _account_json(a: Account) -> dict[str, object]:
    """An account's settings as JSON shows them: rates, fractions and bands are ratios."""
    return {
        "account_id": a.account_id,
        "household_id": a.household_id,
        "name": a.name,
        "registration": a.registration,
        "custodian": a.custodian,
        "model_id": a.model_id,
        "cash": a.cash,
        "reserve": {"amount": a.reserve.amount, "fraction": ratio(a.reserve.fraction)},
        "restrictions": asdict(a.restrictions),
        "tax_rates": {k: ratio(v) for k, v in asdict(a.tax_rates).items()},
        "harvest": a.harvest,
        "tolerance": {
            "absolute": ratio(a.tolerance.absolute),
            "relative": ratio(a.tolerance.relative),
        },
        "min_trade": {
            "amount": a.min_trade.amount,
            "fraction": ratio(a.min_trade.fraction),
        },
    }


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
        _column(reg, column, number=column not in ("registration", ""))
    top = max((r.value for r in s.by_registration), default=Decimal(0))
    for r in s.by_registration:
        reg.add_row(r.registration, f"{r.accounts:,}", _money(r.value), _bar(r.value, top))
    out.print(reg)
    models = Table(title="assets by model")
    for column in ("model", "name", "accounts", "value", ""):
        _column(models, column, number=column in ("accounts", "value"))
    top = max((m.value for m in s.by_model), default=Decimal(0))
    for m in s.by_model:
        models.add_row(
            m.model_id or "—", m.name, f"{m.accounts:,}", _money(m.value), _bar(m.value, top)
        )
    out.print(models)

    def movers(title: str, rows: Sequence[Holding], colour: str) -> Table:
        table = Table(title=title)
        for column in ("account", "security", "quantity", "basis", "value", "unrealised"):
            _column(table, column, number=column not in ("account", "security"))
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
        "next: poise accounts list · poise accounts show ACCOUNT\n"
        f"      poise drift --as-of {as_of} · poise holds --as-of {as_of}\n"
        f"      poise rebalance --account ACCOUNT --as-of {as_of} · poise proposals list"
    )


def firm_summary(engine: sa.Engine) -> FirmSummary:
    from poise.report.summary import summarise
    from poise.store import repo

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
        Path | None,
        typer.Option(
            help="A folder of market data files (sp500_prices.csv.gz, sp500_index.csv.gz)"
            " to build from instead of those shipped with poise (POISE_DATA_DIR).",
            show_default=False,
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Drop every row the database holds (the whole firm, prices, requests,"
            " proposals, load history) and build the demo afresh.",
        ),
    ] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small firm (20 households), for a first look.")
    ] = False,
    load_only: Annotated[
        bool,
        typer.Option("--load-only", help="Build and load the firm; run none of the loop."),
    ] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Build a realistic firm from real market data, load it, and run the whole loop on
    it: monitor, rebalance, approve, execute over FIX, book and reconcile, report.

    On a database that already holds a firm, the demo refuses (exit 7) rather than
    merge into it; --reset drops what is there first and says what it dropped.
    """
    from poise.demo import generate_firm, write_backtest_inputs, write_firm
    from poise.settings import Settings
    from poise.store.reset import clear
    from poise.workflow.demo_users import make_demo_users
    from poise.workflow.documents import ingest_report_json
    from poise.workflow.ingest import ingest_paths

    settings = Settings()
    url = database_url or settings.database_url
    engine = _engine(url, create=True)
    if quick:
        households = min(households, QUICK_HOUSEHOLDS)
    if not reset:
        _refuse_a_second_firm(engine, url)
    dropped: dict[str, int] = {}
    with _progress(disable=as_json) as bar:
        task = bar.add_task("generating the firm", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        firm = generate_firm(
            households=households, seed=seed, data_dir=data_dir or settings.data_dir, progress=step
        )
        paths = write_firm(firm, out_dir)
        if reset:
            with engine.execution_options(writes=True).begin() as connection:
                dropped = clear(connection)
        load = bar.add_task("loading", total=len(paths))

        def tick(name: str, report: FileReport | None) -> None:
            bar.update(load, description=f"loading {name}", advance=0 if report is None else 1)

        reports = ingest_paths(engine, paths, today=datetime.now(UTC).date(), progress=tick)
    refused = [r for r in reports if r.refused or r.failed]
    if refused:
        raise PoiseError("; ".join(r.refused or r.failed for r in refused))
    write_backtest_inputs(out_dir / "backtest", data_dir or settings.data_dir)
    people = make_demo_users(engine)
    summary = firm_summary(engine)
    loop = [] if load_only else _loop(engine, settings, firm.as_of, out_dir, quiet=as_json)
    if as_json:
        _print_json(
            {
                "loop": [
                    {
                        "stage": x.name,
                        "seconds": round(x.seconds, 3),
                        "said": x.said,
                        "figures": x.figures,
                    }
                    for x in loop
                ],
                "dropped": dropped,
                "users": [
                    {
                        "username": u.username,
                        "role": u.role.value,
                        "password": u.password,
                        "sees": u.sees,
                    }
                    for u in people
                ],
                "files": [ingest_report_json(r) for r in reports],
                "summary": asdict(summary),
            }
        )
        return
    if dropped:
        out.print(
            "[yellow]reset:[/yellow] dropped "
            + ", ".join(f"{rows:,} {table}" for table, rows in dropped.items())
        )
    out.print(_ingest_table(reports))
    _print_summary(summary, engine_url=url, files=out_dir, as_of=firm.as_of)
    if loop:
        _print_loop(loop, out_dir)
    if people:
        out.print(
            "\nSign in to the pages and the API (poise serve, http://127.0.0.1:8000) as —"
            " these passwords are shown once:"
        )
        for u in people:
            out.print(f"  {u.username:<8} {u.password}   {u.role.value}: sees {u.sees}")


QUICK_HOUSEHOLDS = 20


def _loop(
    engine: sa.Engine, settings: Settings, as_of: date, out_dir: Path, *, quiet: bool
) -> list[StageDone]:
    """The whole loop after loading, with a progress bar of its stages."""
    from datetime import time

    from poise.workflow.demo_loop import STAGES, run_loop

    with _progress(disable=quiet) as bar:
        task = bar.add_task("the loop", total=len(STAGES))

        def stage(name: str) -> None:
            bar.update(task, description=f"the loop: {name}", completed=STAGES.index(name))

        done = run_loop(
            engine, as_of=datetime.combine(as_of, time(23, 59, 59), tzinfo=UTC),
            settings=settings, folder=out_dir, stage=stage,
        )  # fmt: skip
        bar.update(task, completed=len(STAGES), description="the loop: done")
    return done


def _print_loop(loop: list[StageDone], out_dir: Path) -> None:
    table = Table(title="the whole loop", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("what happened")
    for x in loop:
        table.add_row(x.name, f"{x.seconds:.1f}", x.said)
    out.print(table)
    out.print(
        "\nWhere to look: [bold]poise serve[/bold], then http://127.0.0.1:8000 — the firm, a"
        " household's [bold]performance and taxes[/bold], the Execution blotter and the Books;"
        f" the statements in {out_dir}/statements; the broker's messages and the custodian's"
        f" file under {out_dir}/broker and {out_dir}/custodian. From the command line:"
        " poise orders, poise breaks,"
        " poise report performance --level household, poise report 8949 HOUSEHOLD."
    )


def _refuse_a_second_firm(engine: sa.Engine, url: str) -> None:
    """A demo never merges into a firm already in the store: say how to start over."""
    from sqlalchemy.engine import make_url

    from poise.domain.errors import ConflictError
    from poise.store.reset import FIRM_TABLES, counts

    with engine.connect() as connection:
        held = counts(connection)
    if any(held[table] for table in FIRM_TABLES):
        where = make_url(url).render_as_string(hide_password=True)
        raise ConflictError(
            f"{where} already holds a firm ({held['households']:,} households,"
            f" {held['accounts']:,} accounts, {held['prices']:,} prices): a demo will not"
            " merge into it. Run `poise demo --reset` to drop everything and start over,"
            " or give another --database-url."
        )
