"""The client page's figures, read from a store: the small firm of ``tests.firm_files``
with closes on 1 November and a quarter of its households' transactions, worked by hand.

The Garcias (H1) hold, on 28 December: 150 AAPL at 126.04 and 20.125 SPYA at 381.20
with 2,500.00 cash in their taxable account 10000001 (model CORE), 30 MSFT at 234.53
with 150.25 cash in their Roth 10000002 (model EQ) — 36,263.80 in all. The Okafors
(H2) sold 100 BOND in their IRA; none of it is the Garcias'.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from tests.firm_files import write_firm

from poise.domain.money import D, cents
from poise.web.client import client_view
from poise.workflow.ingest import ingest_paths

CLOSES = """\
security_id,as_of,price,source
MSFT,2021-06-30,270.00,close
AAPL,2022-11-01,150.00,close
SPYA,2022-11-01,380.00,close
BOND,2022-11-01,9.50,close
"""

TRANSACTIONS = """\
account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots,description
10000001,T1001,deposit,2022-10-03,2022-10-03,,,5000.00,,"ACH deposit, checking"
10000001,T1002,dividend,2022-11-10,2022-11-10,AAPL,,31.20,,AAPL quarterly dividend
10000001,T1003,sell,2022-11-14,2022-11-16,AAPL,30,4470.12,L1:10;L2:20,Rebalance
10000001,T1004,buy,2022-11-15,2022-11-17,SPYA,20.125,7000.00,,Rebalance
10000002,T2001,fee,2022-12-01,2022-12-01,,,25.00,,Advisory fee Q4
10000002,T2002,deposit,2022-12-05,2022-12-05,,,100.00,,Roth contribution
10000003,T3001,sell,2022-11-20,2022-11-22,BOND,100,950.00,L5:100,Rebalance
10000003,T3002,fee,2022-12-01,2022-12-01,,,12.50,,Advisory fee Q4
"""


def firm(engine: sa.Engine, folder: Path) -> None:
    paths = write_firm(folder)
    (folder / "closes.csv").write_text(CLOSES)
    (folder / "transactions.csv").write_text(TRANSACTIONS)
    reports = ingest_paths(
        engine, [*paths, folder / "closes.csv", folder / "transactions.csv"],
        today=date(2022, 12, 28),
    )  # fmt: skip
    assert not any(r.refused or r.failed or r.quarantined for r in reports), reports


def test_client_view_when_the_year_had_trades_then_value_is_rebuilt_day_by_day(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """1 November, undoing what came after — the Roth's deposit (−100.00) and fee
    (+25.00), the buy of SPYA (+7,000.00 cash, no SPYA), the sale of 30 AAPL
    (−4,470.12 cash, 180 AAPL) and the dividend (−31.20): 180 AAPL at 150.00 is
    27,000.00, 30 MSFT at 270.00 (its close of 30 June 2021, carried) 8,100.00, cash
    4,998.68 and 75.25 — 40,173.93."""
    firm(engine, tmp_path)
    view = client_view(engine, "H1")
    assert view.as_of == date(2022, 12, 28)
    points = [(p.day, cents(p.value), cents(p.added), p.carried) for p in view.history.points]
    assert points == [
        (date(2022, 11, 1), D("40173.93"), D("0.00"), ("MSFT",)),
        (date(2022, 12, 28), D("36263.80"), D("100.00"), ()),
    ]
    assert view.history.points[-1].value == view.household.value  # today's, as the page has it
    assert cents(view.history.earned) == D("-4010.13")  # −3,910.13, less the 100.00 added
    assert [(p.day, p.added) for p in view.flows] == [(date(2022, 12, 28), D("100.00"))]
    assert view.carried == [("MSFT", 1)]
    assert view.unpriced == []


def test_client_view_when_accounts_hold_different_models_then_the_target_weighs_them(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """10000001 (29,077.65) is held to CORE — 60% equity, 38% bonds, 2% cash — and
    10000002 (7,186.15) to EQ, all equity: the target is their mix by value."""
    firm(engine, tmp_path)
    view = client_view(engine, "H1")
    total = D("36263.80")

    def six(x: Decimal) -> Decimal:
        return x.quantize(D("0.000001"))

    rows = [(r.asset_class, six(r.target), six(r.actual)) for r in view.targets.rows]
    assert rows == [
        ("us_equity", six((D("29077.65") * D("0.6") + D("7186.15")) / total),
         six((D("18906.00") + D("7671.65") + D("7035.90")) / total)),
        ("fixed_income", six(D("29077.65") * D("0.38") / total), six(D("0"))),
        ("cash", six(D("29077.65") * D("0.02") / total), six(D("2650.25") / total)),
    ]  # fmt: skip
    assert view.targets.models == ("CORE", "EQ")
    assert view.targets.unmodelled == ()


def test_client_view_when_a_sale_relieved_long_and_short_lots_then_both_terms_totalled(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """30 AAPL sold for 4,470.12: 10 of L1 (bought 2019, 150.00 a share: long) and 20
    of L2 (bought January 2022, 175.01 a share: short)."""
    firm(engine, tmp_path)
    view = client_view(engine, "H1")
    (sale,) = view.realised.sales  # the Okafors' sale is not theirs
    assert (sale.day, sale.account_id, sale.security_id, sale.proceeds, sale.gain) == (
        date(2022, 11, 14), "10000001", "AAPL", D("4470.12"), D("-530.08"),
    )  # fmt: skip
    assert sale.term == "short and long"
    assert (cents(view.realised.short), cents(view.realised.long)) == (D("-520.12"), D("-9.96"))


def test_client_view_when_an_ira_sold_then_listed_with_its_gain_but_not_totalled(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """The Okafors' IRA sold 100 BOND (10.00 a share) for 950.00: a loss of 50.00 the
    tax law does not see."""
    firm(engine, tmp_path)
    view = client_view(engine, "H2")
    assert [(s.account_id, s.gain, s.taxable) for s in view.realised.sales] == [
        ("10000003", D("-50.00"), False)
    ]
    assert (view.realised.short, view.realised.long) == (D("0"), D("0"))
    assert {a.account_id for a, _ in view.household.accounts} == {"10000003"}
