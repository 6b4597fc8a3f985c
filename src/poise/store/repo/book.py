"""The firm's records as domain objects: accounts, households, lots, securities, models,
cash flows, recent trades, custodian positions and breaks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from poise.domain.accounts import (
    Account,
    CashReserve,
    Household,
    MinTrade,
    Registration,
    Restrictions,
    TaxRates,
)
from poise.domain.clients import ClientProfile, RiskTolerance
from poise.domain.errors import NotFoundError, ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind
from poise.domain.money import ZERO
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.domain.transactions import CashFlow, CashFlowKind, LotRelieved, Transaction, TxnKind
from poise.store import tables as t
from poise.store.rows import Dates, as_stored, decimal_of

__all__ = [
    "account",
    "account_holdings",
    "account_lots",
    "accounts",
    "buys_since",
    "cash_flows",
    "client_profiles",
    "households",
    "latest_positions",
    "lots",
    "model_ids",
    "models",
    "open_breaks",
    "sales_since",
    "securities",
]


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(";")) if text else ()


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        account_id=m["account_id"],
        household_id=m["household_id"],
        registration=Registration(m["registration"]),
        custodian=m["custodian"] or "",
        name=m["name"] or "",
        model_id=m["model_id"],
        cash=m["cash"],
        reserve=CashReserve(amount=m["reserve_amount"], fraction=m["reserve_pct"]),
        restrictions=Restrictions(
            do_not_buy=frozenset(_split(m["do_not_buy"])),
            do_not_sell=frozenset(_split(m["do_not_sell"])),
            excluded_tags=frozenset(_split(m["excluded_tags"])),
        ),
        tax_rates=TaxRates(short_term=m["st_rate"], long_term=m["lt_rate"], state=m["state_rate"]),
        harvest=bool(m["harvest"]),
        tolerance=Band(absolute=m["band_abs"], relative=m["band_rel"]),
        min_trade=MinTrade(amount=m["min_trade"], fraction=m["min_trade_pct"]),
        cross_consent=bool(m["cross_consent"]),
    )


def accounts(
    connection: sa.Connection,
    *,
    household_id: str | None = None,
    household_ids: Collection[str] | None = None,
    model_id: str | None = None,
    registration: str | None = None,
    broken: dict[str, list[str]] | None = None,
) -> list[Account]:
    """The accounts (those filters pick). A row that is no valid account raises — or,
    given ``broken``, is left out and its reason kept there by household."""
    a = t.accounts
    query = sa.select(a).order_by(a.c.account_id)
    if household_id is not None:
        query = query.where(a.c.household_id == household_id)
    if household_ids is not None:
        query = query.where(a.c.household_id.in_(sorted(set(household_ids))))
    if model_id is not None:
        query = query.where(a.c.model_id == model_id)
    if registration is not None:
        query = query.where(a.c.registration == registration)
    found = []
    for row in connection.execute(query).all():
        try:
            found.append(_account(row))
        except (ValidationError, ValueError, TypeError) as e:
            if broken is None:
                raise
            broken.setdefault(row.household_id, []).append(f"account {row.account_id}: {e}")
    return found


# The statements an account's page runs on every request, built once: building one
# (and its cache key) costs more than SQLite takes to answer it.
_ACCOUNT = sa.select(t.accounts).where(t.accounts.c.account_id == sa.bindparam("account_id"))


def account(connection: sa.Connection, *, account_id: str) -> Account:
    row = connection.execute(_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise NotFoundError(f"no account {account_id}")
    return _account(row)


def households(connection: sa.Connection) -> list[Household]:
    h = t.households
    return [
        Household(
            household_id=row.household_id,
            name=row.name,
            advisor=row.advisor or "",
            model_id=row.model_id or None,
        )
        for row in connection.execute(sa.select(h).order_by(h.c.household_id))
    ]


def client_profiles(
    connection: sa.Connection, *, household_ids: Iterable[str] | None = None
) -> list[ClientProfile]:
    """The clients' profiles (of ``household_ids`` only, when given), by household."""
    c = t.clients
    query = sa.select(c).order_by(c.c.household_id, c.c.client_id)
    if household_ids is not None:
        query = query.where(c.c.household_id.in_(sorted(set(household_ids))))
    return [
        ClientProfile(
            client_id=row.client_id,
            household_id=row.household_id,
            name=row.name,
            risk_tolerance=RiskTolerance(row.risk_tolerance),
            horizon_years=row.horizon_years,
            model_id=row.model_id or None,
            goals=_split(row.goals),
            exclusions=frozenset(_split(row.exclusions)),
            esg=frozenset(_split(row.esg)),
        )
        for row in connection.execute(query)
    ]


_LOT = (
    t.lots.c.account_id,
    t.lots.c.lot_id,
    t.lots.c.security_id,
    t.lots.c.quantity,
    t.lots.c.cost_basis,
    t.lots.c.acquired,
    t.lots.c.adjusted_basis,
    t.lots.c.holding_start,
    t.lots.c.disallowed_loss,
)
_LOT_STORED = (  # the same, as the driver gives them (:func:`lots` converts them)
    t.lots.c.account_id,
    t.lots.c.lot_id,
    t.lots.c.security_id,
    as_stored(t.lots.c.quantity),
    as_stored(t.lots.c.cost_basis),
    as_stored(t.lots.c.acquired),
    as_stored(t.lots.c.adjusted_basis),
    as_stored(t.lots.c.holding_start),
    as_stored(t.lots.c.disallowed_loss),
)
_CHUNK = 500  # accounts in one IN list


def _lot(row: Sequence[Any]) -> TaxLot:
    """A row of the :data:`_LOT` columns as a lot (unpacked by position: a firm's run
    reads hundreds of thousands)."""
    account_id, lot_id, security_id, quantity, cost_basis, acquired, adjusted, start, lost = row
    return TaxLot(
        lot_id=lot_id,
        account_id=account_id,
        security_id=security_id,
        quantity=quantity,
        cost_basis=cost_basis,
        acquired=acquired,
        adjusted_basis=adjusted,
        holding_start=start,
        disallowed_loss=lost if lost is not None else ZERO,
    )


_ACCOUNT_LOTS = (
    sa.select(*_LOT)
    .where(t.lots.c.account_id == sa.bindparam("account_id"))
    .order_by(t.lots.c.security_id, t.lots.c.acquired, t.lots.c.lot_id)
)


def account_lots(connection: sa.Connection, *, account_id: str) -> list[TaxLot]:
    return [_lot(row) for row in connection.execute(_ACCOUNT_LOTS, {"account_id": account_id})]


_HELD = sa.select(t.lots.c.security_id, t.lots.c.quantity).where(
    t.lots.c.account_id == sa.bindparam("account_id")
)


def account_holdings(connection: sa.Connection, *, account_id: str) -> dict[str, Decimal]:
    """The shares the account holds of each security, its lots added up exactly (in
    Python: SQLite would add them as floats), by security id."""
    held: dict[str, Decimal] = {}
    for security_id, quantity in connection.execute(_HELD, {"account_id": account_id}):
        held[security_id] = held.get(security_id, ZERO) + quantity
    return dict(sorted(held.items()))


def lots(
    connection: sa.Connection,
    *,
    account_ids: Iterable[str] | None = None,
    broken: dict[str, list[str]] | None = None,
) -> list[TaxLot]:
    """The lots (of ``account_ids``; None: every account's), by account, security and
    lot. A row that is no valid lot raises — or, given ``broken``, is left out and its
    reason kept there by account."""
    lt = t.lots
    query = sa.select(*_LOT_STORED).order_by(lt.c.account_id, lt.c.security_id, lt.c.lot_id)
    day = Dates()
    if account_ids is None:
        queries = [query]
    else:  # in ranges of accounts, in order: SQLite takes at most 32,766 values a query
        ids = sorted(set(account_ids))
        queries = [
            query.where(lt.c.account_id.in_(ids[start : start + _CHUNK]))
            for start in range(0, len(ids), _CHUNK)
        ]
    found = []
    for chunk in queries:
        for row in connection.execute(chunk).all():  # fetched whole: row by row costs more
            try:
                account_id, lot_id, security_id, quantity, cost, acquired, adjusted, start, lost = (
                    row
                )
                found.append(
                    TaxLot(
                        lot_id=lot_id,
                        account_id=account_id,
                        security_id=security_id,
                        quantity=decimal_of(quantity),  # type: ignore[arg-type]
                        cost_basis=decimal_of(cost),  # type: ignore[arg-type]
                        acquired=day(acquired),  # type: ignore[arg-type]
                        adjusted_basis=decimal_of(adjusted),
                        holding_start=day(start),
                        disallowed_loss=ZERO if lost is None else decimal_of(lost),  # type: ignore[arg-type]
                    )
                )
            except (ValidationError, ValueError, TypeError, ArithmeticError) as e:
                reason = str(e) if isinstance(e, ValidationError) else f"it does not read ({e!r})"
                if broken is None:
                    raise ValidationError(
                        f"account {row.account_id}, lot {row.lot_id}: {reason}"
                    ) from e
                broken.setdefault(row.account_id, []).append(f"account {row.account_id}: {reason}")
    return found


def securities(connection: sa.Connection) -> dict[str, Security]:
    s = t.securities
    return {
        row.security_id: Security(
            security_id=row.security_id,
            symbol=row.symbol,
            name=row.name,
            kind=SecurityKind(row.kind),
            asset_class=row.asset_class,
            sub_class=row.sub_class or "",
            currency=row.currency,
            trading=Trading(unit=TradeUnit(row.trade_unit), step=row.trade_step),
            tags=frozenset(_split(row.tags)),
            identity_group=row.identity_group or "",
            replacements=_split(row.replacements),
        )
        for row in connection.execute(sa.select(s).order_by(s.c.security_id))
    }


def model_ids(connection: sa.Connection) -> list[str]:
    """The id of every model, in order (without building them)."""
    m = t.model_targets
    query = sa.select(m.c.model_id).distinct().order_by(m.c.model_id)
    return list(connection.execute(query).scalars())


def models(connection: sa.Connection) -> dict[str, Model]:
    """Every model, built (and so checked) as a domain object."""
    m = t.model_targets
    rows: dict[str, list[sa.Row[tuple[object, ...]]]] = {}
    for row in connection.execute(sa.select(m).order_by(m.c.model_id, m.c.kind, m.c.target_id)):
        rows.setdefault(row.model_id, []).append(row)
    return {
        model_id: Model(
            model_id=model_id,
            name=next((r.model_name for r in group if r.model_name), model_id),
            targets=tuple(
                ModelTarget(
                    kind=TargetKind(r.kind),
                    target_id=r.target_id,
                    weight=r.weight,
                    band=Band(absolute=r.band_abs, relative=r.band_rel),
                )
                for r in group
            ),
        )
        for model_id, group in rows.items()
    }


def latest_positions(connection: sa.Connection) -> dict[str, dict[str, Decimal]]:
    """Each account's latest custodian snapshot: security → quantity."""
    p = t.positions
    newest = (
        sa.select(p.c.account_id, sa.func.max(p.c.as_of).label("as_of"))
        .group_by(p.c.account_id)
        .subquery()
    )
    query = sa.select(p.c.account_id, p.c.security_id, p.c.quantity).join(
        newest, (p.c.account_id == newest.c.account_id) & (p.c.as_of == newest.c.as_of)
    )
    found: dict[str, dict[str, Decimal]] = {}
    for account_id, security_id, quantity in connection.execute(query):
        found.setdefault(account_id, {})[security_id] = quantity
    return found


def open_breaks(connection: sa.Connection) -> dict[str, list[str]]:
    """Each account's open reconciliation breaks, described."""
    b = t.breaks
    query = sa.select(b).where(b.c.closed.is_(None)).order_by(b.c.account_id, b.c.opened)
    found: dict[str, list[str]] = {}
    for row in connection.execute(query):
        text = f"break {row.break_id} open since {row.opened:%Y-%m-%d}"
        found.setdefault(row.account_id, []).append(
            f"{text}: {row.description}" if row.description else text
        )
    return found


def cash_flows(connection: sa.Connection) -> list[CashFlow]:
    c = t.cash_flows
    return [
        CashFlow(
            flow_id=row.flow_id,
            account_id=row.account_id,
            kind=CashFlowKind(row.kind),
            amount=row.amount,
            requested=row.requested,
            due=row.due,
        )
        for row in connection.execute(sa.select(c).order_by(c.c.account_id, c.c.flow_id))
    ]


def buys_since(connection: sa.Connection, *, since: date) -> list[tuple[str, str, date]]:
    """(account, security, trade date) of every buy on or after ``since``."""
    x = t.transactions
    query = sa.select(x.c.account_id, x.c.security_id, x.c.trade_date).where(
        (x.c.kind == "buy") & (x.c.trade_date >= since) & x.c.security_id.is_not(None)
    )
    return [(row.account_id, row.security_id, row.trade_date) for row in connection.execute(query)]


def _relieved(text: str | None) -> tuple[LotRelieved, ...]:
    """``L1:10;L2:20`` as lots relieved."""
    if not text:
        return ()
    pairs = (item.rsplit(":", 1) for item in text.split(";") if item)
    return tuple(
        LotRelieved(lot_id, Decimal(quantity)) for lot_id, quantity in pairs if Decimal(quantity)
    )


def transaction(row: sa.Row[Any]) -> Transaction:
    """A ``transactions`` row as a domain object, a sale with the lots it relieved."""
    return Transaction(
        txn_id=row.txn_id,
        account_id=row.account_id,
        kind=TxnKind(row.kind),
        trade_date=row.trade_date,
        settle_date=row.settle_date,
        amount=row.amount,
        security_id=row.security_id,
        quantity=row.quantity,
        lots=_relieved(row.lots),
        description=row.description or "",
    )


def sales_since(
    connection: sa.Connection, *, since: date, account_id: str | None = None
) -> list[Transaction]:
    """The account's (None: every account's) sales traded on or after ``since``, with
    the lots they relieved."""
    x = t.transactions
    query = (
        sa.select(x)
        .where(
            (x.c.kind == TxnKind.SELL.value)
            & (x.c.trade_date >= since)
            & x.c.security_id.is_not(None)
        )
        .order_by(x.c.trade_date, x.c.txn_id)
    )
    if account_id is not None:
        query = query.where(x.c.account_id == account_id)
    return [transaction(row) for row in connection.execute(query)]
