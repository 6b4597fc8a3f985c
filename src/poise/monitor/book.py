"""The firm as arrays: accounts grouped by model, positions in the model's slots.

Accounts on the same model share a layout: slot *j* of every account in the block is
the same security, so weights, drift and bands are whole-array operations. What an
account holds outside its model sits in a few extra slots per account (target 0).

This is the one boundary where Decimal quantities and prices become float64: the
monitor decides *whether* an account needs attention; the amounts it trades are
worked out exactly later.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.accounts import Account
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ResolvedModel, position_band, resolve
from poise.domain.transactions import CashFlow

__all__ = ["AccountBlock", "BandPolicy", "Book", "ModelLayout", "build_book", "lay_out"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
NONE = math.nan  # no band


def _f(value: Decimal | None) -> float:
    return NONE if value is None else float(value)


@dataclass(frozen=True, slots=True)
class BandPolicy:
    """The firm's default band, for positions whose model and account set none.

    ``BandPolicy.preset("5/25")``: ±5 points for targets of 20% or more, ±25% of the
    target below (the narrower of the two). ``BandPolicy.preset("none")``: no band,
    so a position without its own band never breaches.
    """

    absolute: float = NONE
    relative: float = NONE

    def band(self) -> Band:
        """The same band in Decimal, as the domain states it."""

        def d(value: float) -> Decimal | None:
            return None if math.isnan(value) else Decimal(str(value))

        return Band(d(self.absolute), d(self.relative))

    @classmethod
    def preset(cls, name: str) -> BandPolicy:
        if name not in BAND_PRESETS:
            raise ValidationError(f"no band preset {name!r}; presets: {', '.join(BAND_PRESETS)}")
        absolute, relative = BAND_PRESETS[name]
        return cls(absolute, relative)


BAND_PRESETS: Mapping[str, tuple[float, float]] = {"5/25": (0.05, 0.25), "none": (NONE, NONE)}


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """A resolved model in slots: targets, band pairs, asset classes, cash."""

    model_id: str
    securities: tuple[str, ...]
    target: Floats  # (T,)
    band_abs: Floats  # (T,) NaN: no absolute band
    band_rel: Floats  # (T,)
    classes: tuple[str, ...]  # (C,)
    class_of: Ints  # (T,) index into classes
    class_target: Floats  # (C,)
    class_abs: Floats  # (C,)
    class_rel: Floats  # (C,)
    cash_target: float
    cash_abs: float
    cash_rel: float
    default_abs: float  # the band of a holding outside the model (target 0)
    default_rel: float


def _pair(band: Band) -> tuple[float, float]:
    return _f(band.absolute), _f(band.relative)


def lay_out(
    resolved: ResolvedModel, *, asset_class: Mapping[str, str], policy: BandPolicy
) -> ModelLayout:
    """Slots for a resolved model. A position's band is its own, else the model's
    default row, else the firm's default; the pair is taken whole from one level."""
    securities = tuple(sorted(resolved.securities))
    firm = policy.band()
    fallback = _pair(position_band(resolved, "", firm=firm))  # a holding outside the model
    pairs = [_pair(position_band(resolved, s, firm=firm)) for s in securities]
    classes = tuple(sorted({asset_class.get(s, "") for s in securities}))
    class_of = np.array([classes.index(asset_class.get(s, "")) for s in securities], dtype=np.int64)
    target = np.array([float(resolved.securities[s]) for s in securities], dtype=np.float64)
    class_target = np.bincount(class_of, weights=target, minlength=len(classes)).astype(np.float64)
    class_pairs = [_pair(resolved.class_bands.get(c, Band())) for c in classes]
    cash_pair = (
        _pair(resolved.cash_band) if resolved.cash_band.width(Decimal(1)) is not None else fallback
    )
    return ModelLayout(
        model_id=resolved.model_id,
        securities=securities,
        target=target,
        band_abs=np.array([p[0] for p in pairs], dtype=np.float64),
        band_rel=np.array([p[1] for p in pairs], dtype=np.float64),
        classes=classes,
        class_of=class_of,
        class_target=class_target,
        class_abs=np.array([p[0] for p in class_pairs], dtype=np.float64),
        class_rel=np.array([p[1] for p in class_pairs], dtype=np.float64),
        cash_target=float(resolved.cash),
        cash_abs=cash_pair[0],
        cash_rel=cash_pair[1],
        default_abs=fallback[0],
        default_rel=fallback[1],
    )


@dataclass(frozen=True, slots=True)
class AccountBlock:
    """The accounts on one model, as arrays with one row per account."""

    layout: ModelLayout
    account_ids: tuple[str, ...]  # (n,)
    slot_security: Ints  # (T,) index into Book.securities
    quantity: Floats  # (n, T) shares of each model slot
    extra_security: Ints  # (n, E) index into Book.securities, -1 for none
    extra_quantity: Floats  # (n, E)
    cash: Floats  # (n,)
    reserve_amount: Floats  # (n,)
    reserve_fraction: Floats  # (n,)
    pending_in: Floats  # (n,) deposits asked for, not yet arrived
    pending_out: Floats  # (n,) withdrawals asked for, not yet paid
    band_abs: Floats  # (n,) account override, NaN: none
    band_rel: Floats  # (n,)

    @property
    def size(self) -> int:
        return len(self.account_ids)


@dataclass(frozen=True, slots=True)
class Book:
    """The firm: its securities (one price slot each) and its blocks of accounts."""

    securities: tuple[str, ...]
    asset_class: tuple[str, ...]  # (m,) of each security
    blocks: tuple[AccountBlock, ...]
    unmodelled: tuple[str, ...]  # accounts with no model, or one that does not resolve

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.securities)}


def _layouts(
    accounts: Sequence[Account],
    models: Mapping[str, Model],
    *,
    asset_class: Mapping[str, str],
    policy: BandPolicy,
) -> dict[str, ModelLayout]:
    """A layout for every model an account uses and that resolves."""
    layouts: dict[str, ModelLayout] = {}
    for mid in sorted({a.model_id for a in accounts if a.model_id is not None} & set(models)):
        with contextlib.suppress(ValidationError):  # unresolvable: the account is held
            layouts[mid] = lay_out(resolve(mid, models), asset_class=asset_class, policy=policy)
    return layouts


def _block(
    layout: ModelLayout,
    members: Sequence[Account],
    *,
    held: Mapping[str, Mapping[str, Decimal]],
    index: Mapping[str, int],
    flows_in: Mapping[str, Decimal],
    flows_out: Mapping[str, Decimal],
) -> AccountBlock:
    slot = {s: j for j, s in enumerate(layout.securities)}
    quantity = np.zeros((len(members), len(layout.securities)))
    extras: list[list[tuple[int, float]]] = []
    for row, account in enumerate(members):
        outside = []
        for security, shares in held.get(account.account_id, {}).items():
            if security in slot:
                quantity[row, slot[security]] = float(shares)
            elif shares:
                outside.append((index[security], float(shares)))
        extras.append(outside)
    width = max((len(e) for e in extras), default=0)
    extra_security = np.full((len(members), width), -1, dtype=np.int64)
    extra_quantity = np.zeros((len(members), width))
    for row, outside in enumerate(extras):
        for k, (security_index, amount) in enumerate(outside):
            extra_security[row, k] = security_index
            extra_quantity[row, k] = amount
    return AccountBlock(
        layout=layout,
        account_ids=tuple(a.account_id for a in members),
        slot_security=np.array([index[s] for s in layout.securities], dtype=np.int64),
        quantity=quantity,
        extra_security=extra_security,
        extra_quantity=extra_quantity,
        cash=np.array([float(a.cash) for a in members]),
        reserve_amount=np.array([float(a.reserve.amount) for a in members]),
        reserve_fraction=np.array([float(a.reserve.fraction) for a in members]),
        pending_in=np.array([float(flows_in.get(a.account_id, 0)) for a in members]),
        pending_out=np.array([float(flows_out.get(a.account_id, 0)) for a in members]),
        band_abs=np.array([_f(a.tolerance.absolute) for a in members]),
        band_rel=np.array([_f(a.tolerance.relative) for a in members]),
    )


def build_book(
    *,
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    models: Mapping[str, Model],
    asset_class: Mapping[str, str],
    cash_flows: Sequence[CashFlow] = (),
    policy: BandPolicy,
) -> Book:
    """Lay the firm out as arrays. Accounts whose model is missing or does not
    resolve are listed in ``unmodelled`` (the holds say why)."""
    held: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for lot in lots:
        held[lot.account_id][lot.security_id] += lot.quantity
    flows_in: dict[str, Decimal] = defaultdict(Decimal)
    flows_out: dict[str, Decimal] = defaultdict(Decimal)
    for flow in cash_flows:
        (flows_in if flow.signed > 0 else flows_out)[flow.account_id] += flow.amount

    layouts = _layouts(accounts, models, asset_class=asset_class, policy=policy)
    by_model: dict[str, list[Account]] = defaultdict(list)
    unmodelled = []
    for account in accounts:
        if account.model_id is not None and account.model_id in layouts:
            by_model[account.model_id].append(account)
        else:
            unmodelled.append(account.account_id)
    names = sorted(
        {s for layout in layouts.values() for s in layout.securities}
        | {s for positions in held.values() for s in positions}
    )
    index = {s: i for i, s in enumerate(names)}
    blocks = tuple(
        _block(
            layouts[mid],
            members,
            held=held,
            index=index,
            flows_in=flows_in,
            flows_out=flows_out,
        )
        for mid, members in sorted(by_model.items())
    )
    return Book(
        securities=tuple(names),
        asset_class=tuple(asset_class.get(s, "") for s in names),
        blocks=blocks,
        unmodelled=tuple(unmodelled),
    )
