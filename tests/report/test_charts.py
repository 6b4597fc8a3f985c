"""A backtest's wealth charts: a PNG of the expected size that any reader opens, and an
HTML page that shows every method and fetches nothing from the network."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from matplotlib.image import imread

from poise.report.charts import HEIGHT, WIDTH, Series, wealth_html, wealth_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Draw = Callable[..., Path]


def wealth(start: float, growth: float, days: int = 260) -> tuple[list[date], list[float]]:
    """A year of weekdays, wealth compounding at ``growth`` a day from ``start``."""
    first = date(2022, 1, 3)
    every = [first + timedelta(days=i) for i in range(days * 7 // 5 + 7)]
    weekdays = [d for d in every if d.weekday() < 5][:days]
    return weekdays, [start * (1 + growth) ** i for i in range(days)]


SERIES: Series = {
    "buy-and-hold": wealth(1_000_000.0, 0.00020),
    "bands": wealth(1_000_000.0, 0.00024),
    "tax-aware": wealth(1_000_000.0, 0.00031),
}


def test_wealth_png_when_three_methods_are_drawn_then_it_is_a_1600x900_png(
    tmp_path: Path,
) -> None:
    path = wealth_png(SERIES, tmp_path / "wealth.png", title="After-tax wealth, 2022")
    assert path == tmp_path / "wealth.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000  # lines, axes and a legend, not a blank canvas
    image = imread(path)
    assert image.shape == (HEIGHT, WIDTH, 4)
    assert image[..., :3].min() < 0.5  # something dark was drawn on the white


def test_wealth_png_when_a_method_has_one_day_then_it_is_still_drawn(tmp_path: Path) -> None:
    path = wealth_png(
        {"tax-aware": ([date(2022, 1, 3)], [1_000_000.0])}, tmp_path / "one.png", title="t"
    )
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_wealth_html_when_three_methods_are_written_then_the_page_is_self_contained(
    tmp_path: Path,
) -> None:
    path = wealth_html(SERIES, tmp_path / "wealth.html", title="After-tax wealth, 2022")
    assert path == tmp_path / "wealth.html"
    html = path.read_text(encoding="utf-8")
    assert re.match(r"\s*(<!doctype html>\s*)?<html", html, re.IGNORECASE)
    assert html.rstrip().endswith("</html>")
    # Nothing is fetched: no script, stylesheet or frame comes from anywhere else.
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert '<script src="http' not in html
    assert not re.search(r"<link[^>]*\bhref\s*=\s*[\"']?https?:", html, re.IGNORECASE)
    assert not re.search(r"<iframe", html, re.IGNORECASE)
    # plotly.js itself is inline (a few megabytes), and the figure's data is in the page.
    assert len(html) > 1_000_000
    assert "Plotly.newPlot" in html
    for method in SERIES:
        assert f'"name":"{method}"' in html
    assert "After-tax wealth, 2022" in html
    assert "2022-01-03" in html


def test_wealth_html_when_hovered_then_it_shows_the_date_the_method_and_dollars(
    tmp_path: Path,
) -> None:
    html = wealth_html(SERIES, tmp_path / "wealth.html", title="t").read_text(encoding="utf-8")
    assert '"hoverformat":"%Y-%m-%d"' in html  # the date, at the head of the hover box
    assert "%{fullData.name}: $%{y:,.2f}" in html  # each method, in dollars and cents
    assert '"tickprefix":"$"' in html


@pytest.mark.parametrize("draw", [wealth_png, wealth_html])
def test_chart_when_there_is_no_series_then_a_clear_value_error(tmp_path: Path, draw: Draw) -> None:
    with pytest.raises(ValueError, match="needs at least one method"):
        draw({}, tmp_path / "nothing", title="t")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("draw", [wealth_png, wealth_html])
def test_chart_when_a_method_has_no_days_or_unpaired_figures_then_a_value_error(
    tmp_path: Path, draw: Draw
) -> None:
    with pytest.raises(ValueError, match="no days to chart for method 'bands'"):
        draw({"bands": ([], [])}, tmp_path / "x", title="t")
    with pytest.raises(ValueError, match="2 days but 1 figures"):
        draw({"bands": ([date(2022, 1, 3), date(2022, 1, 4)], [1.0])}, tmp_path / "x", title="t")


def test_import_when_the_module_loads_then_neither_matplotlib_nor_plotly_is_loaded() -> None:
    """The command line imports its modules at start; the chart libraries load only when
    a chart is drawn."""
    probe = (
        "import sys, poise.report.charts;"
        " print(sorted({'matplotlib', 'plotly'} & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
