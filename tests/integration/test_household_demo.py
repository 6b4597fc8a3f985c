"""Household runs on the demo firm as of 2022-12-28: the wash sales that rebalancing one
account at a time made are gone — checked by the backward-looking wash-sale engine of
:mod:`poise.domain.washsales`, not by the rebalancer's own test of a meeting."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from poise.domain.accounts import MinTrade
from poise.domain.recent import WASH_WINDOW
from poise.domain.washsales import LossSale, Purchase, Wash, find_washes
from poise.monitor.book import BandPolicy
from poise.optimize.scenarios import Scenario, optimize_settings
from poise.optimize.trades import Side
from poise.settings import Settings
from poise.workflow.households import (
    HouseholdBook,
    HouseholdPlan,
    PlanOptions,
    Reference,
    load_firm,
    plan_household,
    shipped,
)
from poise.workflow.monitor import price_check
from poise.workflow.rebalance import harvest_minimum

AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)
HOUSEHOLDS = ("H0026", "H0031", "H0140")


def options() -> PlanOptions:
    s = Settings()
    return PlanOptions(
        scenario=Scenario.of_method(
            "optimize",
            optimize_settings(
                risk=1.0,
                tax=1.0,
                cost=1.0,
                tax_budget=None,
                max_turnover=None,
                min_trade=s.min_trade,
                min_trade_fraction=s.min_trade_fraction,
                within_bands=False,
                long_term_wait_days=s.long_term_wait_days,
            ),
        ),
        firm_band=BandPolicy.preset(s.band_preset).band(),
        max_price_age=timedelta(days=s.max_price_age_days),
        harvest=harvest_minimum(s),
        firm_min_trade=MinTrade(s.min_trade, s.min_trade_fraction),
    )


@pytest.fixture(scope="module")
def planned(
    default_demo_firm: sa.Engine,
) -> dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]]:
    s = Settings()
    firm = load_firm(
        default_demo_firm,
        as_of=AS_OF,
        lookback=timedelta(days=s.risk_lookback_days),
        check=price_check(s),
        household_ids=HOUSEHOLDS,
    )
    return {
        h: (firm.reference, firm.books[h], plan_household(firm.reference, firm.books[h], options()))
        for h in HOUSEHOLDS
    }


def washes(reference: Reference, book: HouseholdBook, plan: HouseholdPlan) -> list[Wash]:
    """The wash sales the plan's trades would make, as the backward engine finds them:
    every lot sold at a loss in a taxable account today against every purchase of the
    household — the plan's buys today and the lots bought in the 30 days before."""
    assert plan.proposal is not None
    securities = reference.securities
    today = AS_OF.date()
    taxable = {a.account_id for a in book.accounts if a.registration.taxable}
    lots = {lot.lot_id: lot for lot in book.lots}
    sales, purchases = [], []
    for lot in book.lots:
        if today - WASH_WINDOW <= lot.acquired < today:
            purchases.append(
                Purchase(
                    lot.account_id, lot.lot_id, securities[lot.security_id].wash_sale_identity,
                    lot.quantity, lot.cost_basis, lot.acquired,
                    retirement=lot.account_id not in taxable,
                )
            )  # fmt: skip
    for part in plan.proposal.accounts:
        account_id = part.problem.account.account_id
        for n, trade in enumerate(part.proposal.trades):
            identity = securities[trade.security_id].wash_sale_identity
            if trade.side is Side.BUY:
                purchases.append(
                    Purchase(
                        account_id, f"{account_id}-buy-{n}", identity, trade.quantity,
                        trade.value, today, retirement=account_id not in taxable,
                    )
                )  # fmt: skip
            for sale in trade.lots:
                if account_id in taxable and sale.gain < 0:
                    sales.append(
                        LossSale(
                            account_id, sale.lot_id, identity, sale.quantity, sale.basis,
                            sale.proceeds, today, lots[sale.lot_id].held_since,
                        )
                    )  # fmt: skip
    return find_washes(sales, purchases)


@pytest.mark.parametrize("household", HOUSEHOLDS)
def test_household_run_when_the_demo_firm_is_rebalanced_then_no_trade_makes_a_wash_sale(
    planned: dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]], household: str
) -> None:
    reference, book, plan = planned[household]
    assert plan.held == {}
    assert washes(reference, book, plan) == []


def trades_of(plan: HouseholdPlan, account_id: str) -> list[tuple[Side, str, bool]]:
    """(side, security, at a loss?) of each of the account's trades."""
    assert plan.proposal is not None
    (part,) = [r for r in plan.proposal.accounts if r.problem.account.account_id == account_id]
    return [(t.side, t.security_id, any(s.gain < 0 for s in t.lots)) for t in part.proposal.trades]


def test_household_run_when_h0031_harvests_then_neither_its_taxable_nor_its_roth_buys_back(
    planned: dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]],
) -> None:
    # One account at a time, the joint account 58056992 harvested VTI and MSFT while
    # the taxable 72220162 bought VTI and the Roth 65987856 bought MSFT.
    _, _, plan = planned["H0031"]
    harvested = {s for side, s, loss in trades_of(plan, "58056992") if side is Side.SELL and loss}
    bought_taxable = {s for side, s, _ in trades_of(plan, "72220162") if side is Side.BUY}
    bought_roth = {s for side, s, _ in trades_of(plan, "65987856") if side is Side.BUY}
    assert not ("VTI" in harvested and "VTI" in bought_taxable)
    assert not ("MSFT" in harvested and "MSFT" in bought_roth)
    assert plan.proposal is not None
    assert any("lost for good" in m for m in plan.proposal.meetings)


@pytest.mark.parametrize(
    ("household", "account", "not_at_a_loss", "because"),
    [
        # 62108533, of its household, bought VOO on 2022-12-02.
        ("H0140", "47252179", {"SPY", "VOO"}, date(2022, 12, 2)),
        # The household's Roth 30078868 bought AAPL on 2022-12-20.
        ("H0026", "59244313", {"AAPL"}, date(2022, 12, 20)),
    ],
)
def test_household_run_when_the_household_bought_in_the_last_30_days_then_no_loss_sale(
    planned: dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]],
    household: str,
    account: str,
    not_at_a_loss: set[str],
    because: date,
) -> None:
    _, book, plan = planned[household]
    assert any(t.bought and t.day == because for t in book.recent)
    sold_at_a_loss = {s for side, s, loss in trades_of(plan, account) if side is Side.SELL and loss}
    assert not sold_at_a_loss & not_at_a_loss


def test_accounts_alone_when_h0031_is_rebalanced_one_at_a_time_then_the_washes_are_there(
    planned: dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]],
) -> None:
    # The same household, each account as if it were alone: what the household run
    # prevents, and what the check above would catch.
    reference, book, _ = planned["H0031"]
    parts = []
    for account in book.accounts:
        alone = replace(
            book,
            accounts=(account,),
            lots=tuple(lot for lot in book.lots if lot.account_id == account.account_id),
            recent=tuple(t for t in book.recent if t.account_id == account.account_id),
        )
        plan = plan_household(reference, alone, options())
        assert plan.proposal is not None
        parts += plan.proposal.accounts
    assert plan.proposal is not None
    together = replace(plan, proposal=replace(plan.proposal, accounts=tuple(parts)))
    found = washes(reference, book, together)
    made = {(w.sale.account_id, w.sale.identity, w.replacement.account_id) for w in found}
    assert ("58056992", "US-TOTAL", "72220162") in made  # VTI harvested and bought back
    assert any(w.permanent and w.sale.identity == "MSFT" for w in found)  # the Roth's MSFT


def test_shipped_when_a_plan_travels_back_to_its_run_then_it_keeps_what_keeping_reads(
    planned: dict[str, tuple[Reference, HouseholdBook, HouseholdPlan]],
) -> None:
    _, _, plan = planned["H0031"]
    assert plan.proposal is not None
    light = shipped(plan)
    assert light.proposal is not None
    assert [p.proposal for p in light.proposal.accounts] == [
        p.proposal for p in plan.proposal.accounts
    ]
    assert [p.problem.account for p in light.proposal.accounts] == [
        p.problem.account for p in plan.proposal.accounts
    ]
    assert all(p.problem.holdings for p in plan.proposal.accounts)
    assert not any(p.problem.holdings for p in light.proposal.accounts)
    assert replace(light, proposal=None) == replace(plan, proposal=None)  # the rest as it was
    assert (light.proposal.meetings, light.proposal.location) == (
        plan.proposal.meetings,
        plan.proposal.location,
    )
    assert len(pickle.dumps(light)) < len(pickle.dumps(plan)) / 2
    held = replace(plan, proposal=None)
    assert shipped(held) is held
