"""``poise report``: performance, realised gains, Form 8949 (docs/reports.md).

``poise report performance`` values every account wanted on every day of the span and
reports time-weighted returns (the span, MTD, QTD, YTD, 1, 3 and 5 years, since
inception), money-weighted returns, volatility and drawdown — for accounts,
households, models or the firm.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _engine,
    _print_json,
    app,
    command_group,
    out,
)

if TYPE_CHECKING:
    from poise.workflow.performance import Performance

__all__ = [
    "report_8949",
    "report_attribution",
    "report_gains",
    "report_performance",
    "report_statement",
]

report_app = command_group("Reports: performance, realised gains, Form 8949, statements.")
app.add_typer(report_app, name="report")

SHOWN = 50  # rows a table shows; --json has them all
PERIODS = ("mtd", "qtd", "ytd", "1y", "3y", "5y", "inception")
MWR_UPTO = 200  # portfolios whose money-weighted return is worked out (one solve each)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _rows(found: Performance) -> list[dict[str, Any]]:
    rows = []
    solve = len(found.names) <= MWR_UPTO
    for i, name in enumerate(found.names):
        periods = {p: _ratio(None if v is None else v[i]) for p, v in found.periods.items()}
        rows.append(
            {
                found.level: name,
                "start_value": f"{found.start[i]:.2f}",
                "end_value": f"{found.end[i]:.2f}",
                "flows": f"{found.flows[i]:.2f}",
                "twr": _ratio(found.twr[i]),
                "mwr": _ratio(found.money_weighted(i)) if solve else None,
                **periods,
                "volatility": _ratio(found.volatility[i]),
                "max_drawdown": _ratio(found.drawdown[i]),
            }
        )
    return rows


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


@report_app.command("performance")
def report_performance(
    level: Annotated[
        str, typer.Option("--level", help="account, household, model or firm.")
    ] = "account",
    household: Annotated[
        str | None, typer.Option("--household", help="Only this household's accounts.")
    ] = None,
    account: Annotated[
        list[str] | None,
        typer.Option("--account", metavar="ID", help="Only this account (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="First day (YYYY-MM-DD); default 3 years back.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Last day (YYYY-MM-DD); default the last priced.")
    ] = None,
    gross: Annotated[
        bool, typer.Option("--gross", help="Gross of fees (fees as withdrawals); default net.")
    ] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Time- and money-weighted returns, volatility and drawdown, valued every day."""
    import sqlalchemy as sa
    from rich.table import Table

    from poise.domain.errors import ValidationError
    from poise.store import tables as t
    from poise.workflow.performance import LEVELS, load_book, performance

    if level not in LEVELS:
        raise typer.BadParameter(f"--level: one of {', '.join(LEVELS)}")
    engine = _engine(database_url)
    with engine.connect() as connection:
        ids = list(account) if account else None
        if household is not None:
            a = t.accounts
            ids = list(
                connection.execute(
                    sa.select(a.c.account_id).where(a.c.household_id == household)
                ).scalars()
            )
            if not ids:
                raise ValidationError(f"household {household} has no accounts")
        last = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
        if last is None:
            raise ValidationError("the store holds no prices: nothing can be valued")
        end = date.fromisoformat(until) if until else last.date()
        start = date.fromisoformat(since) if since else end.replace(year=end.year - 3)
        if start >= end:
            raise typer.BadParameter("--from must be before --to")
        with out.status("valuing every day"):
            book, groups = load_book(connection, start=start, end=last.date(), account_ids=ids)
    found = performance(book, groups, level=level, gross=gross, until=end)
    rows = _rows(found)
    document = {
        "level": level,
        "from": found.days[0].isoformat() if found.days else None,
        "to": found.days[-1].isoformat() if found.days else None,
        "basis": "gross" if gross else "net",
        "rows": rows,
    }
    if as_json:
        _print_json(document)
        return
    table = Table(
        title=f"performance {document['from']} to {document['to']}, {document['basis']} of fees",
        title_justify="left",
    )
    for name in (level, "start", "end", "TWR", "MWR", "YTD", "1y", "3y", "vol", "drawdown"):
        table.add_column(name, justify="left" if name == level else "right")
    for row in rows[:SHOWN]:
        table.add_row(
            row[level], f"{float(row['start_value']):,.0f}", f"{float(row['end_value']):,.0f}",
            _pct(row["twr"]), _pct(row["mwr"]), _pct(row["ytd"]), _pct(row["1y"]),
            _pct(row["3y"]), _pct(row["volatility"]), _pct(row["max_drawdown"]),
        )  # fmt: skip
    if len(rows) > SHOWN:
        table.caption = f"… and {len(rows) - SHOWN:,} more (--json has them all)"
    out.print(table)


def _year(household: str, year: int | None, database_url: str | None) -> Any:
    import sqlalchemy as sa

    from poise.store import tables as t
    from poise.workflow.taxes import tax_year

    engine = _engine(database_url)
    with engine.connect() as connection:
        if year is None:
            last = connection.execute(sa.select(sa.func.max(t.realised_gains.c.sold))).scalar()
            year = last.year if last is not None else date.today().year  # noqa: DTZ011
        return tax_year(connection, household_id=household, year=year)


HouseholdArgument = Annotated[str, typer.Argument(help="The household.", metavar="HOUSEHOLD")]
YearOption = Annotated[
    int | None, typer.Option("--year", help="Tax year; default the year of the latest sale.")
]


@report_app.command("gains")
def report_gains(
    household: HouseholdArgument,
    year: YearOption = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Realised gains and losses of a household's tax year, short and long term."""
    found = _year(household, year, database_url)
    document = {
        "household": found.household_id,
        "year": found.year,
        "short_term": str(found.gains.short),
        "long_term": str(found.gains.long),
        "total": str(found.gains.total),
        "disallowed": str(found.gains.disallowed),
        "sales": len({(r.account_id, r.txn_id) for r in found.rows}),
    }
    if as_json:
        _print_json(document)
        return
    out.print(
        f"{found.household_id} {found.year}: short term {found.gains.short:,.2f},"
        f" long term {found.gains.long:,.2f}, total {found.gains.total:,.2f}"
        f" ({found.gains.disallowed:,.2f} of losses disallowed by wash sales)"
    )


@report_app.command("8949")
def report_8949(
    household: HouseholdArgument,
    year: YearOption = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the rows to this CSV file.")
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Form 8949's rows (boxes A–F, code W for wash sales) and Schedule D's totals."""
    import csv

    from rich.table import Table

    found = _year(household, year, database_url)
    rows = [
        {
            "box": r.box,
            "description": r.description,
            "acquired": r.acquired.isoformat(),
            "sold": r.sold.isoformat(),
            "proceeds": str(r.proceeds),
            "basis": str(r.basis),
            "code": r.code,
            "adjustment": str(r.adjustment),
            "gain": str(r.gain),
            "account_id": r.account_id,
            "lot_id": r.lot_id,
        }
        for r in found.rows
    ]
    lines = [
        {"line": x.line, "box": x.box, "proceeds": str(x.proceeds), "basis": str(x.basis),
         "adjustment": str(x.adjustment), "gain": str(x.gain)}
        for x in found.lines
    ]  # fmt: skip
    if csv_file is not None:
        with csv_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["box"])
            writer.writeheader()
            writer.writerows(rows)
    if as_json:
        _print_json({"household": found.household_id, "year": found.year, "rows": rows,
                     "schedule_d": lines})  # fmt: skip
        return
    table = Table(title=f"Form 8949, {found.household_id}, {found.year}", title_justify="left")
    for name in ("box", "(a)", "(b) acquired", "(c) sold", "(d) proceeds", "(e) basis", "(f)",
                 "(g)", "(h) gain"):  # fmt: skip
        table.add_column(name, justify="right" if name[1] in "degh" else "left")
    for r in found.rows:
        table.add_row(r.box, r.description, r.acquired.isoformat(), r.sold.isoformat(),
                      f"{r.proceeds:,.2f}", f"{r.basis:,.2f}", r.code,
                      f"{r.adjustment:,.2f}" if r.adjustment else "", f"{r.gain:,.2f}")  # fmt: skip
    out.print(table)
    for x in found.lines:
        out.print(f"Schedule D line {x.line} (box {x.box}): gain {x.gain:,.2f}")
    if csv_file is not None:
        out.print(f"rows written to {csv_file}")


@report_app.command("statement")
def report_statement(
    households: Annotated[
        list[str] | None, typer.Argument(help="The households (none: --all).", metavar="HOUSEHOLD")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every household of the firm.")] = False,
    quarter: Annotated[
        str | None, typer.Option("--quarter", help="e.g. 2022Q4; default the latest quarter.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the PDFs are written.")] = Path(
        "statements"
    ),
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (default: one a core).")
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Quarterly statements as PDF: holdings, allocation, performance, activity, gains,
    fees, and the trades made and why — a client-friendly first page."""
    from poise.cli.common import _progress
    from poise.settings import Settings
    from poise.store import repo
    from poise.workflow.statements import latest_quarter, quarter_named, write_statements

    if not households and not every:
        raise typer.BadParameter("name households, or --all")
    engine = _engine(database_url)
    settings = Settings()
    with engine.connect() as connection:
        start, end = quarter_named(quarter) if quarter else latest_quarter(connection)
        chosen = (
            [h.household_id for h in repo.households(connection)]
            if every
            else list(households or [])
        )
        for household_id in chosen:
            repo.household(connection, household_id=household_id)  # unknown: NotFoundError
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    with _progress(disable=as_json) as bar:
        task = bar.add_task(f"statements {start} to {end}", total=len(chosen))
        written = write_statements(
            url, chosen, start=start, end=end, folder=out_dir, benchmark=settings.benchmark,
            workers=workers, progress=lambda _: bar.advance(task),
        )  # fmt: skip
    made = [str(w.path) for w in written if w.path]
    failed = [{"household": w.household_id, "error": w.error} for w in written if w.error]
    if as_json:
        _print_json({"from": start.isoformat(), "to": end.isoformat(), "written": made,
                     "failed": failed})  # fmt: skip
        return
    out.print(f"{len(made)} statement(s) of {start} to {end} written to {out_dir}")
    for failure in failed:
        out.print(f"[red]{failure['household']}[/red]: {failure['error']}")


@report_app.command("attribution")
def report_attribution(
    household: HouseholdArgument,
    since: Annotated[
        str | None,
        typer.Option("--from", help="The period's eve (YYYY-MM-DD); default a year back."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Its last day; default the last priced.")
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Brinson–Fachler attribution of a household against its model, by asset class,
    and what its sales realised and cost in tax."""
    import sqlalchemy as sa
    from rich.table import Table

    from poise.store import tables as t
    from poise.workflow.performance import attribution_of

    engine = _engine(database_url)
    with engine.connect() as connection:
        last = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
        end = date.fromisoformat(until) if until else (last.date() if last else date.today())  # noqa: DTZ011
        start = date.fromisoformat(since) if since else end.replace(year=end.year - 1)
        found = attribution_of(connection, household_id=household, start=start, end=end)
    a = found.attribution
    rows = [
        {"asset_class": c, "portfolio_weight": round(wp, 6), "model_weight": round(wb, 6),
         "portfolio_return": round(rp, 6), "model_return": round(rb, 6),
         "allocation": round(x, 6), "selection": round(y, 6), "interaction": round(z, 6)}
        for c, wp, wb, rp, rb, x, y, z in zip(
            a.segments, *_weights_and_returns(found), a.allocation, a.selection, a.interaction,
            strict=True,
        )
    ]  # fmt: skip
    document = {
        "household": found.household_id, "model": found.model_id,
        "from": found.start.isoformat(), "to": found.end.isoformat(),
        "portfolio": round(a.portfolio, 6), "model_return": round(a.benchmark, 6),
        "active": round(a.active, 6), "rows": rows,
        "realised": str(found.realised), "harvested": str(found.harvested),
        "estimated_tax": str(found.estimated_tax),
    }  # fmt: skip
    if as_json:
        _print_json(document)
        return
    table = Table(title=f"{found.household_id} against {found.model_id or 'no model'},"
                        f" {found.start} to {found.end}", title_justify="left")  # fmt: skip
    for name in ("asset class", "weight", "model", "return", "model's", "allocation",
                 "selection", "interaction"):  # fmt: skip
        table.add_column(name, justify="left" if name == "asset class" else "right")
    for r in rows:
        table.add_row(r["asset_class"], _pct(r["portfolio_weight"]), _pct(r["model_weight"]),
                      _pct(r["portfolio_return"]), _pct(r["model_return"]), _pct(r["allocation"]),
                      _pct(r["selection"]), _pct(r["interaction"]))  # fmt: skip
    table.caption = (
        f"return {_pct(a.portfolio)} against the model's {_pct(a.benchmark)}: active"
        f" {_pct(a.active)}; realised {found.realised:,.2f} (losses harvested"
        f" {found.harvested:,.2f}), estimated tax {found.estimated_tax:,.2f}"
    )
    out.print(table)


def _weights_and_returns(found: Any) -> tuple[Any, Any, Any, Any]:
    """The four columns the effects are made of, as the attribution used them."""
    return (found.portfolio_weights, found.model_weights, found.portfolio_returns,
            found.model_returns)  # fmt: skip
