"""Rebalance requests: who needs attention, why, and the figures a person checks.

The book of these tests, every account worth $10,000 at AAA = BBB = $100, BND = $10:

    BAL   = 60% AAA (±5 points), 30% BBB (5/25: ±5 points), 10% cash (5/25: ±2.5 points)
    BONDS = 100% BND

    BREACH  BAL    AAA 70, BBB 20, cash 1,000    AAA +10, BBB −10: both out
    ONE     BAL    AAA 60, BBB 36, cash   400    BBB +6: out; AAA on target
    FINE    BAL    AAA 60, BBB 30, cash 1,000    on target
    HELD    BAL    AAA 70, BBB 20, cash 1,000    out of band, but held (bad data)
    FLOW    BAL    AAA 60, BBB 30, cash 1,000    a $5,000 deposit asked for
    SHORT   BAL    AAA 60, BBB 30, cash 1,000    keeps a $1,500 reserve
    EXCESS  BAL    AAA 58, BBB 29, cash 1,300    cash 13% vs 10% ± 2.5
    BONDY   BONDS  BND 1,000
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from tests.monitor.firm import account, book_of, holdings, model, prices_of

from poise.domain.relief import Term
from poise.domain.transactions import CashFlow, CashFlowKind
from poise.monitor.drift import scan
from poise.monitor.harvest import Opportunity
from poise.monitor.triggers import (
    Reason,
    RebalanceRequest,
    calendar_due,
    calendar_requests,
    manual_request,
    requests_from_scan,
)

D = Decimal
MORNING = datetime(2024, 3, 15, 9, 30, tzinfo=UTC)
AFTERNOON = datetime(2024, 3, 15, 16, 0, tzinfo=UTC)
NEXT_DAY = datetime(2024, 3, 16, 0, 0, tzinfo=UTC)
PRICES = {"AAA": 100.0, "BBB": 100.0, "CCC": 50.0, "BND": 10.0}
BAL = model("BAL", "security AAA 0.6 abs 0.05\nsecurity BBB 0.3\ncash 0.1")
BONDS = model("BONDS", "security BND 1")

ACCOUNTS = [
    account("BREACH", "BAL", "1000"),
    account("ONE", "BAL", "400"),
    account("FINE", "BAL", "1000"),
    account("HELD", "BAL", "1000"),
    account("FLOW", "BAL", "1000"),
    account("SHORT", "BAL", "1000", reserve="1500"),
    account("EXCESS", "BAL", "1300"),
    account("BONDY", "BONDS", "0"),
]
LOTS = [
    *holdings("BREACH", "AAA 70, BBB 20"),
    *holdings("ONE", "AAA 60, BBB 36"),
    *holdings("FINE", "AAA 60, BBB 30"),
    *holdings("HELD", "AAA 70, BBB 20"),
    *holdings("FLOW", "AAA 60, BBB 30"),
    *holdings("SHORT", "AAA 60, BBB 30"),
    *holdings("EXCESS", "AAA 58, BBB 29"),
    *holdings("BONDY", "BND 1000"),
]
DEPOSIT = CashFlow("F-1", "FLOW", CashFlowKind.DEPOSIT, D(5000), date(2024, 3, 14))
BOOK = book_of(ACCOUNTS, LOTS, [BAL, BONDS], flows=[DEPOSIT])
DRIFTS = scan(BOOK, prices_of(BOOK, PRICES))
HOUSEHOLDS = {a.account_id: a.household_id for a in ACCOUNTS}


def where(account_id: str) -> tuple[int, int]:
    """(block number, row) of an account in the scan."""
    for number, drift in enumerate(DRIFTS):
        if account_id in drift.block.account_ids:
            return number, drift.block.account_ids.index(account_id)
    raise KeyError(account_id)


def loss_on(account_id: str, security: str, lot_id: str) -> Opportunity:
    # 100 shares bought for $11,500, worth $10,000: a $1,500 loss.
    return Opportunity(account_id, lot_id, security, D(100), D(11500), D(10000), Term.SHORT)


def requests(
    *,
    held: frozenset[str] = frozenset({"HELD"}),
    harvest: dict[tuple[int, int], list[Opportunity]] | None = None,
) -> dict[str, RebalanceRequest]:
    found = requests_from_scan(
        DRIFTS, household_of=HOUSEHOLDS, held=held, harvest=harvest or {}, as_of=MORNING
    )
    assert len({r.account_id for r in found}) == len(found)  # one request per account
    return {str(r.account_id): r for r in found}


# --- identity and payloads -------------------------------------------------------


def test_request_id_when_reasons_come_in_another_order_or_hour_then_it_is_the_same() -> None:
    first = RebalanceRequest("A1", "H1", (Reason.CASH_SHORT, Reason.BAND_BREACH), MORNING)
    again = RebalanceRequest("A1", "H1", (Reason.BAND_BREACH, Reason.CASH_SHORT), AFTERNOON)
    assert first.request_id == again.request_id == "A1/2024-03-15/band_breach+cash_short"


def test_request_id_when_the_day_scope_or_reasons_differ_then_it_differs() -> None:
    base = RebalanceRequest("A1", "H1", (Reason.BAND_BREACH,), MORNING)
    next_day = RebalanceRequest("A1", "H1", (Reason.BAND_BREACH,), NEXT_DAY)
    other_account = RebalanceRequest("A2", "H1", (Reason.BAND_BREACH,), MORNING)
    more_reasons = RebalanceRequest("A1", "H1", (Reason.BAND_BREACH, Reason.HARVEST), MORNING)
    household = RebalanceRequest(None, "H1", (Reason.BAND_BREACH,), MORNING)
    ids = {r.request_id for r in (base, next_day, other_account, more_reasons, household)}
    assert len(ids) == 5
    assert next_day.request_id == "A1/2024-03-16/band_breach"
    assert household.scope == "household:H1"
    assert household.request_id == "household:H1/2024-03-15/band_breach"


def test_payload_when_a_request_goes_through_json_then_it_comes_back_the_same() -> None:
    request = requests()["BREACH"]
    payload = json.loads(json.dumps(request.to_payload()))
    assert payload["request_id"] == "BREACH/2024-03-15/band_breach"
    assert payload["reasons"] == ["band_breach"]
    assert payload["as_of"] == "2024-03-15T09:30:00+00:00"
    back = RebalanceRequest.from_payload(payload)
    assert back == request
    assert back.request_id == request.request_id


def test_payload_when_the_request_is_for_a_household_then_it_round_trips_too() -> None:
    request = manual_request(account_id=None, household_id="H9", as_of=MORNING, note="new client")
    back = RebalanceRequest.from_payload(json.loads(json.dumps(request.to_payload())))
    assert back == request
    assert back.scope == "household:H9"


# --- requests from a scan ------------------------------------------------------------


def test_scan_when_positions_are_out_of_band_then_the_figures_list_exactly_those() -> None:
    found = requests()
    breach = found["BREACH"]
    assert breach.reasons == (Reason.BAND_BREACH,)
    assert breach.household_id == "H1"
    assert breach.as_of == MORNING
    figures = breach.figures
    assert figures["model_id"] == "BAL"
    assert figures["value"] == 10_000.0
    assert figures["max_drift"] == pytest.approx(0.10)
    assert figures["positions"] == {
        "AAA": {"weight": 0.7, "target": 0.6, "drift": 0.1, "band": 0.05},
        "BBB": {"weight": 0.2, "target": 0.3, "drift": -0.1, "band": 0.05},
    }
    # ONE: only BBB is out (+6 points); AAA is on target and not listed.
    assert found["ONE"].figures["positions"] == {
        "BBB": {"weight": 0.36, "target": 0.3, "drift": 0.06, "band": 0.05}
    }


def test_scan_when_accounts_are_in_band_or_held_then_they_get_no_request() -> None:
    found = requests()
    assert set(found) == {"BREACH", "ONE", "FLOW", "SHORT", "EXCESS"}
    assert "FINE" not in found
    assert "BONDY" not in found
    assert "HELD" not in found  # out of band, but bad data is never traded
    assert "HELD" in requests(held=frozenset())


def test_scan_when_cash_flows_are_pending_or_cash_is_off_then_the_reason_says_which() -> None:
    found = requests()
    assert found["FLOW"].reasons == (Reason.CASH_FLOW,)
    assert found["FLOW"].figures["pending_in"] == 5000.0
    assert found["FLOW"].figures["positions"] == {}
    assert found["SHORT"].reasons == (Reason.CASH_SHORT,)  # $1,000 against $1,500 reserve
    assert found["SHORT"].figures["cash_target"] == pytest.approx(0.15)
    assert found["EXCESS"].reasons == (Reason.CASH_EXCESS,)  # 13% against 10% ± 2.5
    assert found["EXCESS"].figures["cash_weight"] == pytest.approx(0.13)


def test_scan_when_an_account_has_harvest_opportunities_then_harvest_is_a_reason() -> None:
    fine, breach, held, bondy = where("FINE"), where("BREACH"), where("HELD"), where("BONDY")
    assert bondy[0] == 1  # BONDS is the second block
    harvest = {
        fine: [loss_on("FINE", "AAA", "FINE-0")],
        breach: [loss_on("BREACH", "BBB", "BREACH-1")],
        held: [loss_on("HELD", "AAA", "HELD-0")],
        bondy: [loss_on("BONDY", "BND", "BONDY-0")],
    }
    found = requests(harvest=harvest)
    assert found["FINE"].reasons == (Reason.HARVEST,)
    assert found["FINE"].figures["harvest"] == [
        {"lot_id": "FINE-0", "security_id": "AAA", "loss": "1500"}
    ]
    assert found["BREACH"].reasons == (Reason.BAND_BREACH, Reason.HARVEST)
    assert found["BONDY"].reasons == (Reason.HARVEST,)
    assert found["BONDY"].figures["harvest"][0]["lot_id"] == "BONDY-0"
    assert "HELD" not in found
    assert "harvest" not in found["ONE"].figures


def test_scan_when_the_harvest_list_of_an_account_is_empty_then_it_is_no_reason() -> None:
    assert "FINE" not in requests(harvest={where("FINE"): []})


# --- calendar and manual ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "every", "due"),
    [
        (date(2024, 3, 31), date(2024, 4, 1), "quarterly", True),
        (date(2024, 4, 1), date(2024, 4, 30), "quarterly", False),
        (date(2024, 4, 1), date(2024, 6, 30), "quarterly", False),
        (date(2024, 6, 30), date(2024, 7, 1), "quarterly", True),
        (date(2023, 12, 31), date(2024, 1, 1), "quarterly", True),
        (date(2024, 1, 31), date(2024, 2, 1), "monthly", True),
        (date(2024, 2, 1), date(2024, 2, 29), "monthly", False),
        (date(2023, 4, 15), date(2024, 4, 15), "monthly", True),  # same month, a year on
        (date(2024, 1, 1), date(2024, 12, 31), "annually", False),
        (date(2023, 12, 31), date(2024, 1, 1), "annually", True),
        (date(2024, 6, 30), date(2024, 7, 1), "semiannually", True),
        (date(2024, 1, 1), date(2024, 6, 30), "semiannually", False),
        (None, date(2024, 4, 1), "quarterly", False),
    ],
)
def test_calendar_when_a_period_boundary_is_crossed_then_it_is_due(
    previous: date | None, current: date, every: str, due: bool
) -> None:
    assert calendar_due(previous, current, every=every) is due


def test_calendar_when_requests_are_made_then_held_accounts_are_skipped() -> None:
    found = calendar_requests(
        ["A1", "A2", "A3"],
        household_of={"A1": "H1", "A2": "H1", "A3": "H2"},
        held=frozenset({"A2"}),
        as_of=MORNING,
        every="quarterly",
    )
    assert [(r.account_id, r.household_id) for r in found] == [("A1", "H1"), ("A3", "H2")]
    assert all(r.reasons == (Reason.CALENDAR,) for r in found)
    assert found[0].figures == {"calendar": "quarterly"}
    assert found[0].request_id == "A1/2024-03-15/calendar"


def test_manual_when_an_adviser_asks_then_the_note_is_kept() -> None:
    request = manual_request(
        account_id="A1", household_id="H1", as_of=MORNING, note="client retiring in May"
    )
    assert request.reasons == (Reason.MANUAL,)
    assert request.figures == {"note": "client retiring in May"}
    assert request.request_id == "A1/2024-03-15/manual"
