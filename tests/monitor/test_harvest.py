"""Loss-harvest opportunities, worked out by hand in Decimal.

Today is Friday 28 June 2024; the thresholds are a $1,000 loss and 10% of basis.
The Smiths (household SMITH) have a taxable brokerage account that harvests and an
IRA; the Joneses (household JONES) have a taxable account of their own. VOO and IVV
are both S&P 500 funds: substantially identical (one identity group). VXUS is not.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from poise.domain.accounts import Account, Registration
from poise.domain.lots import TaxLot
from poise.domain.relief import Term
from poise.domain.securities import Security, SecurityKind
from poise.monitor.harvest import Opportunity, Purchase, harvest_opportunities

D = Decimal
TODAY = date(2024, 6, 28)
LONG_AGO = date(2022, 3, 1)
MIN_LOSS, MIN_FRACTION = D(1000), D("0.10")


def etf(security_id: str, group: str = "") -> Security:
    return Security(
        security_id, security_id, security_id, SecurityKind.ETF, "us_equity", identity_group=group
    )


SECURITIES = {s.security_id: s for s in (etf("VOO", "SP500"), etf("IVV", "SP500"), etf("VXUS"))}
BROKERAGE = Account("SMITH-TX", "SMITH", Registration.TAXABLE, harvest=True)
IRA = Account("SMITH-IRA", "SMITH", Registration.TRADITIONAL_IRA)
JONES = Account("JONES-TX", "JONES", Registration.JOINT, harvest=True)
ACCOUNTS = [BROKERAGE, IRA, JONES]


def lot(
    lot_id: str,
    security: str,
    quantity: str,
    basis: str,
    acquired: date = LONG_AGO,
    *,
    account: Account = BROKERAGE,
) -> TaxLot:
    return TaxLot(lot_id, account.account_id, security, D(quantity), D(basis), acquired)


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def harvest(
    lots: list[TaxLot],
    *,
    prices: dict[str, str] | None = None,
    purchases: list[Purchase] | None = None,
    accounts: list[Account] = ACCOUNTS,
    today: date = TODAY,
) -> list[Opportunity]:
    return harvest_opportunities(
        accounts=accounts,
        lots=lots,
        prices={s: D(p) for s, p in (prices or {"VOO": "85", "IVV": "85", "VXUS": "50"}).items()},
        securities=SECURITIES,
        purchases=purchases or [],
        today=today,
        min_loss=MIN_LOSS,
        min_loss_fraction=MIN_FRACTION,
    )


# 100 VOO bought for $10,000, now $85 a share: worth $8,500, a $1,500 (15%) loss.
VOO_AT_A_LOSS = lot("L1", "VOO", "100", "10000")


def test_harvest_when_a_lot_has_lost_1500_dollars_and_15_percent_then_it_is_offered() -> None:
    [found] = harvest([VOO_AT_A_LOSS])
    assert found == Opportunity("SMITH-TX", "L1", "VOO", D(100), D(10000), D("8500.00"), Term.LONG)
    assert found.loss == D("1500.00")
    assert found.loss_fraction == D("0.15")


@pytest.mark.parametrize(
    ("quantity", "basis", "price", "offered"),
    [
        ("100", "10000", "85", True),  # $1,500, 15%
        ("100", "10000", "91", False),  # $900, 9%: too small in dollars
        ("200", "20000", "92", False),  # $1,600 but 8%: too small a fraction
        ("100", "10000", "90", True),  # $1,000 and 10% exactly: on both thresholds
        ("100", "10000", "90.01", False),  # $999: a dollar short
        ("100", "10000", "110", False),  # a $1,000 gain
    ],
)
def test_harvest_when_the_loss_is_measured_then_both_the_dollar_and_fraction_floors_apply(
    quantity: str, basis: str, price: str, offered: bool
) -> None:
    found = harvest([lot("L1", "VOO", quantity, basis)], prices={"VOO": price})
    assert bool(found) is offered


def test_harvest_when_the_value_has_fractions_of_a_cent_then_it_is_rounded_to_the_cent() -> None:
    # 3 shares at $33.3333 are worth $99.9999, which is $100.00 to the cent.
    [found] = harvest([lot("L1", "VOO", "3", "1200")], prices={"VOO": "33.3333"})
    assert found.value == D("100.00")
    assert found.loss == D("1100.00")


def test_harvest_when_the_account_is_not_taxable_or_does_not_harvest_then_never() -> None:
    not_harvesting = Account("SMITH-TX2", "SMITH", Registration.TAXABLE, harvest=False)
    lots = [
        lot("IRA-1", "VOO", "100", "10000", account=IRA),
        lot("OFF-1", "VOO", "100", "10000", account=not_harvesting),
    ]
    assert harvest(lots, accounts=[*ACCOUNTS, not_harvesting]) == []


@pytest.mark.parametrize(("days", "blocked"), [(0, True), (1, True), (30, True), (31, False)])
def test_harvest_when_the_ira_bought_the_same_security_recently_then_a_wash_sale_blocks_it(
    days: int, blocked: bool
) -> None:
    # IRS Publication 550: a purchase in the household's IRA within 30 days is a wash sale.
    bought = [Purchase("SMITH-IRA", "VOO", days_ago(days))]
    assert (harvest([VOO_AT_A_LOSS], purchases=bought) == []) is blocked


def test_harvest_when_the_household_bought_a_substantially_identical_fund_then_blocked() -> None:
    # IVV shares VOO's identity group; VXUS does not.
    ivv = [Purchase("SMITH-IRA", "IVV", days_ago(12))]
    vxus = [Purchase("SMITH-IRA", "VXUS", days_ago(12))]
    assert harvest([VOO_AT_A_LOSS], purchases=ivv) == []
    assert [o.lot_id for o in harvest([VOO_AT_A_LOSS], purchases=vxus)] == ["L1"]


def test_harvest_when_another_household_bought_the_same_security_then_not_blocked() -> None:
    bought = [Purchase("JONES-TX", "VOO", days_ago(3))]
    assert [o.lot_id for o in harvest([VOO_AT_A_LOSS], purchases=bought)] == ["L1"]


def test_harvest_when_an_unknown_account_bought_it_then_the_purchase_is_ignored() -> None:
    bought = [Purchase("STRANGER", "VOO", days_ago(3))]
    assert [o.lot_id for o in harvest([VOO_AT_A_LOSS], purchases=bought)] == ["L1"]


def test_harvest_when_the_lot_itself_was_bought_in_the_window_then_it_does_not_block_itself() -> (
    None
):
    # Bought 10 days ago for $10,000, down 15% since. Its own buy is on record twice
    # over: as the lot acquired in the window, and as a buy with no lot named.
    recent = lot("L1", "VOO", "100", "10000", acquired=days_ago(10))
    own_buy = Purchase("SMITH-TX", "VOO", days_ago(10))
    assert [o.lot_id for o in harvest([recent])] == ["L1"]
    assert [o.lot_id for o in harvest([recent], purchases=[own_buy])] == ["L1"]
    named = Purchase("SMITH-TX", "VOO", days_ago(10), lot_id="L1")
    assert [o.lot_id for o in harvest([recent], purchases=[named])] == ["L1"]


def test_harvest_when_a_second_lot_was_bought_in_the_window_then_it_blocks_the_first() -> None:
    # L2: 10 VOO bought 5 days ago for $900, now $850 — too small to harvest itself,
    # but it is a purchase inside the window, so selling L1 would be a wash sale.
    second = lot("L2", "VOO", "10", "900", acquired=days_ago(5))
    assert harvest([VOO_AT_A_LOSS, second]) == []
    # The same buy recorded only as a purchase (the lot file not yet updated) blocks too.
    assert harvest([VOO_AT_A_LOSS], purchases=[Purchase("SMITH-TX", "VOO", days_ago(5))]) == []


def test_harvest_when_the_ira_holds_a_lot_acquired_in_the_window_then_it_blocks() -> None:
    # A dividend reinvested in the IRA 7 days ago: no buy on record, but a new lot.
    reinvested = lot("IRA-7", "IVV", "1", "85", acquired=days_ago(7), account=IRA)
    assert harvest([VOO_AT_A_LOSS, reinvested]) == []
    older = lot("IRA-7", "IVV", "1", "85", acquired=days_ago(31), account=IRA)
    assert [o.lot_id for o in harvest([VOO_AT_A_LOSS, older])] == ["L1"]


def test_harvest_when_two_losing_lots_were_bought_in_the_window_then_each_blocks_the_other() -> (
    None
):
    first = lot("L1", "VOO", "100", "10000", acquired=days_ago(20))
    second = lot("L2", "VOO", "100", "10000", acquired=days_ago(15))
    assert harvest([first, second]) == []


@pytest.mark.parametrize(
    ("acquired", "holding_start", "term"),
    [
        (date(2023, 6, 28), None, Term.SHORT),  # a year to the day: not more than a year
        (date(2023, 6, 27), None, Term.LONG),  # a year and a day
        (date(2024, 1, 2), date(2023, 5, 1), Term.LONG),  # a wash sale carried the period over
    ],
)
def test_harvest_when_the_lot_is_offered_then_its_term_follows_the_holding_period(
    acquired: date, holding_start: date | None, term: Term
) -> None:
    held = TaxLot("L1", "SMITH-TX", "VOO", D(100), D(10000), acquired, holding_start=holding_start)
    [found] = harvest([held])
    assert found.term is term


def test_harvest_when_the_wash_sale_adjusted_the_basis_then_the_adjusted_basis_counts() -> None:
    # Cost $9,200 plus a $800 disallowed loss: basis $10,000, so the loss is $1,500.
    adjusted = TaxLot(
        "L1", "SMITH-TX", "VOO", D(100), D(9200), LONG_AGO, adjusted_basis=D(10000),
        disallowed_loss=D(800),
    )  # fmt: skip
    [found] = harvest([adjusted])
    assert found.basis == D(10000)
    assert found.loss == D("1500.00")


def test_harvest_when_several_lots_lose_then_the_largest_loss_comes_first() -> None:
    lots = [
        lot("SMALL", "VOO", "100", "10000"),  # $1,500
        lot("BIG", "VOO", "200", "22000"),  # $22,000 − $17,000 = $5,000
        lot("MID", "VXUS", "100", "8000"),  # $8,000 − $5,000 = $3,000
        lot("JONES", "VOO", "150", "15000", account=JONES),  # $15,000 − $12,750 = $2,250
    ]
    found = harvest(lots)
    assert [(o.lot_id, o.loss) for o in found] == [
        ("BIG", D("5000.00")),
        ("MID", D("3000.00")),
        ("JONES", D("2250.00")),
        ("SMALL", D("1500.00")),
    ]


def test_harvest_when_a_lot_has_no_price_or_no_shares_then_it_is_skipped() -> None:
    lots = [lot("L1", "VOO", "100", "10000"), lot("EMPTY", "VXUS", "0", "5000")]
    assert harvest(lots, prices={"VXUS": "50"}) == []
