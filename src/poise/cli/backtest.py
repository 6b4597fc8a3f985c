"""``poise backtest``: what rebalancing and harvesting are worth after tax, on a price
history; ``poise backtests``: the backtests kept."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from poise.cli.common import (
    DatabaseOption,
    FromOption,
    JsonOption,
    ToOption,
    _column,
    _day,
    _engine,
    _print_json,
    _progress,
    app,
    command_group,
    err,
    out,
)
from poise.domain.errors import ValidationError

if TYPE_CHECKING:
    from poise.domain.accounts import Registration
    from poise.store.repo.backtests import BacktestRecord
    from poise.workflow.backtest import Backtest, Deposits, Opening

backtests_app = command_group("Backtests kept in the store.")
app.add_typer(backtests_app, name="backtests")

ALIASES = {"ira": "traditional_ira", "roth": "roth_ira"}
DEFAULT_AMOUNT = Decimal(1_000_000)
HISTORY_BEFORE = 252  # trading days of prices before the start: a year for the risk model
SHOWN_METHODS = ("buy_and_hold", "annual", "quarterly", "bands", "cash", "optimize")


def _registration(text: str) -> Registration:
    from poise.domain.accounts import Registration

    name = ALIASES.get(text.strip().lower(), text.strip().lower())
    try:
        return Registration(name)
    except ValueError:
        kinds = ", ".join(["ira", "roth", *(r.value for r in Registration)])
        raise typer.BadParameter(
            f"no kind of account {text!r}; kinds: {kinds}", param_hint="--accounts"
        ) from None


def _money(text: str, option: str) -> Decimal:
    try:
        amount = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount", param_hint=option) from None
    if not amount.is_finite() or amount < 0:
        raise typer.BadParameter(f"{text!r} is not an amount", param_hint=option)
    return amount


def parse_accounts(text: str, amount: Decimal) -> tuple[Opening, ...]:
    """``taxable`` or ``taxable=600000,ira=400000``; accounts without an amount share
    ``amount`` (what the named ones leave) equally."""
    from poise.workflow.backtest import Opening

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise typer.BadParameter("name at least one account", param_hint="--accounts")
    named = [(p.split("=", 1)[0], p.split("=", 1)[1] if "=" in p else None) for p in parts]
    given = sum((_money(a, "--accounts") for _, a in named if a is not None), Decimal(0))
    shared = [k for k, a in named if a is None]
    each = (amount - given) / len(shared) if shared else Decimal(0)
    if shared and each <= 0:
        raise typer.BadParameter(
            f"the amounts named leave nothing of {amount:,} for {', '.join(shared)}",
            param_hint="--accounts",
        )
    openings = tuple(
        Opening(_registration(kind), _money(a, "--accounts") if a is not None else each)
        for kind, a in named
    )
    if not any(o.registration.taxable for o in openings):
        raise typer.BadParameter(
            "a backtest needs a taxable account (taxes are paid from it)", param_hint="--accounts"
        )
    return openings


def parse_deposits(text: str | None) -> Deposits | None:
    """``1000/month``, ``5000/quarter`` or ``12000/year``."""
    from poise.workflow.backtest import DEPOSIT_MONTHS, Deposits

    if text is None:
        return None
    amount, _, every = text.partition("/")
    every = every.strip().lower() or "month"
    if every not in DEPOSIT_MONTHS:
        raise typer.BadParameter(
            f"deposits come every {', '.join(DEPOSIT_MONTHS)}: e.g. 1000/month",
            param_hint="--deposits",
        )
    return Deposits(_money(amount, "--deposits"), every)


@app.command()
def backtest(
    prices: Annotated[
        Path,
        typer.Option(
            "--prices",
            help="Daily closes: the canonical prices format, or a Date column and a column"
            " a security (.csv or .csv.gz).",
        ),
    ],
    model: Annotated[Path, typer.Option("--model", help="A models file (docs/formats.md).")],
    model_id: Annotated[
        str | None, typer.Option("--model-id", help="The model, where the file holds several.")
    ] = None,
    securities: Annotated[
        Path | None,
        typer.Option(
            "--securities",
            help="A securities file (identities, replacements); default: each price column"
            " a stock of its own.",
        ),
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="Comma-separated: buy_and_hold, annual, quarterly, bands, cash, optimize.",
        ),
    ] = ",".join(SHOWN_METHODS),
    accounts: Annotated[
        str,
        typer.Option(
            "--accounts",
            help="The household: taxable, ira, roth, joint, trust, … with =amount or sharing"
            " --amount, e.g. taxable=600000,ira=400000.",
        ),
    ] = "taxable",
    amount: Annotated[
        str, typer.Option("--amount", help="Money the accounts without an amount share.")
    ] = "1000000",
    deposits: Annotated[
        str | None,
        typer.Option("--deposits", help="New money into the first account, e.g. 1000/month."),
    ] = None,
    monthly: Annotated[
        bool, typer.Option("--monthly", help="Watch the household monthly, not daily.")
    ] = False,
    liquidate: Annotated[
        bool,
        typer.Option("--liquidate", help="Sell the taxable accounts on the last day, after tax."),
    ] = False,
    short_rate: Annotated[
        float, typer.Option("--short-rate", min=0, max=1, help="Federal short-term rate.")
    ] = 0.37,
    long_rate: Annotated[
        float, typer.Option("--long-rate", min=0, max=1, help="Federal long-term rate.")
    ] = 0.20,
    state_rate: Annotated[
        float, typer.Option("--state-rate", min=0, max=1, help="State rate, on both.")
    ] = 0.0,
    risk_weight: Annotated[
        float, typer.Option(min=0, help="optimize: weight of tracking error.")
    ] = 1.0,
    tax_weight: Annotated[float, typer.Option(min=0, help="optimize: weight of tax.")] = 1.0,
    cost_weight: Annotated[
        float, typer.Option(min=0, help="optimize: weight of trading cost.")
    ] = 1.0,
    within_bands: Annotated[
        bool,
        typer.Option(
            "--within-bands",
            help="optimize: every position ends inside its band, as bands keeps them.",
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where the charts go (default: backtest-<id>/ here)."),
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Simulate a household through a price history with each method, taxes settled
    every 31 December, and compare them after tax (docs/backtest.md). The results are
    kept in the store; the charts are written to --out."""
    from poise.domain.accounts import MinTrade, TaxRates
    from poise.domain.models import resolve
    from poise.ingest.history import check_history, read_price_history
    from poise.ingest.standalone import read_models, read_securities, stocks
    from poise.optimize.tax_aware import OptimizeSettings
    from poise.settings import Settings
    from poise.workflow.backtest import METHODS, Spec, run_backtest
    from poise.workflow.rebalance import harvest_minimum

    settings = Settings()
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise typer.BadParameter(
            f"no method {', '.join(unknown) or '(none)'}; methods: {', '.join(METHODS)}",
            param_hint="--methods",
        )
    openings = parse_accounts(accounts, _money(amount, "--amount"))
    flows = parse_deposits(deposits)
    for path in (prices, model, securities):
        if path is not None and not path.is_file():
            raise ValidationError(f"{path}: no such file")
    history = read_price_history(prices)
    known = (
        read_securities(securities.read_bytes(), name=securities.name)
        if securities is not None
        else stocks(history.securities)
    )
    models = read_models(
        model.read_bytes(), name=model.name, securities=list(known) if securities else None
    )
    if model_id is None:
        if len(models) != 1:
            raise ValidationError(
                f"{model.name} holds {len(models)} models ({', '.join(sorted(models))}):"
                " name one with --model-id"
            )
        model_id = next(iter(models))
    elif model_id not in models:
        raise ValidationError(f"{model.name} has no model {model_id!r}")
    known = {**stocks(history.securities), **known}
    wanted = sorted(resolve(model_id, models).securities)
    # A harvest's replacements are bought too: those in the file must be whole as well.
    replacing = {r for s in wanted if s in known for r in known[s].replacements} & set(
        history.securities
    )
    first, last = check_history(
        history,
        securities=sorted(set(wanted) | replacing),
        start=_day(start, "--from"),
        end=_day(end, "--to"),
        lookback_days=HISTORY_BEFORE,
    )
    spec = Spec(
        history=history,
        start=first,
        end=last,
        model_id=model_id,
        models=models,
        securities=known,
        accounts=openings,
        rates=TaxRates(
            Decimal(repr(short_rate)), Decimal(repr(long_rate)), Decimal(repr(state_rate))
        ),
        deposits=flows,
        monthly=monthly,
        liquidate=liquidate,
        harvest=harvest_minimum(settings),
        min_trade=MinTrade(settings.min_trade, settings.min_trade_fraction),
        lookback_days=settings.risk_lookback_days,
        optimize=OptimizeSettings(
            risk=risk_weight,
            tax=tax_weight,
            cost=cost_weight,
            within_bands=within_bands,
            min_trade=settings.min_trade,
            min_trade_fraction=settings.min_trade_fraction,
            long_term_wait_days=settings.long_term_wait_days,
            exact=False,
        ),
    )
    days = last - first + 1
    with _progress(disable=as_json) as bar:
        tasks = {m: bar.add_task(m, total=days) for m in chosen}
        done = run_backtest(spec, chosen, progress=lambda m, n: bar.update(tasks[m], completed=n))
    backtest_id = uuid.uuid4().hex
    folder = out_dir or Path(f"backtest-{backtest_id[:8]}")
    charts = _charts(done, folder, title=f"{model_id}: after-tax wealth by method")
    inputs = {
        "prices": str(prices),
        "model": str(model),
        "model_id": model_id,
        "securities": None if securities is None else str(securities),
        "from": history.days[first].isoformat(),
        "to": history.days[last].isoformat(),
        "methods": chosen,
        "accounts": [
            {"registration": o.registration.value, "amount": str(o.amount)} for o in openings
        ],
        "deposits": None if flows is None else {"amount": str(flows.amount), "every": flows.every},
        "monthly": monthly,
        "liquidate": liquidate,
        "rates": {"short": short_rate, "long": long_rate, "state": state_rate},
        "weights": {"risk": risk_weight, "tax": tax_weight, "cost": cost_weight},
        "within_bands": within_bands,
    }
    record = _keep(done, backtest_id, prices, inputs, database_url)
    if as_json:
        from poise.workflow.documents import backtest_json

        _print_json(backtest_json(record, charts))
        return
    _print_summary(done, history.days[first], history.days[last], backtest_id, charts)


def _charts(done: Backtest, folder: Path, *, title: str) -> dict[str, str]:
    from poise.report.charts import wealth_html, wealth_png

    folder.mkdir(parents=True, exist_ok=True)
    series = {m: (r.days, [float(v) for v in r.after_tax]) for m, r in done.results.items()}
    png = wealth_png(series, folder / "after_tax_wealth.png", title=title)
    html = wealth_html(series, folder / "after_tax_wealth.html", title=title)
    return {"png": str(png), "html": str(html)}


def _keep(
    done: Backtest,
    backtest_id: str,
    prices: Path,
    inputs: dict[str, Any],
    database_url: str | None,
) -> BacktestRecord:
    from poise.report.backtest import year_rows
    from poise.store import repo
    from poise.store.repo.backtests import BacktestMethod, BacktestRecord
    from poise.workflow.backtest import digest, series

    spec = done.spec
    record = BacktestRecord(
        backtest_id=backtest_id,
        created_at=datetime.now(UTC),
        prices_file=prices.name,
        prices_digest=hashlib.sha256(prices.read_bytes()).hexdigest(),
        model_id=spec.model_id,
        start=spec.history.days[spec.start],
        end=spec.history.days[spec.end],
        inputs=inputs,
        digest=digest(done),
        methods={
            m: BacktestMethod(
                method=m,
                summary=done.summaries[m].json(),
                years=year_rows(r.years),
                series=series(r),
            )
            for m, r in done.results.items()
        },
    )
    engine = _engine(database_url, create=True)  # a backtest needs no firm loaded first
    with engine.execution_options(writes=True).begin() as connection:
        repo.save_backtest(connection, record=record)
    return record


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _print_summary(
    done: Backtest, first: date, last: date, backtest_id: str, charts: dict[str, str]
) -> None:
    from rich import box

    table = Table(title=f"{first} to {last}, a year", title_justify="left", box=box.SIMPLE)
    table.add_column("method", no_wrap=True)
    for name in ("pre-tax", "after-tax", "tax alpha", "tracking", "turnover", "trades"):
        _column(table, name, number=True)
    money = Table(title="In dollars", title_justify="left", box=box.SIMPLE)
    money.add_column("method", no_wrap=True)
    for name in ("losses harvested", "washed", "tax paid", "wealth after tax"):
        _column(money, name, number=True)
    for method, s in done.summaries.items():
        table.add_row(
            method,
            _pct(s.pre_tax_return),
            _pct(s.after_tax_return),
            _pct(s.tax_alpha),
            _pct(s.tracking_error),
            _pct(s.turnover),
            f"{s.trades:,}",
        )
        money.add_row(
            method,
            f"{s.losses_harvested:,.0f}",
            f"{s.losses_disallowed:,.0f}",
            f"{s.tax_paid:,.0f}",
            f"{s.final_after_tax:,.0f}",
        )
    out.print(table)
    table = money
    out.print(table)
    years = Table(
        title="Tax by year (negative: the $3,000 deduction's saving)",
        title_justify="left",
        box=box.SIMPLE,
    )
    _column(years, "year", number=False)
    for method in done.results:
        _column(years, method, number=True)
    by_year: dict[int, dict[str, Decimal]] = {}
    for method, result in done.results.items():
        for y in result.years:
            by_year.setdefault(y.year, {})[method] = y.tax
    for year, taxes in sorted(by_year.items()):
        years.add_row(str(year), *(f"{taxes.get(m, Decimal(0)):,.0f}" for m in done.results))
    out.print(years)
    out.print(
        "tax alpha: the after-tax return less bands'; tracking: tracking error to the"
        " model; turnover: sales over the average value; washed: losses the wash-sale"
        " rule disallowed (docs/backtest.md)."
    )
    out.print(f"backtest {backtest_id} kept; charts: {charts['png']}, {charts['html']}")
    if "bands" not in done.summaries:
        err.print("tax alpha is measured against bands, which was not run")


@backtests_app.command("list")
def backtests_list(
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many (0: all).")] = 20,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The backtests kept, newest first."""
    from poise.store import repo
    from poise.workflow.documents import backtest_json

    with _engine(database_url).connect() as connection:
        found = repo.backtests(connection, limit=limit)
    if as_json:
        _print_json([backtest_json(r, None) for r in found])
        return
    table = Table()
    for name in ("backtest", "when", "model", "from", "to"):
        _column(table, name, number=False)
    _column(table, "tax alpha of optimize", number=True)
    for r in found:
        optimize = r.methods.get("optimize")
        alpha = None if optimize is None else optimize.summary.get("tax_alpha")
        table.add_row(
            r.backtest_id,
            f"{r.created_at:%Y-%m-%d %H:%M}",
            r.model_id,
            str(r.start),
            str(r.end),
            _pct(alpha),
        )
    out.print(table)


@backtests_app.command("show")
def backtests_show(
    backtest_id: Annotated[str, typer.Argument(help="The backtest's id.")],
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """One kept backtest: what it was asked, and each method's figures and years."""
    from poise.store import repo
    from poise.workflow.documents import backtest_json

    with _engine(database_url).connect() as connection:
        record = repo.backtest(connection, backtest_id=backtest_id)
    document = backtest_json(record, None)
    if as_json:
        _print_json(document)
        return
    out.print(f"backtest {record.backtest_id}: {record.model_id}, {record.start} to {record.end}")
    out.print(f"inputs: {record.inputs}")
    table = Table()
    for name, number in (("method", False), ("pre-tax", True), ("after-tax", True),
                         ("tax alpha", True), ("tracking error", True),
                         ("trades", True)):  # fmt: skip
        _column(table, name, number=number)
    for method, b in record.methods.items():
        s = b.summary
        table.add_row(
            method,
            _pct(s.get("pre_tax_return")),
            _pct(s.get("after_tax_return")),
            _pct(s.get("tax_alpha")),
            _pct(s.get("tracking_error")),
            f"{s.get('trades', 0):,}",
        )
    out.print(table)
