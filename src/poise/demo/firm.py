"""A realistic adviser's book, generated: households, clients, accounts, lots and the rest.

:func:`build_firm` takes the demo :class:`~poise.demo.market.Market` and a seed and
returns a :class:`Firm`: one table of text per canonical file kind, each cell exactly
as it will be written (decimals plain, dates ``YYYY-MM-DD``, booleans ``true``/
``false``, lists joined with ``;``, an empty cell as ``""``). The same market and seed
give the same firm, cell for cell.

The firm's shape: about 2.5 accounts a household, registrations mixed as an RIA's
are, account values lognormal from $50k to $5M, each account on the model its
primary client's risk profile maps to, holding most of that model in one to six lots
a holding. Taxable accounts carry realistic federal and state rates and mostly harvest
losses; retirement accounts carry no rates and never harvest. A few accounts restrict
trading or override bands, and about one in twenty has a deposit or withdrawal pending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from poise.demo.catalog import (
    ACCOUNT_LABELS,
    ADVISORS,
    CUSTODIANS,
    FIRST_NAMES,
    FUNDS,
    GOALS,
    LAST_NAMES,
    MODELS,
    OTHER_REGISTRATIONS,
    RISK_MODEL,
    STATE_RATES,
    STOCKS,
)
from poise.demo.holdings import Lot, Txn, book_transactions, draw_lots
from poise.demo.market import Market
from poise.domain.accounts import Registration
from poise.domain.clients import RiskTolerance
from poise.domain.errors import ValidationError
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.money import ZERO, D, cents, plain
from poise.domain.securities import TradeUnit
from poise.domain.transactions import CashFlowKind

__all__ = ["COLUMNS", "KINDS", "Firm", "Progress", "build_firm"]

Progress = Callable[[str, int, int], None]
"""Told ``(task, done, total)`` as generation goes, e.g. ``("lots", 120, 498)``."""

KINDS: tuple[str, ...] = (
    "securities",
    "models",
    "households",
    "accounts",
    "clients",
    "lots",
    "transactions",
    "prices",
    "cash_flows",
    "positions",
    "breaks",
    "cash",
)

# The columns the generator fills, in the canonical formats' order.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "securities": (
        "security_id", "symbol", "name", "kind", "asset_class", "sub_class", "currency",
        "trade_unit", "trade_step", "tags", "identity_group", "replacements",
    ),
    "households": ("household_id", "name", "advisor"),
    "models": ("model_id", "model_name", "kind", "target_id", "weight", "band_abs", "band_rel"),
    "accounts": (
        "account_id", "household_id", "registration", "custodian", "name", "model_id", "cash",
        "reserve_amount", "reserve_pct", "do_not_buy", "do_not_sell", "excluded_tags",
        "st_rate", "lt_rate", "state_rate", "harvest", "band_abs", "band_rel", "cross_consent",
    ),
    "clients": (
        "client_id", "household_id", "name", "risk_tolerance", "horizon_years", "model_id",
        "goals", "exclusions", "esg",
    ),
    "lots": ("account_id", "lot_id", "security_id", "quantity", "cost_basis", "acquired"),
    "transactions": (
        "account_id", "txn_id", "kind", "trade_date", "settle_date", "security_id", "quantity",
        "amount", "description",
    ),
    "prices": ("security_id", "as_of", "price", "source"),
    "cash_flows": ("account_id", "flow_id", "kind", "amount", "requested", "due"),
    "positions": ("account_id", "as_of", "security_id", "quantity"),
    "breaks": ("account_id", "break_id", "opened", "closed", "description"),
    "cash": ("account_id", "as_of", "cash", "trade_date_cash"),
}  # fmt: skip

RISKS: tuple[RiskTolerance, ...] = tuple(RiskTolerance)  # most conservative first
STOCK_IDS = frozenset(s.symbol for s in STOCKS)
YIELDS: Mapping[str, Decimal] = {
    **{s.symbol: s.dividend_yield for s in STOCKS},
    **{f.symbol: f.dividend_yield for f in FUNDS},
}
FIRST_OPEN = date(2005, 1, 3)
LAST_OPEN = date(2021, 6, 30)
MIN_VALUE, MAX_VALUE = 50_000.0, 5_000_000.0
MEDIAN_VALUE: Mapping[Registration, float] = {
    Registration.TAXABLE: 450_000,
    Registration.JOINT: 600_000,
    Registration.TRUST: 1_200_000,
    Registration.TRADITIONAL_IRA: 350_000,
    Registration.ROTH_IRA: 120_000,
    Registration.SEP_IRA: 150_000,
    Registration.K401: 280_000,
    Registration.ROTH_401K: 100_000,
    Registration.HSA: 60_000,
}
PRICE_YEARS = 3
FLOW_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class Firm:
    """The demo firm: one text table per file kind, and the day it is valued on."""

    securities: pl.DataFrame
    households: pl.DataFrame
    models: pl.DataFrame
    accounts: pl.DataFrame
    clients: pl.DataFrame
    lots: pl.DataFrame
    transactions: pl.DataFrame
    prices: pl.DataFrame
    cash_flows: pl.DataFrame
    positions: pl.DataFrame
    breaks: pl.DataFrame
    cash: pl.DataFrame
    as_of: date

    def frames(self) -> dict[str, pl.DataFrame]:
        """The tables by kind, in load order."""
        return {
            "securities": self.securities,
            "models": self.models,
            "households": self.households,
            "accounts": self.accounts,
            "clients": self.clients,
            "lots": self.lots,
            "transactions": self.transactions,
            "prices": self.prices,
            "cash_flows": self.cash_flows,
            "positions": self.positions,
            "breaks": self.breaks,
            "cash": self.cash,
        }


@dataclass(frozen=True, slots=True)
class _Client:
    client_id: str
    first: str
    last: str
    risk: int  # index into RISKS
    horizon: int
    goals: tuple[str, ...]
    exclusions: tuple[str, ...]
    esg: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Household:
    household_id: str
    name: str
    advisor: str
    custodian: str
    state_rate: str
    wealth: float  # multiplies every account's median value
    clients: tuple[_Client, ...]


@dataclass(frozen=True, slots=True)
class _Account:
    account_id: str
    household: _Household
    registration: Registration
    name: str
    model_id: str
    target_value: float
    cash: Decimal
    opened: int  # trading-day index


# ── text ─────────────────────────────────────────────────────────────────────────


def _money(amount: Decimal) -> str:
    return format(cents(amount), "f")


def _price(price: Decimal) -> str:
    """A price with no exponent, trailing zeros dropped but at least two decimals."""
    exponent = price.normalize().as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return format(price.quantize(Decimal(1).scaleb(-places)), "f")


def _list(items: Sequence[str]) -> str:
    return ";".join(items)


def _frame(kind: str, rows: Sequence[Mapping[str, str]]) -> pl.DataFrame:
    schema = dict.fromkeys(COLUMNS[kind], pl.String)
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.from_dicts(rows, schema=schema).fill_null("")


# ── reference tables ─────────────────────────────────────────────────────────────


def _security_rows() -> list[dict[str, str]]:
    rows = [
        {
            "security_id": s.symbol,
            "symbol": s.symbol,
            "name": s.name,
            "kind": "stock",
            "asset_class": "us_equity",
            "sub_class": s.sector,
            "currency": "USD",
            "trade_unit": TradeUnit.WHOLE.value,
            "trade_step": "1",
            "tags": _list(s.tags),
            "replacements": _list(s.replacements),
        }
        for s in STOCKS
    ]
    rows += [
        {
            "security_id": f.symbol,
            "symbol": f.symbol,
            "name": f.name,
            "kind": f.kind.value,
            "asset_class": f.asset_class,
            "sub_class": f.sub_class,
            "currency": "USD",
            "trade_unit": TradeUnit.FRACTION.value,
            "trade_step": "0.001",
            "identity_group": f.identity_group,
            "replacements": _list(f.replacements),
        }
        for f in FUNDS
    ]
    return rows


def _model_rows() -> list[dict[str, str]]:
    return [
        {
            "model_id": m.model_id,
            "model_name": m.name,
            "kind": r.kind,
            "target_id": r.target_id,
            "weight": r.weight,
            "band_abs": r.band_abs,
            "band_rel": r.band_rel,
        }
        for m in MODELS
        for r in m.rows
    ]


def _domain_models() -> dict[str, Model]:
    """The catalogue's models as domain objects: building them checks every weight."""

    def band(text: str) -> Decimal | None:
        return D(text) if text else None

    return {
        m.model_id: Model(
            m.model_id,
            m.name,
            tuple(
                ModelTarget(
                    TargetKind(r.kind),
                    r.target_id,
                    D(r.weight),
                    Band(band(r.band_abs), band(r.band_rel)),
                )
                for r in m.rows
            ),
        )
        for m in MODELS
    }


def _model_weights() -> dict[str, dict[str, Decimal]]:
    models = _domain_models()
    return {mid: dict(resolve(mid, models).securities) for mid in models}


# ── people ───────────────────────────────────────────────────────────────────────


def _horizon(rng: np.random.Generator, age: int) -> int:
    if age < 60:
        return 65 - age + int(rng.integers(0, 11))
    return max(3, 88 - age + int(rng.integers(-3, 4)))


def _risk(rng: np.random.Generator, horizon: int) -> int:
    base = sum(horizon >= years for years in (8, 14, 22, 32))
    return int(np.clip(base + int(rng.choice((-1, 0, 0, 0, 1))), 0, len(RISKS) - 1))


def _goals(rng: np.random.Generator, age: int) -> tuple[str, ...]:
    goals = ["retirement" if age < 68 else "income"]
    wanted = {
        "education": age < 55,
        "home_purchase": age < 45,
        "wealth_transfer": age >= 55,
        "charitable_giving": True,
        "preservation": age >= 65,
    }
    goals += [g for g in GOALS if wanted.get(g, False) and rng.random() < 0.3]
    return tuple(goals)


def _client(
    rng: np.random.Generator, number: int, name: tuple[str, str], age: int, risk: int | None
) -> _Client:
    horizon = _horizon(rng, age)
    level = _risk(rng, horizon) if risk is None else risk
    draw = rng.random()
    esg = ("defense", "fossil_fuels") if draw < 0.02 else ("fossil_fuels",) if draw < 0.07 else ()
    exclusions = (str(rng.choice(sorted(STOCK_IDS))),) if rng.random() < 0.05 else ()
    first, last = name
    return _Client(f"C{number:05d}", first, last, level, horizon, _goals(rng, age), exclusions, esg)


def _households(rng: np.random.Generator, count: int) -> list[_Household]:
    custodians = [c for c, _ in CUSTODIANS]
    custodian_weights = [w for _, w in CUSTODIANS]
    households: list[_Household] = []
    client_number = 0
    for number in range(1, count + 1):
        last = str(rng.choice(LAST_NAMES))
        firsts = [str(f) for f in rng.choice(FIRST_NAMES, size=2, replace=False)]
        age = int(rng.triangular(28, 60, 86))
        client_number += 1
        primary = _client(rng, client_number, (firsts[0], last), age, None)
        clients = [primary]
        if rng.random() < 0.6:
            client_number += 1
            spouse_age = int(np.clip(age + int(rng.integers(-6, 7)), 25, 95))
            spouse_risk = int(np.clip(primary.risk + int(rng.choice((-1, 0, 0, 1))), 0, 4))
            clients.append(_client(rng, client_number, (firsts[1], last), spouse_age, spouse_risk))
        name = " & ".join(c.first for c in clients) + f" {last}"
        households.append(
            _Household(
                household_id=f"H{number:04d}",
                name=name,
                advisor=str(rng.choice(ADVISORS)),
                custodian=str(rng.choice(custodians, p=custodian_weights)),
                state_rate=str(rng.choice(STATE_RATES)),
                wealth=float(np.exp(0.5 * rng.standard_normal())),
                clients=tuple(clients),
            )
        )
    return households


# ── accounts ─────────────────────────────────────────────────────────────────────


def _registrations(rng: np.random.Generator, household: _Household) -> list[Registration]:
    count = 1 + min(5, int(rng.poisson(1.5)))
    first = Registration.JOINT if len(household.clients) == 2 else Registration.TAXABLE
    if rng.random() < 0.1:
        first = Registration.TRUST
    kinds = [r for r, _ in OTHER_REGISTRATIONS]
    weights = [w for _, w in OTHER_REGISTRATIONS]
    picks = rng.choice(len(kinds), size=count - 1, p=weights)
    return [first, *(kinds[int(i)] for i in picks)]


def _account_name(household: _Household, registration: Registration, owner: _Client) -> str:
    if registration is Registration.JOINT:
        return f"{household.name} Joint"
    if registration is Registration.TRUST:
        return f"{owner.last} Family Trust"
    return f"{owner.first} {owner.last} {ACCOUNT_LABELS[registration]}"


def _model_for(registration: Registration, risk: int) -> str:
    if registration in (Registration.ROTH_IRA, Registration.ROTH_401K) and risk >= 3:
        return "M-EQUITY-SLEEVE"
    return RISK_MODEL[RISKS[risk]]


def _accounts(
    rng: np.random.Generator, market: Market, households: Sequence[_Household]
) -> list[_Account]:
    plans = [(h, _registrations(rng, h)) for h in households]
    total = sum(len(regs) for _, regs in plans)
    numbers = rng.choice(90_000_000, size=total, replace=False) + 10_000_000
    first_open = market.first_index_on_or_after(FIRST_OPEN)
    last_open = market.first_index_on_or_after(LAST_OPEN)
    accounts: list[_Account] = []
    for household, registrations in plans:
        for k, registration in enumerate(registrations):
            owner = household.clients[k % len(household.clients)]
            median = MEDIAN_VALUE[registration] * household.wealth
            value = float(
                np.clip(median * np.exp(0.8 * rng.standard_normal()), MIN_VALUE, MAX_VALUE)
            )
            cash = cents(Decimal(f"{value * rng.uniform(0.005, 0.05):.2f}"))
            accounts.append(
                _Account(
                    account_id=str(int(numbers[len(accounts)])),
                    household=household,
                    registration=registration,
                    name=_account_name(household, registration, owner),
                    model_id=_model_for(registration, household.clients[0].risk),
                    target_value=value,
                    cash=cash,
                    opened=int(rng.integers(first_open, last_open + 1)),
                )
            )
    return accounts


KEPT_SHARE = 0.5  # accounts close to their model
KEPT_NOISE = 0.04  # their positions' spread around target, as a log-normal sigma


def _targets(
    rng: np.random.Generator, account: _Account, weights: Mapping[str, Decimal]
) -> list[tuple[str, float]]:
    """What the account holds today, in dollars. About half the accounts were rebalanced
    lately and sit close to their model; the others hold most of it, drifted, and now
    and then a legacy stock the model does not hold."""
    excluded = {s for c in account.household.clients for s in c.exclusions}
    if rng.random() < KEPT_SHARE:
        kept = [s for s in sorted(weights) if s not in excluded]
        near = np.array([float(weights[s]) for s in kept]) * np.exp(
            KEPT_NOISE * rng.standard_normal(len(kept))
        )
        invested = account.target_value - float(account.cash)
        return [(s, float(v)) for s, v in zip(kept, near / near.sum() * invested, strict=True)]
    chosen = {s: float(w) for s, w in weights.items() if s not in excluded and rng.random() < 0.85}
    if not chosen:
        best = max((s for s in weights if s not in excluded), key=lambda s: weights[s])
        chosen[best] = float(weights[best])
    if rng.random() < 0.15:
        others = sorted(STOCK_IDS - set(weights) - excluded)
        if others:
            chosen[str(rng.choice(others))] = float(rng.uniform(0.01, 0.04))
    ids = sorted(chosen)
    raw = np.array([chosen[s] for s in ids]) * np.exp(0.2 * rng.standard_normal(len(ids)))
    invested = account.target_value - float(account.cash)
    return [(s, float(v)) for s, v in zip(ids, raw / raw.sum() * invested, strict=True)]


def _tax_rates(
    rng: np.random.Generator, account: _Account, household_value: float
) -> tuple[str, str, str]:
    """Federal short- and long-term rates and the state rate, for a taxable account."""
    if account.registration is Registration.TRUST:
        return "0.37", "0.20", account.household.state_rate
    brackets = ("0.24", "0.32", "0.35", "0.37")
    level = sum(household_value >= v for v in (600_000, 1_500_000, 4_000_000))
    level = int(np.clip(level + int(rng.choice((-1, 0, 0, 0, 1))), 0, 3))
    st_rate = brackets[level]
    return st_rate, "0.15" if level <= 1 else "0.20", account.household.state_rate


def _market_value(market: Market, lots: Sequence[Lot]) -> Decimal:
    return sum((lot.quantity * market.closes[lot.security_id][-1] for lot in lots), ZERO)


def _do_not_sell(market: Market, lots: Sequence[Lot]) -> tuple[str, ...]:
    """The stock with the largest embedded gain a share: the one a client won't sell."""
    gains: dict[str, Decimal] = {}
    for lot in lots:
        if lot.security_id in STOCK_IDS:
            gain = lot.quantity * market.closes[lot.security_id][-1] - lot.cost
            gains[lot.security_id] = gains.get(lot.security_id, ZERO) + gain
    return (max(sorted(gains), key=lambda s: gains[s]),) if gains else ()


def _account_row(
    rng: np.random.Generator,
    market: Market,
    account: _Account,
    lots: Sequence[Lot],
    household_value: float,
) -> dict[str, str]:
    clients = account.household.clients
    taxable = account.registration.taxable
    row = {
        "account_id": account.account_id,
        "household_id": account.household.household_id,
        "registration": account.registration.value,
        "custodian": account.household.custodian,
        "name": account.name,
        "model_id": account.model_id,
        "cash": _money(account.cash),
        "reserve_amount": "0",
        "reserve_pct": "0",
        "do_not_buy": _list(sorted({s for c in clients for s in c.exclusions})),
        "excluded_tags": _list(sorted({t for c in clients for t in c.esg})),
        "st_rate": "0",
        "lt_rate": "0",
        "state_rate": "0",
        "harvest": "false",
    }
    if taxable:
        row["st_rate"], row["lt_rate"], row["state_rate"] = _tax_rates(
            rng, account, household_value
        )
        row["harvest"] = "true" if rng.random() < 0.85 else "false"
        if rng.random() < 0.06:
            row["do_not_sell"] = _list(_do_not_sell(market, lots))
    draw = rng.random()
    if draw < 0.08:
        amounts = [a for a in (5_000, 10_000, 25_000) if a < account.target_value / 10]
        if amounts:
            row["reserve_amount"] = _money(Decimal(int(rng.choice(amounts))))
    elif draw < 0.14:
        row["reserve_pct"] = str(rng.choice(("0.02", "0.03", "0.05")))
    draw = rng.random()
    if draw < 0.02:
        row["band_abs"] = "0.03"
    elif draw < 0.04:
        row["band_rel"] = "0.20"
    elif draw < 0.06:
        row["band_abs"], row["band_rel"] = "0.02", "0.15"
    row["cross_consent"] = "true" if _consents(account.account_id) else "false"
    return row


def _consents(account_id: str) -> bool:
    """Nine accounts in ten have consented to cross trades (Advisers Act 206(3)-2).
    Drawn from the account number, not the generator's stream, so that the rest of the
    firm is the same with or without it."""
    return hashlib.sha256(account_id.encode()).digest()[0] % 10 != 0


# ── transactions, prices, cash flows ─────────────────────────────────────────────


def _lot_rows(market: Market, account_id: str, lots: Sequence[Lot]) -> list[dict[str, str]]:
    return [
        {
            "account_id": account_id,
            "lot_id": lot.lot_id,
            "security_id": lot.security_id,
            "quantity": plain(lot.quantity),
            "cost_basis": _money(lot.cost),
            "acquired": market.dates[lot.day].isoformat(),
        }
        for lot in lots
    ]


def _txn_rows(market: Market, account_id: str, txns: Sequence[Txn]) -> list[dict[str, str]]:
    return [
        {
            "account_id": account_id,
            "txn_id": t.txn_id,
            "kind": t.kind.value,
            "trade_date": market.dates[t.day].isoformat(),
            "settle_date": market.dates[t.settle].isoformat(),
            "security_id": t.security_id,
            "quantity": plain(t.quantity),
            "amount": _money(t.amount),
            "description": t.description,
        }
        for t in txns
    ]


def _price_rows(market: Market) -> list[dict[str, str]]:
    since = market.first_index_on_or_after(market.as_of - timedelta(days=365 * PRICE_YEARS))
    days = [d.isoformat() for d in market.dates[since:]]
    return [
        {"security_id": security_id, "as_of": day, "price": _price(price), "source": "demo"}
        for security_id, closes in market.closes.items()
        for day, price in zip(days, closes[since:], strict=True)
    ]


def _round_hundreds(amount: float) -> Decimal:
    return Decimal(max(1, round(amount / 100)) * 100)


MISMATCH_SHARE = 0.01  # accounts whose custodian shows a position the books do not
BREAK_SHARE = 0.01  # accounts with an open reconciliation break


def _position_rows(
    rng: np.random.Generator, market: Market, lot_rows: Sequence[Mapping[str, str]]
) -> list[dict[str, str]]:
    """The custodian's snapshot on the as-of day: the lots summed, except that in about
    one account in a hundred a dividend was reinvested at the custodian and not booked."""
    held: dict[tuple[str, str], Decimal] = {}
    for row in lot_rows:
        key = (row["account_id"], row["security_id"])
        held[key] = held.get(key, ZERO) + Decimal(row["quantity"])
    accounts = sorted({a for a, _ in held})
    count = min(len(accounts), round(MISMATCH_SHARE * len(accounts)))
    off = {accounts[int(i)] for i in rng.choice(len(accounts), size=count, replace=False)}
    rows = []
    for (account_id, security_id), books in sorted(held.items()):
        quantity = books + Decimal("1.234") if account_id in off else books
        off.discard(account_id)
        rows.append(
            {
                "account_id": account_id,
                "as_of": market.as_of.isoformat(),
                "security_id": security_id,
                "quantity": plain(quantity),
            }
        )
    return rows


def _break_rows(
    rng: np.random.Generator, market: Market, account_ids: Sequence[str]
) -> list[dict[str, str]]:
    """A few open breaks, and one that was found and closed."""
    count = min(len(account_ids), max(1, round(BREAK_SHARE * len(account_ids))) + 1)
    picks = [account_ids[int(i)] for i in rng.choice(len(account_ids), size=count, replace=False)]
    rows = []
    for number, account_id in enumerate(picks, start=1):
        opened = market.dates[-1 - int(rng.integers(1, 10))]
        closed = market.as_of.isoformat() if number == 1 else ""
        rows.append(
            {
                "account_id": account_id,
                "break_id": f"B{number:04d}",
                "opened": opened.isoformat(),
                "closed": closed,
                "description": "custodian cash differs from the books"
                if number % 2
                else "a corporate action is booked at the custodian only",
            }
        )
    return rows


def _cash_flow_rows(
    rng: np.random.Generator, market: Market, values: Sequence[tuple[str, Decimal]]
) -> list[dict[str, str]]:
    """Pending requests for about one account in twenty, asked in the last week or so."""
    count = min(len(values), max(1, round(FLOW_SHARE * len(values))))
    picks = sorted(int(i) for i in rng.choice(len(values), size=count, replace=False))
    rows: list[dict[str, str]] = []
    for number, index in enumerate(picks, start=1):
        account_id, value = values[index]
        requested = market.dates[-1 - int(rng.integers(0, 8))]
        if rng.random() < 0.45:
            kind, amount = (
                CashFlowKind.DEPOSIT,
                _round_hundreds(float(value) * rng.uniform(0.01, 0.1)),
            )
        else:
            share = rng.uniform(0.01, 0.08)
            kind, amount = (
                CashFlowKind.WITHDRAWAL,
                min(_round_hundreds(float(value) * share), cents(value / 2)),
            )
        rows.append(
            {
                "account_id": account_id,
                "flow_id": f"CF{number:05d}",
                "kind": kind.value,
                "amount": _money(amount),
                "requested": requested.isoformat(),
                "due": (requested + timedelta(days=int(rng.integers(3, 22)))).isoformat(),
            }
        )
    return rows


# ── the firm ─────────────────────────────────────────────────────────────────────


def build_firm(
    market: Market,
    *,
    households: int = 200,
    seed: int = 7,
    progress: Progress | None = None,
) -> Firm:
    """Generate the demo firm on ``market``: ``households`` households (about 2.5
    accounts each), the same for the same ``seed``."""
    if households < 1:
        raise ValidationError(f"a firm needs at least one household, not {households}")

    def tell(task: str, done: int, total: int) -> None:
        if progress is not None:
            progress(task, done, total)

    rng = np.random.default_rng([seed, 2])
    weights = _model_weights()
    people = _households(rng, households)
    tell("households", households, households)
    accounts = _accounts(rng, market, people)

    held: list[list[Lot]] = []
    for done, account in enumerate(accounts, start=1):
        targets = _targets(rng, account, weights[account.model_id])
        held.append(draw_lots(rng, market, targets=targets, opened=account.opened, whole=STOCK_IDS))
        tell("lots", done, len(accounts))

    household_value: dict[str, float] = {}
    for account in accounts:
        hid = account.household.household_id
        household_value[hid] = household_value.get(hid, 0.0) + account.target_value

    account_rows, lot_rows, txn_rows = [], [], []
    values: list[tuple[str, Decimal]] = []
    for done, (account, lots) in enumerate(zip(accounts, held, strict=True), start=1):
        hid = account.household.household_id
        account_rows.append(_account_row(rng, market, account, lots, household_value[hid]))
        lot_rows += _lot_rows(market, account.account_id, lots)
        txns = book_transactions(
            market,
            lots,
            cash=account.cash,
            yields=YIELDS,
            retirement=not account.registration.taxable,
        )
        txn_rows += _txn_rows(market, account.account_id, txns)
        values.append((account.account_id, _market_value(market, lots) + account.cash))
        tell("transactions", done, len(accounts))

    client_rows = [
        {
            "client_id": c.client_id,
            "household_id": h.household_id,
            "name": f"{c.first} {c.last}",
            "risk_tolerance": RISKS[c.risk].value,
            "horizon_years": str(c.horizon),
            "model_id": RISK_MODEL[RISKS[c.risk]],
            "goals": _list(c.goals),
            "exclusions": _list(c.exclusions),
            "esg": _list(c.esg),
        }
        for h in people
        for c in h.clients
    ]
    household_rows = [
        {"household_id": h.household_id, "name": h.name, "advisor": h.advisor} for h in people
    ]
    flow_rows = _cash_flow_rows(rng, market, values)
    price_rows = _price_rows(market)
    tell("prices", 1, 1)
    position_rows = _position_rows(rng, market, lot_rows)
    break_rows = _break_rows(rng, market, [a["account_id"] for a in account_rows])
    return Firm(
        securities=_frame("securities", _security_rows()),
        households=_frame("households", household_rows),
        models=_frame("models", _model_rows()),
        accounts=_frame("accounts", account_rows),
        clients=_frame("clients", client_rows),
        lots=_frame("lots", lot_rows),
        transactions=_frame("transactions", txn_rows),
        prices=_frame("prices", price_rows),
        cash_flows=_frame("cash_flows", flow_rows),
        positions=_frame("positions", position_rows),
        breaks=_frame("breaks", break_rows),
        cash=_frame(
            "cash",
            [
                {
                    "account_id": a["account_id"],
                    "as_of": market.as_of.isoformat(),
                    "cash": a["cash"],
                    "trade_date_cash": a["cash"],
                }
                for a in account_rows
            ],
        ),  # the custodian's cash on the as-of day: the books' (nothing left to settle)
        as_of=market.as_of,
    )
