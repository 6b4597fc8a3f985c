"""Data-integrity holds: each cause raised by bad data, and cleared by fixing the data.

The firm of these tests, on 15 March 2024 at 21:00 UTC, prices at most 4 days old:

    BAL   = 60% AAA, 30% BBB, 10% cash
    BONDS = 100% BND

    A1  BAL    AAA 70, BBB 20
    A2  BAL    (nothing yet: its model would buy AAA and BBB)
    A3  BONDS  BND 100
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from tests.monitor.firm import account, holdings, model

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.models import Model
from poise.monitor.holds import HoldCause, Holds, find_holds

D = Decimal
NOW = datetime(2024, 3, 15, 21, 0, tzinfo=UTC)
FRESH = datetime(2024, 3, 15, 20, 0, tzinfo=UTC)
MASTER = frozenset({"AAA", "BBB", "CCC", "BND"})
BAL = model("BAL", "security AAA 0.6\nsecurity BBB 0.3\ncash 0.1")
BONDS = model("BONDS", "security BND 1")
ACCOUNTS = [account("A1", "BAL", "1000"), account("A2", "BAL", "5000"), account("A3", "BONDS", "0")]
LOTS = [*holdings("A1", "AAA 70, BBB 20"), *holdings("A3", "BND 100")]


def holds_of(
    *,
    accounts: Sequence[Account] = ACCOUNTS,
    lots: Sequence[TaxLot] = LOTS,
    securities: frozenset[str] = MASTER,
    price_times: Mapping[str, datetime] | None = None,
    implausible: Mapping[str, str] | None = None,
    models: Sequence[Model] = (BAL, BONDS),
    positions: Mapping[str, Mapping[str, Decimal]] | None = None,
    open_breaks: Mapping[str, Sequence[str]] | None = None,
) -> Holds:
    """The holds of the firm above, with one piece of its data changed."""
    return find_holds(
        accounts=accounts,
        lots=lots,
        securities=securities,
        price_times=dict.fromkeys(securities, FRESH) if price_times is None else price_times,
        implausible=implausible or {},
        models={m.model_id: m for m in models},
        positions=positions or {},
        open_breaks=open_breaks or {},
        now=NOW,
        max_price_age=timedelta(days=4),
    )


def causes(holds: Holds) -> dict[str, set[HoldCause]]:
    found: dict[str, set[HoldCause]] = {}
    for hold in holds.holds:
        found.setdefault(hold.account_id, set()).add(hold.cause)
    return found


def details(holds: Holds, account_id: str, cause: HoldCause) -> list[str]:
    return [h.detail for h in holds.of(account_id) if h.cause is cause]


def test_holds_when_every_piece_of_data_is_sound_then_no_account_is_held() -> None:
    holds = holds_of(positions={"A1": {"AAA": D(70), "BBB": D(20)}, "A3": {"BND": D(100)}})
    assert holds.holds == ()
    assert holds.held == frozenset()
    assert holds.flagged == {}


def test_holds_when_a_price_is_older_than_the_max_age_then_holders_and_buyers_are_held() -> None:
    # AAA last priced on 10 March at 16:00: five days and five hours before now.
    stale = {**dict.fromkeys(MASTER, FRESH), "AAA": datetime(2024, 3, 10, 16, 0, tzinfo=UTC)}
    holds = holds_of(price_times=stale)
    assert set(holds.flagged) == {"AAA"}
    assert "2024-03-10 16:00" in holds.flagged["AAA"]
    # A1 holds AAA; A2 holds nothing but its model would buy AAA; A3 never touches it.
    assert causes(holds) == {"A1": {HoldCause.STALE_PRICE}, "A2": {HoldCause.STALE_PRICE}}
    assert details(holds, "A1", HoldCause.STALE_PRICE) == [
        "AAA: price of 2024-03-10 16:00 UTC is older than 4 days"
    ]
    # A fresh AAA price clears both holds.
    assert holds_of(price_times=dict.fromkeys(MASTER, FRESH)).holds == ()


def test_holds_when_a_price_is_exactly_the_max_age_then_it_is_still_usable() -> None:
    times = {**dict.fromkeys(MASTER, FRESH), "AAA": NOW - timedelta(days=4)}
    assert holds_of(price_times=times).holds == ()
    times["AAA"] = NOW - timedelta(days=4, seconds=1)
    assert holds_of(price_times=times).held == {"A1", "A2"}


def test_holds_when_a_stale_security_is_held_and_bought_by_nobody_then_nobody_is_held() -> None:
    # CCC is in the master but in no lot and no model: its old price matters to no one.
    times = {**dict.fromkeys(MASTER, FRESH), "CCC": NOW - timedelta(days=30)}
    holds = holds_of(price_times=times)
    assert holds.holds == ()
    assert holds.flagged == {}


def test_holds_when_a_held_security_has_no_price_then_its_holder_is_held_until_one_arrives() -> (
    None
):
    lots = [*LOTS, *holdings("A3", "CCC 10")]  # A3 also holds CCC, outside its model
    no_ccc = dict.fromkeys(MASTER - {"CCC"}, FRESH)
    holds = holds_of(lots=lots, price_times=no_ccc)
    assert holds.flagged == {"CCC": "no price"}
    assert causes(holds) == {"A3": {HoldCause.NO_PRICE}}
    assert details(holds, "A3", HoldCause.NO_PRICE) == ["CCC: no price"]
    assert holds_of(lots=lots, price_times={**no_ccc, "CCC": FRESH}).holds == ()


def test_holds_when_a_model_security_has_no_price_then_accounts_on_the_model_are_held() -> None:
    no_bbb = dict.fromkeys(MASTER - {"BBB"}, FRESH)
    holds = holds_of(price_times=no_bbb)
    assert causes(holds) == {"A1": {HoldCause.NO_PRICE}, "A2": {HoldCause.NO_PRICE}}


def test_holds_when_the_lots_disagree_with_the_custodian_then_each_difference_is_named() -> None:
    # A1's lots: AAA 70, BBB 20. The custodian: AAA 69, no BBB at all, and 5 CCC.
    holds = holds_of(positions={"A1": {"AAA": D(69), "CCC": D(5)}})
    assert causes(holds) == {"A1": {HoldCause.LOTS_MISMATCH}}
    assert details(holds, "A1", HoldCause.LOTS_MISMATCH) == [
        "AAA: lots add up to 70, the custodian shows 69",
        "BBB: lots add up to 20, the custodian shows 0",
        "CCC: lots add up to 0, the custodian shows 5",
    ]
    # The corrected snapshot clears it.
    assert holds_of(positions={"A1": {"AAA": D(70), "BBB": D(20)}}).holds == ()


def test_holds_when_two_lots_add_up_to_the_custodian_position_then_they_match() -> None:
    lots = [*LOTS, *holdings("A2", "AAA 30, AAA 12.5")]  # two buys of AAA
    assert holds_of(lots=lots, positions={"A2": {"AAA": D("42.5")}}).holds == ()
    holds = holds_of(lots=lots, positions={"A2": {"AAA": D("42.4")}})
    assert details(holds, "A2", HoldCause.LOTS_MISMATCH) == [
        "AAA: lots add up to 42.5, the custodian shows 42.4"
    ]


def test_holds_when_an_account_has_no_snapshot_then_its_lots_are_not_compared() -> None:
    # Only A3 has a snapshot (and it matches); A1's lots go unchecked, not held.
    holds = holds_of(positions={"A3": {"BND": D(100)}})
    assert holds.holds == ()


def test_holds_when_the_custodian_shows_a_negative_position_then_the_account_is_held() -> None:
    holds = holds_of(positions={"A3": {"BND": D(100), "CCC": D(-5)}})
    assert HoldCause.NEGATIVE_POSITION in causes(holds)["A3"]
    assert details(holds, "A3", HoldCause.NEGATIVE_POSITION) == ["CCC: the custodian shows -5"]
    assert holds.held == {"A3"}
    assert holds_of(positions={"A3": {"BND": D(100)}}).holds == ()


def test_holds_when_the_lots_name_a_security_the_master_does_not_know_then_held() -> None:
    lots = [*LOTS, *holdings("A3", "ZZZ 10")]
    holds = holds_of(lots=lots)
    assert causes(holds) == {"A3": {HoldCause.UNKNOWN_SECURITY}}
    assert details(holds, "A3", HoldCause.UNKNOWN_SECURITY) == [
        "lots name ZZZ, which the master does not know"
    ]
    assert "ZZZ" not in holds.flagged  # an unknown security is not also a price problem
    # Adding ZZZ to the master (with a price) clears it.
    master = MASTER | {"ZZZ"}
    assert holds_of(lots=lots, securities=master).holds == ()


def test_holds_when_the_custodian_names_a_security_the_master_does_not_know_then_held() -> None:
    holds = holds_of(positions={"A3": {"BND": D(100), "ZZZ": D(10)}})
    assert causes(holds) == {"A3": {HoldCause.UNKNOWN_SECURITY, HoldCause.LOTS_MISMATCH}}
    assert details(holds, "A3", HoldCause.UNKNOWN_SECURITY) == [
        "the custodian holds ZZZ, which the master does not know"
    ]
    assert details(holds, "A3", HoldCause.LOTS_MISMATCH) == [
        "ZZZ: lots add up to 0, the custodian shows 10"
    ]
    assert holds_of(positions={"A3": {"BND": D(100)}}).holds == ()


GHOST_SLEEVE = model("GROWTH", "model GHOST 0.5\nsecurity AAA 0.5")
LOOP_A = model("GROWTH", "model LOOP 1")
LOOP_B = model("LOOP", "model GROWTH 1")
GROWTH = model("GROWTH", "security AAA 0.5\nsecurity BBB 0.5")


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        ((), "model GROWTH is not loaded"),
        ((LOOP_A, LOOP_B), "cycle: GROWTH → LOOP → GROWTH"),
        ((GHOST_SLEEVE,), "model GROWTH holds unknown model GHOST"),
    ],
    ids=["missing", "cycle", "unknown sleeve"],
)
def test_holds_when_the_model_does_not_resolve_then_held_until_the_model_is_fixed(
    broken: tuple[Model, ...], why: str
) -> None:
    accounts = [*ACCOUNTS, account("A4", "GROWTH", "100")]
    holds = holds_of(accounts=accounts, models=(BAL, BONDS, *broken))
    assert causes(holds) == {"A4": {HoldCause.MODEL_UNRESOLVED}}
    [detail] = details(holds, "A4", HoldCause.MODEL_UNRESOLVED)
    assert why in detail
    assert holds_of(accounts=accounts, models=(BAL, BONDS, GROWTH)).holds == ()


def test_holds_when_an_open_break_is_passed_then_held_and_when_closed_then_cleared() -> None:
    breaks = {"A1": ["cash: books $1,000.00, custodian $988.00", "BBB dividend not booked"]}
    holds = holds_of(open_breaks=breaks)
    assert causes(holds) == {"A1": {HoldCause.OPEN_BREAK}}
    assert details(holds, "A1", HoldCause.OPEN_BREAK) == breaks["A1"]
    assert holds_of(open_breaks={}).holds == ()


def test_holds_when_several_causes_apply_then_each_is_listed_for_its_own_account() -> None:
    stale = {**dict.fromkeys(MASTER, FRESH), "BND": NOW - timedelta(days=9)}
    holds = holds_of(
        price_times=stale,
        positions={"A1": {"AAA": D(70), "BBB": D(21)}},
        open_breaks={"A2": ["wire of $5,000 not received"]},
    )
    assert causes(holds) == {
        "A1": {HoldCause.LOTS_MISMATCH},
        "A2": {HoldCause.OPEN_BREAK},
        "A3": {HoldCause.STALE_PRICE},
    }
    assert holds.held == {"A1", "A2", "A3"}
    assert [h.cause for h in holds.of("A3")] == [HoldCause.STALE_PRICE]


def test_holds_when_a_stale_price_was_taken_in_another_time_zone_then_the_detail_is_in_utc() -> (
    None
):
    new_york = timezone(timedelta(hours=-4))
    times = {**dict.fromkeys(MASTER, FRESH), "AAA": datetime(2024, 3, 10, 12, 0, tzinfo=new_york)}
    holds = holds_of(price_times=times)
    assert holds.flagged["AAA"] == "price of 2024-03-10 16:00 UTC is older than 4 days"


AAA_1E20 = (
    "price 100000000000000000000 on 2024-03-15 is above the ceiling of 10000000,"
    " and 1e+18 times the previous 100 of 2024-03-14"
)


def test_holds_when_a_price_is_implausible_then_holders_and_buyers_are_held_naming_it() -> None:
    holds = holds_of(implausible={"AAA": AAA_1E20})
    assert holds.flagged == {"AAA": AAA_1E20}
    # A1 holds AAA; A2 holds nothing but its model would buy AAA; A3 never touches it.
    assert causes(holds) == {
        "A1": {HoldCause.IMPLAUSIBLE_PRICE},
        "A2": {HoldCause.IMPLAUSIBLE_PRICE},
    }
    assert details(holds, "A2", HoldCause.IMPLAUSIBLE_PRICE) == [f"AAA: {AAA_1E20}"]
    # The corrected price is plausible: nothing is named, and the holds are gone.
    assert holds_of(implausible={}).holds == ()


def test_holds_when_an_implausible_price_touches_nobody_then_nobody_is_held() -> None:
    holds = holds_of(implausible={"CCC": "price 0.00000001 on 2024-03-15 is …"})
    assert holds.holds == ()
    assert holds.flagged == {}


def test_holds_when_a_price_is_both_stale_and_implausible_then_it_is_held_as_stale() -> None:
    stale = {**dict.fromkeys(MASTER, FRESH), "AAA": NOW - timedelta(days=9)}
    holds = holds_of(price_times=stale, implausible={"AAA": AAA_1E20})
    assert causes(holds) == {"A1": {HoldCause.STALE_PRICE}, "A2": {HoldCause.STALE_PRICE}}
