"""Model portfolios: target weights, bands, and models made of other models."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO

__all__ = [
    "Band",
    "Model",
    "ModelTarget",
    "ResolvedModel",
    "TargetKind",
    "position_band",
    "resolve",
]

ONE = Decimal(1)


class TargetKind(enum.StrEnum):
    SECURITY = "security"
    MODEL = "model"  # a sleeve: another model, held at a weight
    CASH = "cash"
    ASSET_CLASS = "asset_class"  # carries a band for an asset class, no weight of its own
    DEFAULT = "default"  # carries the band of every position that has none of its own


_NO_ID = frozenset({TargetKind.CASH, TargetKind.DEFAULT})
_BANDS_ONLY = frozenset({TargetKind.ASSET_CLASS, TargetKind.DEFAULT})


@dataclass(frozen=True, slots=True)
class Band:
    """A tolerance band around a target weight.

    ``absolute`` is in weight points (0.05 is ±5 points), ``relative`` a fraction of
    the target (0.25 is ±25% of it). With both, the narrower applies — so
    ``Band(Decimal("0.05"), Decimal("0.25"))`` is the 5/25 rule.
    """

    absolute: Decimal | None = None
    relative: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("absolute", "relative"):
            value = getattr(self, name)
            if value is not None and value < ZERO:
                raise ValidationError(f"band {name} cannot be negative")

    def width(self, target: Decimal) -> Decimal | None:
        """Half-width of the band around ``target``; ``None`` when there is no band."""
        widths = [
            w
            for w in (self.absolute, None if self.relative is None else self.relative * target)
            if w is not None
        ]
        return min(widths) if widths else None


@dataclass(frozen=True, slots=True)
class ModelTarget:
    kind: TargetKind
    target_id: str  # a security id, a model id, an asset class; "" for cash
    weight: Decimal = ZERO
    band: Band = field(default_factory=Band)

    def __post_init__(self) -> None:
        if self.weight < ZERO or self.weight > ONE:
            raise ValidationError(f"target {self.target_id or 'cash'}: weight must lie in [0, 1]")
        if self.kind in _NO_ID and self.target_id:
            raise ValidationError(f"the {self.kind.value} row takes no id")
        if self.kind not in _NO_ID and not self.target_id:
            raise ValidationError(f"a {self.kind.value} target needs an id")
        if self.kind in _BANDS_ONLY and self.weight != ZERO:
            raise ValidationError(f"a {self.kind.value} row carries a band, not a weight")


@dataclass(frozen=True, slots=True)
class Model:
    """A model portfolio. Its security, model and cash weights add up to exactly 1."""

    model_id: str
    name: str
    targets: tuple[ModelTarget, ...]

    def __post_init__(self) -> None:
        if not self.model_id.strip():
            raise ValidationError("a model needs an id")
        total = sum((t.weight for t in self.targets), ZERO)
        if total != ONE:
            raise ValidationError(f"model {self.model_id}: weights add up to {total}, not 1")
        seen: set[tuple[TargetKind, str]] = set()
        for t in self.targets:
            if (t.kind, t.target_id) in seen:
                raise ValidationError(
                    f"model {self.model_id}: {t.kind.value} {t.target_id!r} twice"
                )
            seen.add((t.kind, t.target_id))
            if t.kind is TargetKind.MODEL and t.target_id == self.model_id:
                raise ValidationError(f"model {self.model_id} holds itself")

    @property
    def cash_weight(self) -> Decimal:
        return sum((t.weight for t in self.targets if t.kind is TargetKind.CASH), ZERO)

    @property
    def class_bands(self) -> dict[str, Band]:
        return {t.target_id: t.band for t in self.targets if t.kind is TargetKind.ASSET_CLASS}

    def band_of(self, kind: TargetKind) -> Band:
        """The band of the model's (only) cash or default row; no band if there is none."""
        return next((t.band for t in self.targets if t.kind is kind), Band())


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model flattened to securities and cash; weights add up to 1.

    ``bands`` holds the band each security carries from the rows that reach it (a
    sleeve's absolute band shrinks with the sleeve's weight: 5 points inside a 30%
    sleeve are 1.5 points of the account; a security reached by several paths adds
    their absolute bands and keeps the narrowest relative one). ``default`` is the
    top model's default band, ``cash_band`` its cash row's band, ``class_bands`` its
    asset-class rows.
    """

    model_id: str
    securities: Mapping[str, Decimal]
    cash: Decimal
    bands: Mapping[str, Band] = field(default_factory=dict)
    default: Band = field(default_factory=Band)
    cash_band: Band = field(default_factory=Band)
    class_bands: Mapping[str, Band] = field(default_factory=dict)


def position_band(resolved: ResolvedModel, security_id: str, *, firm: Band) -> Band:
    """The band a position of this model takes: its own (through its sleeves), else the
    model's default row, else the firm's. An account's override, where it has one,
    comes before all three; the caller applies it."""
    own = resolved.bands.get(security_id)
    if own is not None and own.width(ONE) is not None:
        return own
    if resolved.default.width(ONE) is not None:
        return resolved.default
    return firm


def _add_band(into: dict[str, Band], security_id: str, band: Band, scale: Decimal) -> None:
    """Fold one path's band into what a security already has."""
    scaled = None if band.absolute is None else band.absolute * scale
    had = into.get(security_id)
    if had is None:
        into[security_id] = Band(scaled, band.relative)
        return
    absolute = had.absolute if scaled is None else (had.absolute or ZERO) + scaled
    relatives = [r for r in (had.relative, band.relative) if r is not None]
    into[security_id] = Band(absolute, min(relatives) if relatives else None)


def resolve(model_id: str, models: Mapping[str, Model]) -> ResolvedModel:
    """Flatten a model of models into security weights (and cash), exactly.

    A sleeve held at weight *w* contributes *w* times each of its own weights; its
    cash target becomes the parent's cash. Cycles and unknown sleeves are errors.
    """
    weights: dict[str, Decimal] = {}
    bands: dict[str, Band] = {}
    cash = ZERO

    def walk(mid: str, scale: Decimal, path: tuple[str, ...]) -> None:
        nonlocal cash
        if mid in path:
            raise ValidationError(f"models hold each other in a cycle: {' → '.join((*path, mid))}")
        model = models.get(mid)
        if model is None:
            raise ValidationError(f"model {path[-1] if path else mid} holds unknown model {mid}")
        sleeve_default = model.band_of(TargetKind.DEFAULT) if path else Band()
        for t in model.targets:
            if t.kind is TargetKind.SECURITY:
                weights[t.target_id] = weights.get(t.target_id, ZERO) + scale * t.weight
                own = t.band if t.band.width(ONE) is not None else sleeve_default
                if own.width(ONE) is not None:
                    _add_band(bands, t.target_id, own, scale)
            elif t.kind is TargetKind.CASH:
                cash += scale * t.weight
            elif t.kind is TargetKind.MODEL:
                walk(t.target_id, scale * t.weight, (*path, mid))

    walk(model_id, ONE, ())
    top = models[model_id]
    return ResolvedModel(
        model_id=model_id,
        securities=weights,
        cash=cash,
        bands=bands,
        default=top.band_of(TargetKind.DEFAULT),
        cash_band=top.band_of(TargetKind.CASH),
        class_bands=top.class_bands,
    )
