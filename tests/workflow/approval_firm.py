"""A store with proposals to approve, in a few lines: one account's proposal buying
100 S1 at 500 (50,000 traded), a household's of two accounts buying S1 and S2, and the
people who act on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from poise.domain.users import Role, User
from poise.optimize.trades import Proposal, Side, Trade, TradeReason
from poise.store import repo
from poise.store import tables as t

MADE = datetime(2022, 12, 28, 15, 0, tzinfo=UTC)
SOON = MADE + timedelta(hours=2)
ZERO = Decimal(0)
PEOPLE = {
    "ana": Role.ADVISER,
    "ben": Role.ADVISER,
    "pam": Role.PORTFOLIO_MANAGER,
    "cora": Role.COMPLIANCE,
    "olu": Role.OPERATIONS,
    "gus": Role.ADMIN,
}


def buying(account_id: str, *buys: tuple[str, str, str]) -> Proposal:
    trades = tuple(
        Trade(s, Side.BUY, Decimal(q), Decimal(p), TradeReason.DRIFT) for s, q, p in buys
    )
    return Proposal(account_id, "bands", trades, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO)


def price(connection: sa.Connection, security_id: str, amount: str, at: datetime) -> None:
    connection.execute(
        sa.insert(t.prices).values(security_id=security_id, as_of=at, source="", price=amount)
    )


def people(connection: sa.Connection, *more: str) -> dict[str, User]:
    """The users, by username (``more``: approvers ``a1`` … as advisers); the advisers
    are assigned household H1, but dee, who sees nothing."""
    connection.execute(sa.insert(t.households).values(household_id="H1", name="Ruiz"))
    made = {
        name: repo.add_user(
            connection,
            username=name,
            role=role,
            households=["H1"] if role is Role.ADVISER else [],
        )
        for name, role in [*PEOPLE.items(), *((m, Role.ADVISER) for m in more)]
    }
    made["dee"] = repo.add_user(connection, username="dee", role=Role.ADVISER)
    return made


def firm(
    engine: sa.Engine, *more: str, run_id: bool = False, made: datetime = MADE
) -> tuple[str, str, dict[str, User]]:
    """The account's proposal id, the household's (made by a run, with ``run_id``), and
    the people; the proposals and their prices ``made`` then."""
    with engine.begin() as connection:
        users = people(connection, *more)
        run = (
            repo.start_rebalance_run(
                connection, as_of=made, selection={}, options={}, started_at=made, method="bands"
            )
            if run_id
            else None
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
                {"account_id": a, "household_id": "H1", "registration": "taxable",
                 "cash": Decimal(2_000_000), "reserve_amount": ZERO, "reserve_pct": ZERO,
                 "st_rate": Decimal("0.37"), "lt_rate": Decimal("0.2"), "state_rate": ZERO,
                 "harvest": False}
                for a in ("A1", "A2", "A3")
            ],
        )  # fmt: skip
        price(connection, "S1", "500", made)
        price(connection, "S2", "100", made)
        single = repo.save_proposal(
            connection,
            proposal=buying("A1", ("S1", "100", "500")),
            as_of=made,
            created_at=made,
            prepared_by=users["ana"].user_id,
        ).proposal_id
        household = repo.save_household_proposal(
            connection,
            household_id="H1",
            method="bands",
            as_of=made,
            created_at=made,
            model_id=None,
            run_id=run,
            meetings=(),
            location=(),
            held={},
            prepared_by=users["ana"].user_id,
        ).proposal_id
        for account, buy in (("A2", ("S1", "1000", "500")), ("A3", ("S2", "10000", "100"))):
            repo.save_proposal(
                connection,
                proposal=buying(account, buy),
                as_of=made,
                created_at=made,
                household_proposal_id=household,
            )
    return single, household, users
