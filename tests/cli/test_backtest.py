"""``poise backtest`` as an adviser or a script runs it — a process of its own, its exit
code, its JSON and its one-line refusals — on the S&P 500 history of ../shared/data and
on a price file it has never seen, made up here: four stocks on seeded random walks.

The made-up market, three years of weekday closes (2021–2023), drift and volatility a
year:

    ALDR  +10%  18%   a steady grower
    BRKN   −5%  30%   a loser: lots to harvest
    CMPS   +4%  12%   a quiet one
    DRFT  +15%  40%   a volatile winner: it leaves its band

The model FOUR holds each at 24.5% and 2% cash. A backtest needs a year of closes
(252 trading days) before its first day for the risk model, so on this file it runs
over the last two years.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cli.test_json import assert_convention
from tests.processes import Run, run_poise

from poise.ingest.history import HistoryError
from poise.workflow.backtest import METHODS

SP500 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sp500_prices.csv.gz"
needs_sp500 = pytest.mark.skipif(
    not SP500.is_file(), reason="the repository's shared market data is absent"
)
# Eighteen months of 20 stocks: short, so that the test is quick; the year before is
# the risk model's.
SP500_RUN = ("--from", "2005-01-01", "--to", "2006-06-30", "--methods", "bands,optimize")

REFUSED = 3  # a HistoryError is a ValidationError: exit 3
USAGE = 2  # typer's usage error: an option's value refused before anything is read
assert HistoryError.exit_code == REFUSED

MADE_UP = {  # security: (drift a year, volatility a year, first close)
    "ALDR": (0.10, 0.18, 40.0),
    "BRKN": (-0.05, 0.30, 120.0),
    "CMPS": (0.04, 0.12, 75.0),
    "DRFT": (0.15, 0.40, 20.0),
}
FIRST, LAST = date(2021, 1, 1), date(2023, 12, 31)
FOUR = """\
model_id,model_name,kind,target_id,weight,band_abs,band_rel
FOUR,Four made-up stocks,security,ALDR,0.245,,
FOUR,,security,BRKN,0.245,,
FOUR,,security,CMPS,0.245,,
FOUR,,security,DRFT,0.245,,
FOUR,,cash,,0.02,,
"""
LAST_TWO_YEARS = ("--from", "2022-01-01")

Close = tuple[str, date, str]  # security, day, close as the file writes it


# ── the files ────────────────────────────────────────────────────────────────────────


@cache
def made_up_closes() -> tuple[Close, ...]:
    """Weekday closes of the four made-up stocks, geometric random walks (seeded)."""
    rng = np.random.default_rng(20240607)
    days = [FIRST + timedelta(n) for n in range((LAST - FIRST).days + 1)]
    days = [d for d in days if d.weekday() < 5]
    rows: list[Close] = []
    for security, (drift, volatility, first) in MADE_UP.items():
        steps = rng.normal(
            (drift - volatility**2 / 2) / 252, volatility / math.sqrt(252), len(days)
        )
        closes = first * np.exp(np.cumsum(steps))
        rows.extend((security, d, f"{c:.2f}") for d, c in zip(days, closes, strict=True))
    return tuple(rows)


def write_prices(path: Path, rows: tuple[Close, ...] | list[Close]) -> list[str]:
    """The canonical prices format (docs/formats.md#prices); the file's lines."""
    lines = [
        "security_id,as_of,price,source",
        *(f"{s},{d.isoformat()},{price},close" for s, d, price in rows),
    ]
    path.write_text("\n".join(lines) + "\n")
    return lines


def sp500_model(path: Path) -> Path:
    """The 20 stocks of the S&P 500 file at 4.9% each, and 2% cash."""
    with gzip.open(SP500, "rt") as file:
        header = file.readline().strip().split(",")
    assert header[0] == "Date"
    stocks = header[1:]
    assert len(stocks) == 20
    rows = [f"SP20,,security,{s},0.049,," for s in stocks]
    path.write_text(
        "model_id,model_name,kind,target_id,weight,band_abs,band_rel\n"
        + "\n".join([*rows, "SP20,,cash,,0.02,,"])
        + "\n"
    )
    return path


# ── running it ───────────────────────────────────────────────────────────────────────


def poise(folder: Path, *args: str, database_url: str | None = None) -> Run:
    """``poise`` as a process, in ``folder``, on its own SQLite store unless told."""
    return run_poise(
        *args, database_url=database_url or f"sqlite:///{folder / 'poise.db'}", cwd=folder
    )


def backtest(folder: Path, *args: str, database_url: str | None = None) -> dict[str, Any]:
    """A backtest that must succeed, charts into ``folder``/charts; its JSON."""
    done = poise(
        folder, "backtest", *args, "--out", str(folder / "charts"), "--json",
        database_url=database_url,
    )  # fmt: skip
    assert done.code == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def on_sp500(folder: Path, *, database_url: str | None = None) -> dict[str, Any]:
    model = sp500_model(folder / "sp20.csv")
    return backtest(
        folder, "--prices", str(SP500), "--model", str(model), *SP500_RUN,
        database_url=database_url,
    )  # fmt: skip


def made_up(folder: Path, rows: tuple[Close, ...] | list[Close]) -> tuple[str, ...]:
    """The made-up price file (``rows`` of it) and the model FOUR, as options."""
    write_prices(folder / "made_up.csv", rows)
    (folder / "four.csv").write_text(FOUR)
    return ("--prices", str(folder / "made_up.csv"), "--model", str(folder / "four.csv"))


def refusal(folder: Path, *args: str, code: int = REFUSED) -> str:
    """A backtest that must be refused with ``code``: its message on one line."""
    done = poise(folder, "backtest", *args, "--out", str(folder / "charts"), "--json")
    assert done.code == code, (done.code, done.stdout, done.stderr)
    assert done.stdout == ""  # no half a document for a script to read
    assert "Traceback" not in done.stderr
    assert not (folder / "charts").exists()  # refused before anything was simulated
    return " ".join(done.stderr.split())


def figures(document: dict[str, Any], method: str) -> dict[str, Any]:
    summary: dict[str, Any] = document["methods"][method]["summary"]
    return summary


# ── on the S&P 500 history ───────────────────────────────────────────────────────────


@needs_sp500
def test_backtest_when_run_on_the_sp500_history_then_both_methods_are_compared_kept_and_charted(
    database_url: str, tmp_path: Path
) -> None:
    document = on_sp500(tmp_path, database_url=database_url)

    assert_convention(document)
    assert set(document["methods"]) == {"bands", "optimize"}
    assert (document["from"], document["to"]) == ("2005-01-03", "2006-06-30")  # trading days
    assert document["model_id"] == "SP20"
    optimize, bands = figures(document, "optimize"), figures(document, "bands")
    assert isinstance(optimize["tax_alpha"], float)  # measured against bands
    assert math.isfinite(optimize["tax_alpha"])
    assert bands["tax_alpha"] == 0  # bands is the benchmark
    for summary in (optimize, bands):
        assert Decimal(summary["final_after_tax"]) > Decimal(900_000)  # of $1,000,000
    assert [y["year"] for y in document["methods"]["optimize"]["years"]] == [2005, 2006]

    # Kept: listed, and shown whole with the same figures and the same digest.
    listed = poise(tmp_path, "backtests", "list", "--json", database_url=database_url)
    assert listed.code == 0, listed.stderr
    (kept,) = json.loads(listed.stdout)
    assert (kept["backtest_id"], kept["digest"]) == (document["backtest_id"], document["digest"])
    shown = poise(
        tmp_path, "backtests", "show", document["backtest_id"], "--json",
        database_url=database_url,
    )  # fmt: skip
    assert shown.code == 0, shown.stderr
    again = json.loads(shown.stdout)
    for key in ("backtest_id", "digest", "from", "to", "inputs", "prices_digest", "methods"):
        assert again[key] == document[key], key

    # The charts of after-tax wealth, where --out said.
    charts = tmp_path / "charts"
    png, html = charts / "after_tax_wealth.png", charts / "after_tax_wealth.html"
    assert document["charts"] == {"png": str(png), "html": str(html)}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<html" in html.read_text().lower()


@needs_sp500
def test_backtest_when_the_same_command_runs_twice_then_the_digest_is_the_same(
    tmp_path: Path,
) -> None:
    # Two processes: two hash seeds, so no set's order can decide a trade.
    first, second = on_sp500(tmp_path), on_sp500(tmp_path)

    assert first["backtest_id"] != second["backtest_id"]
    assert first["digest"] == second["digest"]
    assert first["methods"] == second["methods"]


# ── on a price file it has never seen ────────────────────────────────────────────────


def test_backtest_when_a_made_up_market_is_run_with_every_method_then_each_is_taxed_by_year(
    tmp_path: Path,
) -> None:
    document = backtest(
        tmp_path, *made_up(tmp_path, made_up_closes()), *LAST_TWO_YEARS,
        "--accounts", "taxable=300000,ira=200000", "--deposits", "2000/month", "--liquidate",
    )  # fmt: skip

    assert_convention(document)
    assert set(document["methods"]) == set(METHODS)
    assert (document["from"], document["to"]) == ("2022-01-03", "2023-12-29")
    assert document["inputs"]["accounts"] == [
        {"registration": "taxable", "amount": "300000"},
        {"registration": "traditional_ira", "amount": "200000"},
    ]
    assert document["inputs"]["deposits"] == {"amount": "2000", "every": "month"}
    for method, result in document["methods"].items():
        summary, years = result["summary"], result["years"]
        assert [y["year"] for y in years] == [2022, 2023], method
        value, after_tax = Decimal(summary["final_value"]), Decimal(summary["final_after_tax"])
        # $500,000 and 23 deposits of $2,000, two years on: neither vanished nor tripled.
        assert Decimal(250_000) < after_tax < Decimal(1_500_000), method
        # Liquidated on the last day: what is left after tax is the value less the tax
        # of the last year, owed and not yet paid (a refund, where it is negative).
        assert abs(value - after_tax - Decimal(years[-1]["tax"])) <= Decimal("0.01"), method
        assert summary["tax_paid"] == str(sum(Decimal(y["tax"]) for y in years)), method

    held, bands = figures(document, "buy_and_hold"), figures(document, "bands")
    assert bands["turnover"] > 0
    assert held["turnover"] <= bands["turnover"] / 5  # it sells only to pay tax


# ── refusals: the file, the model or the options ─────────────────────────────────────


def test_backtest_when_a_security_has_a_month_without_prices_then_it_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    june = [
        r for r in made_up_closes() if not (r[0] == "DRFT" and (r[1].year, r[1].month) == (2022, 6))
    ]

    message = refusal(tmp_path, *made_up(tmp_path, june), *LAST_TWO_YEARS)

    assert "DRFT: 22 trading days missing, the first 2022-06-01" in message
    assert not any(s in message for s in ("ALDR", "BRKN", "CMPS"))


def test_backtest_when_every_price_is_missing_for_three_weeks_then_it_names_the_days_around(
    tmp_path: Path,
) -> None:
    hole = [r for r in made_up_closes() if not date(2022, 8, 1) <= r[1] <= date(2022, 8, 19)]

    message = refusal(tmp_path, *made_up(tmp_path, hole), *LAST_TWO_YEARS)

    assert "no trading day between 2022-07-29 and 2022-08-22 (24 days apart)" in message


def test_backtest_when_the_file_holds_four_months_then_it_says_how_long_it_is_and_must_be(
    tmp_path: Path,
) -> None:
    four_months = [r for r in made_up_closes() if r[1] < date(2021, 5, 1)]

    message = refusal(tmp_path, *made_up(tmp_path, four_months))

    assert "the price file has 86 trading days (2021-01-01 to 2021-04-30)" in message
    assert "the risk model needs 252 before the backtest's first day" in message


def test_backtest_when_the_period_asked_is_four_months_then_it_says_a_year_is_the_least(
    tmp_path: Path,
) -> None:
    message = refusal(
        tmp_path, *made_up(tmp_path, made_up_closes()), "--from", "2022-01-01", "--to", "2022-04-30"
    )

    assert "2022-01-01 to 2022-04-30, is 0.32 years long (85 trading days)" in message
    assert "a backtest must run at least 1 year" in message


def test_backtest_when_a_security_of_the_model_has_no_prices_then_it_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    without = [r for r in made_up_closes() if r[0] != "DRFT"]

    message = refusal(tmp_path, *made_up(tmp_path, without), *LAST_TWO_YEARS)

    assert "no prices for DRFT, which the model holds" in message


@pytest.mark.parametrize(
    ("price", "reason"), [("abc", "is not a number"), ("-5", "is not positive")]
)
def test_backtest_when_a_price_is_malformed_then_it_is_refused_naming_the_line(
    tmp_path: Path, price: str, reason: str
) -> None:
    rows = list(made_up_closes())
    at = rows.index(next(r for r in rows if r[:2] == ("CMPS", date(2022, 3, 15))))
    rows[at] = ("CMPS", date(2022, 3, 15), price)
    line = write_prices(tmp_path / "bad.csv", rows).index(f"CMPS,2022-03-15,{price},close") + 1
    (tmp_path / "four.csv").write_text(FOUR)

    message = refusal(
        tmp_path, "--prices", str(tmp_path / "bad.csv"), "--model", str(tmp_path / "four.csv"),
        *LAST_TWO_YEARS,
    )  # fmt: skip

    assert f"bad.csv, line {line}: CMPS on 2022-03-15: price '{price}' {reason}" in message


def test_backtest_when_a_method_is_unknown_then_typer_refuses_it_with_the_methods_there_are(
    tmp_path: Path,
) -> None:
    message = refusal(
        tmp_path, *made_up(tmp_path, made_up_closes()), "--methods", "bands,momentum", code=USAGE
    )

    assert "Invalid value for --methods: no method momentum" in message
    assert ", ".join(METHODS) in message


def test_backtest_when_the_household_has_only_an_ira_then_it_is_refused_for_want_of_a_taxable(
    tmp_path: Path,
) -> None:
    message = refusal(
        tmp_path, *made_up(tmp_path, made_up_closes()), *LAST_TWO_YEARS,
        "--accounts", "ira=500000", code=USAGE,
    )  # fmt: skip

    assert "Invalid value for --accounts: a backtest needs a taxable account" in message
