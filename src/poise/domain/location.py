"""Asset location: which kind of account each asset is best held in.

Two scores in [0, 1] rank every security, looked up by its security id, else its
sub-class, else its asset class, else the default:

* **tax inefficiency** — how much of its return a taxable account gives away each
  year: bonds and REITs pay income taxed at ordinary rates (1.0, 0.9), high yield
  (1.0), broad equity index funds little (0.2);
* **growth** — its expected long-run growth: what a Roth, whose growth is never
  taxed, should hold first (small caps and emerging markets 0.8, broad equity 0.6,
  bonds 0.1, cash 0).

From them, each dollar of a security held in an account costs, per year, a fraction
of that dollar (:meth:`Location.cost`):

* in a taxable account: its inefficiency (a bond's income taxed every year);
* in a tax-deferred account (traditional IRA, SEP, 401(k)): half its growth (growth
  there is taxed as income on the way out, so high growth is better in a Roth);
* in a tax-exempt account (Roth, HSA): what it lacks of growth (1 − growth): the Roth
  is the place for the highest expected growth.

So bonds go first into tax-deferred accounts, the highest growth into the Roth,
broad equity into the taxable account. The ranking is the firm's to change: a CSV of
``key,inefficiency,growth`` rows (``POISE_LOCATION_FILE``; see ``docs/households.md``).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from poise.domain.accounts import Registration
from poise.domain.errors import ValidationError
from poise.domain.securities import Security

__all__ = ["DEFAULT_RANKING", "Location", "Score", "read_location"]


@dataclass(frozen=True, slots=True)
class Score:
    inefficiency: float
    growth: float

    def __post_init__(self) -> None:
        for name, value in (("inefficiency", self.inefficiency), ("growth", self.growth)):
            if not 0.0 <= value <= 1.0:
                raise ValidationError(f"a location {name} is between 0 and 1, not {value}")


# By asset class or sub-class; a security id may be given its own.
DEFAULT_RANKING: Mapping[str, Score] = {
    "fixed_income": Score(1.0, 0.1),
    "high_yield": Score(1.0, 0.3),
    "real_estate": Score(0.9, 0.5),
    "reit": Score(0.9, 0.5),
    "commodities": Score(0.8, 0.3),
    "cash": Score(0.8, 0.0),
    "international_equity": Score(0.4, 0.6),
    "emerging_markets": Score(0.4, 0.8),
    "small_cap": Score(0.3, 0.8),
    "us_equity": Score(0.2, 0.6),
}
DEFAULT_SCORE = Score(0.3, 0.5)  # what the ranking does not name


@dataclass(frozen=True, slots=True)
class Location:
    """The firm's ranking of assets for location."""

    ranking: Mapping[str, Score] = field(default_factory=lambda: dict(DEFAULT_RANKING))
    default: Score = DEFAULT_SCORE

    def score(self, security: Security) -> Score:
        for key in (security.security_id, security.sub_class, security.asset_class):
            if key and key in self.ranking:
                return self.ranking[key]
        return self.default

    def cost(self, registration: Registration, security: Security) -> float:
        """What a dollar of ``security`` held in an account of ``registration`` costs
        a year, as a fraction of that dollar, against holding it where it fits best."""
        score = self.score(security)
        if registration.taxable:
            return score.inefficiency
        if registration.tax_deferred:
            return score.growth / 2
        return 1.0 - score.growth

    @staticmethod
    def kind(registration: Registration) -> str:
        """The kind of account, in words."""
        if registration.taxable:
            return "taxable"
        return "tax-deferred" if registration.tax_deferred else "tax-exempt"


def read_location(path: Path) -> Location:
    """A ranking from a CSV file of ``key,inefficiency,growth`` (a header row first);
    keys it names replace the defaults', the rest stay."""
    ranking = dict(DEFAULT_RANKING)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ValidationError(f"{path}: cannot read the location ranking: {e}") from e
    for line, row in enumerate(rows, start=2):
        try:
            key = (row.get("key") or "").strip()
            if not key:
                raise ValidationError("no key")
            ranking[key] = Score(float(row["inefficiency"]), float(row["growth"]))
        except (KeyError, TypeError, ValueError, ValidationError) as e:
            raise ValidationError(f"{path}, line {line}: {e}") from e
    return Location(ranking)
