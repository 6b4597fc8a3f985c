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

from poise.monitor.book import Floats, Ints
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
    COMPLIANCE = "compliance"  # the holdings break a firm rule (poise comply --holdings)


@dataclass(frozen=True, slots=True)
class RebalanceRequest:
    """A request to rebalance one account (or a whole household)."""

    account_id: str | None
    household_id: str | None
    reasons: tuple[Reason, ...]
    as_of: datetime
    figures: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        reasons = "+".join(sorted(self.reasons))
        object.__setattr__(self, "request_id", f"{self.scope}/{self.as_of.date()}/{reasons}")

    @property
    def scope(self) -> str:
        return self.account_id or f"household:{self.household_id}"

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


def _figures(drift: BlockDrift, rows: Ints, max_drift: Floats) -> list[dict[str, Any]]:
    """What a person needs to see why, for each of ``rows``: value, cash, every position
    and asset class out of band. Worked out for all the rows at once: a price move can
    put thousands of accounts out of band in one tick."""
    block, layout = drift.block, drift.block.layout
    weight = np.round(drift.weight[rows], 6)
    gap = np.round(drift.drift[rows], 6)
    band = np.round(drift.width[rows], 6)
    target = np.round(layout.target, 6).tolist()
    positions: list[dict[str, Any]] = [{} for _ in range(rows.size)]
    ks, js = np.nonzero(drift.breach[rows])
    for k, j in zip(ks.tolist(), js.tolist(), strict=True):
        positions[k][layout.securities[j]] = {
            "weight": float(weight[k, j]),
            "target": target[j],
            "drift": float(gap[k, j]),
            "band": float(band[k, j]),
        }
    classes: list[dict[str, Any]] = [{} for _ in range(rows.size)]
    class_weight = np.round(drift.class_weight[rows], 6)
    class_target = np.round(layout.class_target, 6).tolist()
    ks, cs = np.nonzero(drift.class_breach[rows])
    for k, c in zip(ks.tolist(), cs.tolist(), strict=True):
        classes[k][layout.classes[c]] = {
            "weight": float(class_weight[k, c]),
            "target": class_target[c],
        }
    columns = zip(
        np.round(drift.value[rows], 2).tolist(),
        np.round(max_drift[rows], 6).tolist(),
        np.round(drift.cash_weight[rows], 6).tolist(),
        np.round(drift.cash_target[rows], 6).tolist(),
        np.round(drift.extra_weight[rows].sum(axis=1), 6).tolist(),
        np.round(block.pending_in[rows], 2).tolist(),
        np.round(block.pending_out[rows], 2).tolist(),
        strict=True,
    )
    return [
        {
            "model_id": layout.model_id,
            "value": value,
            "max_drift": worst,
            "cash_weight": cash_weight,
            "cash_target": cash_target,
            "positions": positions[k],
            "classes": classes[k],
            "outside_model": outside,
            "pending_in": pending_in,
            "pending_out": pending_out,
        }
        for k, (
            value,
            worst,
            cash_weight,
            cash_target,
            outside,
            pending_in,
            pending_out,
        ) in enumerate(columns)
    ]


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
        rows = np.array(
            [r for r in rows.tolist() if block.account_ids[r] not in held], dtype=np.int64
        )
        if not rows.size:
            continue
        for row, figures in zip(rows.tolist(), _figures(drift, rows, drift.max_drift), strict=True):
            account_id = block.account_ids[row]
            code = int(codes[row])
            reasons = tuple(r for bit, r in enumerate(FLAG_ORDER) if code >> bit & 1)
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
