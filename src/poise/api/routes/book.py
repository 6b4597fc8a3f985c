"""The book: households, accounts, their holdings and tax lots — each within the
caller's scope (:mod:`poise.api.scoping`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, RootModel
from pydantic_core import to_json

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery, PageOut, tagged
from poise.api.scoping import ScopedDep, scoped_router
from poise.domain.accounts import Account, Household
from poise.domain.money import ZERO, cents
from poise.domain.relief import is_long_term
from poise.store import repo

__all__ = ["router"]

router = scoped_router(tags=["book"])


class HouseholdOut(BaseModel):
    household_id: str
    name: str
    advisor: str
    model_id: str | None

    @classmethod
    def of(cls, h: Household) -> HouseholdOut:
        return cls(household_id=h.household_id, name=h.name, advisor=h.advisor,
                   model_id=h.model_id)  # fmt: skip


class AccountOut(BaseModel):
    account_id: str
    household_id: str
    registration: str
    custodian: str
    name: str
    model_id: str | None
    cash: str  # an exact decimal, as every amount of money
    harvest: bool

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls.model_validate(_account(a))


class HoldingOut(BaseModel):
    security_id: str
    quantity: str
    price: str | None  # the latest price, if any
    value: str | None
    weight: str | None  # of the account, to six places


def _account(a: Account) -> dict[str, object]:
    """An account as :class:`AccountOut` writes it, as plain values."""
    return {
        "account_id": a.account_id,
        "household_id": a.household_id,
        "registration": a.registration.value,
        "custodian": a.custodian,
        "name": a.name,
        "model_id": a.model_id,
        "cash": str(a.cash),
        "harvest": a.harvest,
    }


class AccountDetail(AccountOut):
    value: str  # cash and every position at its latest price
    holdings: list[HoldingOut]


class LotOut(BaseModel):
    lot_id: str
    security_id: str
    quantity: str
    cost_basis: str
    basis: str  # adjusted for wash sales, where they moved a loss into it
    acquired: date
    held_since: date
    price: str | None
    value: str | None
    gain: str | None
    term: str  # short or long, if sold today


class HouseholdDetail(HouseholdOut):
    accounts: list[AccountOut]


@router.get("/households", response_model=PageOut[HouseholdOut], summary="Households")
def list_households(
    request: Request, who: ScopedDep, engine: EngineDep,
    model_id: str | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip

    with engine.connect() as connection:
        page = repo.households_page(
            connection, scope=who.scope, model_id=model_id, limit=limit, offset=offset
        )
    items = [HouseholdOut.of(h) for h in page.items]
    return tagged(request, PageOut[HouseholdOut](items=items, total=page.total, limit=limit,
                                                 offset=offset))  # fmt: skip


@router.get("/households/{household_id}", response_model=HouseholdDetail, summary="A household")
def get_household(
    request: Request, household_id: str, who: ScopedDep, engine: EngineDep
) -> Response:

    with engine.connect() as connection:
        household = repo.household(connection, household_id=household_id)
        accounts = repo.accounts(connection, household_id=household_id)
    body = HouseholdDetail(
        **HouseholdOut.of(household).model_dump(), accounts=[AccountOut.of(a) for a in accounts]
    )
    return tagged(request, body)


@router.get("/accounts", response_model=PageOut[AccountOut], summary="Accounts")
def list_accounts(
    request: Request, who: ScopedDep, engine: EngineDep,
    household_id: str | None = None, model_id: str | None = None,
    registration: str | None = None, limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip

    with engine.connect() as connection:
        page = repo.accounts_page(
            connection, scope=who.scope, household_id=household_id, model_id=model_id,
            registration=registration, limit=limit, offset=offset,
        )  # fmt: skip
    items = [AccountOut.of(a) for a in page.items]
    return tagged(request, PageOut[AccountOut](items=items, total=page.total, limit=limit,
                                               offset=offset))  # fmt: skip


@router.get(
    "/accounts/{account_id}", response_model=AccountDetail, summary="An account, its holdings"
)
def get_account(request: Request, account_id: str, who: ScopedDep, engine: EngineDep) -> Response:
    # The most asked read of all: its JSON is written from plain values, in the shape
    # and order of AccountDetail (a test holds it to that), without building a model
    # to validate what this function itself has just made.
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        held = repo.account_holdings(connection, account_id=account_id)
        prices = repo.latest_prices(connection, security_ids=held)
    values = {s: q * prices[s][0] for s, q in held.items() if s in prices}
    total = account.cash + sum(values.values(), ZERO)
    holdings = [
        {
            "security_id": s,
            "quantity": str(q),
            "price": str(prices[s][0]) if s in prices else None,
            "value": str(cents(values[s])) if s in values else None,
            "weight": f"{values[s] / total:.6f}" if s in values and total > 0 else None,
        }
        for s, q in held.items()
    ]
    body = {**_account(account), "value": str(cents(total)), "holdings": holdings}
    return tagged(request, to_json(body))


@router.get(
    "/accounts/{account_id}/lots", response_model=list[LotOut], summary="An account's tax lots"
)
def get_lots(request: Request, account_id: str, who: ScopedDep, engine: EngineDep) -> Response:

    with engine.connect() as connection:
        lots = repo.account_lots(connection, account_id=account_id)
        prices = repo.latest_prices(connection, security_ids={lot.security_id for lot in lots})
    today = date.today()  # noqa: DTZ011 - the term a sale today would have
    out = []
    for lot in lots:
        price = prices.get(lot.security_id, (None, None))[0]
        value = None if price is None else lot.quantity * price
        out.append(
            LotOut(
                lot_id=lot.lot_id, security_id=lot.security_id, quantity=str(lot.quantity),
                cost_basis=str(lot.cost_basis), basis=str(lot.basis), acquired=lot.acquired,
                held_since=lot.held_since, price=None if price is None else str(price),
                value=None if value is None else str(cents(value)),
                gain=None if value is None else str(cents(value - lot.basis)),
                term="long" if is_long_term(lot.held_since, today) else "short",
            )
        )  # fmt: skip
    return tagged(request, _Lots(out))


class _Lots(RootModel[list[LotOut]]):
    pass


class RuleOut(BaseModel):
    rule_id: str
    kind: str
    severity: str
    enabled: bool
    params: dict[str, Any]
    set_at: dict[str, str]  # field → the file and line that set it
    may_loosen: list[str]  # what a lower layer may loosen ("*": anything)


class RulesOut(BaseModel):
    account_id: str
    files: list[str]  # the layers that apply, firm first
    rules: list[RuleOut]


@router.get(
    "/accounts/{account_id}/rules",
    response_model=RulesOut,
    summary="The compliance rules in force for an account",
)
def get_rules(
    request: Request, account_id: str, who: ScopedDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The firm's rules as they apply to the account — firm, model, household and
    account layers composed — each with where every field was set."""
    from poise.workflow.comply import load_rules, rules_of_account, spec_json  # noqa: PLC0415

    found = rules_of_account(engine, account_id=account_id, book=load_rules(settings))
    body = RulesOut(
        account_id=account_id,
        files=list(found.files),
        rules=[RuleOut(**spec_json(spec)) for spec in found.specs],
    )
    return tagged(request, body)
