"""A store with released proposals to execute, in a few lines.

Households and accounts (all at custodian Schwab but C1 at Fidelity):

    H1  A1 taxable, consents      sells 100 S1 (lot L1, bought at 40: a gain)
        A2 traditional IRA, consents   buys 30 S2
    H2  B1 taxable, consents      buys 60 S1
    H3  C1 taxable, no consent    buys 50 S1        (Fidelity)
    H4  D1 401k, consents         sells 10 S2       (an ERISA plan: never crossed)

S1 was last priced at 50 on 2022-12-28, S2 at 100. Every proposal is released.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from poise.domain.relief import Term
from poise.optimize.trades import LotSale, Proposal, Side, Trade, TradeReason
from poise.store import repo
from poise.store import tables as t

MADE = datetime(2022, 12, 28, 15, 0, tzinfo=UTC)
ZERO = Decimal(0)

ACCOUNTS = {  # account: household, registration, consent, custodian
    "A1": ("H1", "taxable", True, "Schwab"),
    "A2": ("H1", "traditional_ira", True, "Schwab"),
    "B1": ("H2", "taxable", True, "Schwab"),
    "C1": ("H3", "taxable", False, "Fidelity"),
    "D1": ("H4", "401k", True, "Schwab"),
}


def proposal(account_id: str, *trades: Trade) -> Proposal:
    return Proposal(account_id, "bands", trades, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO)


def buy(security: str, quantity: str, price: str) -> Trade:
    return Trade(security, Side.BUY, Decimal(quantity), Decimal(price), TradeReason.DRIFT)


def sell(security: str, quantity: str, price: str, lot: str, basis: str) -> Trade:
    q, p = Decimal(quantity), Decimal(price)
    sale = LotSale(lot, q, q * Decimal(basis), q * p, Term.LONG)
    return Trade(security, Side.SELL, q, p, TradeReason.DRIFT, (sale,))


PROPOSALS = (
    proposal("A1", sell("S1", "100", "50", "L1", "40")),
    proposal("A2", buy("S2", "30", "100")),
    proposal("B1", buy("S1", "60", "50")),
    proposal("C1", buy("S1", "50", "50")),
    proposal("D1", sell("S2", "10", "100", "L9", "90")),
)


def firm(engine: sa.Engine, proposals: tuple[Proposal, ...] = PROPOSALS) -> list[str]:
    """The firm above, its proposals released; their ids, in the order given."""
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.households),
            [{"household_id": h, "name": h} for h in sorted({v[0] for v in ACCOUNTS.values()})],
        )
        connection.execute(
            sa.insert(t.securities),
            [
                {"security_id": s, "symbol": s, "name": s, "kind": "etf", "asset_class": "equity",
                 "currency": "USD", "trade_unit": "whole", "trade_step": Decimal(1)}
                for s in ("S1", "S2")
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.accounts),
            [
                {"account_id": a, "household_id": h, "registration": r, "cross_consent": c,
                 "custodian": custodian, "cash": Decimal(100_000), "reserve_amount": ZERO,
                 "reserve_pct": ZERO, "st_rate": ZERO, "lt_rate": ZERO, "state_rate": ZERO,
                 "harvest": False}
                for a, (h, r, c, custodian) in ACCOUNTS.items()
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.prices),
            [
                {"security_id": "S1", "as_of": MADE, "source": "close", "price": Decimal(50)},
                {"security_id": "S2", "as_of": MADE, "source": "close", "price": Decimal(100)},
            ],
        )
        ids = [
            repo.save_proposal(connection, proposal=p, as_of=MADE, created_at=MADE).proposal_id
            for p in proposals
        ]
        connection.execute(
            sa.update(t.proposals)
            .where(t.proposals.c.proposal_id.in_(ids))
            .values(status="released")
        )
    return ids
