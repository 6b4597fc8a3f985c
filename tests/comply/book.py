"""A household written as text, and a proposal's trades, for the compliance tests::

    account A1 taxable cash 1000
    A1 AAA 100                                   # 100 shares of AAA
    trade A1 buy BBB 10                          # at the security's price
    trade A1 sell AAA 5 lot L1 basis 600 short   # a sale and the lot it relieves

Each account's cash after is its cash before, less what it buys, plus what it sells.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from poise.comply.findings import Finding
from poise.comply.rules import Rule
from poise.comply.views import Portfolio, TradeRow, nothing, portfolio
from poise.domain.accounts import Registration
from poise.domain.relief import Term
from poise.domain.securities import Security, SecurityKind
from poise.optimize.trades import LotSale, Side, Trade, TradeReason

D = Decimal


def _security(sid: str, kind: SecurityKind, asset_class: str, **kw: Any) -> Security:
    return Security(sid, sid, f"{sid} Inc", kind, asset_class, **kw)


SECURITIES = {
    s.security_id: s
    for s in (
        _security("AAPL", SecurityKind.STOCK, "us_equity", sub_class="technology"),
        _security("MSFT", SecurityKind.STOCK, "us_equity", sub_class="technology"),
        _security(
            "MO", SecurityKind.STOCK, "us_equity", sub_class="staples", tags=frozenset({"tobacco"})
        ),
        _security(
            "XOM",
            SecurityKind.STOCK,
            "us_equity",
            sub_class="energy",
            tags=frozenset({"fossil_fuels"}),
        ),
        _security("GOOG", SecurityKind.STOCK, "us_equity", sub_class="technology"),
        _security("GOOGL", SecurityKind.STOCK, "us_equity", sub_class="technology"),
        _security("SPY", SecurityKind.ETF, "us_equity", identity_group="sp500"),
        _security("VOO", SecurityKind.ETF, "us_equity", identity_group="sp500"),
        _security("BND", SecurityKind.ETF, "fixed_income"),
        _security("TQQQ", SecurityKind.ETF, "us_equity", tags=frozenset({"leveraged"})),
        _security("FIRM", SecurityKind.STOCK, "us_equity", sub_class="financials"),
    )
}
PRICES = {
    "AAPL": D(200), "MSFT": D(400), "MO": D(50), "XOM": D(100), "GOOG": D(150),
    "GOOGL": D(150), "SPY": D(500), "VOO": D(460), "BND": D(75), "TQQQ": D(60),
    "FIRM": D(25),
}  # fmt: skip


def household(text: str, **context: Any) -> tuple[Portfolio, Portfolio, tuple[TradeRow, ...]]:
    """Before, after and the trades of the household ``text`` describes."""
    accounts: list[tuple[str, Registration, Decimal]] = []
    positions: dict[tuple[str, str], Decimal] = {}
    rows: list[TradeRow] = []
    for raw in text.strip().splitlines():
        words = raw.split("#")[0].split()
        if not words:
            continue
        if words[0] == "account":
            accounts.append((words[1], Registration(words[2]), D(words[4])))
        elif words[0] == "trade":
            rows.append(_trade(words[1:]))
        else:
            account, security, quantity = words
            positions[(account, security)] = D(quantity)
    after = dict(positions)
    net: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        key = (row.account_id, row.trade.security_id)
        after[key] = after.get(key, D(0)) + row.trade.signed_quantity
        net[row.account_id] += -row.value if row.trade.side is Side.BUY else row.value
    accounts_after = [(a, r, cash + net[a]) for a, r, cash in accounts]
    shared = {"household_id": "H1", "securities": SECURITIES, "prices": PRICES, **context}
    return (
        portfolio(accounts=accounts, positions=positions, **shared),
        portfolio(accounts=accounts_after, positions=after, **shared),
        tuple(rows),
    )


def _trade(words: list[str]) -> TradeRow:
    account, side, security, quantity = words[:4]
    price = PRICES[security]
    lots: tuple[LotSale, ...] = ()
    if "lot" in words:
        lot = words[words.index("lot") + 1]
        basis = D(words[words.index("basis") + 1])
        term = Term.SHORT if "short" in words else Term.LONG
        lots = (LotSale(lot, D(quantity), basis, D(quantity) * price, term),)
    trade = Trade(security, Side(side), D(quantity), price, TradeReason.DRIFT, lots)
    return TradeRow(account, trade, SECURITIES[security])


def findings(rule: Rule, text: str, **context: Any) -> list[Finding]:
    """What ``rule`` finds in ``text``: its proposal, or, with no trades in it, its
    holdings alone (checked against an empty ``before``, as the daily check is)."""
    before, after, trades = household(text, **context)
    return rule.check(before if trades else nothing(after), after, trades)


def breaches(kind: type[Rule], params: dict[str, Any], text: str, **context: Any) -> list[Finding]:
    """The findings of a rule of ``kind`` over ``text``, checked to be the same at
    either severity but for the severity itself: a ``block`` rule blocks and the
    same rule as ``warn`` warns."""
    from dataclasses import replace  # noqa: PLC0415

    from poise.comply.findings import Severity  # noqa: PLC0415

    block = kind(rule_id=kind.kind.replace("_", "-"), **params)
    warn = replace(block, severity=Severity.WARN)
    found = findings(block, text, **context)
    warned = findings(warn, text, **context)
    assert all(f.severity is Severity.BLOCK for f in found)
    assert all(f.severity is Severity.WARN for f in warned)
    assert [replace(f, severity=Severity.BLOCK) for f in warned] == found
    return found
