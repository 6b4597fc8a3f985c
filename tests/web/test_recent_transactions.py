"""An account's page and a household's list their latest transactions, latest first."""

from __future__ import annotations

from pathlib import Path

from tests.api.reads_firm import build

from poise.web.views import account_view, household_view


def test_pages_when_transactions_are_held_then_the_latest_come_first(tmp_path: Path) -> None:
    engine, _ = build(tmp_path)  # tests/api/reads_firm.py: TRANSACTIONS
    account = account_view(engine, "10000001")
    assert [x.txn_id for x in account.recent] == ["T1003", "T1002", "T1001"]
    household = household_view(engine, "H1")
    assert [(x.account_id, x.txn_id) for x in household.recent] == [
        ("10000002", "T2001"), ("10000001", "T1003"), ("10000001", "T1002"),
        ("10000001", "T1001"),
    ]  # fmt: skip
    assert "T3001" not in {x.txn_id for x in household.recent}  # H2's
    engine.dispose()
