"""Why no trades satisfy every hard limit, in words a reviewer can act on.

When the cash that must remain (the reserve plus the withdrawals asked for) cannot be
raised within the tax budget or the turnover limit, a method proposes nothing — both
are limits the user set, and neither is ever shipped broken — and says exactly which
two meet: how much is short, and the least gain (or turnover) that would raise it.
"""

from __future__ import annotations

from decimal import Decimal

from poise.domain.money import ZERO, cents
from poise.optimize.problem import Problem

__all__ = ["least_gain_to_raise", "why_nothing"]


def least_gain_to_raise(problem: Problem, amount: Decimal) -> Decimal | None:
    """The smallest net gain that sales raising ``amount`` dollars must realise, lots
    taken by gain per dollar raised (losses first); None when the sellable lots cannot
    raise it at all. Shares are taken as finely as needed: the grid and costs can only
    make the true least a little larger."""
    options: list[tuple[Decimal, Decimal, Decimal]] = []  # gain per dollar, dollars, gain
    for h in problem.holdings:
        if h.no_sell or h.price <= ZERO:
            continue
        for lot in h.lots:
            gain_per_share = h.price - lot.basis_per_share
            if gain_per_share < ZERO and h.no_loss_sale:
                continue  # a loss sale inside its wash-sale window may not be made
            options.append((gain_per_share / h.price, lot.quantity * h.price, gain_per_share))
    left, gain = amount, ZERO
    for per_dollar, dollars, _ in sorted(options):
        taken = min(left, dollars)
        gain += per_dollar * taken
        left -= taken
        if left <= ZERO:
            return gain
    return None


def why_nothing(
    problem: Problem, *, tax_budget: Decimal | None, max_turnover: Decimal | None
) -> str:
    """The reason no trades satisfy every hard limit, as exactly as it can be told."""
    short = problem.reserve - problem.cash
    if short > ZERO:
        what = (
            f"the cash that must remain ({cents(problem.reserve):,.2f}) is"
            f" {cents(short):,.2f} short"
        )
        gain = least_gain_to_raise(problem, short)
        if gain is None:
            return f"{what}, and everything that may be sold would not raise it"
        if tax_budget is not None and gain > tax_budget:
            return (
                f"{what} and cannot be raised within the tax budget of"
                f" {cents(tax_budget):,.2f}: the least gain that raises it is {cents(gain):,.2f}"
            )
        if max_turnover is not None and short > max_turnover * problem.value:
            return (
                f"{what} and cannot be raised within the turnover limit of"
                f" {cents(max_turnover * problem.value):,.2f}"
            )
    return "no trades satisfy every constraint (the tax budget, turnover or cash)"
