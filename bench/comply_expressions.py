"""Custom compliance rules: the expression languages poise could evaluate them in.

Each candidate compiles one rule once — no holding above a quarter of the account,
equities at most 80%, cash at least 1% — and evaluates it over 10,000 post-trade
portfolios (15–40 holdings each, made with a fixed seed), as ``poise comply`` would
over a firm's proposals. Printed: compile time and evaluations per second, by library.

    .venv/bin/python bench/comply_expressions.py [--portfolios N]

A library that is not installed is reported and skipped.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

CEL = (
    "holdings.all(h, h.weight <= 0.25)"
    " && classes.equity <= 0.8 && cash_weight >= 0.01"
    " && !holdings.exists(h, 'tobacco' in h.tags)"
)
RULE_ENGINE = (
    "[h for h in holdings if h['weight'] > 0.25].is_empty"
    " and classes['equity'] <= 0.8 and cash_weight >= 0.01"
    " and [h for h in holdings if 'tobacco' in h['tags']].is_empty"
)
CLASSES = ("equity", "fixed_income", "real_estate", "commodity")
TAGS = ("esg", "tobacco", "fossil_fuels", "large_cap", "small_cap", "dividend")


def portfolios(count: int, seed: int = 13) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        n = rng.randint(15, 40)
        raw = [rng.random() for _ in range(n)]
        cash = rng.uniform(0.0, 0.05)
        total = sum(raw) / (1.0 - cash)
        holdings = []
        classes = dict.fromkeys(CLASSES, 0.0)
        for i, r in enumerate(raw):
            weight = r / total
            asset_class = rng.choice(CLASSES)
            classes[asset_class] += weight
            holdings.append(
                {
                    "security": f"S{i:04d}",
                    "weight": weight,
                    "value": weight * 250_000.0,
                    "asset_class": asset_class,
                    "tags": [t for t in TAGS if rng.random() < 0.03],
                }
            )
        made.append({"holdings": holdings, "classes": classes, "cash_weight": cash})
    return made


def _common_expression_language() -> tuple[Callable[[dict[str, Any]], Any], float]:
    import cel  # noqa: PLC0415 - a candidate may be missing

    start = time.perf_counter()
    program = cel.compile(CEL)
    return program.execute, time.perf_counter() - start


def _cel_python() -> tuple[Callable[[dict[str, Any]], Any], float]:
    import celpy  # noqa: PLC0415

    start = time.perf_counter()
    env = celpy.Environment()
    program = env.program(env.compile(CEL))
    compiled = time.perf_counter() - start

    def run(portfolio: dict[str, Any]) -> Any:
        return program.evaluate(celpy.json_to_cel(portfolio))

    return run, compiled


def _rule_engine() -> tuple[Callable[[dict[str, Any]], Any], float]:
    import rule_engine  # noqa: PLC0415

    start = time.perf_counter()
    rule = rule_engine.Rule(RULE_ENGINE)
    return rule.matches, time.perf_counter() - start


CANDIDATES: dict[str, Callable[[], tuple[Callable[[dict[str, Any]], Any], float]]] = {
    "common-expression-language (Rust CEL)": _common_expression_language,
    "cel-python (pure Python CEL)": _cel_python,
    "rule-engine": _rule_engine,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=10_000)
    args = parser.parse_args()
    made = portfolios(args.portfolios)
    answers: dict[str, list[bool]] = {}
    for name, make in CANDIDATES.items():
        try:
            run, compiled = make()
        except ImportError as e:
            print(f"{name:40s} not installed ({e.name})")
            continue
        start = time.perf_counter()
        answers[name] = [bool(run(p)) for p in made]
        elapsed = time.perf_counter() - start
        print(
            f"{name:40s} compile {compiled * 1e3:7.2f} ms   "
            f"{len(made) / elapsed:>10,.0f} evaluations/s   "
            f"({sum(answers[name])} of {len(made)} pass)"
        )
    if len({tuple(a) for a in answers.values()}) > 1:
        raise SystemExit("the candidates disagree on which portfolios pass")


if __name__ == "__main__":
    main()
