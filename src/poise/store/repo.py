"""Keyword-only repository functions: queries the shells need, and rows into domain objects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa

from poise.domain.accounts import (
    Account,
    CashReserve,
    Household,
    Registration,
    Restrictions,
    TaxRates,
)
from poise.domain.errors import NotFoundError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind
from poise.domain.money import ZERO
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.domain.transactions import CashFlow, CashFlowKind, LotRelieved, Transaction, TxnKind
from poise.optimize.history import PriceHistory
from poise.optimize.trades import Proposal
from poise.store import tables as t

__all__ = [
    "FileLoad",
    "Quarantined",
    "account",
    "account_lots",
    "accounts",
    "buys_since",
    "cash_flows",
    "households",
    "key_series",
    "latest_positions",
    "latest_prices",
    "list_quarantine",
    "list_requests",
    "lots",
    "models",
    "open_breaks",
    "open_request_reasons",
    "price_history",
    "proposals",
    "record_load",
    "sales_since",
    "save_proposal",
    "save_requests",
    "securities",
    "store_quarantine",
    "stored_request_ids",
    "table_for",
]

# The key other files refer to, by kind.
_REFERRED = {
    "securities": t.securities.c.security_id,
    "households": t.households.c.household_id,
    "models": t.model_targets.c.model_id,
    "accounts": t.accounts.c.account_id,
}


def table_for(name: str) -> sa.Table:
    return t.metadata.tables[name]


def key_series(connection: sa.Connection, *, kind: str) -> pl.Series:
    """Every key of ``kind`` that rows may refer to, as one text series."""
    column = _REFERRED[kind]
    values = connection.execute(sa.select(column).distinct()).scalars().all()
    return pl.Series(kind, values, dtype=pl.Utf8)


@dataclass(frozen=True, slots=True)
class Quarantined:
    file_name: str
    kind: str
    line: int
    reason: str
    raw: str
    sha256: str
    quarantined_at: datetime


@dataclass(frozen=True, slots=True)
class FileLoad:
    sha256: str
    name: str
    kind: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    quarantined: int
    loaded_at: datetime


def store_quarantine(connection: sa.Connection, *, rows: Sequence[Quarantined]) -> None:
    """Keep rejected rows; the same line of the same file is kept once."""
    if not rows:
        return
    sha = rows[0].sha256
    seen = set(
        connection.execute(
            sa.select(t.quarantine.c.line).where(t.quarantine.c.sha256 == sha)
        ).scalars()
    )
    fresh = [
        {
            "sha256": r.sha256,
            "line": r.line,
            "file_name": r.file_name,
            "kind": r.kind,
            "reason": r.reason,
            "raw": r.raw,
            "quarantined_at": r.quarantined_at,
        }
        for r in rows
        if r.line not in seen
    ]
    if fresh:
        connection.execute(sa.insert(t.quarantine), fresh)


def record_load(connection: sa.Connection, *, load: FileLoad) -> None:
    connection.execute(
        sa.insert(t.ingest_files).values(
            sha256=load.sha256,
            name=load.name,
            kind=load.kind,
            rows_read=load.read,
            inserted=load.inserted,
            updated=load.updated,
            unchanged=load.unchanged,
            quarantined=load.quarantined,
            loaded_at=load.loaded_at,
        )
    )


def list_quarantine(connection: sa.Connection, *, everything: bool = False) -> list[Quarantined]:
    """Rows quarantined by the latest load of each file name (or by every load)."""
    q = t.quarantine
    query = sa.select(q).order_by(q.c.file_name, q.c.line)
    if not everything:
        f = t.ingest_files
        latest = sa.select(f.c.name, sa.func.max(f.c.id).label("id")).group_by(f.c.name).subquery()
        shas = sa.select(f.c.sha256).join(latest, f.c.id == latest.c.id)
        query = query.where(q.c.sha256.in_(shas))
    return [
        Quarantined(
            file_name=row.file_name,
            kind=row.kind,
            line=row.line,
            reason=row.reason,
            raw=row.raw,
            sha256=row.sha256,
            quarantined_at=row.quarantined_at,
        )
        for row in connection.execute(query)
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
    )


def accounts(
    connection: sa.Connection,
    *,
    household_id: str | None = None,
    model_id: str | None = None,
    registration: str | None = None,
) -> list[Account]:
    a = t.accounts
    query = sa.select(a).order_by(a.c.account_id)
    if household_id is not None:
        query = query.where(a.c.household_id == household_id)
    if model_id is not None:
        query = query.where(a.c.model_id == model_id)
    if registration is not None:
        query = query.where(a.c.registration == registration)
    return [_account(row) for row in connection.execute(query)]


def account(connection: sa.Connection, *, account_id: str) -> Account:
    row = connection.execute(
        sa.select(t.accounts).where(t.accounts.c.account_id == account_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no account {account_id}")
    return _account(row)


def households(connection: sa.Connection) -> list[Household]:
    h = t.households
    return [
        Household(household_id=row.household_id, name=row.name, advisor=row.advisor or "")
        for row in connection.execute(sa.select(h).order_by(h.c.household_id))
    ]


def _lot(row: sa.Row[tuple[object, ...]]) -> TaxLot:
    m = row._mapping
    return TaxLot(
        lot_id=m["lot_id"],
        account_id=m["account_id"],
        security_id=m["security_id"],
        quantity=m["quantity"],
        cost_basis=m["cost_basis"],
        acquired=m["acquired"],
        adjusted_basis=m["adjusted_basis"],
        holding_start=m["holding_start"],
        disallowed_loss=m["disallowed_loss"] if m["disallowed_loss"] is not None else ZERO,
    )


def account_lots(connection: sa.Connection, *, account_id: str) -> list[TaxLot]:
    lt = t.lots
    query = (
        sa.select(lt)
        .where(lt.c.account_id == account_id)
        .order_by(lt.c.security_id, lt.c.acquired, lt.c.lot_id)
    )
    return [_lot(row) for row in connection.execute(query)]


def lots(connection: sa.Connection, *, account_ids: Iterable[str] | None = None) -> list[TaxLot]:
    lt = t.lots
    query = sa.select(lt).order_by(lt.c.account_id, lt.c.security_id, lt.c.lot_id)
    if account_ids is not None:
        query = query.where(lt.c.account_id.in_(list(account_ids)))
    return [_lot(row) for row in connection.execute(query)]


def latest_prices(
    connection: sa.Connection, *, as_of: datetime | None = None
) -> dict[str, tuple[Decimal, datetime]]:
    """The latest price of every security (at or before ``as_of``), with its time."""
    p = t.prices
    latest = sa.select(p.c.security_id, sa.func.max(p.c.as_of).label("as_of"))
    if as_of is not None:
        latest = latest.where(p.c.as_of <= as_of)
    newest = latest.group_by(p.c.security_id).subquery()
    query = sa.select(p.c.security_id, p.c.price, p.c.as_of).join(
        newest, (p.c.security_id == newest.c.security_id) & (p.c.as_of == newest.c.as_of)
    )
    return {row.security_id: (row.price, row.as_of) for row in connection.execute(query)}


def price_history(
    connection: sa.Connection, *, security_ids: Sequence[str], since: datetime, until: datetime
) -> PriceHistory:
    """Daily prices of ``security_ids`` after ``since`` and up to ``until``, for the risk
    model: one row per day that has any of them (a day is a UTC date), each security's
    last price of that day, NaN where it has none. The one place prices become floats:
    a covariance is an estimate, not an amount of money."""
    p = t.prices
    names = list(dict.fromkeys(security_ids))
    column = {name: i for i, name in enumerate(names)}
    last: dict[date, dict[int, Decimal]] = {}
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        query = (
            sa.select(p.c.security_id, p.c.as_of, p.c.price)
            .where(p.c.security_id.in_(chunk) & (p.c.as_of > since) & (p.c.as_of <= until))
            .order_by(p.c.as_of, p.c.source)  # the day's last row wins
        )
        for row in connection.execute(query):
            last.setdefault(row.as_of.date(), {})[column[row.security_id]] = row.price
    days = sorted(last)
    prices = np.full((len(days), len(names)), np.nan)
    for d, day in enumerate(days):
        for i, price in last[day].items():
            prices[d, i] = float(price)
    return PriceHistory(tuple(names), tuple(days), prices)


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
    for row in connection.execute(query):
        found.setdefault(row.account_id, {})[row.security_id] = row.quantity
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


def sales_since(connection: sa.Connection, *, account_id: str, since: date) -> list[Transaction]:
    """The account's sales traded on or after ``since``, with the lots they relieved."""
    x = t.transactions
    query = (
        sa.select(x)
        .where(
            (x.c.account_id == account_id)
            & (x.c.kind == TxnKind.SELL.value)
            & (x.c.trade_date >= since)
            & x.c.security_id.is_not(None)
        )
        .order_by(x.c.trade_date, x.c.txn_id)
    )
    return [
        Transaction(
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
        for row in connection.execute(query)
    ]


def save_requests(
    connection: sa.Connection, *, requests: Sequence[Mapping[str, Any]], received_at: datetime
) -> int:
    """Keep rebalance requests (payloads), each once by its id; how many were new."""
    if not requests:
        return 0
    r = t.rebalance_requests
    ids = [q["request_id"] for q in requests]
    seen = set(
        connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(ids))).scalars()
    )
    fresh = {q["request_id"]: q for q in requests if q["request_id"] not in seen}
    if fresh:
        connection.execute(
            sa.insert(r),
            [
                {
                    "request_id": q["request_id"],
                    "account_id": q.get("account_id"),
                    "household_id": q.get("household_id"),
                    "reasons": ";".join(q["reasons"]),
                    "figures": json.dumps(q.get("figures", {}), sort_keys=True),
                    "as_of": datetime.fromisoformat(q["as_of"]),
                    "received_at": received_at,
                    "status": "open",
                }
                for q in fresh.values()
            ],
        )
    return len(fresh)


def stored_request_ids(connection: sa.Connection, *, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the store already holds."""
    r = t.rebalance_requests
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(
            connection.execute(sa.select(r.c.request_id).where(r.c.request_id.in_(chunk))).scalars()
        )
    return found


def open_request_reasons(connection: sa.Connection) -> dict[str, frozenset[str]]:
    """The reasons of each account's open rebalance requests."""
    r = t.rebalance_requests
    found: dict[str, set[str]] = {}
    query = sa.select(r.c.account_id, r.c.reasons).where(
        (r.c.status == "open") & r.c.account_id.is_not(None)
    )
    for account_id, reasons in connection.execute(query):
        found.setdefault(account_id, set()).update(reasons.split(";"))
    return {a: frozenset(rs) for a, rs in found.items()}


def list_requests(connection: sa.Connection, *, limit: int = 0) -> list[dict[str, Any]]:
    r = t.rebalance_requests
    query = sa.select(r).order_by(r.c.as_of.desc(), r.c.request_id)
    if limit:
        query = query.limit(limit)
    return [
        {
            "request_id": row.request_id,
            "account_id": row.account_id,
            "household_id": row.household_id,
            "reasons": row.reasons.split(";"),
            "figures": json.loads(row.figures),
            "as_of": row.as_of,
            "status": row.status,
        }
        for row in connection.execute(query)
    ]


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
