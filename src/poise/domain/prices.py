"""Prices, each with the time it was taken and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import ZERO

__all__ = ["Price"]


@dataclass(frozen=True, slots=True)
class Price:
    security_id: str
    as_of: datetime
    price: Decimal
    source: str = ""

    def __post_init__(self) -> None:
        if self.price <= ZERO:
            raise ValidationError(f"price of {self.security_id} must be positive, got {self.price}")
        if self.as_of.tzinfo is None or self.as_of.utcoffset() is None:
            raise ValidationError(f"price of {self.security_id}: as-of time needs a timezone")
