"""Benchmark: one price tick to the rebalance requests of the accounts it affects.

    .venv/bin/python bench/price_tick.py [--accounts 100000] [--ticks 60]

A firm of 100,000 accounts (10 models of 25 securities; one fund is in every model,
the rest in one model each; a lot per position; a third of accounts are taxable and
harvest) is built and evaluated once. Then each tick — a small move in one
security's price — goes through ``Watch.tick``: the holders of that security are
re-scanned (weights, drift, bands, cash), their losing lots screened for harvesting
with the household-wide wash-sale test, holds applied, and the new requests
returned. Figures: median and 95th percentile per tick, for a security held by one
model's accounts (10%) and for the fund every account holds (100%).
Target: ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from poise.domain.accounts import Account, Registration
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind
from poise.domain.securities import Security, SecurityKind
from poise.monitor.book import BandPolicy, build_book
from poise.monitor.watch import Watch, WatchSettings

MODELS = 10
POSITIONS = 25
FUND = "FUND"


def make_firm(accounts: int, seed: int = 3) -> Watch:
    rng = np.random.default_rng(seed)
    models = {}
    securities = {FUND: Security(FUND, FUND, "Total market fund", SecurityKind.ETF, "us_equity")}
    for m in range(MODELS):
        names = [FUND] + [f"S{m:02d}{j:02d}" for j in range(POSITIONS - 1)]
        for name in names[1:]:
            securities[name] = Security(name, name, name, SecurityKind.STOCK, "us_equity")
        weights = [Decimal("0.28")] + [Decimal("0.03")] * (POSITIONS - 1)
        targets = [
            ModelTarget(TargetKind.SECURITY, n, w, Band())
            for n, w in zip(names, weights, strict=True)
        ]
        targets.append(ModelTarget(TargetKind.CASH, "", Decimal(1) - sum(weights), Band()))
        models[f"M{m}"] = Model(f"M{m}", f"M{m}", tuple(targets))
    prices = {s: Decimal(str(round(float(rng.uniform(20, 400)), 2))) for s in securities}
    at = datetime(2024, 6, 28, 20, tzinfo=UTC)
    people, lots = [], []
    for i in range(accounts):
        model = models[f"M{i % MODELS}"]
        taxable = i % 3 == 0
        people.append(
            Account(
                account_id=f"A{i:06d}",
                household_id=f"H{i // 2:06d}",
                registration=Registration.TAXABLE if taxable else Registration.ROTH_IRA,
                model_id=model.model_id,
                cash=Decimal(1000),
                harvest=taxable,
            )
        )
        value = float(rng.lognormal(12.5, 0.8))
        for k, target in enumerate(model.targets[:-1]):
            price = float(prices[target.target_id])
            shares = max(1, round(value * float(target.weight) * float(rng.normal(1, 0.1)) / price))
            bought = float(rng.uniform(0.7, 1.3)) * price * shares
            lots.append(
                TaxLot(
                    f"L{k}",
                    f"A{i:06d}",
                    target.target_id,
                    Decimal(shares),
                    Decimal(str(round(bought, 2))),
                    date(2020, 1, 2) + timedelta(days=int(rng.integers(0, 1500))),
                )
            )
    policy = BandPolicy.preset("5/25")
    book = build_book(
        accounts=people,
        lots=lots,
        models=models,
        asset_class={s: v.asset_class for s, v in securities.items()},
        policy=policy,
    )
    watch = Watch(
        book=book,
        prices=prices,
        price_times=dict.fromkeys(prices, at),
        accounts=people,
        lots=lots,
        securities=securities,
        purchases=[],
        other_holds=frozenset(),
        settings=WatchSettings(policy=policy),
    )
    watch.scan_all(at)  # the day's requests so far: ticks add only what is new
    return watch


def run(watch: Watch, security: str, ticks: int, seed: int) -> tuple[list[float], int]:
    rng = np.random.default_rng(seed)
    at = datetime(2024, 6, 28, 20, tzinfo=UTC)
    price = watch.prices[security]
    times, made = [], 0
    for n in range(ticks):
        price = (price * Decimal(str(round(float(rng.normal(1, 0.004)), 6)))).quantize(
            Decimal("0.01")
        )
        moment = at + timedelta(seconds=n)
        start = time.perf_counter()
        made += len(watch.tick(security, price, moment))
        times.append(time.perf_counter() - start)
    return times, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    watch = make_firm(args.accounts)
    built = time.perf_counter() - start
    print(f"firm of {args.accounts:,} accounts built and evaluated in {built:.1f} s")
    for label, security in (
        ("one model's stock (10%)", "S0003"),
        ("the fund in every model", FUND),
    ):
        times, made = run(watch, security, args.ticks, seed=len(label))
        ordered = sorted(times)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        print(
            f"tick, {label:<24} median {statistics.median(times) * 1000:6.1f} ms, "
            f"p95 {p95 * 1000:6.1f} ms over {args.ticks} ticks; {made:,} new requests "
            "(target ≤ 50 ms)"
        )


if __name__ == "__main__":
    main()
