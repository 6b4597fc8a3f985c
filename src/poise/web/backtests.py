"""The backtest pages: the backtests kept, and one of them — each method's figures, its
after-tax wealth day by day and its tax year by year, charted with the plotly.js poise
serves. The firm's analysis, for its people: a client is answered 404, as through the
API.

A page shows the document ``poise backtests show --json`` prints and ``GET
/api/v1/backtests/{id}`` answers (:func:`poise.workflow.documents.backtest_json`), and
the wealth the store keeps with each method, drawn as the command's own chart is
(:func:`poise.report.charts.wealth_figure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from poise.api.deps import EngineDep
from poise.api.scoping import STAFF
from poise.domain.errors import NotFoundError
from poise.report.charts import tax_figure, wealth_figure
from poise.store import repo
from poise.store.repo import BacktestRecord, pages
from poise.web.pages import templates
from poise.web.session import WebUser
from poise.web.views import script_json
from poise.workflow.documents import backtest_json

__all__ = ["BacktestView", "backtest_view", "router"]

router = APIRouter(include_in_schema=False)

PAGE = 50  # backtests a page of the list shows
OffsetQuery = Annotated[int, Query(ge=0, le=2**31 - 1)]
MONEY = ("losses_harvested", "losses_disallowed", "tax_paid", "final_value", "final_after_tax")


def _staff(who: WebUser, what: str) -> None:
    if who.user.role not in STAFF:  # as one that does not exist, as through the API
        raise NotFoundError(f"no page {what}")


@dataclass(frozen=True, slots=True)
class BacktestView:
    document: dict[str, Any]  # as poise backtests show --json prints it
    methods: list[dict[str, Any]]  # each method's figures, money as Decimal
    years: list[int]
    tax: dict[str, dict[int, Decimal]]  # method → year → tax
    wealth: str  # after-tax wealth by method, a plotly figure as JSON; "" if none is kept
    tax_chart: str  # each year's tax by method, a plotly figure as JSON; "" if no year
    inputs: list[tuple[str, str]]  # what it was asked, each as a reader reads it


def _shown(value: Any) -> str:
    """An input as a reader reads it: none a dash, a flag yes or no, a list and a
    mapping their items."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return str(value)


def backtest_view(record: BacktestRecord) -> BacktestView:
    document = backtest_json(record, None)
    methods = []
    tax: dict[str, dict[int, Decimal]] = {}
    for name, shown in document["methods"].items():
        summary = shown["summary"]
        methods.append(
            {**summary, "method": name, **{k: Decimal(summary[k]) for k in MONEY if k in summary}}
        )
        tax[name] = {int(y["year"]): Decimal(y["tax"]) for y in shown["years"]}
    years = sorted({year for by_year in tax.values() for year in by_year})
    series = {
        _name(m): ([date.fromisoformat(d) for d in kept.series["days"]], kept.series["after_tax"])
        for m, kept in record.methods.items()
        if kept.series.get("days")
    }
    wealth = wealth_figure(series) if series else None
    taxes = {_name(m): [(y, float(t)) for y, t in sorted(by_year.items())]
             for m, by_year in tax.items()}  # fmt: skip
    margins = {  # the legend above the plot: on a phone, the plot keeps the width
        "height": 380,
        "margin": {"t": 40, "r": 10, "b": 50, "l": 80},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    }
    return BacktestView(
        document=document,
        methods=methods,
        years=years,
        tax=tax,
        wealth="" if wealth is None else script_json(_sized(wealth, margins)),
        tax_chart=script_json(_sized(tax_figure(taxes), margins)) if years else "",
        inputs=[(k.replace("_", " "), _shown(v)) for k, v in record.inputs.items()],
    )


def _name(method: str) -> str:
    return method.replace("_", " ")


def _sized(figure: dict[str, Any], layout: dict[str, Any]) -> dict[str, Any]:
    return {**figure, "layout": {**figure["layout"], **layout}}


@router.get("/backtests", response_class=HTMLResponse)
def backtests_page(
    request: Request, who: WebUser, engine: EngineDep, offset: OffsetQuery = 0
) -> Response:
    _staff(who, "/backtests")
    with engine.connect() as connection:
        page = pages.backtests_page(connection, limit=PAGE, offset=offset)
    context = {
        "user": who.user,
        "backtests": [backtest_json(b, None) for b in page.items],
        "total": page.total,
        "offset": offset,
        "page": PAGE,
    }
    return templates.TemplateResponse(request, "backtests.html", context)


@router.get("/backtests/{backtest_id}", response_class=HTMLResponse)
def backtest_page(request: Request, backtest_id: str, who: WebUser, engine: EngineDep) -> Response:
    _staff(who, f"/backtests/{backtest_id}")
    with engine.connect() as connection:
        record = repo.backtest(connection, backtest_id=backtest_id)
    view = backtest_view(record)
    return templates.TemplateResponse(request, "backtest.html", {"user": who.user, "view": view})
