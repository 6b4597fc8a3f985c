"""The firm's smallest trade, as an operations person meets it through `poise rebalance`:
a setting for the firm, overridden for one run by an option."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.cli.test_rebalance import REBALANCE, load, poise

D = Decimal


def optimised(database_url: str, *args: str) -> dict[str, Any]:
    code, text = poise(
        *REBALANCE, "--method", "optimize", *args, "--json", database_url=database_url
    )
    assert code == 0, text
    found: dict[str, Any] = json.loads(text)
    return found


def test_rebalance_when_no_minimum_is_given_then_the_firm_default_holds_every_trade(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    proposal = optimised(database_url)
    assert proposal["trades"]
    assert all(D(t["value"]) >= D(100) for t in proposal["trades"])


def test_rebalance_when_the_firm_minimum_is_above_every_trade_then_none_is_proposed(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(database_url, tmp_path)
    assert optimised(database_url)["trades"]  # the account has trades worth making
    monkeypatch.setenv("POISE_MIN_TRADE", "100000000")
    assert optimised(database_url)["trades"] == []
    # One run may still ask for any size.
    assert optimised(database_url, "--min-trade", "0", "--min-trade-pct", "0")["trades"]
