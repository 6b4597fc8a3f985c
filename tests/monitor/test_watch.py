"""Watching the firm as prices move: a tick re-evaluates the holders of one security.

The firm of most of these tests, priced on Monday 11 March 2024 at 14:00 UTC with
AAA = BBB = $100, CCC = $50, BND = $10 (prices usable for 4 days):

    BAL   = 60% AAA (±5 points), 30% BBB (±5), 10% cash (±2.5)
    BONDS = 90% BND (±5), 10% cash
    AONLY = 90% AAA (±5), 10% cash

    A1   BAL    AAA 60, BBB 30, cash 1,000      on target
    A2   BONDS  BND 1,000, no cash              BND 100% against 90%: out of band
    H1   AONLY  AAA 100 (cost $10,000), $1,111  harvests; on target
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from tests.monitor.firm import CLASSES, account, book_of, holdings, model

from poise.domain.accounts import Account, Registration
from poise.domain.lots import TaxLot
from poise.domain.models import Model
from poise.domain.securities import Security, SecurityKind
from poise.monitor.book import BandPolicy
from poise.monitor.drift import scan, scan_block
from poise.monitor.harvest import Purchase, harvest_opportunities
from poise.monitor.plausible import Recent
from poise.monitor.triggers import Reason, RebalanceRequest, requests_from_scan
from poise.monitor.watch import Watch, WatchSettings, rows_of

D = Decimal
START = datetime(2024, 3, 11, 14, 0, tzinfo=UTC)
PRICES = {"AAA": D(100), "BBB": D(100), "CCC": D(50), "BND": D(10)}
SECURITIES = {
    s: Security(s, s, s, SecurityKind.ETF, asset_class) for s, asset_class in CLASSES.items()
}
SETTINGS = WatchSettings(policy=BandPolicy.preset("5/25"), max_price_age=timedelta(days=4))

BAL = model("BAL", "security AAA 0.6 abs 0.05\nsecurity BBB 0.3\ncash 0.1")
BONDS = model("BONDS", "security BND 0.9 abs 0.05\ncash 0.1")
AONLY = model("AONLY", "security AAA 0.9 abs 0.05\ncash 0.1")
MODELS = [BAL, BONDS, AONLY]

HARVESTER = Account(
    "H1", "SMITH", Registration.TAXABLE, model_id="AONLY", cash=D(1111), harvest=True
)
COST_10000 = TaxLot("H1-0", "H1", "AAA", D(100), D(10000), date(2022, 5, 2))
ACCOUNTS = [account("A1", "BAL", "1000"), account("A2", "BONDS", "0"), HARVESTER]
LOTS = [*holdings("A1", "AAA 60, BBB 30"), *holdings("A2", "BND 1000"), COST_10000]


def watch_of(
    accounts: Sequence[Account] = ACCOUNTS,
    lots: Sequence[TaxLot] = LOTS,
    models: Sequence[Model] = MODELS,
    *,
    purchases: Sequence[Purchase] = (),
    other_holds: frozenset[str] = frozenset(),
    prices: dict[str, Decimal] = PRICES,
    requested: dict[str, frozenset[Reason]] | None = None,
    recent: Recent | None = None,
) -> Watch:
    return Watch(
        book=book_of(list(accounts), list(lots), list(models)),
        prices=prices,
        price_times=dict.fromkeys(prices, START),
        accounts=accounts,
        lots=lots,
        securities=SECURITIES,
        purchases=purchases,
        other_holds=other_holds,
        settings=SETTINGS,
        requested=requested,
        recent=recent,
    )


def by_account(found: Sequence[RebalanceRequest]) -> dict[str, RebalanceRequest]:
    return {str(r.account_id): r for r in found}


def out_of_band(watch: Watch) -> set[str]:
    """Accounts out of band in a full scan at the watch's current prices."""
    return {
        drift.block.account_ids[row]
        for drift in scan(watch.book, watch.vector)
        for row in np.flatnonzero(drift.out_of_band).tolist()
    }


# --- a tick re-evaluates the holders of its security -------------------------------


def test_tick_when_a_price_moves_then_only_holders_of_that_security_are_re_evaluated() -> None:
    watch = watch_of()
    # A2 is out of band all along, but it holds no AAA: a tick in AAA does not look at it.
    assert "A2" in out_of_band(watch)
    found = by_account(watch.tick("AAA", D(101), START + timedelta(hours=1)))
    assert "A2" not in found
    assert found == {}  # AAA at $101 leaves A1 and H1 in band


def test_tick_when_it_pushes_a_holder_out_of_band_then_a_band_breach_is_requested() -> None:
    # AAA to $130: A1 holds $7,800 of $11,800 = 66.1% AAA against 60% ± 5.
    watch = watch_of()
    at = START + timedelta(hours=2)
    found = by_account(watch.tick("AAA", D(130), at))
    assert set(found) == {"A1"}  # H1: $13,000 of $14,111 = 92.1%, inside 90% ± 5
    request = found["A1"]
    assert request.reasons == (Reason.BAND_BREACH,)
    assert request.as_of == at
    assert set(request.figures["positions"]) == {"AAA"}
    assert request.figures["positions"]["AAA"]["weight"] == pytest.approx(7800 / 11800, abs=1e-6)
    assert watch.prices["AAA"] == D(130)
    assert watch.price_times["AAA"] == at


def test_tick_when_the_same_finding_repeats_the_same_day_then_nothing_new_is_sent() -> None:
    watch = watch_of()
    first = watch.tick("AAA", D(130), START + timedelta(hours=1))
    again = watch.tick("AAA", D(130), START + timedelta(hours=3))
    moved = watch.tick("AAA", D(131), START + timedelta(hours=4))  # still the same finding
    assert [r.request_id for r in first] == ["A1/2024-03-11/band_breach"]
    assert again == []
    assert moved == []


def test_tick_when_the_next_day_comes_and_the_request_is_still_open_then_none_is_made() -> None:
    watch = watch_of()
    [first] = watch.tick("AAA", D(130), START + timedelta(hours=1))
    assert first.request_id == "A1/2024-03-11/band_breach"
    assert watch.tick("AAA", D(131), START + timedelta(days=1)) == []


def test_watch_when_the_store_holds_an_open_request_then_only_a_new_reason_asks_again() -> None:
    # A1 already has an open band-breach request (say, from yesterday's monitor run).
    watch = watch_of(requested={"A1": frozenset({Reason.BAND_BREACH})})
    assert watch.tick("AAA", D(130), START + timedelta(hours=1)) == []
    # Once that request is closed (no longer open in the store), a new monitor asks
    # again, dated the day it finds the breach.
    fresh = watch_of()
    [request] = fresh.tick("AAA", D(130), START + timedelta(days=1))
    assert request.request_id == "A1/2024-03-12/band_breach"


def test_tick_when_the_security_is_not_in_the_book_then_nothing_is_evaluated() -> None:
    watch = watch_of()
    assert watch.tick("ZZZ", D(5), START + timedelta(hours=1)) == []
    assert watch.prices["ZZZ"] == D(5)


def test_tick_when_a_holder_is_held_for_other_reasons_then_it_gets_no_request() -> None:
    watch = watch_of(other_holds=frozenset({"A1"}))
    assert watch.tick("AAA", D(130), START + timedelta(hours=1)) == []


def test_tick_when_it_moves_a_holding_outside_the_model_then_the_holder_is_re_evaluated() -> None:
    # A3 holds 2 CCC ($100) outside its model: 1% against 0, out of band at any price.
    accounts = [*ACCOUNTS, account("A3", "BAL", "1000")]
    lots = [*LOTS, *holdings("A3", "AAA 60, BBB 29, CCC 2")]
    watch = watch_of(accounts, lots)
    found = by_account(watch.tick("CCC", D(51), START + timedelta(hours=1)))
    assert set(found) == {"A3"}
    assert found["A3"].figures["outside_model"] == pytest.approx(102 / 10002, abs=1e-6)


# --- stale prices hold what they touch ---------------------------------------------------


def test_tick_when_the_other_prices_have_gone_stale_then_accounts_touching_them_are_held() -> None:
    # Ten days on, AAA ticks to $130, but BBB, CCC and BND were last priced on 11 March.
    # A1 holds BBB and A2 holds BND: held. H1 touches only AAA, whose price is fresh.
    later = START + timedelta(days=10)
    watch = watch_of()
    assert watch.held(later) == {"A1", "A2", "H1"}  # before the tick, AAA is stale too
    found = by_account(watch.tick("AAA", D(130), later))
    assert watch.held(later) == {"A1", "A2"}
    assert found == {}  # A1 is out of band, but its BBB price cannot be trusted
    assert watch.held(START + timedelta(days=1)) == frozenset()


def test_held_when_a_model_buys_a_stale_security_then_accounts_on_it_are_held_too() -> None:
    # A4 holds only cash, but BAL would buy AAA and BBB.
    watch = watch_of([*ACCOUNTS, account("A4", "BAL", "5000")])
    watch.tick("AAA", D(100), START + timedelta(days=6))
    watch.tick("BND", D(10), START + timedelta(days=6))
    assert watch.held(START + timedelta(days=6)) == {"A1", "A4"}  # BBB is stale


# --- implausible prices hold what they touch ---------------------------------------------

FRIDAY = date(2024, 3, 8)
# Each security closed on Friday 8 March where it stands now, moving 1% a day for months.
RECENT = Recent(
    security_ids=tuple(PRICES),
    previous=np.array([float(p) for p in PRICES.values()]),
    previous_day=(FRIDAY,) * len(PRICES),
    sigma=np.full(len(PRICES), 0.01),
    returns=np.full(len(PRICES), 60, dtype=np.int64),
)


def test_tick_when_the_feed_sends_an_absurd_price_then_holders_are_held_until_it_is_corrected() -> (
    None
):
    watch = watch_of(recent=RECENT)
    at = START + timedelta(hours=1)
    # AAA at 1e-8 would put A1 and H1 far out of band (and H1's lot at a huge loss): no
    # request is made, and both are held, naming the price.
    assert watch.tick("AAA", D("0.00000001"), at) == []
    assert watch.held(at) == {"A1", "H1"}
    assert watch.implausible["AAA"].startswith(
        "price 0.00000001 on 2024-03-11 is 1/1e+10 of the previous 100 of 2024-03-08"
    )
    # The corrected price, the same day: the hold is gone, and AAA at $130 — too far from
    # Friday's $100 for a security moving 1% a day — holds again.
    assert watch.tick("AAA", D(102), at + timedelta(minutes=5)) == []
    assert watch.held(at) == frozenset()
    assert watch.tick("AAA", D(130), at + timedelta(minutes=10)) == []
    assert "AAA" in watch.implausible


def test_tick_when_a_volatile_security_makes_a_big_move_then_it_is_used_as_any_other() -> None:
    # Had AAA moved 4% a day, +30% would be 6.6 of its daily volatilities: a big day, not
    # a wrong price. A1 is pushed out of band, and asked for.
    volatile = Recent(
        RECENT.security_ids, RECENT.previous, RECENT.previous_day, RECENT.sigma * 4, RECENT.returns
    )
    watch = watch_of(recent=volatile)
    found = by_account(watch.tick("AAA", D(130), START + timedelta(hours=1)))
    assert watch.implausible == {}
    assert set(found) == {"A1"}
    assert watch.held(START + timedelta(hours=1)) == frozenset()


def test_tick_when_a_wrong_price_is_left_overnight_then_the_next_day_judges_against_it() -> None:
    # Monday's wrong 1e20 is never corrected. Tuesday's right $101 is a fall of 1e18 times
    # from Monday's last price, so AAA stays held; Wednesday's $102 is an ordinary day.
    watch = watch_of(recent=RECENT)
    watch.tick("AAA", D("100000000000000000000"), START)
    assert "above the ceiling" in watch.implausible["AAA"]
    watch.tick("AAA", D(101), START + timedelta(days=1))
    assert "of 2024-03-11" in watch.implausible["AAA"]
    watch.tick("AAA", D(102), START + timedelta(days=2))
    assert watch.implausible == {}


# --- scan_all ------------------------------------------------------------------------------


def test_scan_all_when_started_then_every_account_out_of_band_gets_a_request() -> None:
    watch = watch_of(prices={**PRICES, "AAA": D(130)})
    found = by_account(watch.scan_all(START))
    assert set(found) == {"A1", "A2"}
    assert found["A2"].figures["positions"]["BND"]["weight"] == pytest.approx(1.0)
    # What scan_all sent today, a tick does not send again.
    assert watch.tick("AAA", D(130), START + timedelta(hours=1)) == []
    assert watch.scan_all(START + timedelta(hours=2)) == []


def test_scan_all_when_prices_are_stale_then_every_touching_account_is_held() -> None:
    assert watch_of().scan_all(START + timedelta(days=5)) == []


# --- harvesting ------------------------------------------------------------------------------


def test_tick_when_the_ticked_security_falls_then_its_losing_lots_are_offered() -> None:
    # AAA to $85: H1's lot cost $10,000 and is worth $8,500 — a $1,500 (15%) loss.
    # H1: $8,500 of $9,611 = 88.4% AAA, inside 90% ± 5; the harvest is the only reason.
    watch = watch_of()
    found = by_account(watch.tick("AAA", D(85), START + timedelta(hours=1)))
    assert found["H1"].reasons == (Reason.HARVEST,)
    assert found["H1"].figures["harvest"] == [
        {"lot_id": "H1-0", "security_id": "AAA", "loss": "1500.00"}
    ]
    assert "A1" not in found  # A1 does not harvest


def test_tick_when_the_loss_is_too_small_then_no_harvest() -> None:
    watch = watch_of()
    assert watch.tick("AAA", D("91"), START + timedelta(hours=1)) == []  # $900


def test_tick_when_another_security_ticks_then_the_losing_lot_is_not_offered() -> None:
    watch = watch_of(prices={**PRICES, "AAA": D(85)})
    found = by_account(watch.tick("BBB", D(100), START + timedelta(hours=1)))
    assert "H1" not in found  # H1 holds no BBB: not re-evaluated on a BBB tick


def test_tick_when_the_household_bought_the_security_in_its_ira_then_no_harvest() -> None:
    ira = Account("H1-IRA", "SMITH", Registration.ROTH_IRA, model_id="AONLY", cash=D(1000))
    bought = [Purchase("H1-IRA", "AAA", date(2024, 3, 1))]  # 10 days before
    watch = watch_of([*ACCOUNTS, ira], purchases=bought)
    found = by_account(watch.tick("AAA", D(85), START + timedelta(hours=1)))
    assert "H1" not in found


def test_tick_when_the_ira_acquired_a_lot_in_the_window_then_no_harvest() -> None:
    ira = Account("H1-IRA", "SMITH", Registration.ROTH_IRA, model_id="AONLY", cash=D(1000))
    reinvested = TaxLot("IRA-0", "H1-IRA", "AAA", D(1), D(95), date(2024, 3, 4))
    accounts, lots = [*ACCOUNTS, ira], [*LOTS, reinvested]
    full = harvest_opportunities(
        accounts=accounts,
        lots=lots,
        prices={**PRICES, "AAA": D(85)},
        securities=SECURITIES,
        purchases=[],
        today=START.date(),
        min_loss=SETTINGS.min_loss,
        min_loss_fraction=SETTINGS.min_loss_fraction,
    )
    assert full == []  # the full evaluation calls it a wash sale
    watch = watch_of(accounts, lots)
    found = by_account(watch.tick("AAA", D(85), START + timedelta(hours=1)))
    assert "H1" not in found


# --- a tick agrees with a full scan at the same prices (property) ---------------------


def random_firm(rng: random.Random) -> tuple[list[Account], list[TaxLot]]:
    """30 accounts on three models, each a random way off its targets."""
    targets = {
        "BAL": {"AAA": 0.6, "BBB": 0.3},
        "BONDS": {"BND": 0.9},
        "GLOBAL": {"AAA": 0.3, "CCC": 0.3, "BND": 0.3},
    }
    accounts, lots = [], []
    for n in range(30):
        aid = f"ACC{n:02d}"
        model_id = rng.choice(sorted(targets))
        value = rng.choice([10_000, 50_000, 250_000])
        accounts.append(account(aid, model_id, str(round(value * rng.uniform(0.02, 0.15)))))
        parts = []
        for security, weight in targets[model_id].items():
            shares = round(value * weight * rng.uniform(0.8, 1.2) / float(PRICES[security]))
            if shares and rng.random() > 0.05:
                parts.append(f"{security} {shares}")
        if rng.random() < 0.2:  # something outside the model
            parts.append(f"{rng.choice(['BBB', 'CCC'])} {rng.randint(0, 3)}")
        if parts:
            lots.extend(holdings(aid, ", ".join(parts)))
    return accounts, lots


GLOBAL = model("GLOBAL", "security AAA 0.3\nsecurity CCC 0.3\nsecurity BND 0.3\ncash 0.1")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tick_when_prices_wander_then_requests_agree_with_a_full_scan(seed: int) -> None:
    rng = random.Random(seed)
    accounts, lots = random_firm(rng)
    held = frozenset({"ACC07", "ACC13"})
    watch = watch_of(accounts, lots, [BAL, BONDS, GLOBAL], other_holds=held)
    holders = {
        s: {lot.account_id for lot in lots if lot.security_id == s and lot.quantity} for s in PRICES
    }
    at = START
    requested: set[str] = set()  # accounts with an open band-breach request
    for _ in range(50):
        at += timedelta(hours=1, minutes=30)  # 50 ticks over three days: nothing goes stale
        security = rng.choice(sorted(PRICES))
        move = D(str(round(rng.lognormvariate(0, 0.06), 4)))
        price = max(D("0.01"), (watch.prices[security] * move).quantize(D("0.01")))
        found = watch.tick(security, price, at)

        full = scan(watch.book, watch.vector)
        outside = out_of_band(watch)
        breached = {str(r.account_id) for r in found if Reason.BAND_BREACH in r.reasons}
        assert {str(r.account_id) for r in found} <= holders[security]
        assert breached <= outside
        assert not {str(r.account_id) for r in found} & held
        # The same figures a full scan gives, for every account the tick reported.
        expected = by_account(
            requests_from_scan(
                full,
                household_of={a.account_id: a.household_id for a in accounts},
                held=held,
                harvest={},
                as_of=at,
            )
        )
        for request in found:
            twin = expected[str(request.account_id)]
            assert twin.reasons == request.reasons
            assert set(twin.figures["positions"]) == set(request.figures["positions"])
        # Every holder out of band and not held has an open request saying so.
        requested |= breached
        assert (holders[security] & outside) - held <= requested


def test_watch_when_a_block_is_cut_to_rows_then_its_drift_matches_the_full_blocks() -> None:
    # The cut a tick scans: rows_of then scan_block equals the same rows of a full scan.
    accounts, lots = random_firm(random.Random(7))
    watch = watch_of(accounts, lots, [BAL, BONDS, GLOBAL])
    for block, drift in zip(watch.book.blocks, scan(watch.book, watch.vector), strict=True):
        rows = np.arange(block.size)[::2]
        cut = scan_block(rows_of(block, rows), watch.vector)
        np.testing.assert_allclose(cut.weight, drift.weight[rows], rtol=0, atol=1e-15)
        assert (cut.out_of_band == drift.out_of_band[rows]).all()
        assert cut.block.account_ids == block.account_ids[::2]
