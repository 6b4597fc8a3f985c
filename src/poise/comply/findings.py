"""What a rule finds: a breach, how bad, by how much, and in words."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.money import plain

__all__ = ["Finding", "Severity", "blocks"]


class Severity(enum.StrEnum):
    """``block``: the proposal may not go ahead (unless compliance overrides it);
    ``warn``: it may, once someone acknowledges the finding with a reason."""

    BLOCK = "block"
    WARN = "warn"


Measure = Decimal | float | int | str  # money as Decimal, weights as float fractions


@dataclass(frozen=True, slots=True)
class Finding:
    """One breach of one rule. ``measured`` and ``limit`` are Decimal for money and
    shares, a float fraction for a weight (0.124 is 12.4%), a float for days, an int
    for a count; a custom rule's are the text ``"false"`` or ``"error"`` against
    ``"true"``."""

    rule_id: str
    kind: str
    severity: Severity
    measured: Measure
    limit: Measure
    explanation: str
    securities: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.BLOCK

    def as_json(self) -> dict[str, object]:
        """The finding as JSON values, money as exact text ("1234.5"), for storing it
        with its proposal or sending it."""
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "severity": self.severity.value,
            "measured": _json(self.measured),
            "limit": _json(self.limit),
            "explanation": self.explanation,
            "securities": list(self.securities),
            "accounts": list(self.accounts),
        }


def _json(value: Measure) -> str | float | int:
    return plain(value) if isinstance(value, Decimal) else value


def blocks(findings: list[Finding]) -> list[Finding]:
    """The findings that stop a proposal."""
    return [f for f in findings if f.blocks]
