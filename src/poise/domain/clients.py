"""Client profiles: who the client is and what they asked for."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from poise.domain.errors import ValidationError

__all__ = ["ClientProfile", "RiskTolerance"]


class RiskTolerance(enum.StrEnum):
    CONSERVATIVE = "conservative"
    MODERATE_CONSERVATIVE = "moderately_conservative"
    MODERATE = "moderate"
    MODERATE_AGGRESSIVE = "moderately_aggressive"
    AGGRESSIVE = "aggressive"


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """A client of the firm and the profile that maps them to a model.

    ``exclusions`` are security ids the client will not hold; ``esg`` are tags the
    client excludes (``tobacco``, ``fossil_fuels`` …).
    """

    client_id: str
    household_id: str
    name: str
    risk_tolerance: RiskTolerance
    horizon_years: int
    model_id: str | None = None
    goals: tuple[str, ...] = ()
    exclusions: frozenset[str] = frozenset()
    esg: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.client_id.strip():
            raise ValidationError("a client needs an id")
        if not 0 <= self.horizon_years <= 100:
            raise ValidationError(f"client {self.client_id}: horizon must be 0 to 100 years")
