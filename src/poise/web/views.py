"""What each page shows, read from the store and the monitor: plain data for the
templates, within the reader's scope."""

from __future__ import annotations

import json
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poise.domain.accounts import Account, Household
from poise.domain.lots import TaxLot
from poise.domain.models import Band, position_band, resolve
from poise.domain.money import ZERO, cents
from poise.domain.relief import is_long_term
from poise.domain.transactions import Transaction
from poise.domain.users import Scope
from poise.monitor.book import BandPolicy
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.store.repo import pages

if TYPE_CHECKING:
    from poise.workflow.monitor import Evaluation

__all__ = ["AccountView", "FirmView", "HouseholdView", "account_view", "firm_view",
           "household_of_account", "household_view", "latest_price_time", "recent_transactions",
           "script_json"]  # fmt: skip

TOP = 15  # most drifted accounts listed on the firm page
HOVER = "%{text}: tracking error %{x:.2f}%, tax %{y:,.0f}<extra></extra>"


def script_json(figure: Any) -> str:
    """A chart's figure as JSON to set inside a ``<script>``: no ``<`` in it, so that no
    text of the data (a model's name, a security's) can close the script."""
    return json.dumps(figure).replace("<", "\\u003c")


def latest_price_time(connection: sa.Connection) -> datetime:
    """When the newest price was taken: the firm is shown as of then (a firm whose
    feed stopped is shown as it stood, its holds saying why)."""
    newest = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
    if not isinstance(newest, datetime):
        return datetime.now(UTC)
    return newest if newest.tzinfo else newest.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Drifted:
    account_id: str
    household_id: str
    model_id: str
    value: Decimal
    drift: float  # largest |weight − target|, a fraction
    out_of_band: bool
    held: str  # why it is held ("" if not)


@dataclass(frozen=True, slots=True)
class FirmView:
    as_of: datetime
    households: int
    accounts: int
    aum: Decimal
    by_model: list[tuple[str, int, Decimal]]  # model, accounts, value
    out_of_band: int
    holds: list[tuple[str, int]]  # cause, accounts
    requests: list[tuple[str, int]]  # reason, accounts with an open request for it
    harvest: int  # accounts with a loss worth harvesting, as requested
    most_drifted: list[Drifted]
    histogram: str  # a plotly figure, as JSON


EVALUATIONS_KEPT = 4  # the firm's evaluations a server process keeps, the latest used


_evaluations: OrderedDict[tuple[str, datetime, int], Evaluation] = OrderedDict()
_evaluations_lock = threading.Lock()


def firm_evaluation(engine: sa.Engine, *, at: datetime, loaded: int) -> Evaluation:
    """The whole firm evaluated at ``at`` — drift, holds, harvests — as the monitor does,
    kept while nothing is loaded into the store (``loaded``: the latest file load's id):
    the book changes only through a load, and evaluating it is most of a firm page's
    time. Every user's page shares it, narrowed to what they see."""
    from poise.workflow.monitor import evaluate, load_state, watch_settings  # noqa: PLC0415

    key = (str(engine.url), at, loaded)
    with _evaluations_lock:
        kept = _evaluations.get(key)
        if kept is not None:
            _evaluations.move_to_end(key)
            return kept
    evaluation = evaluate(load_state(engine, as_of=at), at=at, settings=watch_settings(Settings()))
    with _evaluations_lock:
        _evaluations[key] = evaluation
        while len(_evaluations) > EVALUATIONS_KEPT:
            _evaluations.popitem(last=False)
    return evaluation


def firm_view(engine: sa.Engine, scope: Scope, *, as_of: datetime | None = None) -> FirmView:
    with engine.connect() as connection:
        at = as_of or latest_price_time(connection)
        accounts = {a.account_id: a for a in repo.accounts(connection)}
        households = [h for h in repo.households(connection) if scope.sees(h.household_id)]
        open_requests = repo.open_request_reasons(connection)
        loaded = repo.latest_load_id(connection)
    mine = {i for i, a in accounts.items() if scope.sees(a.household_id)}
    evaluation = firm_evaluation(engine, at=at, loaded=loaded)
    held: dict[str, str] = {}
    for h in evaluation.holds.holds:
        if h.account_id in mine:
            held.setdefault(h.account_id, h.cause.value)
    rows: list[Drifted] = []
    by_model: dict[str, list[Decimal]] = defaultdict(list)
    for block in evaluation.drifts:
        model_id = block.block.layout.model_id
        for n, account_id in enumerate(block.block.account_ids):
            if account_id not in mine:
                continue
            value = cents(Decimal(repr(float(block.value[n]))))
            by_model[model_id].append(value)
            rows.append(
                Drifted(
                    account_id=account_id,
                    household_id=accounts[account_id].household_id,
                    model_id=model_id,
                    value=value,
                    drift=float(block.max_drift[n]),
                    out_of_band=bool(block.out_of_band[n]),
                    held=held.get(account_id, ""),
                )
            )
    reasons: Counter[str] = Counter()
    for account_id, why in open_requests.items():
        if account_id in mine:
            reasons.update(r.value if hasattr(r, "value") else str(r) for r in why)
    ranked = sorted((r for r in rows if not r.held), key=lambda r: -r.drift)[:TOP]
    histogram = {
        "data": [{"type": "histogram", "x": [round(r.drift * 100, 2) for r in rows],
                  "nbinsx": 30, "marker": {"color": "#1f5f8b"},
                  "hovertemplate": "%{x} points: %{y} accounts<extra></extra>"}],
        "layout": {"margin": {"t": 10, "r": 10, "b": 40, "l": 50}, "height": 260,
                   "xaxis": {"title": {"text": "largest drift, weight points"}},
                   "yaxis": {"title": {"text": "accounts"}}, "bargap": 0.05},
    }  # fmt: skip
    return FirmView(
        as_of=at,
        households=len(households),
        accounts=len(rows),
        aum=sum((r.value for r in rows), ZERO),
        by_model=sorted(
            ((m, len(v), sum(v, ZERO)) for m, v in by_model.items()), key=lambda x: -x[2]
        ),
        out_of_band=sum(1 for r in rows if r.out_of_band and not r.held),
        holds=sorted(Counter(held.values()).items(), key=lambda x: -x[1]),
        requests=sorted(reasons.items(), key=lambda x: -x[1]),
        harvest=reasons.get("harvest", 0),
        most_drifted=ranked,
        histogram=script_json(histogram),
    )


@dataclass(frozen=True, slots=True)
class Position:
    security_id: str
    name: str
    asset_class: str
    quantity: Decimal
    price: Decimal | None
    value: Decimal
    weight: float
    target: float
    band: float | None  # half-width, a fraction; None: no band
    outside: bool


@dataclass(frozen=True, slots=True)
class LotRow:
    lot: TaxLot
    price: Decimal | None
    value: Decimal | None
    gain: Decimal | None
    term: str


@dataclass(frozen=True, slots=True)
class AccountView:
    account: Account
    household: Household
    value: Decimal
    cash: Decimal
    cash_weight: float
    cash_target: float
    positions: list[Position]
    lots: list[LotRow]
    unrealised: Decimal
    chart: str  # weight against target, a plotly figure as JSON
    recent: list[Transaction] = field(default_factory=list)  # the latest first


RECENT = 20  # transactions an account's or a household's page lists, the latest first


def recent_transactions(
    connection: sa.Connection, *, account_id: str | None = None, household_id: str | None = None
) -> list[Transaction]:
    """The latest :data:`RECENT` transactions of an account or a household, latest first
    (the page's caller has checked who may see them)."""
    every, firm = 1, Scope(firm=True)
    total = pages.transactions_page(
        connection,
        scope=firm,
        account_id=account_id,
        household_id=household_id,
        limit=every,
        offset=0,
    ).total
    found = pages.transactions_page(connection, scope=firm, account_id=account_id,
                                    household_id=household_id, limit=RECENT,
                                    offset=max(total - RECENT, 0))  # fmt: skip
    return found.items[::-1]


def _positions(
    account: Account, lots: list[TaxLot], prices: dict[str, Decimal], securities: dict[str, Any],
    models: dict[str, Any],
) -> tuple[list[Position], Decimal, float]:  # fmt: skip
    held: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for lot in lots:
        held[lot.security_id] += lot.quantity
    values = {s: q * prices[s] for s, q in held.items() if s in prices}
    total = account.cash + sum(values.values(), ZERO)
    model = resolve(account.model_id, models) if account.model_id in models else None
    targets = dict(model.securities) if model is not None else {}
    out = []
    for s in sorted(set(held) | set(targets)):
        value = values.get(s, ZERO)
        weight = float(value / total) if total > 0 else 0.0
        target = float(targets.get(s, ZERO))
        width = None
        if model is not None:
            band = position_band(model, s, firm=_firm_band()).width(targets.get(s, ZERO))
            width = None if band is None else float(band)
        security = securities.get(s)
        out.append(
            Position(
                security_id=s,
                name=security.name if security else s,
                asset_class=security.asset_class if security else "",
                quantity=held.get(s, ZERO),
                price=prices.get(s),
                value=cents(value),
                weight=weight,
                target=target,
                band=width,
                outside=width is not None and abs(weight - target) > width,
            )
        )
    cash_target = float(model.cash) if model is not None else 0.0
    return out, total, cash_target


def _firm_band() -> Band:
    """The firm's default band (POISE_BAND_PRESET)."""
    return BandPolicy.preset(Settings().band_preset).band()


def household_of_account(engine: sa.Engine, account_id: str) -> str:
    """The household an account belongs to (a :class:`NotFoundError` for none)."""
    with engine.connect() as connection:
        return repo.account(connection, account_id=account_id).household_id


def account_view(engine: sa.Engine, account_id: str, *, today: date | None = None) -> AccountView:
    today = today or datetime.now(UTC).date()
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        household = repo.household(connection, household_id=account.household_id)
        lots = repo.account_lots(connection, account_id=account_id)
        securities = repo.securities(connection)
        models = repo.models(connection)
        model_id = account.model_id
        targets = resolve(model_id, models).securities if model_id in models else {}
        # The prices it shows: of what it holds, and of what its model would have it hold.
        wanted = {lot.security_id for lot in lots} | set(targets)
        latest = repo.latest_prices(connection, security_ids=sorted(wanted))
        prices = {s: p for s, (p, _) in latest.items()}
        recent = recent_transactions(connection, account_id=account_id)
    positions, total, cash_target = _positions(account, lots, prices, securities, models)
    rows = []
    for lot in lots:
        price = prices.get(lot.security_id)
        value = None if price is None else lot.quantity * price
        rows.append(
            LotRow(
                lot=lot, price=price, value=None if value is None else cents(value),
                gain=None if value is None else cents(value - lot.basis),
                term="long" if is_long_term(lot.held_since, today) else "short",
            )
        )  # fmt: skip
    chart = {
        "data": [
            {"type": "bar", "name": "held", "x": [p.security_id for p in positions],
             "y": [round(p.weight * 100, 2) for p in positions], "marker": {"color": "#1f5f8b"}},
            {"type": "bar", "name": "target", "x": [p.security_id for p in positions],
             "y": [round(p.target * 100, 2) for p in positions], "marker": {"color": "#c9d6df"}},
        ],
        "layout": {"barmode": "group", "height": 260,
                   "margin": {"t": 10, "r": 10, "b": 40, "l": 50},
                   "yaxis": {"title": {"text": "% of the account"}}},
    }  # fmt: skip
    return AccountView(
        account=account,
        household=household,
        value=cents(total),
        cash=account.cash,
        cash_weight=float(account.cash / total) if total > 0 else 0.0,
        cash_target=cash_target,
        positions=positions,
        lots=rows,
        unrealised=sum((r.gain for r in rows if r.gain is not None), ZERO),
        chart=script_json(chart),
        recent=recent,
    )


@dataclass(frozen=True, slots=True)
class HouseholdView:
    household: Household
    accounts: list[tuple[Account, Decimal]]  # each with its value
    value: Decimal
    by_class: list[tuple[str, Decimal, float]]  # asset class, value, weight
    unrealised: Decimal
    chart: str
    positions: list[tuple[str, str, Decimal, Decimal]] = field(default_factory=list)
    recent: list[Transaction] = field(default_factory=list)  # the latest first


def household_view(engine: sa.Engine, household_id: str) -> HouseholdView:
    with engine.connect() as connection:
        household = repo.household(connection, household_id=household_id)
        accounts = repo.accounts(connection, household_id=household_id)
        recent = recent_transactions(connection, household_id=household_id)
        lots = repo.lots(connection, account_ids=[a.account_id for a in accounts])
        prices = {s: p for s, (p, _) in repo.latest_prices(connection).items()}
        securities = repo.securities(connection)
    values: dict[str, Decimal] = {a.account_id: a.cash for a in accounts}
    by_class: dict[str, Decimal] = defaultdict(lambda: ZERO)
    held: dict[str, Decimal] = defaultdict(lambda: ZERO)
    unrealised = ZERO
    for lot in lots:
        price = prices.get(lot.security_id)
        if price is None:
            continue
        value = lot.quantity * price
        values[lot.account_id] += value
        security = securities.get(lot.security_id)
        by_class[security.asset_class if security else "other"] += value
        held[lot.security_id] += value
        unrealised += value - lot.basis
    by_class["cash"] += sum((a.cash for a in accounts), ZERO)
    total = sum(values.values(), ZERO)
    classes = [(c, cents(v), float(v / total) if total > 0 else 0.0)
               for c, v in sorted(by_class.items(), key=lambda x: -x[1])]  # fmt: skip
    chart = {
        "data": [{"type": "pie", "labels": [c.replace("_", " ") for c, _, _ in classes],
                  "values": [float(v) for _, v, _ in classes], "hole": 0.45,
                  "textinfo": "label+percent"}],
        "layout": {"height": 260, "margin": {"t": 10, "r": 10, "b": 10, "l": 10},
                   "showlegend": False},
    }  # fmt: skip
    positions = [
        (s, securities[s].name if s in securities else s, cents(v), cents(v / total * 100))
        for s, v in sorted(held.items(), key=lambda x: -x[1])
    ] if total > 0 else []  # fmt: skip
    return HouseholdView(
        household=household,
        accounts=[(a, cents(values[a.account_id])) for a in accounts],
        value=cents(total),
        by_class=classes,
        unrealised=cents(unrealised),
        chart=script_json(chart),
        positions=positions,
        recent=recent,
    )


@dataclass(frozen=True, slots=True)
class ProposalView:
    """A kept proposal, in the one JSON shape of a proposal, and — right after a
    rebalance — every scenario's figures beside it."""

    proposal: dict[str, Any]
    account_id: str
    household_id: str | None
    scenarios: list[dict[str, Any]]  # name, about, figures (empty: only the kept one)
    chart: str  # tracking error after against estimated tax, by scenario (plotly JSON)
    risk_model: str


def proposal_view(engine: sa.Engine, proposal_id: str) -> ProposalView:
    from poise.workflow.documents import proposal_json  # noqa: PLC0415

    with engine.connect() as connection:
        record = repo.proposal(connection, proposal_id=proposal_id)
        account = repo.account(connection, account_id=str(record["account_id"]))
    document = proposal_json(record)
    return ProposalView(document, account.account_id, account.household_id, [], "", "")


def rebalance_view(
    engine: sa.Engine, account_id: str, prepared_by: str | None = None
) -> ProposalView:
    """Rebalance the account now: every scenario, the first kept (see
    :func:`poise.workflow.rebalance.propose_scenarios`), prepared by the user
    ``prepared_by``."""
    from poise.optimize.scenarios import tradeoffs  # noqa: PLC0415
    from poise.workflow.documents import proposal_json  # noqa: PLC0415
    from poise.workflow.rebalance import propose_scenarios  # noqa: PLC0415

    with engine.connect() as connection:
        at = latest_price_time(connection)
    proposed = propose_scenarios(
        engine, account_id=account_id, as_of=at, settings=Settings(), prepared_by=prepared_by
    )
    with engine.connect() as connection:
        record = repo.proposal(connection, proposal_id=proposed.proposal_id)
        account = repo.account(connection, account_id=account_id)
    rows = tradeoffs(proposed.results)
    scenarios = [
        {"name": s.name, "about": s.about, "method": s.method, "row": row, "kept": n == 0}
        for n, ((s, _), row) in enumerate(zip(proposed.results, rows, strict=True))
    ]
    points = [r for r in rows if r.tracking_after is not None]
    chart = {
        "data": [{"type": "scatter", "mode": "markers+text",
                  "x": [float(r.tracking_after or 0) * 100 for r in points],
                  "y": [float(r.estimated_tax) for r in points],
                  "text": [r.scenario for r in points], "textposition": "top center",
                  "marker": {"size": 12, "color": "#1f5f8b"},
                  "hovertemplate": HOVER}],
        "layout": {"height": 300, "margin": {"t": 20, "r": 20, "b": 50, "l": 70},
                   "xaxis": {"title": {"text": "tracking error after, % a year"}},
                   "yaxis": {"title": {"text": "estimated tax, dollars"}}},
    }  # fmt: skip
    return ProposalView(
        proposal=proposal_json(record),
        account_id=account.account_id,
        household_id=account.household_id,
        scenarios=scenarios,
        chart=script_json(chart),
        risk_model=proposed.risk_model,
    )
