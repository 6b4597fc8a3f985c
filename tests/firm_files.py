"""A small firm written as canonical files, for tests that go through ingest."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

SECURITIES = """\
security_id,symbol,name,kind,asset_class,sub_class,trade_unit,trade_step,tags,identity_group,replacements
AAPL,AAPL,Apple Inc.,stock,us_equity,technology,whole,1,,,MSFT
MSFT,MSFT,Microsoft Corp.,stock,us_equity,technology,whole,1,,,AAPL
XOM,XOM,Exxon Mobil,stock,us_equity,energy,whole,1,fossil_fuels,,
SPYA,SPYA,S&P 500 Fund A,etf,us_equity,,fraction,0.001,,SP500,TOTL
SPYB,SPYB,S&P 500 Fund B,etf,us_equity,,fraction,0.001,,SP500,TOTL
TOTL,TOTL,Total Market Fund,etf,us_equity,,fraction,0.001,,,
BOND,BOND,Aggregate Bond Fund,mutual_fund,fixed_income,,fraction,0.001,,,
"""

HOUSEHOLDS = """\
household_id,name,advisor
H1,The Garcia household,Ana Ruiz
H2,The Okafor household,Ana Ruiz
"""

MODELS = """\
model_id,model_name,kind,target_id,weight,band_abs,band_rel
EQ,Equity sleeve,security,AAPL,0.3,0.05,
EQ,,security,MSFT,0.3,0.05,
EQ,,security,SPYA,0.4,,0.25
FI,Bond sleeve,security,BOND,1,,
CORE,Core 60/40,model,EQ,0.6,,
CORE,,model,FI,0.38,,
CORE,,cash,,0.02,,
CORE,,asset_class,us_equity,,0.05,
"""

ACCOUNTS = """\
account_id,household_id,registration,custodian,model_id,cash,reserve_amount,st_rate,lt_rate,harvest,do_not_buy
10000001,H1,taxable,Schwab,CORE,2500.00,1000,0.37,0.20,true,XOM
10000002,H1,roth_ira,Schwab,EQ,150.25,,,,false,
10000003,H2,traditional_ira,Fidelity,CORE,0,,,,false,
"""

LOTS = """\
account_id,lot_id,security_id,quantity,cost_basis,acquired
10000001,L1,AAPL,100,15000.00,2019-03-01
10000001,L2,AAPL,50,8750.50,2022-01-04
10000001,L3,SPYA,20.125,8050.00,2021-06-15
10000002,L4,MSFT,30,9000.00,2020-05-01
10000003,L5,BOND,400.5,4005.00,2018-07-02
"""

PRICES = """\
security_id,as_of,price,source
AAPL,2022-12-28,126.04,close
MSFT,2022-12-28,234.53,close
SPYA,2022-12-28,381.2,close
SPYB,2022-12-28,381.3,close
TOTL,2022-12-28,190.11,close
BOND,2022-12-28,9.42,close
XOM,2022-12-28,108.12,close
"""

FILES = {
    "securities.csv": SECURITIES,
    "households.csv": HOUSEHOLDS,
    "models.csv": MODELS,
    "accounts.csv": ACCOUNTS,
    "lots.csv": LOTS,
    "prices.csv": PRICES,
}


def write_firm(folder: Path) -> list[Path]:
    """Write the small firm's files into ``folder``, in no particular order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in reversed(FILES.items()):  # reversed: ingest must order them itself
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths


def price_history(
    days: int,
    *,
    last: str = "2022-12-28",
    seed: int = 3,
    volatility: Mapping[str, float] | None = None,
) -> str:
    """A prices file of ``days`` weekdays for every security of the small firm, ending on
    ``last`` at the prices above: a seeded random walk back from them (1% a day, or the
    daily ``volatility`` given for a security), so the risk model has history to
    estimate from and every current figure is unchanged."""
    rng = random.Random(seed)
    closes = {line.split(",")[0]: Decimal(line.split(",")[2]) for line in PRICES.splitlines()[1:]}
    weekdays: list[date] = []
    day = date.fromisoformat(last)
    while len(weekdays) < days:
        if day.weekday() < 5:
            weekdays.append(day)
        day -= timedelta(days=1)
    rows = ["security_id,as_of,price,source"]
    for security_id, close in closes.items():
        price, sigma = close, (volatility or {}).get(security_id, 0.01)
        for day in weekdays:  # newest first, walking back
            rows.append(f"{security_id},{day.isoformat()},{price},close")
            price = (price * Decimal(str(1 + rng.gauss(0, sigma)))).quantize(Decimal("0.01"))
    return "\n".join(rows) + "\n"
