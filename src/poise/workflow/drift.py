"""The drift report: every account's drift, largest first, with why it needs attention
— one shape for ``poise drift --json`` and ``GET /api/v1/drift`` — and the holds as
``poise holds --json`` and ``GET /api/v1/holds`` show them.

:func:`within` narrows the firm the monitor reads to the households a person may see,
before it is evaluated: what is out of their scope is never computed, so it cannot be
shown. Securities, prices and models are market facts and the firm's, kept whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from poise.workflow.documents import ratio

if TYPE_CHECKING:
    from poise.domain.users import Scope
    from poise.monitor.triggers import Reason
    from poise.workflow.monitor import Evaluation, FirmState

__all__ = ["DriftRow", "OutOfBand", "drift_rows", "holds_json", "within"]


@dataclass(frozen=True, slots=True)
class OutOfBand:
    """A position outside its band: its weight's drift from target, and the band."""

    security_id: str
    drift: float  # weight − target
    band: float | None  # the band's half-width; None for a holding outside the model


@dataclass(frozen=True, slots=True)
class DriftRow:
    account_id: str
    household_id: str | None
    model_id: str
    value: str  # dollars, to the cent
    max_drift: float
    out_of_band: bool
    positions: list[OutOfBand]
    cash_status: str | None  # "short", "excess" or None
    held: str | None  # the hold's cause
    hold: str | None  # the hold, in words
    reasons: list[str]  # the reasons of a request raised now
    open_request: list[str]  # the reasons of the account's requests already open

    @property
    def attention(self) -> bool:
        return bool(self.out_of_band or self.cash_status or self.held or self.reasons)

    def json(self) -> dict[str, object]:
        return {
            **{k: getattr(self, k) for k in ("account_id", "household_id", "model_id", "value")},
            "max_drift": ratio(self.max_drift),
            "out_of_band": self.out_of_band,
            "positions": [
                {"security_id": p.security_id, "drift": ratio(p.drift), "band": ratio(p.band)}
                for p in self.positions
            ],
            **{
                k: getattr(self, k)
                for k in ("cash_status", "held", "hold", "reasons", "open_request")
            },
        }


def drift_rows(
    found: Evaluation,
    open_requests: Mapping[str, frozenset[Reason]],
    *,
    model: str | None = None,
    household: str | None = None,
) -> list[DriftRow]:
    """Every account's drift, largest first, with why it needs attention."""
    import numpy as np  # noqa: PLC0415 - commands that never show drift start without it

    held = {h.account_id: h for h in reversed(found.holds.holds)}
    requested = {r.account_id: r for r in found.requests}
    names = found.book.securities
    rows: list[DriftRow] = []
    for d in found.drifts:
        block = d.block
        for row, account_id in enumerate(block.account_ids):
            if model is not None and block.layout.model_id != model:
                continue
            if household is not None and found.watch.household_of.get(account_id) != household:
                continue
            request = requested.get(account_id)
            positions = [
                OutOfBand(
                    block.layout.securities[j], float(d.drift[row, j]), float(d.width[row, j])
                )
                for j in np.flatnonzero(d.breach[row])
            ] + [
                OutOfBand(names[block.extra_security[row, e]], float(d.extra_weight[row, e]), None)
                for e in np.flatnonzero(d.extra_breach[row])
            ]
            positions.sort(key=lambda p: -abs(p.drift))
            cash = "short" if d.cash_short[row] else "excess" if d.cash_excess[row] else None
            rows.append(
                DriftRow(
                    account_id=account_id,
                    household_id=found.watch.household_of.get(account_id),
                    model_id=block.layout.model_id,
                    value=f"{d.value[row]:.2f}",
                    max_drift=float(d.max_drift[row]),
                    out_of_band=bool(d.out_of_band[row]),
                    positions=positions,
                    cash_status=cash,
                    held=held[account_id].cause.value if account_id in held else None,
                    hold=held[account_id].detail if account_id in held else None,
                    reasons=[r.value for r in request.reasons] if request else [],
                    open_request=sorted(r.value for r in open_requests.get(account_id, ())),
                )
            )
    rows.sort(key=lambda r: (-r.max_drift, r.account_id))
    return rows


def holds_json(found: Evaluation) -> dict[str, Any]:
    """The holds as ``poise holds --json`` prints them: each account held and why, and
    the securities whose price cannot be used."""
    return {
        "as_of": found.at,
        "holds": [asdict(h) for h in found.holds.holds],
        "flagged": dict(found.holds.flagged),
    }


def within(state: FirmState, scope: Scope) -> FirmState:
    """``state`` with only the accounts of households ``scope`` sees (and their lots,
    positions, breaks, cash flows, purchases and open requests); the firm's securities,
    prices and models whole. A scope of the whole firm is the state as it is."""
    if scope.firm:
        return state
    accounts = [a for a in state.accounts if scope.sees(a.household_id)]
    ids = {a.account_id for a in accounts}
    return replace(
        state,
        accounts=accounts,
        lots=[lot for lot in state.lots if lot.account_id in ids],
        positions={a: p for a, p in state.positions.items() if a in ids},
        open_breaks={a: b for a, b in state.open_breaks.items() if a in ids},
        cash_flows=[f for f in state.cash_flows if f.account_id in ids],
        purchases=[p for p in state.purchases if p.account_id in ids],
        requested={a: r for a, r in state.requested.items() if a in ids},
    )
