"""A lot about to turn long-term waits: selling a short-term gain days before it would
be taxed as long-term is charged what waiting would save."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.optimize.test_optimize import cov_of, make

from poise.domain.lots import TaxLot
from poise.optimize.problem import Problem
from poise.optimize.tax_aware import OptimizeSettings, rebalance_optimize
from poise.optimize.trades import Side

D = Decimal


def overweight(acquired: date) -> Problem:
    """AAA is 80% of a $10,000 account against a 50% target, in one lot bought for
    $3,000: a $5,000 gain, 62.5% of its price, taxed at 42% short-term or 25% long."""
    return make(
        {"AAA": "0.5", "BBB": "0.45"},
        [TaxLot("S1", "A1", "AAA", D(80), D(3000), acquired)],
        {"AAA": "100", "BBB": "100"},
        cash="2000",
    )


def sold(problem: Problem, settings: OptimizeSettings | None = None) -> Decimal:
    proposal = rebalance_optimize(problem, cov_of(problem), settings)
    return sum((t.quantity for t in proposal.trades if t.side is Side.SELL), D(0))


def test_optimize_when_a_gain_lot_turns_long_term_in_14_days_then_it_waits_and_says_so() -> None:
    # Bought 2023-06-27: long-term from 2024-06-28, 14 days after 2024-06-14. Sold now,
    # its gain pays 17 points more than in two weeks — $850 — on top of the tax itself:
    # worth more than the tracking error the sale would remove, so it waits.
    problem = overweight(date(2023, 6, 27))
    assert sold(problem, OptimizeSettings(long_term_wait_days=0)) > 0  # no wait: it sells
    proposal = rebalance_optimize(problem, cov_of(problem))
    assert all(t.side is Side.BUY for t in proposal.trades)
    assert "kept to turn long-term: AAA lot S1 in 14 days (saves 850.00)" in proposal.binding


def test_optimize_when_a_gain_lot_is_months_from_long_term_then_waiting_does_not_hold_it() -> None:
    # Bought 2024-01-02: five months to go, outside the 31-day window — sold as before.
    problem = overweight(date(2024, 1, 2))
    assert sold(problem) == sold(problem, OptimizeSettings(long_term_wait_days=0)) > 0
    proposal = rebalance_optimize(problem, cov_of(problem))
    assert not any("long-term" in reason for reason in proposal.binding)
