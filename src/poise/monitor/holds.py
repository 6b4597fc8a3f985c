"""Data-integrity holds: an account whose data is wrong is never traded.

Each hold names its cause; clearing the cause (a fresh price, a corrected price, a
corrected lot file, a closed break) clears the hold on the next evaluation — holds are
worked out from the data every time, never stored, so none can be left behind by
mistake. A price that cannot be used — missing, stale, or implausible (see
:mod:`poise.monitor.plausible`) — flags its security, and holds every account that
holds it or whose model would buy it.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from poise.domain.accounts import Account
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Model, resolve

__all__ = ["PRICE_CAUSES", "Hold", "HoldCause", "Holds", "find_holds", "flag_prices"]


class HoldCause(enum.StrEnum):
    STALE_PRICE = "stale_price"
    NO_PRICE = "no_price"
    IMPLAUSIBLE_PRICE = "implausible_price"
    LOTS_MISMATCH = "lots_mismatch"
    NEGATIVE_POSITION = "negative_position"
    UNKNOWN_SECURITY = "unknown_security"
    MODEL_UNRESOLVED = "model_unresolved"
    OPEN_BREAK = "open_break"


PRICE_CAUSES = frozenset(
    {HoldCause.STALE_PRICE, HoldCause.NO_PRICE, HoldCause.IMPLAUSIBLE_PRICE}
)  # holds that come from a security's price, not from the account's own data


@dataclass(frozen=True, slots=True)
class Hold:
    account_id: str
    cause: HoldCause
    detail: str


@dataclass(frozen=True, slots=True)
class Holds:
    holds: tuple[Hold, ...]
    flagged: Mapping[str, str]  # security → why its price cannot be used

    @property
    def held(self) -> frozenset[str]:
        return frozenset(h.account_id for h in self.holds)

    def of(self, account_id: str) -> list[Hold]:
        return [h for h in self.holds if h.account_id == account_id]


def _model_securities(
    accounts: Iterable[Account], models: Mapping[str, Model]
) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """Securities each model buys, and why a model does not resolve."""
    resolved: dict[str, frozenset[str]] = {}
    broken: dict[str, str] = {}
    for model_id in sorted({a.model_id for a in accounts if a.model_id is not None}):
        if model_id not in models:
            broken[model_id] = f"model {model_id} is not loaded"
            continue
        try:
            resolved[model_id] = frozenset(resolve(model_id, models).securities)
        except ValidationError as exc:
            broken[model_id] = str(exc)
    return resolved, broken


def _age(age: timedelta) -> str:
    if age % timedelta(days=1):
        return f"{age.total_seconds() / 3600:g} hours"
    return f"{age.days} day{'s' if age.days != 1 else ''}"


def flag_prices(
    needed: Iterable[str],
    known: frozenset[str],
    price_times: Mapping[str, datetime],
    *,
    now: datetime,
    max_age: timedelta,
) -> dict[str, str]:
    flagged: dict[str, str] = {}
    for security in sorted(set(needed) & known):
        taken = price_times.get(security)
        if taken is None:
            flagged[security] = "no price"
        elif now - taken > max_age:
            flagged[security] = (
                f"price of {taken.astimezone(UTC):%Y-%m-%d %H:%M} UTC is older than {_age(max_age)}"
            )
    return flagged


def _price_causes(
    flagged: dict[str, str], implausible: Mapping[str, str], needed: set[str]
) -> dict[str, HoldCause]:
    """The cause of each flagged price; ``flagged`` gains the implausible ones among
    ``needed`` that are not missing or stale already."""
    cause_of = {
        s: HoldCause.NO_PRICE if why == "no price" else HoldCause.STALE_PRICE
        for s, why in flagged.items()
    }
    for security in sorted(needed - flagged.keys()):
        if security in implausible:
            flagged[security] = implausible[security]
            cause_of[security] = HoldCause.IMPLAUSIBLE_PRICE
    return cause_of


def find_holds(
    *,
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    securities: frozenset[str],
    price_times: Mapping[str, datetime],
    implausible: Mapping[str, str],
    models: Mapping[str, Model],
    positions: Mapping[str, Mapping[str, Decimal]],
    open_breaks: Mapping[str, Sequence[str]],
    now: datetime,
    max_price_age: timedelta,
) -> Holds:
    """Every hold of every account, worked out from the data as it stands at ``now``.

    ``positions`` is each account's latest custodian snapshot (accounts without one
    are not compared); ``open_breaks`` the descriptions of each account's open breaks;
    ``implausible`` why each security's latest price is implausible
    (:func:`poise.monitor.plausible.implausible_prices`). A security's price is flagged
    when it is missing, older than ``max_price_age`` or implausible (in that order: one
    cause each); an account is held when it holds a flagged security or its model would
    buy one.
    """
    held: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for lot in lots:
        held[lot.account_id][lot.security_id] += lot.quantity
    model_buys, broken = _model_securities(accounts, models)
    needed = {s for positions_of in held.values() for s in positions_of}
    needed |= {s for buys in model_buys.values() for s in buys}
    flagged = flag_prices(needed, securities, price_times, now=now, max_age=max_price_age)
    cause_of = _price_causes(flagged, implausible, needed & securities)

    holds: list[Hold] = []
    for account in accounts:
        aid = account.account_id

        def hold(cause: HoldCause, detail: str, aid: str = aid) -> None:
            holds.append(Hold(aid, cause, detail))

        mine = held.get(aid, {})
        for security in sorted(s for s in mine if s not in securities):
            hold(
                HoldCause.UNKNOWN_SECURITY, f"lots name {security}, which the master does not know"
            )
        if account.model_id in broken:
            hold(HoldCause.MODEL_UNRESOLVED, broken[account.model_id])
        touched = set(mine) | set(model_buys.get(account.model_id or "", ()))
        for security in sorted(touched & set(flagged)):
            hold(cause_of[security], f"{security}: {flagged[security]}")
        snapshot = positions.get(aid)
        if snapshot is not None:
            for security in sorted(s for s in snapshot if s not in securities):
                hold(
                    HoldCause.UNKNOWN_SECURITY,
                    f"the custodian holds {security}, which the master does not know",
                )
            for security in sorted(s for s, q in snapshot.items() if q < 0):
                hold(
                    HoldCause.NEGATIVE_POSITION,
                    f"{security}: the custodian shows {snapshot[security]}",
                )
            for security in sorted(set(snapshot) | set(mine)):
                books, custodian = (
                    mine.get(security, Decimal(0)),
                    snapshot.get(security, Decimal(0)),
                )
                if books != custodian:
                    hold(
                        HoldCause.LOTS_MISMATCH,
                        f"{security}: lots add up to {books}, the custodian shows {custodian}",
                    )
        for description in open_breaks.get(aid, ()):
            hold(HoldCause.OPEN_BREAK, description)
    return Holds(holds=tuple(holds), flagged=dict(sorted(flagged.items())))
