"""The views a rule sees, built from the engine's own problem and proposal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.optimize.test_bands import problem

from poise.comply.views import of_account
from poise.optimize.bands import rebalance_bands

D = Decimal


def test_of_account_when_built_from_a_bands_proposal_then_before_and_after_are_its_books() -> None:
    # $1,000 cash, AAA $7,000, BBB $2,000: the bands method sells 10 AAA, buys 10 BBB.
    made = problem()
    proposal = rebalance_bands(made)
    before, after, trades = of_account(made, proposal)
    assert [(t.account_id, t.trade.security_id, t.trade.side.value) for t in trades] == [
        ("A1", "AAA", "sell"),
        ("A1", "BBB", "buy"),
    ]
    assert before.total == D(10_000)
    assert after.accounts[0].cash == proposal.cash_after == D("999.00")
    held = dict(zip(after.row_security, after.quantity, strict=True))
    assert held == {"AAA": D(60), "BBB": D(30)}
    weights = dict(zip(after.row_security, after.weight.tolist(), strict=True))
    assert weights["AAA"] == pytest.approx(6000 / 9999)
    assert after.codes["asset_class"][1] == ("us_equity",)
    assert after.exact_value(after.row_security.index("BBB")) == D(3000)
