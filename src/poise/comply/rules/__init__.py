"""The rule kinds, by the name a rule set gives them: a table, not an ``if`` ladder.

Each is a small frozen class — parameters in the constructor, ``check(before, after,
trades) -> list[Finding]`` — and, where the optimiser has the same constraint, a
method that gives it in the optimiser's terms (see :mod:`poise.comply.twins`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from poise.comply.findings import Finding
from poise.comply.rules.base import Rule
from poise.comply.rules.concentration import (
    AssetClassRange,
    IssuerWeight,
    MinimumCash,
    SectorWeight,
    SecurityWeight,
    TopHoldings,
)
from poise.comply.rules.data import PriceMoved, StalePrice
from poise.comply.rules.expression import Expression
from poise.comply.rules.orders import MaxOrderValue, MaxShareOfVolume
from poise.comply.rules.positions import LongOnly, NoMargin, NoNegativeCash
from poise.comply.rules.restricted import DoNotBuy, DoNotSell, ExcludedTags, MustHold
from poise.comply.rules.suitability import ClientExclusions, ComplexProducts, RiskWithinTolerance
from poise.comply.rules.tax import ShortTermGains, TaxBudget, WashSale
from poise.comply.rules.trading import MinimumTrade, TradeCount, Turnover
from poise.comply.views import Portfolio, TradeRow

__all__ = ["KINDS", "Rule", "check"]

KINDS: Mapping[str, type[Rule]] = {
    cls.kind: cls
    for cls in (
        # concentration
        SecurityWeight,
        IssuerWeight,
        SectorWeight,
        TopHoldings,
        AssetClassRange,
        MinimumCash,
        # restricted lists
        DoNotBuy,
        DoNotSell,
        ExcludedTags,
        MustHold,
        # positions
        LongOnly,
        NoNegativeCash,
        NoMargin,
        # orders
        MaxOrderValue,
        MaxShareOfVolume,
        # suitability
        RiskWithinTolerance,
        ComplexProducts,
        ClientExclusions,
        # tax
        WashSale,
        TaxBudget,
        ShortTermGains,
        # data
        StalePrice,
        PriceMoved,
        # trading
        MinimumTrade,
        Turnover,
        TradeCount,
        # custom
        Expression,
    )
}


def check(
    rules: Iterable[Rule], before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
) -> list[Finding]:
    """Every finding of every rule, in the rules' order."""
    return [f for rule in rules for f in rule.check(before, after, trades)]
