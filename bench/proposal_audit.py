"""Audit: every method's proposals over the demo firm, checked by rules written apart
from the engine.

    .venv/bin/python bench/proposal_audit.py [--accounts 60] [--min-trade 1]

Builds the default demo firm once (into ``bench/out/audit/``), then for the first
``--accounts`` accounts (by id) that are not held, as of 2022-12-28, runs ``bands``,
``cash``, ``optimize`` and ``optimize`` with a tax budget of 0 on the same problem and
risk model, and checks each proposal against rules recomputed here from the trades,
the lots and the prices — not from the figures the engine reports:

- **churn**: no security both bought and sold in one proposal;
- **dust**: no trade worth less than ``--min-trade`` dollars (default $1);
- **minimum**: no trade below the firm's smallest trade (the larger of
  ``POISE_MIN_TRADE`` and ``POISE_MIN_TRADE_FRACTION`` of the account), which every
  method is run with, as ``poise rebalance`` runs it;
- **cash**: cash after the trades (sales' proceeds less purchases, before costs, less
  the proposal's own cost) at least what must remain (reserve plus withdrawals) — or
  the proposal says exactly why it cannot be raised (how much is short, and which
  limit the user set stands in the way);
- **budget**: with a tax budget of 0, the realised net gain (proceeds less the lots'
  basis, lot by lot) at most 0;
- **replacement**: no replacement bought in an account whose gains are not taxed now.

Prints, for each method and rule, how many proposals break it and the worst case.
Nothing is timed; this is the outside check the engine is held to.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO
from poise.monitor.book import BandPolicy
from poise.optimize.problem import Problem
from poise.optimize.scenarios import Scenario, compare, optimize_settings
from poise.optimize.trades import Proposal, Side, TradeReason
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.rebalance import load_history, load_problem

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "audit"
AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)
Floats = npt.NDArray[np.float64]


def demo_database(out: Path = OUT) -> str:
    """The default demo firm, built once into ``out`` (its schema brought up to date
    when it was built by an earlier revision): its database URL."""
    url = f"sqlite:///{out / 'demo.db'}"
    if (out / "demo.db").exists():
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    else:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "poise", "demo", "--json", "--out", str(out / "files")],
            env={**os.environ, "POISE_DATABASE_URL": url},
            cwd=out,
            check=True,
            capture_output=True,
        )
    return url


def realised(problem: Problem, proposal: Proposal) -> Decimal:
    """Net gain of the proposal's sales, from the lots' own basis and the trade price."""
    lots = {lot.lot_id: lot for h in problem.holdings for lot in h.lots}
    gain = ZERO
    for trade in proposal.trades:
        for sale in trade.lots:
            lot = lots[sale.lot_id]
            basis = (lot.adjusted_basis or lot.cost_basis) * sale.quantity / lot.quantity
            gain += sale.quantity * trade.price - basis
    return gain


def breaches(
    problem: Problem, proposal: Proposal, *, budget: bool, min_trade: Decimal, smallest: Decimal
) -> dict[str, tuple[Decimal, str]]:
    """Each rule the proposal breaks, with how badly and an example."""
    found: dict[str, tuple[Decimal, str]] = {}
    sides: dict[str, set[Side]] = defaultdict(set)
    for trade in proposal.trades:
        sides[trade.security_id].add(trade.side)
    churned = sorted(s for s, both in sides.items() if len(both) == 2)
    if churned:
        found["churn"] = (Decimal(len(churned)), ", ".join(churned))
    dust = [t for t in proposal.trades if t.quantity * t.price < min_trade]
    if dust:
        worst = min(dust, key=lambda t: t.quantity * t.price)
        found["dust"] = (
            Decimal(len(dust)),
            f"{worst.side.value} {worst.quantity} {worst.security_id}"
            f" ${worst.quantity * worst.price:.2f}",
        )
    small = [t for t in proposal.trades if t.quantity * t.price < smallest]
    if small:
        worst = min(small, key=lambda t: t.quantity * t.price)
        found["minimum"] = (
            Decimal(len(small)),
            f"{worst.security_id} ${worst.quantity * worst.price:.2f} of {smallest:.2f}",
        )
    flow = sum(
        (t.quantity * t.price * (1 if t.side is Side.SELL else -1) for t in proposal.trades),
        ZERO,
    )
    after = problem.cash + flow - proposal.cost
    said = any("short" in b and "raise" in b for b in proposal.binding)  # exactly why
    if after < problem.reserve - Decimal("0.01") and not said:
        found["cash"] = (problem.reserve - after, f"keeps {after:,.2f} of {problem.reserve:,.2f}")
    gain = realised(problem, proposal)
    if budget and gain > Decimal("0.005"):
        found["budget"] = (gain, f"realises {gain:,.2f} with a budget of 0")
    if not problem.account.registration.taxable:
        bought = [t for t in proposal.trades if t.reason is TradeReason.REPLACEMENT]
        if bought:
            found["replacement"] = (
                Decimal(len(bought)),
                ", ".join(f"{t.security_id} {t.quantity}" for t in bought),
            )
    return found


def problems(engine: sa.Engine, settings: Settings) -> Iterator[tuple[Problem, Floats]]:
    """Each account that is not held, by id: its problem and the covariance of its
    holdings, as ``poise rebalance`` loads them."""
    with engine.connect() as connection:
        ids = [a.account_id for a in repo.accounts(connection)]
    for account_id in ids:
        try:
            problem = load_problem(
                engine,
                account_id=account_id,
                as_of=AS_OF,
                firm_band=BandPolicy.preset(settings.band_preset).band(),
                max_price_age=timedelta(days=settings.max_price_age_days),
            )
        except ValidationError:  # held, or no model: not rebalanced
            continue
        lookback = timedelta(days=settings.risk_lookback_days)
        history = load_history(engine, problem=problem, as_of=AS_OF, lookback=lookback)
        yield problem, history.covariance()


METHODS = ("bands", "cash", "optimize", "optimize, budget 0")
RULES = ("churn", "dust", "minimum", "cash", "budget", "replacement")
Breach = tuple[str, str, str, Decimal, str]  # method, account, rule, how badly, example


def audit(
    engine: sa.Engine,
    *,
    methods: Sequence[str] = METHODS,
    accounts: int | None = None,
    dust: Decimal = Decimal(1),
) -> tuple[int, list[Breach]]:
    """Every method's proposal for each account (the first ``accounts`` not held), run
    with the firm's smallest trade as ``poise rebalance`` runs it: how many accounts
    were audited, and every rule a proposal breaks."""
    settings = Settings()
    base = optimize_settings(
        min_trade=settings.min_trade, min_trade_fraction=settings.min_trade_fraction
    )
    scenarios = {
        "bands": Scenario.of_method("bands", base),
        "cash": Scenario.of_method("cash", base),
        "optimize": Scenario.of_method("optimize", base),
        "optimize, budget 0": Scenario.of_method("optimize", replace(base, tax_budget=ZERO)),
    }
    found: list[Breach] = []
    audited = 0
    for problem, covariance in problems(engine, settings):
        if audited == accounts:
            break
        audited += 1
        smallest = max(settings.min_trade, settings.min_trade_fraction * problem.value)
        results = compare(problem, covariance, [scenarios[name] for name in methods])
        for name, (_, proposal) in zip(methods, results, strict=True):
            broken = breaches(
                problem,
                proposal,
                budget=name.endswith("budget 0"),
                min_trade=dust,
                smallest=smallest,
            )
            found += [
                (name, problem.account.account_id, rule, size, example)
                for rule, (size, example) in broken.items()
            ]
    return audited, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--min-trade", type=Decimal, default=Decimal(1))
    args = parser.parse_args()
    engine = make_engine(demo_database())
    audited, found = audit(engine, accounts=args.accounts, dust=args.min_trade)
    print(f"{audited} accounts as of {AS_OF:%Y-%m-%d}, {len(METHODS)} methods each")
    print(f"{'method':<20} {'rule':<12} {'proposals':>9}  worst")
    for name in METHODS:
        for rule in RULES:
            cases = [
                (size, account, why) for m, account, r, size, why in found if (m, r) == (name, rule)
            ]
            worst = max(cases, default=None)
            shown = f"{worst[1]}: {worst[2]}" if worst else ""
            print(f"{name:<20} {rule:<12} {len(cases):>9}  {shown}")


if __name__ == "__main__":
    main()
