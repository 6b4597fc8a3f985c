"""Charts of a backtest: after-tax wealth over time, a line per method — a PNG for files
and reports, and an interactive HTML page that opens with no network at all — and the
figures the web pages draw with the plotly.js poise serves: the same wealth
(:func:`wealth_figure`, which the HTML page draws too) and the tax of each year by
method (:func:`tax_figure`).

Wealth comes in as floats: a chart is drawn, not booked, and the figures it shows are
rounded to the dollar (PNG) or the cent (HTML hover). matplotlib and plotly load only
when a chart is drawn, so that the command line starts at once; the PNG is drawn on a
figure of its own with the Agg canvas, never through pyplot, so no display is needed
and no global state is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from poise.domain.errors import ValidationError

__all__ = [
    "HEIGHT",
    "WIDTH",
    "Series",
    "tax_figure",
    "wealth_figure",
    "wealth_html",
    "wealth_png",
]

# method name -> (days, after-tax wealth in dollars on each day)
Series = Mapping[str, tuple[Sequence[date], Sequence[float]]]

WIDTH, HEIGHT = 1600, 900  # pixels of the PNG
_DPI = 100


def _checked(series: Series) -> list[tuple[str, list[date], list[float]]]:
    """Each method's days and wealth, as lists; refused when there is nothing to draw or
    a method's days and figures do not pair up."""
    if not series:
        raise ValidationError("no series to chart: a wealth chart needs at least one method")
    lines = []
    for method, (days, wealth) in series.items():
        if not days:
            raise ValidationError(f"no days to chart for method {method!r}")
        if len(days) != len(wealth):
            raise ValidationError(
                f"method {method!r} has {len(days)} days but {len(wealth)} figures of wealth"
            )
        lines.append((method, list(days), [float(w) for w in wealth]))
    return lines


def wealth_png(series: Series, path: Path, *, title: str) -> Path:
    """Draw after-tax wealth, a line per method, to a 1600×900 PNG at ``path``: dated x
    axis, dollars with thousands separators on the y axis, a legend. Returns ``path``."""
    lines = _checked(series)
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    figure = Figure(figsize=(WIDTH / _DPI, HEIGHT / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for method, days, wealth in lines:
        axes.plot(np.array(days, dtype="datetime64[D]"), wealth, label=method, linewidth=1.6)
    # matplotlib.dates is not annotated: its locator and formatter are untyped calls.
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
    axes.set_title(title)
    axes.set_ylabel("after-tax wealth")
    axes.grid(visible=True, alpha=0.3)
    axes.legend(loc="upper left")
    figure.savefig(path, format="png", dpi=_DPI)
    return path


def wealth_figure(series: Series, *, title: str | None = None) -> dict[str, Any]:
    """After-tax wealth, a line per method, as a plotly figure (plain data, for plotly.js
    or :mod:`plotly`): dated x axis, dollars on the y axis, a unified hover that shows the
    date and each method's wealth to the cent."""
    lines = _checked(series)
    layout: dict[str, Any] = {
        "hovermode": "x unified",
        "xaxis": {"type": "date", "hoverformat": "%Y-%m-%d", "title": {"text": "date"}},
        "yaxis": {"tickprefix": "$", "tickformat": ",.0f", "title": {"text": "after-tax wealth"}},
        "legend": {"title": {"text": "method"}},
    }
    if title is not None:
        layout["title"] = {"text": title}
    data = [
        {
            "type": "scatter",
            "x": [day.isoformat() for day in days],
            "y": wealth,
            "name": method,
            "mode": "lines",
            "hovertemplate": "%{fullData.name}: $%{y:,.2f}<extra></extra>",
        }
        for method, days, wealth in lines
    ]
    return {"data": data, "layout": layout}


def tax_figure(years: Mapping[str, Sequence[tuple[int, float]]]) -> dict[str, Any]:
    """Each year's tax, a bar per method side by side (a saving below zero), as a plotly
    figure; ``years``: each method's ``(year, tax in dollars)``."""
    data = [
        {
            "type": "bar",
            "x": [year for year, _ in rows],
            "y": [tax for _, tax in rows],
            "name": method,
            "hovertemplate": "%{fullData.name}, %{x}: $%{y:,.2f}<extra></extra>",
        }
        for method, rows in years.items()
    ]
    layout = {
        "barmode": "group",
        "xaxis": {"type": "category", "title": {"text": "year"}},
        "yaxis": {
            "tickprefix": "$",
            "tickformat": ",.0f",
            "title": {"text": "tax (below 0: a saving)"},
        },
        "legend": {"title": {"text": "method"}},
    }
    return {"data": data, "layout": layout}


def wealth_html(series: Series, path: Path, *, title: str) -> Path:
    """Write after-tax wealth, a line per method (:func:`wealth_figure`), as one
    standalone interactive HTML file at ``path``, plotly.js inline: it fetches nothing.
    Hovering shows the date, and each method with its wealth in dollars. Returns
    ``path``."""
    figure_data = wealth_figure(series, title=title)
    import plotly.graph_objects as go

    figure = go.Figure(figure_data)
    figure.update_layout(template="plotly_white")
    html = figure.to_html(
        include_plotlyjs=True,
        include_mathjax=False,
        full_html=True,
        config={"displaylogo": False, "responsive": True},
    )
    path.write_text(html, encoding="utf-8")
    return path
