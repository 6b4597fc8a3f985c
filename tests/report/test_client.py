"""A client's household, worked by hand: its value day by day rebuilt from today's
books with later transactions undone, its allocation against its models, and the gains
its sales realised this year, short and long."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from poise.domain.accounts import Account, Household, Registration
from poise.domain.lots import TaxLot
from poise.domain.models import Model, ModelTarget, TargetKind
from poise.domain.money import D, cents
from poise.domain.relief import Term
from poise.domain.transactions import LotRelieved, Transaction, TxnKind
from poise.report.client import (
    EFFECTS,
    against_target,
    chart_days,
    realised_gains,
    shares_of,
    value_over_time,
)

ACCOUNT = "10000001"


def txn(n: int, kind: TxnKind, day: str, amount: str = "0", *, security: str | None = None,
        quantity: str = "0", lots: tuple[LotRelieved, ...] = (), account: str = ACCOUNT,
        ) -> Transaction:  # fmt: skip
    when = date.fromisoformat(day)
    return Transaction(
        txn_id=f"T{n}", account_id=account, kind=kind, trade_date=when, settle_date=when,
        amount=D(amount), security_id=security, quantity=D(quantity), lots=lots,
    )  # fmt: skip


def d(text: str) -> date:
    return date.fromisoformat(text)


# ── value over time ──────────────────────────────────────────────────────────

# The closes the household is valued at (XYZ has none on 4 March):
#
#   day         ABC      XYZ
#   2022-03-01  100.00   20.00
#   2022-03-02  101.00   20.50
#   2022-03-03  102.13   21.00
#   2022-03-04  104.07   —
#   2022-03-07  106.00   22.00
#   2022-03-08   53.25   22.00    ABC splits 2 for 1
#   2022-03-09   54.11   22.25
CLOSES = {
    d("2022-03-01"): {"ABC": D("100.00"), "XYZ": D("20.00")},
    d("2022-03-02"): {"ABC": D("101.00"), "XYZ": D("20.50")},
    d("2022-03-03"): {"ABC": D("102.13"), "XYZ": D("21.00")},
    d("2022-03-04"): {"ABC": D("104.07")},
    d("2022-03-07"): {"ABC": D("106.00"), "XYZ": D("22.00")},
    d("2022-03-08"): {"ABC": D("53.25"), "XYZ": D("22.00")},
    d("2022-03-09"): {"ABC": D("54.11"), "XYZ": D("22.25")},
}

# What happened, and the household at the end of each day, worked forward from
# 500.00 cash and 10 XYZ on 1 March:
#
#   03-01  —                     cash    500.00 + XYZ 10 × 20.00 = 200.00     =    700.00
#   03-02  deposit 10,000.00     cash 10,500.00 + XYZ 205.00                  = 10,705.00
#   03-03  buy 50 ABC, 5,106.50  cash  5,393.50 + ABC 50 × 102.13 = 5,106.50
#                                               + XYZ 210.00                  = 10,710.00
#   03-04  dividend 25.50        cash  5,419.00 + ABC 50 × 104.07 = 5,203.50
#                                               + XYZ 10 × 21.00 (carried)   = 10,832.50
#   03-07  sell 20 ABC, 2,118.05 cash  7,537.05 + ABC 30 × 106.00 = 3,180.00
#                                               + XYZ 220.00                  = 10,937.05
#   03-08  split: 30 ABC added   cash  7,537.05 + ABC 60 × 53.25 = 3,195.00
#                                               + XYZ 220.00                  = 10,952.05
#   03-09  withdrawal 1,000.00   cash  6,537.05 + ABC 60 × 54.11 = 3,246.60
#                                               + XYZ 222.50                  = 10,006.15
HISTORY = [
    txn(1, TxnKind.DEPOSIT, "2022-03-02", "10000.00"),
    txn(2, TxnKind.BUY, "2022-03-03", "5106.50", security="ABC", quantity="50"),
    txn(3, TxnKind.DIVIDEND, "2022-03-04", "25.50", security="ABC"),
    txn(
        4,
        TxnKind.SELL,
        "2022-03-07",
        "2118.05",
        security="ABC",
        quantity="20",
        lots=(LotRelieved("L1", D("20")),),
    ),
    txn(5, TxnKind.SPLIT, "2022-03-08", security="ABC", quantity="30"),
    txn(6, TxnKind.WITHDRAWAL, "2022-03-09", "1000.00"),
]
TODAY_HELD = {"ABC": D("60"), "XYZ": D("10")}
TODAY_CASH = D("6537.05")


def history() -> list[tuple[date, Decimal, Decimal, tuple[str, ...]]]:
    found = value_over_time(
        held=TODAY_HELD, cash=TODAY_CASH, transactions=HISTORY, closes=CLOSES, days=list(CLOSES)
    )
    return [(p.day, cents(p.value), cents(p.added), p.carried) for p in found.points]


def test_value_over_time_when_each_kind_happens_then_each_day_is_as_worked_by_hand() -> None:
    assert history() == [
        (d("2022-03-01"), D("700.00"), D("0.00"), ()),
        (d("2022-03-02"), D("10705.00"), D("10000.00"), ()),  # a deposit: money added
        (d("2022-03-03"), D("10710.00"), D("0.00"), ()),  # a buy moves cash into shares
        (d("2022-03-04"), D("10832.50"), D("0.00"), ("XYZ",)),  # a dividend; XYZ's close carried
        (d("2022-03-07"), D("10937.05"), D("0.00"), ()),  # a sale moves shares into cash
        (
            d("2022-03-08"),
            D("10952.05"),
            D("0.00"),
            (),
        ),  # a split: twice the shares, half the price
        (d("2022-03-09"), D("10006.15"), D("-1000.00"), ()),  # a withdrawal: money taken out
    ]


def test_value_over_time_when_money_was_added_then_it_is_not_counted_as_earned() -> None:
    found = value_over_time(
        held=TODAY_HELD, cash=TODAY_CASH, transactions=HISTORY, closes=CLOSES, days=list(CLOSES)
    )
    assert found.change == D("9306.15")  # 10,006.15 − 700.00
    assert found.added == D("9000.00")  # 10,000.00 in, 1,000.00 out
    # XYZ 10 × 2.25 = 22.50; ABC 3,246.60 + 2,118.05 − 5,106.50 = 258.15; dividend 25.50
    assert found.earned == D("306.15")
    assert found.carried_days == 1


def test_value_over_time_when_points_are_days_apart_then_money_added_between_is_kept() -> None:
    days = [d("2022-03-01"), d("2022-03-04"), d("2022-03-09")]
    found = value_over_time(
        held=TODAY_HELD, cash=TODAY_CASH, transactions=HISTORY, closes=CLOSES, days=days
    )
    assert [(cents(p.value), cents(p.added)) for p in found.points] == [
        (D("700.00"), D("0.00")),
        (D("10832.50"), D("10000.00")),  # the deposit of 2 March, between the points
        (D("10006.15"), D("-1000.00")),
    ]


def test_value_over_time_when_a_trade_is_after_the_last_close_then_it_is_undone() -> None:
    """The books hold a buy of 5 XYZ for 112.00 made on 10 March; the last close is of
    the 9th: the 9th is shown as it stood, without those shares and with the cash."""
    later = txn(7, TxnKind.BUY, "2022-03-10", "112.00", security="XYZ", quantity="5")
    found = value_over_time(
        held={"ABC": D("60"), "XYZ": D("15")}, cash=TODAY_CASH - D("112.00"),
        transactions=[*HISTORY, later], closes=CLOSES, days=list(CLOSES),
    )  # fmt: skip
    assert cents(found.points[-1].value) == D("10006.15")
    assert cents(found.points[0].value) == D("700.00")


def test_value_over_time_when_shares_are_transferred_in_then_they_are_money_added() -> None:
    """20 XYZ transferred in on 7 March, at that day's close of 22.00: 440.00 added."""
    moved = txn(8, TxnKind.TRANSFER_IN, "2022-03-07", security="XYZ", quantity="20")
    days = [d("2022-03-04"), d("2022-03-07")]
    found = value_over_time(
        held={"XYZ": D("30")}, cash=D("0"), transactions=[moved], closes=CLOSES, days=days
    )
    assert [(cents(p.value), cents(p.added)) for p in found.points] == [
        (D("210.00"), D("0.00")),  # 10 XYZ at 21.00, carried
        (D("660.00"), D("440.00")),  # 30 XYZ at 22.00
    ]
    assert found.earned == D("10.00")  # the 10 XYZ held went from 21.00 to 22.00


def test_value_over_time_when_a_security_has_no_close_yet_then_it_is_valued_at_nothing() -> None:
    closes = {d("2022-03-01"): {"ABC": D("100.00")}, d("2022-03-02"): {"NEW": D("10.00")}}
    found = value_over_time(
        held={"NEW": D("3")}, cash=D("5.00"), transactions=[], closes=closes,
        days=[d("2022-03-01"), d("2022-03-02")],
    )  # fmt: skip
    assert [(cents(p.value), p.unpriced) for p in found.points] == [
        (D("5.00"), ("NEW",)),
        (D("35.00"), ()),
    ]


def test_chart_days_when_a_year_is_asked_then_every_day_with_a_close_and_the_last() -> None:
    priced = [d("2022-03-01"), d("2022-03-02"), d("2022-03-04"), d("2022-03-07")]
    assert chart_days(priced, since=d("2022-03-02"), until=d("2022-03-08")) == [
        d("2022-03-02"), d("2022-03-04"), d("2022-03-07"), d("2022-03-08"),
    ]  # fmt: skip


# ── allocation against target ────────────────────────────────────────────────

EQ = Model("EQ", "Equity", (ModelTarget(TargetKind.SECURITY, "STK", D("1")),))
FI = Model("FI", "Bonds", (ModelTarget(TargetKind.SECURITY, "BND", D("0.9")),
                           ModelTarget(TargetKind.CASH, "", D("0.1"))))  # fmt: skip
MIX = Model("MIX", "60/40", (ModelTarget(TargetKind.MODEL, "EQ", D("0.6")),
                             ModelTarget(TargetKind.MODEL, "FI", D("0.4"))))  # fmt: skip
MODELS = {m.model_id: m for m in (EQ, FI, MIX)}
CLASSES = {"STK": "us_equity", "BND": "fixed_income"}
PRICES = {"STK": D("100.00"), "BND": D("10.00")}


def account(account_id: str, model_id: str | None, cash: str,
            registration: Registration = Registration.TAXABLE) -> Account:  # fmt: skip
    return Account(account_id, "H1", registration, model_id=model_id, cash=D(cash))


def lot(lot_id: str, account_id: str, security_id: str, quantity: str, basis: str, *,
        acquired: str = "2020-01-02") -> TaxLot:  # fmt: skip
    return TaxLot(lot_id, account_id, security_id, D(quantity), D(basis), d(acquired))


def test_against_target_when_accounts_have_their_own_models_then_weighted_by_value() -> None:
    """A: 300 STK (30,000.00), held to EQ; B: 900 BND (9,000.00) and 1,000.00 cash,
    held to FI; C has no model. The target: 30,000 of 40,000 at EQ, 10,000 at FI."""
    accounts = [account("A", "EQ", "0"), account("B", "FI", "1000.00"), account("C", None, "500")]
    lots = [lot("L1", "A", "STK", "300", "20000"), lot("L2", "B", "BND", "900", "9500")]
    found = against_target(
        household=Household("H1", "The Garcias"), accounts=accounts, lots=lots,
        prices=PRICES, models=MODELS, asset_class=CLASSES,
    )  # fmt: skip
    rows = [(r.asset_class, r.target, r.actual, r.difference) for r in found.rows]
    assert rows == [
        ("us_equity", D("0.75"), D("0.75"), D("0")),  # 30,000 × 1 / 40,000
        ("fixed_income", D("0.225"), D("0.225"), D("0")),  # 10,000 × 0.9 / 40,000
        ("cash", D("0.025"), D("0.025"), D("0")),  # 10,000 × 0.1 / 40,000
    ]
    assert found.models == ("EQ", "FI")
    assert found.unmodelled == ("C",)  # its 500.00 is on neither side


def test_against_target_when_the_household_has_a_model_then_every_account_is_held_to_it() -> None:
    """The household holds MIX (60% EQ, 40% FI: 60% STK, 36% BND, 4% cash) over A and
    B whatever their own models: 300 STK, 900 BND and 1,000.00 cash are 75/22.5/2.5."""
    accounts = [account("A", "EQ", "0"), account("B", None, "1000.00")]
    lots = [lot("L1", "A", "STK", "300", "20000"), lot("L2", "B", "BND", "900", "9500")]
    found = against_target(
        household=Household("H1", "The Garcias", model_id="MIX"), accounts=accounts,
        lots=lots, prices=PRICES, models=MODELS, asset_class=CLASSES,
    )  # fmt: skip
    assert [(r.asset_class, r.target, r.difference) for r in found.rows] == [
        ("us_equity", D("0.60"), D("0.15")),
        ("fixed_income", D("0.36"), D("-0.135")),
        ("cash", D("0.04"), D("-0.015")),
    ]
    assert found.models == ("MIX",)
    assert found.unmodelled == ()


# ── realised gains ───────────────────────────────────────────────────────────

# The books: lot L1 of 100 VTI bought 2021-03-01 for 15,000.00 (150.00 a share), lot
# L2 of 50 VTI bought 2022-01-04 for 8,750.50 (175.01 a share).
BOOKS = [
    lot("L1", ACCOUNT, "VTI", "100", "15000.00", acquired="2021-03-01"),
    lot("L2", ACCOUNT, "VTI", "50", "8750.50", acquired="2022-01-04"),
]


def sale(n: int, day: str, amount: str, relieved: dict[str, str], account_id: str = ACCOUNT,
         ) -> Transaction:  # fmt: skip
    lots = tuple(LotRelieved(k, D(v)) for k, v in relieved.items())
    quantity = str(sum((D(v) for v in relieved.values()), D("0")))
    return txn(
        n,
        TxnKind.SELL,
        day,
        amount,
        security="VTI",
        quantity=quantity,
        lots=lots,
        account=account_id,
    )


def test_realised_gains_when_a_sale_relieves_a_long_and_a_short_lot_then_split_by_shares() -> None:
    """30 VTI sold 2022-11-14 for 4,470.12: 10 of L1 (held since 2021-03-01: long),
    20 of L2 (since 2022-01-04: short). The proceeds shared by shares: 1,490.04 and
    2,980.08; basis 1,500.00 and 3,500.20; gains -9.96 long, -520.12 short."""
    found = realised_gains(
        sales=[sale(1, "2022-11-14", "4470.12", {"L1": "10", "L2": "20"})], lots=BOOKS,
        accounts=[account(ACCOUNT, None, "0")], since=d("2022-01-01"), until=d("2022-12-28"),
    )  # fmt: skip
    (row,) = found.sales
    assert row.gain == D("-530.08")  # 4,470.12 − 5,000.20
    assert (cents(row.short), cents(row.long)) == (D("-520.12"), D("-9.96"))
    assert row.short + row.long == row.gain
    assert row.terms == {Term.SHORT, Term.LONG}
    assert row.term == "short and long"
    assert (cents(found.short), cents(found.long), found.unknown) == (D("-520.12"), D("-9.96"), 0)


def test_realised_gains_when_the_basis_is_not_held_then_listed_and_left_out_of_the_totals() -> None:
    found = realised_gains(
        sales=[
            sale(1, "2022-05-02", "1700.00", {"L1": "10"}),  # long: 1,700.00 − 1,500.00
            sale(2, "2022-06-01", "900.00", {"L9": "5"}),  # a lot the books no longer hold
        ],
        lots=BOOKS, accounts=[account(ACCOUNT, None, "0")],
        since=d("2022-01-01"), until=d("2022-12-28"),
    )  # fmt: skip
    assert [(r.day, r.gain, r.term) for r in found.sales] == [
        (d("2022-06-01"), None, ""),  # newest first
        (d("2022-05-02"), D("200.00"), "long"),
    ]
    assert (found.short, found.long, found.unknown) == (D("0"), D("200.00"), 1)


def test_realised_gains_when_a_retirement_account_sells_then_listed_but_not_totalled() -> None:
    ira = "20000002"
    books = [*BOOKS, lot("L7", ira, "VTI", "40", "4000.00", acquired="2022-02-01")]
    found = realised_gains(
        sales=[
            sale(1, "2022-07-01", "1900.00", {"L2": "10"}),  # short: 1,900.00 − 1,750.10
            sale(2, "2022-07-05", "1200.00", {"L7": "10"}, account_id=ira),  # 200.00, untaxed
            sale(3, "2021-12-30", "1800.00", {"L1": "10"}),  # last year: not this year's
        ],
        lots=books, since=d("2022-01-01"), until=d("2022-12-28"),
        accounts=[account(ACCOUNT, None, "0"),
                  account(ira, None, "0", Registration.TRADITIONAL_IRA)],
    )  # fmt: skip
    assert [(r.account_id, r.taxable, r.gain, r.term) for r in found.sales] == [
        (ira, False, D("200.00"), "short"),
        (ACCOUNT, True, D("149.90"), "short"),
    ]
    assert (found.short, found.long) == (D("149.90"), D("0"))


def test_shares_of_when_lots_of_one_security_then_added() -> None:
    assert shares_of(BOOKS) == {"VTI": D("150")}


@pytest.mark.parametrize("kind", list(TxnKind))
def test_every_kind_has_an_effect(kind: TxnKind) -> None:
    assert kind in EFFECTS
