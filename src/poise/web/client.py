"""The client's page: their household — its value and holdings (as the household's
page shows them), its allocation against its target, its value over the past year and
the gains its sales realised this year — read from the store and worked out by
:mod:`poise.report.client`, as of the latest prices held."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.money import ZERO, cents
from poise.report.client import (
    AgainstTarget,
    DayValue,
    RealisedGains,
    ValueHistory,
    against_target,
    chart_days,
    realised_gains,
    shares_of,
    value_over_time,
)
from poise.store import repo
from poise.store.repo.history import daily_closes
from poise.web.views import HouseholdView, household_view, latest_price_time, script_json

__all__ = ["YEAR", "ClientView", "client_view"]

YEAR = timedelta(days=365)  # how far back the value is shown
BRAND, PALE, IN, OUT = "#1f5f8b", "#9fb7c9", "#1e6b3a", "#a4262c"


@dataclass(frozen=True, slots=True)
class ClientView:
    household: HouseholdView
    as_of: date  # the latest price day: what the page is as of
    targets: AgainstTarget
    target_chart: str  # target and actual by asset class, a plotly figure as JSON
    history: ValueHistory
    history_chart: str  # value day by day, money added marked; "" when nothing to show
    flows: list[DayValue]  # the days money was added or taken out, newest first
    carried: list[tuple[str, int]]  # a security held on days without its close: how many
    unpriced: list[str]  # securities held on some day with no close on or before it
    realised: RealisedGains

    @property
    def realised_taxable(self) -> Decimal:
        return self.realised.short + self.realised.long


def client_view(engine: sa.Engine, household_id: str) -> ClientView:
    """The client page's figures for ``household_id`` (the caller has checked that the
    reader may see it): only its own accounts, lots and transactions are read."""
    base = household_view(engine, household_id)
    with engine.connect() as connection:
        last = latest_price_time(connection).date()
        since = last - YEAR
        household = repo.household(connection, household_id=household_id)
        accounts = repo.accounts(connection, household_id=household_id)
        lots = repo.lots(connection, account_ids=[a.account_id for a in accounts])
        transactions = repo.household_transactions(
            connection, household_id=household_id, since=since
        )
        names = {lot.security_id for lot in lots} | {
            x.security_id for x in transactions if x.security_id
        }
        latest = repo.latest_prices(connection, security_ids=names) if names else {}
        before = datetime.combine(since, time(), tzinfo=UTC)
        opening = repo.latest_prices(connection, as_of=before, security_ids=names) if names else {}
        closes = daily_closes(connection, security_ids=names, since=since, until=last)
        securities = repo.securities(connection)
        models = repo.models(connection)
    for security_id, (price, at) in opening.items():  # carried into the year's first days
        closes.setdefault(at.date(), {}).setdefault(security_id, price)
    history = _from_first_value(
        value_over_time(
            held=shares_of(lots),
            cash=sum((a.cash for a in accounts), ZERO),
            transactions=transactions,
            closes=closes,
            days=chart_days(closes, since=since, until=last),
        )
    )
    targets = against_target(
        household=household,
        accounts=accounts,
        lots=lots,
        prices={s: p for s, (p, _) in latest.items()},
        models=models,
        asset_class={s.security_id: s.asset_class for s in securities.values()},
    )
    realised = realised_gains(
        sales=transactions, lots=lots, accounts=accounts, since=date(last.year, 1, 1), until=last
    )
    carried: Counter[str] = Counter(s for p in history.points for s in p.carried)
    return ClientView(
        household=base,
        as_of=last,
        targets=targets,
        target_chart=script_json(_target_figure(targets)),
        history=history,
        history_chart=script_json(_history_figure(history)) if history.points else "",
        flows=[p for p in reversed(history.points) if p.added != ZERO],
        carried=sorted(carried.items(), key=lambda x: (-x[1], x[0])),
        unpriced=sorted({s for p in history.points for s in p.unpriced}),
        realised=realised,
    )


def _from_first_value(history: ValueHistory) -> ValueHistory:
    """The history from its first day with anything in it: a household that came to
    the firm during the year is shown from then."""
    points = history.points
    first = next((n for n, p in enumerate(points) if p.value != ZERO), len(points) - 1)
    return ValueHistory(points[max(first, 0) :])


def _target_figure(targets: AgainstTarget) -> dict[str, Any]:
    names = [r.asset_class.replace("_", " ") for r in targets.rows]
    return {
        "data": [
            {"type": "bar", "name": "target", "x": names,
             "y": [float(round(r.target * 100, 2)) for r in targets.rows],
             "marker": {"color": PALE}, "hovertemplate": "%{x}: target %{y:.1f}%<extra></extra>"},
            {"type": "bar", "name": "actual", "x": names,
             "y": [float(round(r.actual * 100, 2)) for r in targets.rows],
             "marker": {"color": BRAND}, "hovertemplate": "%{x}: actual %{y:.1f}%<extra></extra>"},
        ],
        "layout": {"barmode": "group", "height": 280,
                   "margin": {"t": 10, "r": 10, "b": 40, "l": 50},
                   "legend": {"orientation": "h", "y": 1.12},
                   "yaxis": {"title": {"text": "% of the portfolio"}}},
    }  # fmt: skip


def _history_figure(history: ValueHistory) -> dict[str, Any]:
    points = history.points
    flows = [p for p in points if p.added != ZERO]
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": "value",
             "x": [p.day.isoformat() for p in points],
             "y": [float(cents(p.value)) for p in points],
             "line": {"color": BRAND, "width": 2},
             "hovertemplate": "%{x}: %{y:,.2f}<extra></extra>"},
            {"type": "scatter", "mode": "markers", "name": "money added or taken out",
             "x": [p.day.isoformat() for p in flows],
             "y": [float(cents(p.value)) for p in flows],
             "text": [_flow_text(p.added) for p in flows],
             "marker": {"size": 10, "color": [IN if p.added > 0 else OUT for p in flows],
                        "symbol": ["triangle-up" if p.added > 0 else "triangle-down"
                                   for p in flows]},
             "hovertemplate": "%{x}: %{text}<extra></extra>"},
        ],
        "layout": {"height": 300, "margin": {"t": 10, "r": 10, "b": 40, "l": 70},
                   "legend": {"orientation": "h", "y": 1.12},
                   "xaxis": {"type": "date"},
                   "yaxis": {"title": {"text": "dollars"}, "tickformat": ",.0f"}},
    }  # fmt: skip


def _flow_text(added: Decimal) -> str:
    return f"{'added' if added > 0 else 'taken out'} {abs(cents(added)):,.2f} (not a gain)"
