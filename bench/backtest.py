"""Benchmark: the after-tax backtest on the shipped closes, 2000–2022 — each method's
time, and what it comes to after tax.

    .venv/bin/python bench/backtest.py [--from 2000-01-01] [--to 2022-12-28]
        [--methods buy_and_hold annual quarterly bands cash optimize]
        [--weights 1/1/1 0.5/1/1/bands] [--liquidate] [--deposits 1000/month]

The 20 stocks of ``../shared/data/sp500_prices.csv.gz`` (real adjusted closes), a
model holding each at 4.9% and 2% cash, a taxable account of $1,000,000, rates 37% /
20%, the firm's default smallest trade and harvest test — what ``poise backtest``
runs with those files and its defaults. Each method is simulated on its own and
timed (one process, one core); ``optimize`` once per ``--weights`` (risk / tax /
cost, and ``/bands`` for every position kept inside its band). Prints Markdown rows
for ``bench/RESULTS.md``: each method's time, its annualised returns before and
after tax, its tax drag (the difference), tax alpha against ``bands``, tracking
error, turnover, trades, losses harvested and washed, and tax paid.

Target (``optimize``): tax alpha ≥ 1% a year at a tracking error no worse than
``bands``'.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from poise.domain.accounts import MinTrade, Registration, TaxRates
from poise.ingest.history import check_history, read_price_history
from poise.ingest.standalone import read_models, stocks
from poise.optimize.problem import HarvestMinimum
from poise.optimize.tax_aware import OptimizeSettings
from poise.report.backtest import Summary
from poise.settings import Settings
from poise.workflow.backtest import METHODS, Deposits, Opening, Spec, run_backtest

PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "sp500_prices.csv.gz"
HEADER = (
    "| date | method | weights | time s | pre-tax | after-tax | tax drag | tax alpha |"
    " tracking error | turnover | trades | harvested $ | washed $ | tax paid $ |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def model_file(ids: list[str]) -> bytes:
    rows = ["model_id,model_name,kind,target_id,weight"]
    rows += [f"EQ20,Twenty stocks,security,{s},0.049" for s in ids]
    rows.append("EQ20,Twenty stocks,cash,,0.02")
    return ("\n".join(rows) + "\n").encode()


def pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}%"


def row(method: str, weights: str, seconds: float, s: Summary) -> str:
    return (
        f"| {datetime.now(UTC).date()} | {method} | {weights} | {seconds:.1f} |"
        f" {pct(s.pre_tax_return)} |"
        f" {pct(s.after_tax_return)} | {pct(s.pre_tax_return - s.after_tax_return)} |"
        f" {pct(s.tax_alpha)} | {pct(s.tracking_error)} | {pct(s.turnover)} | {s.trades:,} |"
        f" {s.losses_harvested:,.0f} | {s.losses_disallowed:,.0f} | {s.tax_paid:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="start", default="2000-01-01")
    parser.add_argument("--to", dest="end", default="2022-12-28")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--weights", nargs="+", default=["1/1/1"])
    parser.add_argument("--liquidate", action="store_true")
    parser.add_argument("--deposits", default=None)
    args = parser.parse_args()

    settings = Settings()
    history = read_price_history(PRICES)
    ids = list(history.securities)
    models = read_models(model_file(ids), name="EQ20")
    first, last = check_history(
        history,
        securities=ids,
        start=date.fromisoformat(args.start),
        end=date.fromisoformat(args.end),
        lookback_days=252,
    )
    deposits = None
    if args.deposits:
        amount, _, every = args.deposits.partition("/")
        deposits = Deposits(Decimal(amount), every or "month")
    spec = Spec(
        history=history,
        start=first,
        end=last,
        model_id="EQ20",
        models=models,
        securities=stocks(ids),
        accounts=(Opening(Registration.TAXABLE, Decimal(1_000_000)),),
        rates=TaxRates(Decimal("0.37"), Decimal("0.20")),
        deposits=deposits,
        liquidate=args.liquidate,
        harvest=HarvestMinimum(settings.harvest_min_loss, settings.harvest_min_loss_fraction),
        min_trade=MinTrade(settings.min_trade, settings.min_trade_fraction),
        optimize=OptimizeSettings(
            min_trade=settings.min_trade,
            min_trade_fraction=settings.min_trade_fraction,
            long_term_wait_days=settings.long_term_wait_days,
            exact=False,
        ),
    )
    print(f"{history.days[first]} to {history.days[last]}, {last - first + 1} trading days")
    print(HEADER)
    runs: list[tuple[str, str, Spec]] = []
    ordered = sorted(args.methods, key=lambda m: m != "bands")  # bands first: the base
    for method in ordered:
        if method != "optimize":
            runs.append((method, "", spec))
            continue
        for weights in args.weights:
            parts = weights.split("/")
            risk, tax, cost = (float(w) for w in parts[:3])
            tuned = replace(
                spec,
                optimize=replace(
                    spec.optimize, risk=risk, tax=tax, cost=cost, within_bands="bands" in parts
                ),
            )
            runs.append((method, weights, tuned))
    base = None
    if "bands" not in args.methods:
        base = run_backtest(spec, ["bands"]).summaries["bands"].after_tax_return
    for method, weights, tuned in runs:
        start = time.perf_counter()
        done = run_backtest(tuned, [method])
        seconds = time.perf_counter() - start
        summary = done.summaries[method]
        if method == "bands":
            base = summary.after_tax_return
        if base is not None:
            summary = replace(summary, tax_alpha=summary.after_tax_return - base)
        print(row(method, weights, seconds, summary), flush=True)


if __name__ == "__main__":
    main()
