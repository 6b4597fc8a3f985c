"""The monitor's shell: load the firm, evaluate it, and keep watching as prices move."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.models import Model
from poise.domain.securities import Security
from poise.domain.transactions import CashFlow
from poise.monitor.book import BandPolicy, Book, build_book
from poise.monitor.drift import BlockDrift, scan
from poise.monitor.harvest import WASH_WINDOW, Purchase
from poise.monitor.holds import PRICE_CAUSES, Holds, find_holds
from poise.monitor.plausible import (
    LOOKBACK,
    PriceCheck,
    Recent,
    implausible_prices,
    recent_prices,
)
from poise.monitor.triggers import Reason, RebalanceRequest
from poise.monitor.watch import Watch, WatchSettings
from poise.optimize.history import PriceHistory
from poise.settings import Settings
from poise.store import repo

__all__ = [
    "Evaluation",
    "FirmState",
    "evaluate",
    "find_implausible",
    "load_state",
    "price_check",
    "watch_settings",
]


@dataclass(frozen=True, slots=True)
class FirmState:
    """Everything the monitor needs, read from the store in one go."""

    accounts: Sequence[Account]
    lots: Sequence[TaxLot]
    models: Mapping[str, Model]
    securities: Mapping[str, Security]
    prices: Mapping[str, Decimal]
    price_times: Mapping[str, datetime]
    history: PriceHistory  # every priced security's daily prices over the price check's LOOKBACK
    positions: Mapping[str, Mapping[str, Decimal]]
    open_breaks: Mapping[str, Sequence[str]]
    cash_flows: Sequence[CashFlow]
    purchases: Sequence[Purchase]
    requested: Mapping[str, frozenset[Reason]]  # reasons of each account's open requests


def load_state(engine: sa.Engine, *, as_of: datetime) -> FirmState:
    """The firm as the store has it, with prices as they stood at ``as_of``."""
    with engine.connect() as connection:
        latest = repo.latest_prices(connection, as_of=as_of)
        history = repo.price_history(  # one read for every security, not one each
            connection, security_ids=sorted(latest), since=as_of - LOOKBACK, until=as_of
        )
        return FirmState(
            accounts=repo.accounts(connection),
            lots=repo.lots(connection),
            models=repo.models(connection),
            securities=repo.securities(connection),
            prices={s: p for s, (p, _) in latest.items()},
            price_times={s: at for s, (_, at) in latest.items()},
            history=history,
            positions=repo.latest_positions(connection),
            open_breaks=repo.open_breaks(connection),
            cash_flows=repo.cash_flows(connection),
            purchases=[
                Purchase(a, s, d)
                for a, s, d in repo.buys_since(connection, since=as_of.date() - WASH_WINDOW)
            ],
            requested={
                account: frozenset(Reason(r) for r in reasons if r in Reason.__members__.values())
                for account, reasons in repo.open_request_reasons(connection).items()
            },
        )


def price_check(settings: Settings) -> PriceCheck:
    """The price check as the settings have it: the monitor and the rebalancer use one."""
    return PriceCheck(
        on=settings.price_check,
        sigmas=settings.price_move_sigmas,
        floor=settings.price_move_floor,
        jump=settings.price_jump_factor,
        ceiling=settings.price_ceiling,
    )


def watch_settings(settings: Settings, *, bands: str | None = None) -> WatchSettings:
    return WatchSettings(
        policy=BandPolicy.preset(bands or settings.band_preset),
        max_price_age=timedelta(days=settings.max_price_age_days),
        min_loss=settings.harvest_min_loss,
        min_loss_fraction=settings.harvest_min_loss_fraction,
        price_check=price_check(settings),
    )


def find_implausible(
    *,
    prices: Mapping[str, Decimal],
    price_times: Mapping[str, datetime],
    history: PriceHistory,
    check: PriceCheck,
) -> tuple[Recent, dict[str, str]]:
    """Each security's recent prices, and the latest prices that are implausible.

    The store keeps no corporate actions, so no jump is explained by one: a split
    must come with a corporate-action record (none can be loaded yet) or it holds.
    """
    recent = recent_prices(
        security_ids=history.security_ids,
        days=history.days,
        closes=history.prices,
        latest_days={s: at.date() for s, at in price_times.items()},
        check=check,
    )
    found = implausible_prices(
        prices=prices, price_times=price_times, recent=recent, check=check, factors={}
    )
    return recent, found


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The whole firm evaluated at one time."""

    at: datetime
    book: Book
    drifts: tuple[BlockDrift, ...]
    holds: Holds
    watch: Watch
    requests: Sequence[RebalanceRequest]


def evaluate(state: FirmState, *, at: datetime, settings: WatchSettings) -> Evaluation:
    """Drift, holds and requests for every account at ``at``; and a watch to go on with."""
    book = build_book(
        accounts=state.accounts,
        lots=state.lots,
        models=state.models,
        asset_class={s.security_id: s.asset_class for s in state.securities.values()},
        cash_flows=state.cash_flows,
        policy=settings.policy,
    )
    recent, implausible = find_implausible(
        prices=state.prices,
        price_times=state.price_times,
        history=state.history,
        check=settings.price_check,
    )
    holds = find_holds(
        accounts=state.accounts,
        lots=state.lots,
        securities=frozenset(state.securities),
        price_times=state.price_times,
        implausible=implausible,
        models=state.models,
        positions=state.positions,
        open_breaks=state.open_breaks,
        now=at,
        max_price_age=settings.max_price_age,
    )
    watch = Watch(
        book=book,
        prices=state.prices,
        price_times=state.price_times,
        accounts=state.accounts,
        lots=state.lots,
        securities=state.securities,
        purchases=state.purchases,
        other_holds=frozenset(h.account_id for h in holds.holds if h.cause not in PRICE_CAUSES),
        settings=settings,
        requested=state.requested,
        recent=recent,
        implausible=implausible,
    )
    drifts = scan(book, watch.vector)
    return Evaluation(
        at=at,
        book=book,
        drifts=drifts,
        holds=holds,
        watch=watch,
        requests=watch.requests_for(drifts, at),
    )
