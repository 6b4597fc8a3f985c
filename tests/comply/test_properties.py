"""Invariants of the rules, over households hypothesis makes."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.comply.book import PRICES, household

from poise.comply.findings import Severity
from poise.comply.rules.base import Scope
from poise.comply.rules.concentration import AssetClassRange, SectorWeight, SecurityWeight
from poise.comply.rules.positions import LongOnly, NoMargin, NoNegativeCash
from poise.comply.rules.trading import Turnover
from poise.comply.rulesets import compose, parse
from poise.comply.views import nothing

D = Decimal
NAMES = sorted(PRICES)

holdings = st.dictionaries(
    st.sampled_from(NAMES), st.integers(min_value=1, max_value=300), min_size=1, max_size=8
)
trades = st.lists(
    st.tuples(st.sampled_from(["A1", "A2"]), st.sampled_from(["buy", "sell"]),
              st.sampled_from(NAMES), st.integers(min_value=1, max_value=80)),
    max_size=6,
)  # fmt: skip


def _text(a1: dict[str, int], a2: dict[str, int], cash: int, moves: list[tuple]) -> str:
    lines = [f"account A1 taxable cash {cash}", "account A2 roth_ira cash 500"]
    lines += [f"A1 {s} {q}" for s, q in a1.items()] + [f"A2 {s} {q}" for s, q in a2.items()]
    lines += [f"trade {a} {side} {s} {q}" for a, side, s, q in moves]
    return "\n".join(lines)


@settings(max_examples=80, deadline=None)
@given(holdings, holdings, st.integers(min_value=0, max_value=20_000), trades)
def test_a_household_when_under_every_limit_then_no_rule_finds_anything(
    a1: dict[str, int], a2: dict[str, int], cash: int, moves: list[tuple]
) -> None:
    before, after, rows = household(_text(a1, a2, cash, moves))
    # a portfolio that owes nothing: weights are shares of what is owned
    assume(all(a.cash >= 0 for a in after.accounts) and min(after.quantity) >= 0)
    empty = nothing(after)
    largest = float(after.weight.max())
    codes, names = after.codes["security"]
    household_largest = float(np.bincount(codes, after.household_weight, len(names)).max())
    for rule in (
        SecurityWeight(rule_id="s", max_weight=largest),
        SecurityWeight(rule_id="h", max_weight=household_largest, scope=Scope.HOUSEHOLD),
        SectorWeight(rule_id="sector", max_weight=1.0),
        AssetClassRange(rule_id="a", asset_class="us_equity"),
    ):
        assert rule.check(empty, after, ()) == []
        assert rule.check(before, after, rows) == []
    traded = sum((r.value for r in rows), D(0))
    values = [a.value for a in before.accounts]
    if traded and min(values) > 0:
        most = max(float(traded / v) for v in values)
        if most <= 1.0:  # a turnover limit is a fraction: above 100% none is "under" it
            assert Turnover(rule_id="t", max_turnover=most).check(before, after, rows) == []


@settings(max_examples=80, deadline=None)
@given(holdings, holdings, st.integers(min_value=0, max_value=20_000), trades)
def test_no_margin_when_cash_after_is_the_trades_then_it_agrees_with_no_negative_cash(
    a1: dict[str, int], a2: dict[str, int], cash: int, moves: list[tuple]
) -> None:
    checked = household(_text(a1, a2, cash, moves))
    margin = NoMargin(rule_id="m").check(*checked)
    negative = NoNegativeCash(rule_id="n").check(*checked)
    assert [f.accounts for f in margin] == [f.accounts for f in negative]
    # and a sale of more than is held is a short, whatever the cash
    shorts = LongOnly(rule_id="l").check(*checked)
    _, after, _ = checked
    assert len(shorts) == sum(1 for q in after.quantity if q < 0)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.01, max_value=0.5), st.floats(min_value=0.01, max_value=0.5),
    st.booleans(),
)  # fmt: skip
def test_a_layer_when_it_changes_a_maximum_then_only_a_tightening_or_an_allowed_one_stands(
    upper: float, lower: float, allowed: bool
) -> None:
    firm = parse(
        f"layer: firm\nrules:\n  - id: s\n    kind: security_weight\n    max_weight: {upper}\n"
        + ("    allow_loosen: true\n" if allowed else ""),
        "firm.yaml",
    )
    account = parse(
        f"layer: account\napplies_to: A\nrules:\n  - id: s\n    max_weight: {lower}\n",
        "a.yaml",
    )
    if lower <= upper or allowed:
        [rule] = compose([firm, account]).rules()
        assert rule.max_weight == lower  # type: ignore[attr-defined]
        assert rule.severity is Severity.BLOCK
    else:
        with pytest.raises(ValueError, match=r"a\.yaml:5: .* set at firm\.yaml:5"):
            compose([firm, account])
