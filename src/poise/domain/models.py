"""Model portfolios: target weights, bands, and models made of other models."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO

__all__ = ["Band", "Model", "ModelTarget", "ResolvedModel", "TargetKind", "resolve"]

ONE = Decimal(1)


class TargetKind(enum.StrEnum):
    SECURITY = "security"
    MODEL = "model"  # a sleeve: another model, held at a weight
    CASH = "cash"
    ASSET_CLASS = "asset_class"  # carries a band for an asset class, no weight of its own


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
        if self.kind is TargetKind.CASH and self.target_id:
            raise ValidationError("the cash target takes no id")
        if self.kind is not TargetKind.CASH and not self.target_id:
            raise ValidationError(f"a {self.kind.value} target needs an id")
        if self.kind is TargetKind.ASSET_CLASS and self.weight != ZERO:
            raise ValidationError("an asset-class row carries a band, not a weight")


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


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model flattened to securities and cash; weights add up to 1."""

    model_id: str
    securities: Mapping[str, Decimal]
    cash: Decimal


def resolve(model_id: str, models: Mapping[str, Model]) -> ResolvedModel:
    """Flatten a model of models into security weights (and cash), exactly.

    A sleeve held at weight *w* contributes *w* times each of its own weights; its
    cash target becomes the parent's cash. Cycles and unknown sleeves are errors.
    """
    weights: dict[str, Decimal] = {}
    cash = ZERO

    def walk(mid: str, scale: Decimal, path: tuple[str, ...]) -> None:
        nonlocal cash
        if mid in path:
            raise ValidationError(f"models hold each other in a cycle: {' → '.join((*path, mid))}")
        model = models.get(mid)
        if model is None:
            raise ValidationError(f"model {path[-1] if path else mid} holds unknown model {mid}")
        for t in model.targets:
            if t.kind is TargetKind.SECURITY:
                weights[t.target_id] = weights.get(t.target_id, ZERO) + scale * t.weight
            elif t.kind is TargetKind.CASH:
                cash += scale * t.weight
            elif t.kind is TargetKind.MODEL:
                walk(t.target_id, scale * t.weight, (*path, mid))

    walk(model_id, ONE, ())
    return ResolvedModel(model_id=model_id, securities=weights, cash=cash)
