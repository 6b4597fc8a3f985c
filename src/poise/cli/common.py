"""What every command shares: the app, consoles, options, and small printing helpers."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from poise.domain.money import cents
from poise.workflow.documents import jsonable
from poise.workflow.documents import ratio as ratio  # noqa: PLC0414 - re-exported: commands use it

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    import sqlalchemy as sa
    from rich.progress import Progress
    from rich.table import Table


def command_group(help_text: str) -> typer.Typer:
    """A group of commands, as every group of poise's is made: plain help (``--json``,
    not ``--json <bool>``; and no Markdown renderer to load before answering)."""
    return typer.Typer(
        help=help_text, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False
    )


app = command_group("poise: tax-aware portfolio rebalancing for advisers, on hardware you own.")
db_app = command_group("The system of record's schema.")
accounts_app = command_group("Accounts and what they hold.")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
AsOption = Annotated[
    str | None,
    typer.Option("--as", envvar="POISE_USER", help="Act as this user (POISE_USER)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="POISE_DATABASE_URL", help="Where the data lives."),
]


def _engine(database_url: str | None, *, create: bool = False) -> sa.Engine:
    from poise.settings import Settings
    from poise.store.migrate import open_store

    return open_store(database_url or Settings().database_url, create=create)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(value), indent=2) + "\n")


def _money(amount: Decimal) -> str:
    return f"{cents(amount):,.2f}"


def _column(table: Table, name: str, *, number: bool) -> None:
    """Add a column; a number is right-aligned and never cut short or wrapped: on a
    narrow terminal the text columns give way."""
    table.add_column(name, justify="right" if number else "left", no_wrap=number)


def _bar(value: Decimal, largest: Decimal, width: int = 24) -> str:
    if largest <= 0:
        return ""
    filled = int(width * value / largest)
    return "█" * filled + "░" * (width - filled)


def _progress(*, disable: bool = False) -> Progress:
    """A progress display on standard error, gone when the work is done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

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


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}"


BusOption = Annotated[
    str | None, typer.Option("--bus", help="Event bus: inprocess or nats (POISE_BUS).")
]
NatsOption = Annotated[str | None, typer.Option("--nats-url", help="NATS server (POISE_NATS_URL).")]
FromOption = Annotated[str | None, typer.Option("--from", help="First day to replay.")]
ToOption = Annotated[str | None, typer.Option("--to", help="Last day to replay.")]


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None
