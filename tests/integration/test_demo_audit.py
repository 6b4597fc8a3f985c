"""Over a demo firm, every bands and optimize proposal keeps the rules a reviewer checks
by hand — recomputed from the trades, the lots and the prices by ``bench/proposal_audit``,
not taken from the figures the engine reports: no security both bought and sold, no
trade below the firm's minimum, cash at least what must remain (or the proposal says
exactly why it cannot be raised), a tax budget of 0 held, no replacement bought where
a loss has no tax value."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from bench.proposal_audit import audit


@pytest.mark.slow
def test_demo_when_every_account_is_rebalanced_then_no_proposal_breaks_a_rule(
    demo_firm: sa.Engine,
) -> None:
    # Dust is any trade below the firm's minimum here, not only below a dollar.
    audited, found = audit(
        demo_firm, methods=("bands", "optimize", "optimize, budget 0"), dust=Decimal(0)
    )
    assert audited >= 40
    assert found == []
