"""One tax year's realised capital gains settled for a US individual, as Schedule D
(Form 1040) and its Capital Loss Carryover Worksheet settle them.

Sources: 26 U.S.C. §1211(b) (the limit on capital losses), §1212(b) (their carryover),
§1222 (the terms and the nets); IRS Publication 550, chapter 4 "Capital Gains and
Losses" — "Capital Losses" and "Capital loss carryover"; the Schedule D (Form 1040)
instructions, Capital Loss Carryover Worksheet. The rules, as this module applies them:

* **The nets** (§1222(5)–(8); Schedule D lines 7 and 15): the year's short-term gains
  and losses net to one figure, less the short-term loss carried in (line 6); the
  long-term ones likewise, less the long-term loss carried in (line 14). A loss carried
  in keeps its character: a long-term carryover reduces the year's long-term gains
  before its short-term ones (Pub. 550, "Capital loss carryover").
* **Across the terms** (Schedule D line 16): the two nets are added. A gain left is
  taxed as follows: the *net capital gain* (§1222(11)), the net long-term gain less any
  net short-term loss, at the long-term rate; the rest at the short-term rate. So a
  short-term gain left after a long-term loss is taxed as short-term, a long-term gain
  left after a short-term loss as long-term.
* **A net capital loss** (§1211(b); Schedule D line 21): at most ``loss_limit`` of it
  — $3,000, $1,500 married filing separately — is deducted against ordinary income.
  Pub. 550's example (Bob and Gloria): a $7,000 loss and no other capital
  transactions, $3,000 deducted, $4,000 carried; had the loss been $2,000, all of it
  deducted and nothing carried.
* **The carryover** (§1212(b)(1), (2); the worksheet's lines 5–13): the deduction uses
  up the net short-term loss first and only then the long-term, until the limit is
  reached (Pub. 550, "Capital loss carryover"). What is left carries into the next
  year with its character, for an individual until it is used up.

What is modelled, and what is not:

* **Rates are flat marginal rates**, :class:`~poise.domain.accounts.TaxRates`: no
  brackets, no 0/15/20% thresholds, no 28% collectibles or unrecaptured §1250 rate, no
  net investment income tax unless the caller folds it into the rates. Short-term gain
  is taxed at ``short_term + state``, long-term gain at ``long_term + state``, and the
  deduction saves tax at the ordinary rate, ``short_term + state``.
* **State tax is a flat addition** to the federal rate, on the federal figures: a state
  that taxes gains its own way (no carryover, its own loss limit, no long-term rate) is
  not modelled, nor is the federal deduction of state tax.
* **The whole deduction is used.** The worksheet's lines 1–4 give back to the carryover
  any part of the deduction that taxable income (Form 1040 line 15) was too small to
  absorb (§1212(b)(2)(B), adjusted taxable income). Here taxable income is taken to be
  at least zero, so line 4 is line 2: the deduction is always used in full.
* **Pure**: one year's sales and the loss carried in, in; the year's tax and the loss
  carried out, out. Several years are settled by feeding ``carried_out`` to the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.accounts import TaxRates
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO, cents
from poise.domain.relief import Term

__all__ = [
    "ORDINARY_LOSS_LIMIT",
    "Carryforward",
    "Realised",
    "YearTax",
    "settle_year",
]

# The most net capital loss deducted against ordinary income a year (§1211(b)(1));
# $1,500 for a married individual filing separately: pass it as ``loss_limit``.
ORDINARY_LOSS_LIMIT = Decimal(3000)


@dataclass(frozen=True, slots=True)
class Realised:
    """One lot's sale: the day, its term, and its gain (negative: a loss), after any
    wash-sale disallowance."""

    day: date
    term: Term
    gain: Decimal


@dataclass(frozen=True, slots=True)
class Carryforward:
    """Capital losses carried into a year, by character, as positive amounts
    (Schedule D lines 6 and 14)."""

    short: Decimal = ZERO
    long: Decimal = ZERO

    def __post_init__(self) -> None:
        if self.short < ZERO or self.long < ZERO:
            raise ValidationError(
                f"a loss carried forward is a positive amount, got short {self.short}, "
                f"long {self.long}"
            )

    @property
    def total(self) -> Decimal:
        return self.short + self.long


@dataclass(frozen=True, slots=True)
class YearTax:
    """A year's capital gains settled: the nets, what is taxed at each rate, what is
    deducted against ordinary income, what carries into the next year, and the tax."""

    year: int
    short_gains: Decimal  # the year's net short-term gain or loss, before carryforwards
    long_gains: Decimal  # the year's net long-term gain or loss, before carryforwards
    carried_in: Carryforward
    taxed_short: Decimal  # net gain taxed at the short-term rate (>= 0)
    taxed_long: Decimal  # net gain taxed at the long-term rate (>= 0): the net capital gain
    deducted: Decimal  # net capital loss deducted against ordinary income (0 .. limit)
    carried_out: Carryforward
    tax: Decimal  # to the cent; negative where the deduction saves tax

    @property
    def net_short(self) -> Decimal:
        """Net short-term gain or loss after the carryover (Schedule D line 7)."""
        return self.short_gains - self.carried_in.short

    @property
    def net_long(self) -> Decimal:
        """Net long-term gain or loss after the carryover (Schedule D line 15)."""
        return self.long_gains - self.carried_in.long


def _carryover_worksheet(net_short: Decimal, net_long: Decimal, deducted: Decimal) -> Carryforward:
    """The Capital Loss Carryover Worksheet, lines 5–13, with line 4 (the deduction
    used) equal to the deduction: the short-term loss is used up first.

    ``net_short`` and ``net_long`` are Schedule D lines 7 and 15; ``deducted`` is line 21
    as a positive amount.
    """
    short_loss = max(-net_short, ZERO)  # line 5
    long_gain = max(net_long, ZERO)  # line 6
    short_out = max(short_loss - (deducted + long_gain), ZERO)  # lines 7 and 8
    long_loss = max(-net_long, ZERO)  # line 9
    short_gain = max(net_short, ZERO)  # line 10
    beyond_short = max(deducted - short_loss, ZERO)  # line 11
    long_out = max(long_loss - (short_gain + beyond_short), ZERO)  # lines 12 and 13
    return Carryforward(short=short_out, long=long_out)


def settle_year(
    year: int,
    realised: Iterable[Realised],
    carried_in: Carryforward,
    rates: TaxRates,
    *,
    loss_limit: Decimal = ORDINARY_LOSS_LIMIT,
) -> YearTax:
    """Settle ``year``'s ``realised`` gains and the loss ``carried_in``: see the module.

    Every entry of ``realised`` is a sale of ``year``; ``loss_limit`` is the most net
    capital loss deducted against ordinary income (:data:`ORDINARY_LOSS_LIMIT`, or
    $1,500 married filing separately).
    """
    if loss_limit < ZERO:
        raise ValidationError(f"the capital loss limit cannot be negative, got {loss_limit}")
    gains = {Term.SHORT: ZERO, Term.LONG: ZERO}
    for sale in realised:
        if sale.day.year != year:
            raise ValidationError(f"a sale of {sale.day} is not of the tax year {year}")
        gains[sale.term] += sale.gain

    net_short = gains[Term.SHORT] - carried_in.short  # Schedule D line 7
    net_long = gains[Term.LONG] - carried_in.long  # Schedule D line 15
    combined = net_short + net_long  # Schedule D line 16
    taxed_long = max(min(net_long, combined), ZERO)  # §1222(11): net LT gain less net ST loss
    taxed_short = max(combined, ZERO) - taxed_long
    deducted = min(max(-combined, ZERO), loss_limit)  # §1211(b); Schedule D line 21
    carried_out = _carryover_worksheet(net_short, net_long, deducted)

    ordinary = rates.short_term + rates.state
    preferential = rates.long_term + rates.state
    tax = cents(taxed_short * ordinary + taxed_long * preferential - deducted * ordinary)
    return YearTax(
        year=year,
        short_gains=gains[Term.SHORT],
        long_gains=gains[Term.LONG],
        carried_in=carried_in,
        taxed_short=taxed_short,
        taxed_long=taxed_long,
        deducted=deducted,
        carried_out=carried_out,
        tax=tax,
    )
