"""Benchmark: a full drift scan of 1,000,000 accounts × 25 positions, on one core.

    .venv/bin/python bench/drift_scan.py [--accounts 1000000] [--positions 25] [--models 10]

Builds a firm as arrays (each model 25 securities in 3 asset classes with 5/25 bands
and an asset-class band; every account holds every position of its model, some hold
one position outside it, some have reserves and pending withdrawals), then times
``poise.monitor.drift.scan`` — weights, drift, band checks for positions, asset classes
and cash, for every account. Target: ≤ 1 s on one core.
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # one core, as the target says

# The imports below come after the thread settings on purpose: BLAS reads them once.
import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from poise.monitor.book import AccountBlock, Book, ModelLayout  # noqa: E402
from poise.monitor.drift import scan  # noqa: E402


def make_book(accounts: int, positions: int, models: int, seed: int = 1) -> tuple[Book, np.ndarray]:
    rng = np.random.default_rng(seed)
    universe = models * positions + 50
    securities = tuple(f"S{i:05d}" for i in range(universe))
    prices = rng.uniform(10, 500, universe)
    blocks = []
    per_block = accounts // models
    for m in range(models):
        slots = np.arange(m * positions, (m + 1) * positions)
        target = rng.dirichlet(np.ones(positions)) * 0.98
        class_of = np.arange(positions) % 3
        layout = ModelLayout(
            model_id=f"M{m}",
            securities=tuple(securities[i] for i in slots),
            target=target,
            band_abs=np.full(positions, 0.05),
            band_rel=np.full(positions, 0.25),
            classes=("a", "b", "c"),
            class_of=class_of,
            class_target=np.bincount(class_of, weights=target, minlength=3),
            class_abs=np.full(3, 0.05),
            class_rel=np.full(3, np.nan),
            cash_target=0.02,
            cash_abs=0.01,
            cash_rel=np.nan,
            default_abs=0.05,
            default_rel=0.25,
        )
        value = rng.lognormal(13, 1, per_block)
        noise = rng.normal(1, 0.15, (per_block, positions)).clip(0.2)
        quantity = (value[:, None] * target * noise) / prices[slots]
        extra = np.where(
            rng.random(per_block) < 0.1, universe - 1 - (np.arange(per_block) % 50), -1
        )
        blocks.append(
            AccountBlock(
                layout=layout,
                account_ids=tuple(f"A{m}-{i}" for i in range(per_block)),
                slot_security=slots,
                quantity=quantity,
                extra_security=extra[:, None],
                extra_quantity=np.where(extra >= 0, 10.0, 0.0)[:, None],
                cash=value * 0.02,
                reserve_amount=np.where(rng.random(per_block) < 0.2, 5_000.0, 0.0),
                reserve_fraction=np.zeros(per_block),
                pending_in=np.zeros(per_block),
                pending_out=np.where(rng.random(per_block) < 0.05, 10_000.0, 0.0),
                band_abs=np.where(rng.random(per_block) < 0.05, 0.03, np.nan),
                band_rel=np.full(per_block, np.nan),
            )
        )
    return Book(securities, ("x",) * universe, tuple(blocks), ()), prices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--positions", type=int, default=25)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    book, prices = make_book(args.accounts, args.positions, args.models)
    scan(book, prices)  # warm up
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = scan(book, prices)
        times.append(time.perf_counter() - start)
    out = sum(int(r.out_of_band.sum()) for r in result)
    print(
        f"drift scan: {args.accounts:,} accounts × {args.positions} positions, "
        f"median {statistics.median(times):.3f} s, best {min(times):.3f} s "
        f"over {args.repeat} runs (target ≤ 1 s); {out:,} accounts out of band"
    )


if __name__ == "__main__":
    main()
