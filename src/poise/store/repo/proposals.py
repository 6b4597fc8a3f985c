"""Rebalance proposals and their trades."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from poise.optimize.trades import Proposal
from poise.store import tables as t

__all__ = ["proposals", "save_proposal"]


def save_proposal(
    connection: sa.Connection,
    *,
    proposal: Proposal,
    as_of: datetime,
    created_at: datetime,
    scenario: str | None = None,
    risk_model: str | None = None,
) -> str:
    """Store a proposal (status ``proposed``); earlier ones of the account and method it
    replaces become ``superseded``. ``scenario`` names the scenario it was kept from,
    ``risk_model`` what its tracking errors rest on. Returns its id."""
    p, pt = t.proposals, t.proposal_trades
    proposal_id = f"{proposal.account_id}/{created_at.isoformat()}/{proposal.method}"
    connection.execute(
        sa.update(p)
        .where(
            (p.c.account_id == proposal.account_id)
            & (p.c.method == proposal.method)
            & (p.c.status == "proposed")
        )
        .values(status="superseded")
    )
    connection.execute(
        sa.insert(p).values(
            proposal_id=proposal_id,
            account_id=proposal.account_id,
            method=proposal.method,
            status="proposed",
            created_at=created_at,
            as_of=as_of,
            cash_before=proposal.cash_before,
            cash_after=proposal.cash_after,
            realised_short=proposal.realised_short,
            realised_long=proposal.realised_long,
            estimated_tax=proposal.estimated_tax,
            cost=proposal.cost,
            drift_before=proposal.drift_before,
            drift_after=proposal.drift_after,
            binding=json.dumps(list(proposal.binding)),
            tracking_before=proposal.tracking_before,
            tracking_after=proposal.tracking_after,
            scenario=scenario,
            risk_model=risk_model,
        )
    )
    if proposal.trades:
        connection.execute(
            sa.insert(pt),
            [
                {
                    "proposal_id": proposal_id,
                    "seq": seq,
                    "security_id": trade.security_id,
                    "side": trade.side.value,
                    "quantity": trade.quantity,
                    "price": trade.price,
                    "reason": trade.reason.value,
                    "lots": json.dumps(
                        [
                            {
                                "lot_id": s.lot_id,
                                "quantity": str(s.quantity),
                                "basis": str(s.basis),
                                "proceeds": str(s.proceeds),
                                "term": s.term.value,
                            }
                            for s in trade.lots
                        ]
                    ),
                }
                for seq, trade in enumerate(proposal.trades, start=1)
            ],
        )
    return proposal_id


def proposals(connection: sa.Connection, *, account_id: str) -> list[dict[str, Any]]:
    """The account's proposals, newest first, with their trades."""
    p, pt = t.proposals, t.proposal_trades
    found = []
    rows = connection.execute(
        sa.select(p).where(p.c.account_id == account_id).order_by(p.c.created_at.desc())
    )
    for row in rows:
        trades = connection.execute(
            sa.select(pt).where(pt.c.proposal_id == row.proposal_id).order_by(pt.c.seq)
        )
        found.append(
            {
                **{k: v for k, v in row._mapping.items() if k != "binding"},
                "binding": json.loads(row.binding),
                "trades": [
                    {
                        **{
                            k: v
                            for k, v in trade._mapping.items()
                            if k not in ("lots", "proposal_id")
                        },
                        "lots": json.loads(trade.lots),
                    }
                    for trade in trades
                ],
            }
        )
    return found
