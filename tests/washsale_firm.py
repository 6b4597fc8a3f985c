"""A small firm whose history holds wash sales, written as canonical files.

The Garcias (H1) sell 60 AAPL at a $30 loss a share in their taxable account on
1 November 2022 and buy 50 back in their joint account on the 15th: the loss on 50
shares ($1,500) moves into the joint lot, whose holding period takes the 295 days the
sold shares were held. On 1 December they sell 20 shares of one S&P 500 fund at a
$20 loss a share and buy 30 of another on the 5th: 20 of the 30 replace them.

The Okafors (H2) sell 30 MSFT at a $60 loss a share on 3 October and their IRA buys
30 on the 20th: the $1,800 loss is lost for good. Their sale of XOM on 10 November
names a lot the books do not hold: its basis cannot be known.
"""

from __future__ import annotations

from pathlib import Path

from tests.firm_files import SECURITIES

HOUSEHOLDS = """\
household_id,name,advisor
H1,The Garcia household,Ana Ruiz
H2,The Okafor household,Ana Ruiz
H3,The Lee household,Ana Ruiz
"""

ACCOUNTS = """\
account_id,household_id,registration,custodian,cash
20000001,H1,taxable,Schwab,1000
20000002,H1,joint,Schwab,1000
20000004,H2,taxable,Fidelity,1000
20000005,H2,traditional_ira,Fidelity,1000
20000006,H3,taxable,Fidelity,1000
"""

LOTS = """\
account_id,lot_id,security_id,quantity,cost_basis,acquired
20000001,L1,AAPL,40,6000,2022-01-10
20000001,L3,SPYA,5,2000,2021-06-15
20000002,J1,AAPL,50,6000,2022-11-15
20000002,J2,SPYB,30,11400,2022-12-05
20000004,K1,MSFT,10,3000,2021-03-01
20000005,I1,MSFT,30,7050,2022-10-20
20000006,M1,MSFT,10,2500,2022-10-20
"""

TRANSACTIONS = """\
account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots,description
20000001,T1,buy,2022-01-10,2022-01-12,AAPL,100,15000,,
20000001,T2,sell,2022-11-01,2022-11-03,AAPL,60,7200,L1:60,
20000002,T3,buy,2022-11-15,2022-11-17,AAPL,50,6000,,
20000001,T4,buy,2021-06-15,2021-06-17,SPYA,25,10000,,
20000001,T5,sell,2022-12-01,2022-12-05,SPYA,20,7600,L3:20,
20000002,T6,buy,2022-12-05,2022-12-07,SPYB,30,11400,,
20000004,T7,buy,2021-03-01,2021-03-03,MSFT,40,12000,,
20000004,T8,sell,2022-10-03,2022-10-05,MSFT,30,7200,K1:30,
20000005,T9,buy,2022-10-20,2022-10-24,MSFT,30,7050,,
20000004,T10,sell,2022-11-10,2022-11-14,XOM,10,1100,K9:10,
"""

FILES = {
    "securities.csv": SECURITIES,
    "households.csv": HOUSEHOLDS,
    "accounts.csv": ACCOUNTS,
    "lots.csv": LOTS,
    "transactions.csv": TRANSACTIONS,
}


def write_firm(folder: Path) -> list[Path]:
    """Write the firm's files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in FILES.items():
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths
