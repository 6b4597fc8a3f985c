"""A household's quarterly statement: what is in it, and the page it is printed from.

What a client is told, in the order the statement tells it: a first page in plain
words — the household's value at the start and the end of the quarter, money added or
taken out, what the investments earned, the return against the model's — then its
holdings, its allocation against the target (a chart), its performance against its
model and a benchmark (a chart, and the periods), the quarter's activity, the gains
realised, the fees, and each trade made with why it was made.

Charts are SVG drawn here (bars, and a line of growth): the statement is printed by a
renderer that runs no JavaScript, and a few rectangles and a polyline cost nothing.
Pure: the figures in, HTML out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jinja2

from poise.domain.money import ZERO

__all__ = [
    "Activity",
    "Allocation",
    "Holding",
    "StatementData",
    "TradeMade",
    "allocation_svg",
    "growth_svg",
    "quarter_of",
    "render_html",
]

BRAND, TARGET, GOOD, BAD, MUTED = "#2458a6", "#b9c6dd", "#1e7b4a", "#b3261e", "#6b7280"


def quarter_of(day: date) -> tuple[date, date]:
    """The first and last day of ``day``'s calendar quarter."""
    first_month = 3 * ((day.month - 1) // 3) + 1
    start = date(day.year, first_month, 1)
    end = date(day.year + (first_month == 10), (first_month + 2) % 12 + 1, 1)
    return start, date.fromordinal(end.toordinal() - 1)


@dataclass(frozen=True, slots=True)
class Holding:
    account_id: str
    security_id: str
    name: str
    asset_class: str
    shares: Decimal
    price: Decimal | None
    value: Decimal
    cost: Decimal

    @property
    def unrealised(self) -> Decimal:
        return self.value - self.cost


@dataclass(frozen=True, slots=True)
class Allocation:
    asset_class: str
    actual: Decimal
    target: Decimal


@dataclass(frozen=True, slots=True)
class Activity:
    day: date
    account_id: str
    kind: str
    security_id: str
    shares: Decimal
    amount: Decimal
    description: str


@dataclass(frozen=True, slots=True)
class TradeMade:
    day: date
    account_id: str
    side: str
    security_id: str
    shares: Decimal
    price: Decimal
    reason: str  # why the engine traded: drift, harvest, cash, …


@dataclass(frozen=True, slots=True)
class StatementData:
    """Everything a household's statement of one quarter says."""

    household_id: str
    household_name: str
    adviser: str
    start: date
    end: date
    priced: date  # the closes the holdings are valued at
    value_start: Decimal
    value_end: Decimal
    added: Decimal  # money added less money taken out
    holdings: tuple[Holding, ...]
    allocation: tuple[Allocation, ...]
    returns: dict[str, float | None]  # quarter, ytd, 1y, inception: the household's
    model_returns: dict[str, float | None]  # the same periods for its model, where known
    benchmark_name: str
    benchmark_returns: dict[str, float | None]
    growth: tuple[tuple[date, float, float | None], ...]  # day, household, benchmark
    activity: tuple[Activity, ...]
    realised_short: Decimal
    realised_long: Decimal
    disallowed: Decimal
    fees: Decimal
    trades: tuple[TradeMade, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def earned(self) -> Decimal:
        """What the investments earned: the change in value that money added did not make."""
        return self.value_end - self.value_start - self.added


def _text(x: float, y: float, words: str, *, size: int = 9, fill: str = "#111827") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}">{escape(words)}</text>'


def _rect(x: float, y: float, width: float, height: float, fill: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{fill}"/>'
    )


def _line(points: str, stroke: str, width: float, dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{points}" fill="none" stroke="{stroke}"'
        f' stroke-width="{width}"{dashed}/>'
    )


def _svg(width: int, height: int, label: str, parts: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        + "".join(parts)
        + "</svg>"
    )


def allocation_svg(rows: Sequence[Allocation], width: int = 520) -> str:
    """Each asset class's weight (filled) against its target (outlined), as bars."""
    if not rows:
        return ""
    bar, gap, label = 14, 10, 130
    scale = (width - label - 60) / float(max(max(r.actual, r.target) for r in rows) or 1)
    height = len(rows) * (2 * bar + gap) + 10
    parts = []
    for i, row in enumerate(rows):
        y = 5 + i * (2 * bar + gap)
        actual, target = float(row.actual) * scale, float(row.target) * scale
        parts += [
            _text(0, y + bar + 4, row.asset_class.replace("_", " "), size=10),
            _rect(label, y, actual, bar, BRAND),
            _text(label + actual + 4, y + bar - 3, f"{float(row.actual):.1%}"),
            _rect(label, y + bar, target, bar - 4, TARGET),
            _text(label + target + 4, y + 2 * bar - 6, f"target {float(row.target):.1%}",
                  fill=MUTED),
        ]  # fmt: skip
    return _svg(width, height, "allocation against target", parts)


def growth_svg(
    points: Sequence[tuple[date, float, float | None]], width: int = 520, height: int = 180
) -> str:
    """The growth of a dollar in the household (and in the benchmark, dotted) over the
    days given."""
    if len(points) < 2:
        return ""
    values = [p[1] for p in points] + [p[2] for p in points if p[2] is not None]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    left, right, top, bottom = 40, 10, 10, 20

    def xy(i: int, value: float) -> str:
        x = left + (width - left - right) * i / (len(points) - 1)
        y = top + (height - top - bottom) * (high - value) / span
        return f"{x:.1f},{y:.1f}"

    mine = " ".join(xy(i, p[1]) for i, p in enumerate(points))
    theirs = " ".join(xy(i, p[2]) for i, p in enumerate(points) if p[2] is not None)
    parts = [
        _text(0, top + 8, f"{high:.2f}", fill=MUTED),
        _text(0, height - bottom, f"{low:.2f}", fill=MUTED),
        _text(left, height - 4, points[0][0].isoformat(), fill=MUTED),
        _text(width - right - 60, height - 4, points[-1][0].isoformat(), fill=MUTED),
        _line(theirs, MUTED, 1.2, "4 3") if theirs else "",
        _line(mine, BRAND, 2),
    ]
    return _svg(width, height, "growth of a dollar", parts)


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["money"] = lambda v: "" if v is None else f"{v:,.2f}"
_ENV.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.2f}%"
_ENV.filters["shares"] = lambda v: format(v.normalize(), "f") if isinstance(v, Decimal) else v


def render_html(data: StatementData) -> str:
    """The statement as one HTML document, its charts inline, ready to print."""
    context: dict[str, Any] = {
        "s": data,
        "allocation_chart": allocation_svg(data.allocation),
        "growth_chart": growth_svg(data.growth),
        "ZERO": ZERO,
    }
    return _ENV.get_template("statement.html").render(context)
