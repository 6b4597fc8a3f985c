"""Rebalance requests: which accounts need attention now, why, and the figures behind it.

A request is identified by its scope, its day and its reasons, so the same finding
made twice on one day — a price event delivered again, a second tick that changes
nothing — is the same request, and consumers drop the copy. A held account gets no
request: bad data is never traded.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from poise.monitor.book import Floats
from poise.monitor.drift import BlockDrift
from poise.monitor.harvest import Opportunity

__all__ = [
    "Reason",
    "RebalanceRequest",
    "calendar_due",
    "calendar_requests",
    "manual_request",
    "requests_from_scan",
]


class Reason(enum.StrEnum):
    BAND_BREACH = "band_breach"
    CASH_SHORT = "cash_short"  # below reserve plus withdrawals asked for
    CASH_EXCESS = "cash_excess"  # above target and reserve by more than the cash band
    CASH_FLOW = "cash_flow_pending"
    HARVEST = "harvest"
    CALENDAR = "calendar"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class RebalanceRequest:
    """A request to rebalance one account (or a whole household)."""

    account_id: str | None
    household_id: str | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    figures: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return self.account_id or f"household:{self.household_id}"

    @property
    def request_id(self) -> str:
        return f"{self.scope}/{self.as_of:%Y-%m-%d}/{'+'.join(sorted(self.reasons))}"

    def to_payload(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "account_id": self.account_id,
            "household_id": self.household_id,
            "reasons": [r.value for r in self.reasons],
            "as_of": self.as_of.isoformat(),
            "figures": dict(self.figures),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> RebalanceRequest:
        return cls(
            account_id=payload["account_id"],
            household_id=payload["household_id"],
            reasons=tuple(Reason(r) for r in payload["reasons"]),
            as_of=datetime.fromisoformat(payload["as_of"]),
            figures=payload.get("figures", {}),
        )


def _r(value: float) -> float:
    return round(float(value), 6)


def _figures(drift: BlockDrift, row: int, max_drift: Floats) -> dict[str, Any]:
    """What a person needs to see why: value, cash, and every position out of band."""
    block, layout = drift.block, drift.block.layout
    out = {
        layout.securities[j]: {
            "weight": _r(drift.weight[row, j]),
            "target": _r(layout.target[j]),
            "drift": _r(drift.drift[row, j]),
            "band": _r(drift.width[row, j]),
        }
        for j in np.flatnonzero(drift.breach[row])
    }
    classes = {
        layout.classes[k]: {
            "weight": _r(drift.class_weight[row, k]),
            "target": _r(layout.class_target[k]),
        }
        for k in np.flatnonzero(drift.class_breach[row])
    }
    return {
        "model_id": layout.model_id,
        "value": round(float(drift.value[row]), 2),
        "max_drift": _r(max_drift[row]),
        "cash_weight": _r(drift.cash_weight[row]),
        "cash_target": _r(drift.cash_target[row]),
        "positions": out,
        "classes": classes,
        "outside_model": _r(drift.extra_weight[row].sum()),
        "pending_in": round(float(block.pending_in[row]), 2),
        "pending_out": round(float(block.pending_out[row]), 2),
    }


FLAG_ORDER = (
    Reason.BAND_BREACH,
    Reason.CASH_SHORT,
    Reason.CASH_EXCESS,
    Reason.CASH_FLOW,
    Reason.HARVEST,
)


def reason_codes(drift: BlockDrift, harvest_rows: Sequence[int] = ()) -> npt.NDArray[np.int64]:
    """Each account's reasons as one number: a bit per reason, in ``FLAG_ORDER``."""
    block = drift.block
    codes = (
        drift.out_of_band.astype(np.int64)
        | (drift.cash_short.astype(np.int64) << 1)
        | (drift.cash_excess.astype(np.int64) << 2)
        | (((block.pending_in > 0) | (block.pending_out > 0)).astype(np.int64) << 3)
    )
    if len(harvest_rows):
        codes[np.asarray(harvest_rows, dtype=np.int64)] |= 1 << 4
    return codes


def requests_from_scan(
    drifts: Sequence[BlockDrift],
    *,
    household_of: Mapping[str, str],
    held: frozenset[str],
    harvest: Mapping[tuple[int, int], Sequence[Opportunity]],
    as_of: datetime,
    previous: Sequence[npt.NDArray[np.int64]] | None = None,
) -> list[RebalanceRequest]:
    """Requests for every account of ``drifts`` that needs one.

    ``harvest`` holds the opportunities of an account by (block number, row) of
    ``drifts``. ``previous``, one array per drift, holds the reasons (as codes)
    already requested and still open for each row: an account is asked for again only
    when a reason appears that is not requested yet — a drift that crosses its band
    edge back and forth makes one request, not one per crossing.
    """
    found = []
    for number, drift in enumerate(drifts):
        block = drift.block
        harvest_rows = [r for (b, r), found in harvest.items() if b == number and found]
        codes = reason_codes(drift, harvest_rows)
        wanted = codes != 0
        if previous is not None:  # only a reason not yet requested today makes a request
            wanted &= (codes & ~previous[number]) != 0
        rows = np.flatnonzero(wanted)
        if not rows.size:
            continue
        max_drift = drift.max_drift
        for row in rows.tolist():
            account_id = block.account_ids[row]
            if account_id in held:
                continue
            code = int(codes[row])
            reasons = tuple(r for bit, r in enumerate(FLAG_ORDER) if code >> bit & 1)
            figures = _figures(drift, row, max_drift)
            opportunities = harvest.get((number, row), ())
            if opportunities:
                figures["harvest"] = [
                    {"lot_id": o.lot_id, "security_id": o.security_id, "loss": str(o.loss)}
                    for o in opportunities
                ]
            found.append(
                RebalanceRequest(
                    account_id=account_id,
                    household_id=household_of.get(account_id),
                    reasons=reasons,
                    as_of=as_of,
                    figures=figures,
                )
            )
    return found


CALENDARS = {"monthly": 1, "quarterly": 3, "semiannually": 6, "annually": 12}


def calendar_due(previous: date | None, current: date, *, every: str) -> bool:
    """True when ``current`` is in a later period than ``previous`` (periods start in
    January: quarters are Jan–Mar, Apr–Jun, …)."""
    months = CALENDARS[every]

    def period(day: date) -> tuple[int, int]:
        return day.year, (day.month - 1) // months

    return previous is not None and period(current) != period(previous)


def calendar_requests(
    account_ids: Sequence[str],
    *,
    household_of: Mapping[str, str],
    held: frozenset[str],
    as_of: datetime,
    every: str,
) -> list[RebalanceRequest]:
    return [
        RebalanceRequest(a, household_of.get(a), (Reason.CALENDAR,), as_of, {"calendar": every})
        for a in account_ids
        if a not in held
    ]


def manual_request(
    *, account_id: str | None, household_id: str | None, as_of: datetime, note: str
) -> RebalanceRequest:
    return RebalanceRequest(account_id, household_id, (Reason.MANUAL,), as_of, {"note": note})
