"""``poise washsales``: a household's wash sales, as its books show them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _column,
    _engine,
    _money,
    _print_json,
    app,
    out,
)

if TYPE_CHECKING:
    from poise.domain.washhistory import BookedWash, UnknownSale, UnplacedBuy
    from poise.workflow.washsales import HouseholdWashes


@app.command()
def washsales(
    household: Annotated[str, typer.Option("--household", help="The household's id.")],
    year: Annotated[
        int | None,
        typer.Option("--year", min=1900, max=9999, help="Only loss sales (and buys) of this year."),
    ] = None,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """A household's wash sales: each loss sale, the shares that replaced it, the loss
    disallowed, and where it went (docs/washsales.md)."""
    from poise.workflow.washsales import household_washes

    engine = _engine(database_url)
    with engine.connect() as connection:
        found = household_washes(connection, household_id=household)
    history = found.history

    def shown(day_year: int) -> bool:
        return year is None or day_year == year

    washes = [w for w in history.washes if shown(w.wash.sale.sold.year)]
    unknown = [u for u in history.unknown if shown(u.sold.year)]
    unplaced = [b for b in history.unplaced if shown(b.bought.year)]
    if as_json:
        _print_json(_document(found, washes, unknown, unplaced, year))
        return
    _print_table(found, washes, year)
    _print_notes(found, washes, unknown, unplaced)


def _totals(washes: list[BookedWash]) -> dict[str, Decimal]:
    lost = sum((w.wash.disallowed for w in washes if w.wash.permanent), Decimal(0))
    moved = sum((w.wash.disallowed for w in washes if not w.wash.permanent), Decimal(0))
    return {"disallowed": lost + moved, "deferred": moved, "lost": lost}


def _document(
    found: HouseholdWashes,
    washes: list[BookedWash],
    unknown: list[UnknownSale],
    unplaced: list[UnplacedBuy],
    year: int | None,
) -> dict[str, Any]:
    def wash(w: BookedWash) -> dict[str, Any]:
        sale, bought = w.wash.sale, w.wash.replacement
        return {
            "sale": {
                "txn_id": w.txn_id,
                "account_id": sale.account_id,
                "security_id": w.sold_security_id,
                "lot_id": sale.lot_id,
                "date": sale.sold,
                "shares": sale.quantity,
                "basis": sale.basis,
                "proceeds": sale.proceeds,
                "loss": sale.loss,
                "held_since": sale.held_since,
            },
            "replacement": {
                "account_id": bought.account_id,
                "registration": found.accounts[bought.account_id].registration,
                "security_id": w.bought_security_id,
                "lot_id": bought.lot_id,
                "date": bought.acquired,
                "shares": w.wash.shares,
                "held": w.held,
                "stored_as": w.stored_as,
            },
            "disallowed": w.wash.disallowed,
            "permanent": w.wash.permanent,
            "basis": w.wash.basis,
            "holding_start": None if w.wash.permanent else w.wash.holding_start,
        }

    return {
        "household_id": found.household.household_id,
        "year": year,
        "washes": [wash(w) for w in washes],
        "totals": _totals(washes),
        "unknown_sales": [
            {
                "txn_id": u.txn_id,
                "account_id": u.account_id,
                "security_id": u.security_id,
                "lot_id": u.lot_id or None,
                "date": u.sold,
                "shares": u.shares,
                "proceeds": u.proceeds,
                "reason": u.reason,
            }
            for u in unknown
        ],
        "unplaced_buys": [
            {
                "txn_id": b.txn_id,
                "account_id": b.account_id,
                "security_id": b.security_id,
                "date": b.bought,
                "shares": b.shares,
            }
            for b in unplaced
        ],
        "pending_lots": found.pending,
    }


def _print_table(found: HouseholdWashes, washes: list[BookedWash], year: int | None) -> None:
    h = found.household
    when = f" in {year}" if year is not None else ""
    table = Table(title=f"wash sales of {h.household_id} ({h.name}){when}: {len(washes)}")
    columns = ("sold", "account", "security", "lot", "shares", "loss",
               "bought", "account ", "security ", "lot ", "shares ",
               "disallowed", "basis", "held since")  # fmt: skip
    numbers = {"shares", "loss", "shares ", "disallowed", "basis"}
    for column in columns:
        _column(table, column.strip(), number=column in numbers)
    for w in washes:
        sale, bought = w.wash.sale, w.wash.replacement
        permanent = w.wash.permanent
        table.add_row(
            sale.sold.isoformat(),
            sale.account_id,
            w.sold_security_id,
            sale.lot_id,
            f"{sale.quantity:,}",
            _money(sale.loss),
            bought.acquired.isoformat(),
            f"{bought.account_id} ({found.accounts[bought.account_id].registration.value})",
            w.bought_security_id,
            w.stored_as or bought.lot_id,
            f"{w.wash.shares:,}",
            f"[red]{_money(w.wash.disallowed)} lost[/red]"
            if permanent
            else _money(w.wash.disallowed),
            "—" if permanent else _money(w.wash.basis),
            "—" if permanent else w.wash.holding_start.isoformat(),
        )
    out.print(table)


def _print_notes(
    found: HouseholdWashes,
    washes: list[BookedWash],
    unknown: list[UnknownSale],
    unplaced: list[UnplacedBuy],
) -> None:
    totals = _totals(washes)
    out.print(
        f"disallowed {_money(totals['disallowed'])}: {_money(totals['deferred'])} moved into "
        f"the replacement lots' basis, {_money(totals['lost'])} lost for good "
        "(replaced in a retirement account)"
    )
    if unknown:
        out.print(
            f"[yellow]{len(unknown)} sale(s) whose basis cannot be known[/yellow] — the books"
            " no longer hold their lots with shares; poise takes no loss or gain from them,"
            " so a wash they may make is not shown:"
        )
        for u in unknown:
            out.print(
                f"  {u.sold} {u.account_id} {u.txn_id}: {u.shares:,} {u.security_id} for"
                f" {_money(u.proceeds)} — {u.reason}"
            )
    if unplaced:
        out.print(
            f"[yellow]{len(unplaced)} buy(s) within 30 days of a loss whose lot the books do not"
            " hold[/yellow] — poise cannot tell whether they replace it:"
        )
        for b in unplaced:
            out.print(f"  {b.bought} {b.account_id} {b.txn_id}: {b.shares:,} {b.security_id}")
    if found.pending:
        out.print(
            f"[yellow]the books do not yet hold {found.pending} lot row(s) as these washes"
            " leave them[/yellow]: load the household's lots or transactions again to write them"
        )
